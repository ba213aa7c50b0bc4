import math

import pytest
from conftest import TASKS, write_corrupt, write_foreign, write_run

from quopt_post.cli import main
from quopt_post.collect import collect
from quopt_post.table import read_csv


def _row(rows, run_dir, scheme):
    found = [r for r in rows if r["run_dir"] == run_dir and r["scheme"] == scheme]
    assert len(found) == 1, (run_dir, scheme, found)
    return found[0]


def test_collect_values_match_what_was_written(tmp_path, capsys):
    runs = tmp_path / "runs"
    fp_tasks = {"piqa": (0.70, 0.72), "hellaswag": (0.40, 0.45)}
    q_tasks = {"piqa": (0.61, 0.70), "hellaswag": (0.35, 0.41)}
    write_run(
        runs / "a" / "run.h5",
        optimizer="muon",
        parameters=2_000_000,
        lr=0.02,
        seed=7,
        tokens=4.0e7,
        train_loss=3.1,
        val_loss=3.2,
        fp_eval={"val_loss": 3.25, "tasks": fp_tasks},
        schemes={
            "rtn-w4a4": {
                "val_loss": 3.75,
                "tasks": q_tasks,
                "analysis": {"R_L": 0.125, "mmr_mean": 5.5, "mmr_max": 40.0, "kurtosis_mean": 9.0, "kurtosis_max": 99.0},
            }
        },
    )
    out = tmp_path / "table.csv"
    assert main(["collect", str(runs), "--out", str(out)]) == 0
    rows = read_csv(out)
    assert len(rows) == 2  # "fp" + one scheme
    fp, q = _row(rows, "a", "fp"), _row(rows, "a", "rtn-w4a4")
    for r in (fp, q):
        assert r["optimizer"] == "muon" and r["lr"] == 0.02 and r["seed"] == 7
        assert r["parameters"] == 2_000_000 and r["non_embedding_parameters"] == 1_500_000
        assert r["qat"] == "none"  # no [quant] table in the config: FP training
        assert r["tokens"] == pytest.approx(4.0e7)
        assert r["tokens_per_param"] == pytest.approx(20.0)
        assert r["final_train_loss"] == pytest.approx(3.1)
        assert r["final_val_loss"] == pytest.approx(3.2)
        assert r["fp_val_loss"] == pytest.approx(3.25)
        # acc_norm by default: the paper's accuracy (the second value of each pair above)
        assert r["fp_acc_avg"] == pytest.approx((0.72 + 0.45) / 2)
        assert r["fp_acc_piqa"] == pytest.approx(0.72)
        assert r["acc_metric"] == "acc_norm"
    assert fp["val_loss"] == pytest.approx(3.25)
    assert fp["loss_increase"] is None and fp["R_L"] is None
    assert q["val_loss"] == pytest.approx(3.75)
    assert q["loss_increase"] == pytest.approx(3.75 - 3.25)
    assert q["acc_piqa"] == pytest.approx(0.70)
    assert q["acc_avg"] == pytest.approx((0.70 + 0.41) / 2)
    assert q["acc_drop"] == pytest.approx(((0.72 - 0.70) + (0.45 - 0.41)) / 2)
    assert q["R_L"] == 0.125 and q["mmr_max"] == 40.0 and q["kurtosis_max"] == 99.0
    assert q["quant_method"] == "rtn" and q["weight_bits"] == 4 and q["act_bits"] == 4
    assert "1 run(s), 2 row(s)" in capsys.readouterr().err


def test_acc_norm_metric(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs / "run.h5",
        fp_eval={"val_loss": 3.0, "tasks": {"piqa": (0.5, 0.8)}},
        schemes={"rtn-w4": {"val_loss": 3.1, "tasks": {"piqa": (0.4, 0.6)}}},
    )
    rows = collect(runs, acc_metric="acc_norm", quiet=True).rows
    q = [r for r in rows if r["scheme"] == "rtn-w4"][0]
    assert q["run_dir"] == "."
    assert q["fp_acc_piqa"] == pytest.approx(0.8)
    assert q["acc_drop"] == pytest.approx(0.2)
    assert q["acc_metric"] == "acc_norm"


def test_acc_drop_uses_the_tasks_evaluated_in_both(tmp_path):
    write_run(
        tmp_path / "r" / "run.h5",
        fp_eval={"val_loss": 3.0, "tasks": {"piqa": 0.7, "arc_easy": 0.5}},
        schemes={"rtn-w4": {"val_loss": 3.1, "tasks": {"piqa": 0.6}}},
    )
    q = [r for r in collect(tmp_path, quiet=True).rows if r["scheme"] == "rtn-w4"][0]
    assert q["acc_drop"] == pytest.approx(0.1)  # only piqa is in both
    assert q["fp_acc_avg"] == pytest.approx(0.6)


def test_missing_groups_give_empty_cells_and_bad_files_are_skipped(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs / "trained_only" / "run.h5")  # no /eval, /quant, /analysis
    write_run(runs / "no_eval" / "deep" / "run.h5", schemes={"rtn-w4a4": {"val_loss": 3.5}})
    write_run(runs / "quant_no_analysis" / "run.h5", qat="quest", fp_eval={"val_loss": 3.0},
              schemes={"gptq-w4": {"val_loss": 3.2}})
    write_run(runs / "analysis_only" / "run.h5", fp_eval={"val_loss": 3.0},
              schemes={"rtn-w4a4": {"analysis": {"R_L": 0.5}}})
    write_corrupt(runs / "corrupt" / "run.h5")
    write_foreign(runs / "foreign" / "run.h5")
    (runs / "other.h5").write_bytes(b"not scanned: only run.h5 files are")
    out = tmp_path / "t.csv"
    assert main(["collect", str(runs), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "corrupt/run.h5" in err and "cannot open" in err
    assert "foreign/run.h5" in err and "not a quopt run file" in err
    assert "4 run(s)" in err and "2 file(s) skipped" in err
    rows = read_csv(out)
    assert sorted({r["run_dir"] for r in rows}) == ["analysis_only", "no_eval/deep", "quant_no_analysis", "trained_only"]

    t = _row(rows, "trained_only", "fp")
    assert t["fp_val_loss"] is None and t["fp_acc_avg"] is None and t["final_val_loss"] is not None
    assert len([r for r in rows if r["run_dir"] == "trained_only"]) == 1

    ne = _row(rows, "no_eval/deep", "rtn-w4a4")
    assert ne["val_loss"] == pytest.approx(3.5) and ne["loss_increase"] is None and ne["acc_drop"] is None

    qa = _row(rows, "quant_no_analysis", "gptq-w4")
    assert qa["qat"] == "quest" and qa["loss_increase"] == pytest.approx(0.2) and qa["R_L"] is None

    ao = _row(rows, "analysis_only", "rtn-w4a4")
    assert ao["R_L"] == 0.5 and ao["val_loss"] is None and ao["mmr_mean"] is None


def test_nothing_readable_is_an_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_corrupt(runs / "x" / "run.h5")
    out = tmp_path / "t.csv"
    assert main(["collect", str(runs), "--out", str(out)]) == 1
    assert "no run file could be read" in capsys.readouterr().err
    assert not out.exists()
    assert main(["collect", str(tmp_path / "nowhere"), "--out", str(out)]) == 1


def test_unparsable_config_keeps_the_rest(tmp_path, capsys):
    write_run(tmp_path / "run.h5", config="this is [not toml", fp_eval={"val_loss": 2.5})
    got = collect(tmp_path)
    assert "not valid TOML" in capsys.readouterr().err
    (row,) = got.rows
    assert row["optimizer"] is None and row["fp_val_loss"] == pytest.approx(2.5) and row["parameters"] == 1_000_000


def test_study_table_shape_and_degradations(study, tmp_path):
    runs, truth = study
    rows = collect(runs, quiet=True).rows
    assert len(rows) == 18 * 3  # 18 runs x (fp + 2 schemes)
    for t in truth:
        run_dir = f"{t['optimizer']}/n{t['n']}/{'qat' if t['qat'] != 'none' else 'fp'}"
        r = _row(rows, run_dir, t["scheme"])
        assert r["qat"] == t["qat"]
        assert r["loss_increase"] == pytest.approx(t["inc"], rel=1e-9)
        assert r["acc_drop"] == pytest.approx(t["drop"], abs=1e-12)
        assert all(not math.isnan(r[f"acc_{task}"]) for task in TASKS)


def test_qat_analysis_goes_to_the_fp_row_of_the_qat_run(tmp_path):
    """/analysis/qat (quopt analyze of a QAT run) describes the model as trained, not a PTQ scheme."""
    import h5py
    import numpy as np

    runs = tmp_path / "runs"
    path = write_run(runs / "q" / "run.h5", qat="quest", fp_eval={"val_loss": 3.4})
    with h5py.File(path, "a") as f:
        g = f.create_group("analysis/qat")
        g.attrs["arithmetic"] = "quest-w4a4"
        for k, v in {"R_L": 0.01, "mmr_tomean_mean": 6.0, "mmr_mean": 9e8, "kurtosis_max": 12.0}.items():
            g.attrs[k] = np.float64(v)
    rows = collect(runs, quiet=True).rows
    assert [r["scheme"] for r in rows] == ["fp"]  # no "qat" PTQ row
    fp = rows[0]
    assert fp["qat"] == "quest" and fp["R_L"] == 0.01 and fp["mmr_tomean_mean"] == 6.0
    assert fp["mmr_mean"] == 9e8 and fp["kurtosis_max"] == 12.0 and fp.get("loss_increase") is None
