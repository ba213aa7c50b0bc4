"""The report's pieces on real quopt run files: a tiny study (two sizes x AdamW and Muon x two learning
rates, the common-loss protocol, RTN W4A4) is trained and quantized by the quopt binary, then
postprocess/ reads it. Every number checked here is recomputed from the run files with numpy/scipy,
independently of quopt_post.

The binary is $QUOPT_BIN, else the newest build/*/quopt of the repository; the tests are skipped
when there is none (scripts/test.sh builds it first and sets QUOPT_BIN).
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")
scipy_stats = pytest.importorskip("scipy.stats")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "postprocess"))

from quopt_post.collect import collect  # noqa: E402
from quopt_post.report import make_report  # noqa: E402


def _binary():
    env = os.environ.get("QUOPT_BIN")
    if env:
        return Path(env)
    found = sorted(REPO.glob("build/*/quopt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    exe = _binary()
    if exe is None or not exe.exists():
        pytest.skip("quopt not built (set QUOPT_BIN or build it under build/)")
    w = tmp_path_factory.mktemp("study")
    subprocess.run([sys.executable, str(REPO / "tests/e2e/make_corpus.py"), str(w / "corpus.txt"), "400"], check=True)
    (w / "base.toml").write_text(f"""
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[model]
vocab_size = 512
seq_len = 32
n_heads = 2
[data]
train = "tok/train.bin"
val = "tok/val.bin"
tokenizer = "tok/tokenizer.model"
[train]
batch_size = 8
log_every = 5
val_points = 6
val_batches = 2
[quant]
calibration_batches = 1
record_rows = 8
[eval]
builtin_examples = 50
val_batches = 4
""")
    for name, d, layers in (("a", 16, 1), ("b", 24, 2)):
        (w / f"m{name}.toml").write_text(f'[model]\nname = "m{name}"\nd_model = {d}\nn_layers = {layers}\n')
    (w / "study.toml").write_text(f"""
[study]
name = "pytest"
base = "base.toml"
out_dir = "runs"
sizes = ["ma.toml", "mb.toml"]
optimizers = ["adamw", "muon"]
optimizer_dir = "{REPO / 'inputs/optimizers'}"
tokens_per_param = 0
ptq_schemes = ["rtn-w4a4"]
overrides = ["train.steps=30", "optimizer.muon.adam_lr=1e-2"]
[study.lr]
adamw = ["3e-3", "1e-2"]
muon = ["1e-2", "3e-2"]
""")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for args in (["tokenize", "base.toml"], ["study", "run", "study.toml"]):
        proc = subprocess.run([str(exe), *args], cwd=w, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return w / "runs"


def _h5(run_file):
    return h5py.File(run_file, "r")


def test_selection_and_protocol_columns_match_the_run_files(study):
    got = collect(study, quiet=True, resamples=500)
    assert not got.warnings and not got.skipped
    fp = [r for r in got.rows if r["scheme"] == "fp"]
    assert len(fp) == 8 and sum(r["selected"] for r in fp) == 4
    for r in fp:
        with _h5(r["run_file"]) as f:
            st = dict(f["study"].attrs)
            assert r["selected"] == int(st["selected"])  # the Python rule agrees with the study's
            assert r["lr_mean_val_loss"] == pytest.approx(float(st["lr_mean_val_loss"]), rel=1e-12)
            if not r["selected"]:
                assert "quant" not in f
                continue
            q = next(x for x in got.rows if x["run_file"] == r["run_file"] and x["scheme"] == "rtn-w4a4")
            assert q["ptq_step"] == int(st["ptq_step"]) == r["ptq_step"]
            assert q["ptq_protocol"] == "common-loss"
            assert q["ptq_threshold"] == pytest.approx(float(st["threshold"]))
            assert q["ptq_train_val_loss"] <= q["ptq_threshold"]
            steps = f["metrics/train_step"][()]
            tokens = f["metrics/tokens"][()]
            assert q["ptq_tokens"] == tokens[list(steps).index(q["ptq_step"])]
    # The threshold of a size is the highest of its selected runs' minimum validation losses.
    for n in {r["parameters"] for r in fp}:
        chosen = [r for r in fp if r["parameters"] == n and r["selected"]]
        mins = []
        for r in chosen:
            with _h5(r["run_file"]) as f:
                mins.append(float(np.min(f["metrics/val_loss"][1:])))
        q = [x for x in got.rows if x["scheme"] == "rtn-w4a4" and x["parameters"] == n]
        assert all(x["ptq_threshold"] == pytest.approx(max(mins)) for x in q)


def test_damage_and_its_intervals_are_recomputed_from_the_items(study):
    rows = collect(study, quiet=True, resamples=2000).rows
    for q in (r for r in rows if r["scheme"] == "rtn-w4a4"):
        with _h5(q["run_file"]) as f:
            d_loss = f["quant/rtn-w4a4/eval/window_loss"][()] - f["eval/window_loss"][()]
            d_acc = (f["eval/tasks/continuation/correct_norm"][()] - f["quant/rtn-w4a4/eval/tasks/continuation/correct_norm"][()])
        assert q["loss_increase"] == pytest.approx(d_loss.mean(), abs=1e-6)  # f32 sums in quopt
        assert q["acc_drop"] == pytest.approx(d_acc.mean(), abs=1e-12)
        half = 1.96 * d_loss.std(ddof=1) / math.sqrt(d_loss.size)
        assert (q["loss_increase_ci_high"] - q["loss_increase_ci_low"]) / 2 == pytest.approx(half, rel=0.25)
        assert q["loss_increase_ci_low"] <= q["loss_increase"] <= q["loss_increase_ci_high"]
        if d_acc.std() > 0:
            assert q["acc_drop_ci_low"] <= q["acc_drop"] <= q["acc_drop_ci_high"]


def test_report_on_the_study(study, tmp_path):
    rep = make_report(study, tmp_path / "report", bootstrap=0, resamples=500)
    md = (tmp_path / "report" / "report.md").read_text()
    assert {"sweep.png", "protocol.png"} <= set(rep.figures)
    assert rep.headline.startswith("## Headline") and rep.headline in md
    assert "**Learning rates** selected by the sweep" in md and "Protocol **common-loss**" in md
    # The correlations in the headline are Pearson's r over the selected models, as scipy computes it.
    rows = [r for r in rep.rows if r["scheme"] == "rtn-w4a4"]
    x = np.array([r["R_L"] for r in rows])
    y = np.array([r["loss_increase"] for r in rows])
    r = scipy_stats.pearsonr(x, y)[0]
    line = next(line for line in md.splitlines() if line.startswith("| R_L |"))
    assert line.split("|")[2].strip().startswith(f"{r:.2f} ["), (line, r)
    for target in ("loss_increase", "acc_drop", "acc_avg"):
        assert f"**rtn-w4a4, {target}:** R_L" in md
        assert f"r with {target}" in md
    assert "**rtn-w4a4, loss_increase:**" in md and "loses least" in md
