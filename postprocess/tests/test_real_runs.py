"""postprocess on real quopt run files: a tiny sweep trained by the quopt binary in this test (two
optimizers x two learning rates x two seeds, each quantized by `quopt ptq`, plus a QAT run evaluated as
trained by `quopt eval`), read back
by collect, best-lr selection, the report's best-run choice and its QAT table, each checked against
values read independently from the run files with h5py. Plus the statistics the report rests on,
checked by their definitions: Spearman with ties, bootstrap percentile intervals, Fit.predict.

The binary is $QUOPT_BIN, else build/cpu/quopt (scripts/test.sh builds it first).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats as sps

from quopt_post import scaling, stats
from quopt_post.collect import collect
from quopt_post.report import best_runs, make_report

REPO = Path(__file__).resolve().parents[2]
STEPS, BATCH, SEQ = 10, 8, 32
SWEEP = {"adamw": (1e-3, 4e-3), "muon": (3e-3, 2e-2)}
SEEDS = (1, 2)


def quopt_binary() -> str:
    q = os.environ.get("QUOPT_BIN") or str(REPO / "build" / "cpu" / "quopt")
    if not os.access(q, os.X_OK):
        pytest.fail(f"the quopt binary {q} is missing: build it (cmake --build build/cpu --target quopt) or set QUOPT_BIN")
    return q


def run(*args: str, cwd: Path) -> None:
    p = subprocess.run([quopt_binary(), *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"quopt {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"


CONFIG = f"""[model]
name = "pp-tiny"
d_model = 32
n_layers = 2
n_heads = 2
n_kv_heads = 2
vocab_size = 512
seq_len = {SEQ}
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[data]
train = "tok/train.bin"
val = "tok/val.bin"
tokenizer = "tok/tokenizer.model"
[train]
steps = {STEPS}
batch_size = {BATCH}
micro_batch_size = 4
log_every = 5
val_every = 5
val_batches = 2
[eval]
builtin_examples = 16
val_batches = 2
[quant]
record_rows = 8
calibration_batches = 1
hadamard_block = 32
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """runs/<name>/run.h5 for every (optimizer, lr, seed) and one QAT run; returns (runs_dir, specs)."""
    w = tmp_path_factory.mktemp("quopt_sweep")
    subprocess.run([sys.executable, str(REPO / "tests" / "e2e" / "make_corpus.py"), str(w / "corpus.txt"), "120"],
                   check=True, capture_output=True)
    (w / "run.toml").write_text(CONFIG)
    run("tokenize", "run.toml", cwd=w)
    specs = {}
    for opt, lrs in SWEEP.items():
        for lr in lrs:
            for seed in SEEDS:
                specs[f"{opt}_lr{lr:g}_s{seed}"] = dict(optimizer=opt, lr=lr, seed=seed, qat="none")
    specs["adamw_qat"] = dict(optimizer="adamw", lr=SWEEP["adamw"][1], seed=1, qat="quest")
    for name, s in specs.items():
        out = f"runs/{name}"
        run("train", "run.toml", "--out", out, "--set", f"optimizer.name={s['optimizer']}",
            "--set", f"optimizer.lr={s['lr']}", "--set", f"train.seed={s['seed']}", "--set", f"quant.qat={s['qat']}",
            cwd=w)
        if s["qat"] == "none":
            run("ptq", "run.toml", "--run", out, cwd=w)
        else:  # a QAT model is evaluated as trained (PTQ on top would quantize it twice)
            run("eval", "run.toml", "--run", out, "--set", f"quant.qat={s['qat']}", cwd=w)
    return w / "runs", specs


def h5_truth(path: Path) -> dict:
    """What the run file says, read with h5py (independently of quopt_post)."""
    with h5py.File(path) as f:
        return {
            "final_val_loss": float(f["metrics/val_loss"][-1]),
            "fp_val_loss": float(f["eval"].attrs["val_loss"]),
            # the report's accuracy: acc_norm (its default, the paper's)
            "fp_acc": float(np.mean([f[f"eval/tasks/{t}"].attrs["acc_norm"] for t in f["eval/tasks"]])),
            "steps": int(f["metrics/train_step"][-1]),
            "tokens": float(f["metrics/tokens"][-1]),
        }


def test_collect_reads_what_quopt_wrote(sweep):
    runs, specs = sweep
    got = collect(runs, quiet=True)
    assert not got.skipped and not got.warnings
    fp = {r["run_dir"]: r for r in got.rows if r["scheme"] == "fp"}
    assert sorted(fp) == sorted(specs)
    for name, s in specs.items():
        row, truth = fp[name], h5_truth(runs / name / "run.h5")
        assert (row["optimizer"], row["lr"], row["seed"], row["qat"]) == (s["optimizer"], s["lr"], s["seed"], s["qat"])
        assert row["steps"] == STEPS == truth["steps"]
        assert row["tokens"] == STEPS * BATCH * SEQ == truth["tokens"]
        assert row["final_val_loss"] == truth["final_val_loss"]
        assert row["fp_val_loss"] == truth["fp_val_loss"]
        # the last metrics.jsonl record carries the same validation loss (shortest round-trip text)
        last = [line for line in (runs / name / "metrics.jsonl").read_text().splitlines() if '"val_loss"' in line][-1]
        assert float(re.search(r'"val_loss":([^,}]+)', last).group(1)) == truth["final_val_loss"]
        ptq = [r for r in got.rows if r["run_dir"] == name and r["scheme"] == "rtn-w4a4"]
        assert len(ptq) == (1 if s["qat"] == "none" else 0), name
        for r in ptq:
            assert r["loss_increase"] == pytest.approx(r["val_loss"] - truth["fp_val_loss"])


def test_best_lr_is_the_lowest_mean_over_seeds(sweep):
    runs, specs = sweep
    rows = collect(runs, quiet=True).rows
    points = {p.optimizer: p for p in scaling.select_points(rows) if p.variant == "fp"}
    assert sorted(points) == sorted(SWEEP)
    for opt, lrs in SWEEP.items():
        by_lr = {lr: [h5_truth(runs / f"{opt}_lr{lr:g}_s{s}" / "run.h5")["fp_val_loss"] for s in SEEDS] for lr in lrs}
        assert all(v[0] != v[1] for v in by_lr.values()), "the seeds must differ for this test to mean anything"
        means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
        best = min(means, key=means.get)
        assert points[opt].loss == pytest.approx(means[best], rel=1e-12), (opt, means)
        assert points[opt].runs == len(SEEDS)


def test_report_picks_the_lowest_loss_run_and_signs_the_qat_table(sweep, tmp_path):
    runs, specs = sweep
    rows = collect(runs, quiet=True).rows
    truth = {name: h5_truth(runs / name / "run.h5") for name in specs}
    best = best_runs(rows)
    for opt in SWEEP:
        names = [n for n, s in specs.items() if s["optimizer"] == opt and s["qat"] == "none"]
        want = min(names, key=lambda n: truth[n]["fp_val_loss"])
        (key,) = [k for k in best if k[0] == opt]
        assert best[key]["run_dir"] == want
    (qkey,) = best_runs(rows, "quest")
    assert best_runs(rows, "quest")[qkey]["run_dir"] == "adamw_qat"

    make_report(runs, tmp_path / "report", bootstrap=0)
    md = (tmp_path / "report" / "report.md").read_text()
    section = md.split("### QAT `quest`", 1)[1]
    (row,) = [line for line in section.splitlines() if line.startswith("| adamw |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    fp_loss, qat_loss, loss_diff, fp_acc, qat_acc, acc_diff = map(float, cells[2:8])
    fp_best = min((n for n, s in specs.items() if s["optimizer"] == "adamw" and s["qat"] == "none"),
                  key=lambda n: truth[n]["fp_val_loss"])
    assert fp_loss == pytest.approx(truth[fp_best]["fp_val_loss"], abs=1e-3)
    assert qat_loss == pytest.approx(truth["adamw_qat"]["fp_val_loss"], abs=1e-3)
    # diff = QAT - FP, in the table's own rounding
    assert loss_diff == pytest.approx(truth["adamw_qat"]["fp_val_loss"] - truth[fp_best]["fp_val_loss"], abs=2e-3)
    assert acc_diff == pytest.approx(100 * (truth["adamw_qat"]["fp_acc"] - truth[fp_best]["fp_acc"]), abs=2e-2)
    assert qat_acc - fp_acc == pytest.approx(acc_diff, abs=2e-2)


def test_spearman_uses_average_ranks_for_ties():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(5, 15))
        x = rng.integers(0, 4, n).astype(float)  # many ties
        y = rng.integers(0, 3, n).astype(float) + 0.1 * x
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
        assert stats.correlate_xy(x, y)["spearman_rho"] == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    # a monotone relation with ties in x: rho = Pearson of the average ranks [1.5, 1.5, 3, 4.5, 4.5] vs [1..5]
    x, y = np.array([1.0, 1.0, 2.0, 3.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats.spearman(x, y) == pytest.approx(stats.pearson([1.5, 1.5, 3, 4.5, 4.5], [1, 2, 3, 4, 5]))


def _fit(law: str, theta: list[float], boot: np.ndarray | None = None) -> scaling.Fit:
    groups = [("adamw", "fp"), ("muon", "fp")]
    return scaling.Fit("shared", "t", law, groups, np.array(theta), 0.0, 0.0, 5, boot)


def test_fit_predict_is_the_law_with_rho():
    N, D = np.array([1e6, 3e7]), np.array([2e7, 6e8])
    E, A, alpha, B, beta, rho = 1.7, 400.0, 0.3, 900.0, 0.28, 0.8
    f = _fit("n", [math.log(E), math.log(A), alpha, math.log(rho)])
    np.testing.assert_allclose(f.predict(N, None, ("adamw", "fp")), E + A / N**alpha, rtol=1e-13)
    np.testing.assert_allclose(f.predict(N, None, ("muon", "fp")), E + A / (rho * N) ** alpha, rtol=1e-13)
    g = _fit("nd", [math.log(E), math.log(A), alpha, math.log(B), beta, math.log(rho)])
    np.testing.assert_allclose(g.predict(N, D, ("muon", "fp")), E + A / (rho * N) ** alpha + B / D**beta, rtol=1e-13)
    with pytest.raises(ValueError):
        g.predict(N, None, ("muon", "fp"))


def test_bootstrap_intervals_are_the_2_5_and_97_5_percentiles():
    rng = np.random.default_rng(5)
    boot = np.column_stack([rng.normal(0.5, 0.1, 400), rng.normal(4.0, 0.3, 400), rng.normal(0.3, 0.02, 400),
                            rng.normal(-0.2, 0.05, 400)])
    f = _fit("n", [0.5, 4.0, 0.3, -0.2], boot)
    rows = {(r["parameter"], r["optimizer"]): r for r in scaling.fit_rows(f)}
    for key, col, transform in ((("E", ""), 0, np.exp), (("A", ""), 1, np.exp), (("alpha", ""), 2, lambda v: v),
                                (("rho", "muon"), 3, np.exp)):
        lo, hi = np.percentile(transform(boot[:, col]), [2.5, 97.5])
        assert rows[key]["ci_low"] == pytest.approx(lo, rel=1e-12), key
        assert rows[key]["ci_high"] == pytest.approx(hi, rel=1e-12), key
        assert rows[key]["ci_low"] < rows[key]["estimate"] < rows[key]["ci_high"], key
    assert rows[("rho", "adamw")]["ci_low"] == rows[("rho", "adamw")]["ci_high"] == 1.0  # the reference
