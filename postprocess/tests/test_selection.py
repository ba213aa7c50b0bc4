import math

import pytest
from conftest import write_run

from quopt_post import selection, summary
from quopt_post.collect import collect


def _fp(opt, lr, seed, final, n=1000):
    return {"scheme": "fp", "optimizer": opt, "lr": lr, "seed": seed, "final_val_loss": final, "parameters": n,
            "qat": "none", "run_file": f"{opt}-{lr}-{seed}"}


def test_best_lr_by_mean_over_seeds_and_grid_position():
    rows = [
        _fp("adamw", 1e-3, 1, 3.00), _fp("adamw", 1e-3, 2, 3.40),  # mean 3.20, holds the single best run
        _fp("adamw", 2e-3, 1, 3.10), _fp("adamw", 2e-3, 2, 3.15),  # mean 3.125: selected
        _fp("adamw", 4e-3, 1, 3.30), _fp("adamw", 4e-3, 2, None),  # a diverged seed: +inf
        _fp("muon", 0.02, 1, 3.0), _fp("muon", 0.04, 1, 3.0),  # a tie: the smaller lr
        _fp("muon", 0.02, 1, 2.0, n=2000), _fp("muon", 0.04, 1, 1.9, n=2000),  # another size: its own choice
        _fp("soap", 3e-3, 1, 3.0),
    ]
    selection.annotate(rows)
    chosen = {(r["optimizer"], r["parameters"], r["lr"], r["seed"]) for r in rows if r["selected"] == 1}
    assert chosen == {("adamw", 1000, 2e-3, 1), ("adamw", 1000, 2e-3, 2), ("muon", 1000, 0.02, 1),
                      ("muon", 2000, 0.04, 1), ("soap", 1000, 3e-3, 1)}
    a = next(r for r in rows if r["optimizer"] == "adamw" and r["lr"] == 1e-3)
    assert a["lr_mean_val_loss"] == pytest.approx(3.2) and a["lr_seeds"] == 2 and a["best_lr"] == 2e-3
    assert a["lr_grid"] == "inside"
    assert next(r for r in rows if r["lr"] == 4e-3)["lr_mean_val_loss"] is None  # inf: not a number
    assert next(r for r in rows if r["optimizer"] == "muon" and r["parameters"] == 1000)["lr_grid"] == "lowest"
    assert next(r for r in rows if r["optimizer"] == "muon" and r["parameters"] == 2000)["lr_grid"] == "highest"
    assert next(r for r in rows if r["optimizer"] == "soap")["lr_grid"] == "single"
    table, edges = summary.lr_table(rows)
    assert "| adamw | 0.002 (inside of 3) | – |" in table
    assert any(e.startswith("muon at 2K (highest") for e in edges) and len(edges) == 2


def test_collect_selects_and_warns_when_the_study_record_disagrees(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "a" / "run.h5", lr=1e-3, val_loss=3.0, study={"selected": 1})
    write_run(runs / "b" / "run.h5", lr=2e-3, val_loss=2.9, study={"selected": 1})  # the study said 1, but a is worse
    got = collect(runs, quiet=True)
    sel = {r["run_dir"]: r["selected"] for r in got.rows if r["scheme"] == "fp"}
    assert sel == {"a": 0, "b": 1}
    assert len(got.warnings) == 1 and "a/run.h5" in got.warnings[0] and "selected = 1" in got.warnings[0]


def test_verdicts_follow_their_rules():
    rows = []
    for k, (opt, base) in enumerate((("adamw", 0.10), ("muon", 0.30), ("shampoo", 0.12))):
        for n in (1000, 2000, 4000):
            inc = base + 0.01 * math.log2(n / 1000)
            fp = dict(_fp(opt, 1e-3, 1, 3.0, n), selected=1)
            q = dict(fp, scheme="rtn-w4a4", loss_increase=inc, loss_increase_ci_low=inc - 0.005,
                     loss_increase_ci_high=inc + 0.005, acc_drop=inc / 10, acc_avg=0.5 - inc / 10,
                     R_L=inc * 0.1, mmr_mean=[5.0, 1.0, 3.0][(k + n // 1000) % 3], kurtosis_mean=float(k + n % 7))
            rows += [fp, q]
    text = summary.least_loss_verdict(rows, "rtn-w4a4", "loss_increase")
    assert "adamw loses least" in text and "clearly ahead of shampoo" in text, text
    text = summary.rl_verdict(rows, "rtn-w4a4", "loss_increase", resamples=500, seed=0)
    assert "R_L predicts it better than MMR and kurtosis, clearly" in text, text
    for r in rows:  # now R_L is noise and kurtosis follows the damage
        if r["scheme"] == "rtn-w4a4":
            r["R_L"], r["kurtosis_mean"] = r["mmr_mean"] * 0.01 + (r["parameters"] % 3), r["loss_increase"] * 7
    text = summary.rl_verdict(rows, "rtn-w4a4", "loss_increase", resamples=500, seed=0)
    assert "R_L does NOT predict it better" in text and "kurtosis_mean" in text, text
