import math

import numpy as np
import pytest
from conftest import write_run

from quopt_post import intervals
from quopt_post.collect import collect


def test_mean_interval_matches_the_binomial_interval():
    rng = np.random.default_rng(3)
    outcomes = (rng.random(2000) < 0.4).astype(float)
    est, lo, hi = intervals.mean_of_means_ci([outcomes], resamples=4000, seed=1)
    p = outcomes.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / outcomes.size)  # Wald interval of a proportion
    assert est == pytest.approx(p)
    assert lo < p < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    # The same seed gives the same interval; another seed a slightly different one.
    assert intervals.mean_of_means_ci([outcomes], resamples=4000, seed=1) == (est, lo, hi)
    assert intervals.mean_of_means_ci([outcomes], resamples=4000, seed=2) != (est, lo, hi)


def test_paired_difference_is_narrower_than_unpaired_and_needs_the_same_items():
    rng = np.random.default_rng(5)
    fp = rng.normal(3.0, 0.5, 1000)  # per-window losses vary a lot between windows ...
    q = fp + 0.05 + rng.normal(0.0, 0.01, 1000)  # ... the quantized model adds a small, steady increase
    est, lo, hi = intervals.paired_difference_ci([q], [fp], seed=0)
    assert est == pytest.approx(np.mean(q - fp))
    assert lo < est < hi and lo > 0.04 and hi < 0.06
    # Unpaired, the between-window spread (0.5 / sqrt(1000) per model) would swamp the 0.05 difference.
    assert (hi - lo) < 0.1 * 2 * 1.96 * 0.5 * math.sqrt(2 / 1000)
    # Two tasks: the mean over tasks of each task's mean difference.
    est2, _, _ = intervals.paired_difference_ci([np.ones(10), np.zeros(30)], [np.zeros(10), np.zeros(30)], seed=0)
    assert est2 == pytest.approx(0.5)
    assert all(math.isnan(v) for v in intervals.paired_difference_ci([np.ones(5)], [np.ones(6)]))
    assert all(math.isnan(v) for v in intervals.paired_difference_ci([np.ones(5)], [np.ones(5), np.ones(5)]))


def test_correlation_difference_says_which_metric_predicts():
    rng = np.random.default_rng(7)
    y = rng.normal(size=18)
    good = y + rng.normal(0, 0.2, 18)  # |r| ~ 0.98
    bad = rng.normal(size=18)  # |r| ~ 0
    est, lo, hi = intervals.correlation_difference_ci(good, bad, y, seed=0)
    assert est > 0.5 and lo > 0
    est, lo, hi = intervals.correlation_difference_ci(bad, good, y, seed=0)
    assert est < -0.5 and hi < 0
    # The sign of a correlation does not matter (R_L correlates negatively with accuracy).
    est, lo, _ = intervals.correlation_difference_ci(-good, bad, y, seed=0)
    assert est > 0.5 and lo > 0
    assert all(math.isnan(v) for v in intervals.correlation_difference_ci(good[:3], bad[:3], y[:3]))


def test_collect_puts_paired_intervals_on_the_differences(tmp_path):
    rng = np.random.default_rng(11)
    windows = rng.normal(3.0, 0.4, 400)
    q_windows = windows + 0.2 + rng.normal(0, 0.05, 400)
    fp_right = (rng.random(1000) < 0.6).astype(int)
    q_right = fp_right.copy()
    q_right[:100] = 0  # the quantized model loses the first 100 examples (some of them were wrong anyway)
    write_run(
        tmp_path / "runs" / "run.h5",
        fp_eval={"val_loss": float(windows.mean()), "tasks": {"cont": float(fp_right.mean())},
                 "window_loss": windows, "items": {"cont": (fp_right, fp_right)}},
        schemes={"rtn-w3a3": {"val_loss": float(q_windows.mean()), "tasks": {"cont": float(q_right.mean())},
                              "window_loss": q_windows, "items": {"cont": (q_right, q_right)}}},
    )
    rows = collect(tmp_path / "runs", quiet=True, resamples=1000).rows
    fp = next(r for r in rows if r["scheme"] == "fp")
    q = next(r for r in rows if r["scheme"] == "rtn-w3a3")
    drop = fp_right.mean() - q_right.mean()
    assert q["acc_drop"] == pytest.approx(drop)
    assert q["acc_drop_ci_low"] < drop < q["acc_drop_ci_high"]
    # Paired: only the 100 changed examples vary; sd of the differences / sqrt(n) sets the width.
    d = fp_right - q_right
    assert (q["acc_drop_ci_high"] - q["acc_drop_ci_low"]) == pytest.approx(2 * 1.96 * d.std() / math.sqrt(d.size), rel=0.2)
    assert q["loss_increase_ci_low"] < q["loss_increase"] < q["loss_increase_ci_high"]
    assert q["loss_increase_ci_high"] - q["loss_increase_ci_low"] < 0.02
    assert fp["fp_acc_avg_ci_low"] < fp["fp_acc_avg"] < fp["fp_acc_avg_ci_high"]
    assert q["acc_avg_ci_low"] < q["acc_avg"] < q["acc_avg_ci_high"]
    # Without per-item data (files from before they were recorded) there is no interval, and no error.
    write_run(tmp_path / "old" / "run.h5", fp_eval={"val_loss": 3.0}, schemes={"rtn-w4": {"val_loss": 3.1}})
    old = collect(tmp_path / "old", quiet=True).rows
    assert all(r.get("loss_increase_ci_low") is None for r in old)
