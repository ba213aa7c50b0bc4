import pytest
from conftest import write_corrupt, write_run

from quopt_post.cli import main
from quopt_post.collect import collect
from quopt_post.table import write_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pngs(d):
    files = sorted(p.name for p in d.glob("*.png"))
    for name in files:
        assert (d / name).read_bytes()[:8] == PNG_MAGIC
        assert (d / name).stat().st_size > 2000
    return files


def test_full_report_from_runs_dir(study, tmp_path, capsys):
    runs, truth = study
    write_corrupt(runs / "broken" / "run.h5")
    out = tmp_path / "report"
    assert main(["report", str(runs), "--out", str(out), "--bootstrap", "5"]) == 0
    stdout = capsys.readouterr().out
    md = (out / "report.md").read_text()

    # the figures exist, are PNGs and are linked from the report
    pngs = _pngs(out)
    for expected in ("degradation_rtn-w4a4.png", "degradation_gptq-w4.png", "correlation_rtn-w4a4.png",
                     "correlation_rtn-w4a4_qat-quest.png", "scaling.png"):
        assert expected in pngs
    assert [p for p in pngs if p.startswith("abc_")] == ["abc_gptq-w4_10M.png", "abc_rtn-w4a4_10M.png"]  # largest size
    assert [p for p in pngs if p.startswith("robustness_")] == ["robustness_10M.png"]  # FP runs are tracked
    for name in pngs:
        assert f"]({name})" in md

    # the headline is printed and opens the report; the per-model tables (rtn-w4a4, the default scheme,
    # first) follow it
    assert stdout.startswith("## Headline") and md.index("## Headline") < md.index("Scheme `rtn-w4a4`")
    assert md.index("Scheme `rtn-w4a4`") < md.index("Scheme `gptq-w4`")
    header = "| optimizer | model | N | D/N | runs | FP loss | FP acc | PTQ loss | PTQ acc | loss increase | acc drop | R_L |"
    assert header in md
    # one row per optimizer and size, with the degradation that was put in (percent points)
    t = next(t for t in truth if (t["optimizer"], t["n"], t["qat"], t["scheme"]) == ("muon", 3_000_000, "none", "rtn-w4a4"))
    line = next(line for line in md.splitlines() if line.startswith("| muon | m3000000 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] == "20.0"  # tokens per parameter
    assert float(cells[9]) == pytest.approx(t["inc"], abs=1e-3)
    assert float(cells[10]) == pytest.approx(100 * t["drop"], abs=1e-2)
    assert float(cells[11]) == pytest.approx(t["inc"] / 2, abs=1e-4)
    assert sum(line.startswith(("| adamw |", "| muon |", "| shampoo |")) for line in md.split("### Scheme `rtn-w4a4`")[1].split("### Scheme `gptq-w4`")[0].splitlines()) == 9

    for section in ("## Headline", "## Quantization-aware training", "## PTQ degradation",
                    "## Which metric predicts PTQ damage?", "## Error propagation",
                    "## Quantization robustness during training", "## Scaling laws"):
        assert section in md
    assert "broken/run.h5" in md  # the skipped file is reported
    assert (out / "table.csv").exists() and (out / "correlations.csv").exists() and (out / "fits.csv").exists()


def test_report_with_minimal_data_says_what_is_missing(tmp_path, capsys):
    runs = tmp_path / "runs"
    for opt, loss in (("adamw", 3.0), ("muon", 2.9)):  # one size, no tasks, no QAT, no analysis, no abc
        write_run(runs / opt / "run.h5", optimizer=opt, fp_eval={"val_loss": loss},
                  schemes={"rtn-w4a4": {"val_loss": loss + 0.3}})
    out = tmp_path / "rep"
    assert main(["report", str(runs), "--out", str(out), "--bootstrap", "0"]) == 0
    stdout = capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "## What is missing" in md
    for msg in ("no task accuracies", "no QAT runs", "no /analysis", "at least 3 sizes", "no /analysis/<scheme>/abc",
                "no /metrics/robustness_*"):
        assert msg in md, msg
    assert "| adamw |" in stdout and "Missing:" in stdout
    assert _pngs(out) == ["degradation_rtn-w4a4.png", "protocol.png"]
    assert "no learning-rate sweep" in md  # one lr per optimizer


def test_report_fp_only_runs_and_from_a_table(tmp_path, capsys):
    runs = tmp_path / "runs"
    for k, n in enumerate([1e6, 2e6, 4e6, 8e6]):
        write_run(runs / f"r{k}" / "run.h5", parameters=int(n), train_loss=2 + 30 / n**0.3, val_loss=2 + 30 / n**0.3)
    table = tmp_path / "table.csv"
    write_csv(collect(runs, quiet=True).rows, table)
    out = tmp_path / "rep"
    assert main(["report", str(table), "--out", str(out), "--bootstrap", "3"]) == 0
    stdout = capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "Full precision only" in md and stdout.startswith("## Headline")
    assert "no PTQ schemes" in md
    assert "scaling.png" in _pngs(out)  # 4 sizes: the law is fitted (final_val_loss stands in for /eval)


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 1
    write_corrupt(tmp_path / "runs" / "run.h5")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r")]) == 1
    assert "no run could be read" in capsys.readouterr().err
    write_run(tmp_path / "ok" / "run.h5", fp_eval={"val_loss": 3.0}, schemes={"rtn-w4": {"val_loss": 3.1}})
    assert main(["report", str(tmp_path / "ok"), "--out", str(tmp_path / "r"), "--scheme", "gptq-w4"]) == 1
    assert "schemes present: rtn-w4" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    write_run(tmp_path / "runs" / "run.h5", fp_eval={"val_loss": 3.0})
    pkg = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(pkg))
    res = subprocess.run([sys.executable, "-m", "quopt_post", "collect", str(tmp_path / "runs"),
                          "--out", str(tmp_path / "t.csv")], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "t.csv").read_text().startswith("run_dir,run_file,model_name")
    res = subprocess.run([sys.executable, "-m", "quopt_post", "fit"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--out" in res.stderr
