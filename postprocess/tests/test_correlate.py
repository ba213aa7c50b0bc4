import math

import numpy as np
import pytest
from scipy import stats as sps

from quopt_post import stats
from quopt_post.cli import main
from quopt_post.collect import collect
from quopt_post.table import read_rows_csv, write_csv


def test_pearson_and_spearman_match_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=25)
    y = 0.6 * x + rng.normal(size=25)
    res = stats.correlate_xy(x, y)
    ref = sps.pearsonr(x, y)
    assert res["n"] == 25
    assert res["pearson_r"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["pearson_p"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)  # scipy: Fisher z-transform as well
    assert res["pearson_ci_low"] == pytest.approx(ci.low, rel=1e-9)
    assert res["pearson_ci_high"] == pytest.approx(ci.high, rel=1e-9)
    sref = sps.spearmanr(x, y)
    assert res["spearman_rho"] == pytest.approx(sref.statistic, rel=1e-12)
    assert res["spearman_p"] == pytest.approx(sref.pvalue, rel=1e-9)


def test_spearman_ci_is_bonett_wright():
    rng = np.random.default_rng(5)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    res = stats.correlate_xy(x, y)
    rho = res["spearman_rho"]
    lo, hi = np.arctanh(res["spearman_ci_low"]), np.arctanh(res["spearman_ci_high"])
    # symmetric in z around atanh(rho) with half-width 1.959964 * sqrt((1 + rho^2/2) / (n - 3))
    assert (lo + hi) / 2 == pytest.approx(np.arctanh(rho), rel=1e-9)
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * math.sqrt((1 + rho**2 / 2) / 27), rel=1e-9)
    # wider than the plain Fisher interval of the same value
    assert (hi - lo) / 2 > 1.959963984540054 / math.sqrt(27)
    assert res["spearman_ci_method"].startswith("Fisher z with Bonett-Wright")


def test_monotone_metric_has_spearman_one_and_linear_pearson_one():
    deg = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.7])
    res = stats.correlate_xy(np.exp(5 * deg), deg)  # monotone, not linear
    assert res["spearman_rho"] == pytest.approx(1.0)
    assert res["spearman_ci_low"] == pytest.approx(1.0) and res["spearman_ci_high"] == pytest.approx(1.0)
    assert 0.8 < res["pearson_r"] < 1.0
    res = stats.correlate_xy(-3 * deg + 1, deg)
    assert res["pearson_r"] == pytest.approx(-1.0) and res["spearman_rho"] == pytest.approx(-1.0)
    assert res["pearson_p"] == 0.0


def test_degenerate_samples_say_why():
    res = stats.correlate_xy([1.0, 2.0], [3.0, 4.0])
    assert res["n"] == 2 and math.isnan(res["pearson_r"]) and "n = 2" in res["note"]
    res = stats.correlate_xy([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert math.isnan(res["spearman_rho"]) and "constant metric" in res["note"]
    res = stats.correlate_xy([1.0, 2.0, np.nan, 3.0], [1.0, 2.0, 5.0, 4.0])  # NaN pairs dropped
    assert res["n"] == 3 and res["spearman_rho"] == pytest.approx(1.0) and math.isnan(res["pearson_ci_low"])


def test_correlate_command_on_a_study(study, tmp_path):
    runs, truth = study
    table = tmp_path / "table.csv"
    write_csv(collect(runs, quiet=True).rows, table)
    out = tmp_path / "corr.csv"
    assert main(["correlate", str(table), "--out", str(out), "--target", "loss_increase"]) == 0
    _, rows = read_rows_csv(out)
    # 2 schemes x 2 training variants (FP, QAT) x 7 metrics (both MMR variants)
    assert len(rows) == 28
    assert {(r["scheme"], r["qat"]) for r in rows} == {
        ("gptq-w4", "none"), ("gptq-w4", "quest"), ("rtn-w4a4", "none"), ("rtn-w4a4", "quest")
    }
    for r in rows:
        assert r["n"] == 9 and r["target"] == "loss_increase"
        if r["metric"] == "R_L":  # R_L = loss increase / 2 by construction
            assert r["pearson_r"] == pytest.approx(1.0) and r["spearman_rho"] == pytest.approx(1.0)
        if r["metric"] == "mmr_mean":  # exp(loss increase): monotone
            assert r["spearman_rho"] == pytest.approx(1.0)
        if r["metric"] == "mmr_tomean_mean":  # linear in the loss increase
            assert r["pearson_r"] == pytest.approx(1.0)
        if r["metric"] == "mmr_tomean_max":  # decreasing in it
            assert r["spearman_rho"] == pytest.approx(-1.0)
        if r["metric"] == "kurtosis_max":  # independent noise
            assert r["pearson_ci_low"] < r["pearson_r"] < r["pearson_ci_high"]
            assert -1 < r["pearson_r"] < 1

    # acc_drop target: independent of the constructed metrics, but n and columns are there
    assert main(["correlate", str(table), "--out", str(out)]) == 0
    _, rows = read_rows_csv(out)
    assert all(r["target"] == "acc_drop" and r["n"] == 9 for r in rows)


def test_correlate_table_without_ptq_rows(tmp_path, make_run, capsys):
    make_run(tmp_path / "runs" / "run.h5", fp_eval={"val_loss": 3.0})
    table = tmp_path / "t.csv"
    write_csv(collect(tmp_path / "runs", quiet=True).rows, table)
    out = tmp_path / "c.csv"
    assert main(["correlate", str(table), "--out", str(out)]) == 0
    assert "no PTQ rows" in capsys.readouterr().err
    assert out.read_text().splitlines()[0].startswith("scheme,qat,metric")
    assert main(["correlate", str(tmp_path / "missing.csv"), "--out", str(out)]) == 1


def test_within_group_correlation_removes_the_group_effect():
    # Three sizes: across sizes x and y rise together, within each size they fall together.
    x, y, g = [], [], []
    for size, shift in ((1, 0.0), (2, 10.0), (3, 20.0)):
        for k in range(6):
            x.append(shift + k)
            y.append(shift - 0.5 * k + 0.01 * (k % 2))
            g.append(size)
    pooled = stats.correlate_xy(np.array(x), np.array(y))
    within = stats.correlate_within(np.array(x), np.array(y), g)
    assert pooled["pearson_r"] > 0.9 and within["pearson_r"] < -0.99
    assert within["groups"] == 3 and within["n"] == 18
    # Its interval: Fisher z with n - 3 - (k - 1) = 13 degrees of freedom.
    lo, hi = stats.fisher_ci(within["pearson_r"], 18 - 2)
    assert (within["pearson_ci_low"], within["pearson_ci_high"]) == pytest.approx((lo, hi))
    # Centering is per group, NaNs left out.
    c = stats.center_within(np.array([1.0, 3.0, np.nan, 10.0]), ["a", "a", "a", "b"])
    assert c[:2].tolist() == [-1.0, 1.0] and np.isnan(c[2]) and c[3] == 0.0
