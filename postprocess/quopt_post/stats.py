"""`correlate`: Pearson and Spearman correlation of outlier / error metrics with PTQ degradation.

Confidence intervals (two-sided, level 95% by default):

* Pearson r: Fisher z-transform, z = atanh(r), standard error 1 / sqrt(n - 3) (Fisher 1921).
* Spearman rho: Fisher z-transform with the Bonett-Wright variance (1 + rho^2 / 2) / (n - 3)
  (Bonett & Wright 2000, Psychometrika 65:23-28).

Both need n >= 4. p-values: two-sided, from t = r sqrt((n - 2) / (1 - r^2)) with n - 2 degrees of
freedom (exact for Pearson under normality, the usual large-sample approximation for Spearman, as
scipy.stats.spearmanr). Ties get average ranks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps

from .table import FP_SCHEME, column

# Both MMR variants (docs/analysis.md): mmr_tomean_* is the max-to-mean MMR, bounded by the feature
# count, the report's MMR; mmr_* the authors' max-to-median, kept for comparison with the paper but
# ill-conditioned on ReLU^2 inputs (a median of ~0 lets one token carry the mean).
METRICS = ("mmr_tomean_mean", "mmr_tomean_max", "mmr_mean", "mmr_max", "kurtosis_mean", "kurtosis_max", "R_L")
FIGURE_METRICS = ("mmr_tomean_mean", "mmr_tomean_max", "kurtosis_mean", "kurtosis_max", "R_L")
TARGETS = {
    "acc_drop": "FP accuracy - quantized accuracy (mean over tasks)",
    "loss_increase": "quantized val loss - FP val loss",
    "acc_avg": "post-quantization accuracy (mean over tasks), as the paper correlates",
    "val_loss": "post-quantization val loss",
}
SPEARMAN_CI_METHOD = "Fisher z with Bonett-Wright variance (1 + rho^2/2)/(n-3)"
PEARSON_CI_METHOD = "Fisher z, variance 1/(n-3)"

CORR_COLUMNS = [
    "scheme",
    "qat",
    "metric",
    "target",
    "n",
    "pearson_r",
    "pearson_ci_low",
    "pearson_ci_high",
    "pearson_p",
    "spearman_rho",
    "spearman_ci_low",
    "spearman_ci_high",
    "spearman_p",
    "ci_level",
    "pearson_ci_method",
    "spearman_ci_method",
    "note",
]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, float) - np.mean(x)
    y = np.asarray(y, float) - np.mean(y)
    denom = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denom == 0.0:
        return math.nan
    return float(np.clip(np.dot(x, y) / denom, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(sps.rankdata(x), sps.rankdata(y))


def fisher_ci(r: float, n: int, level: float = 0.95, spearman_variance: bool = False) -> tuple[float, float]:
    """Confidence interval of a correlation by the Fisher z-transform; (nan, nan) when n < 4."""
    if n < 4 or not math.isfinite(r):
        return math.nan, math.nan
    if abs(r) >= 1.0:
        return r, r
    var = (1.0 + r * r / 2.0) / (n - 3) if spearman_variance else 1.0 / (n - 3)
    zc = float(sps.norm.ppf(0.5 + level / 2.0))
    z = math.atanh(r)
    half = zc * math.sqrt(var)
    return math.tanh(z - half), math.tanh(z + half)


def correlation_p(r: float, n: int) -> float:
    """Two-sided p-value of H0: no correlation, from the t statistic with n - 2 dof."""
    if n < 3 or not math.isfinite(r):
        return math.nan
    if abs(r) >= 1.0:
        return 0.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return float(2.0 * sps.t.sf(abs(t), n - 2))


def correlate_xy(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Pearson and Spearman with CIs and p-values for the finite pairs of (x, y)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    out: dict[str, Any] = {"n": n, "ci_level": level}
    notes = []
    if n < 3:
        notes.append(f"n = {n} < 3: no correlation")
        r = rho = math.nan
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        notes.append("constant " + ("metric" if np.ptp(x) == 0 else "target") + ": correlation undefined")
        r = rho = math.nan
    else:
        r, rho = pearson(x, y), spearman(x, y)
        if n < 4:
            notes.append("n = 3: no confidence interval (needs n >= 4)")
    out["pearson_r"] = r
    out["pearson_ci_low"], out["pearson_ci_high"] = fisher_ci(r, n, level)
    out["pearson_p"] = correlation_p(r, n)
    out["spearman_rho"] = rho
    out["spearman_ci_low"], out["spearman_ci_high"] = fisher_ci(rho, n, level, spearman_variance=True)
    out["spearman_p"] = correlation_p(rho, n)
    out["pearson_ci_method"] = PEARSON_CI_METHOD
    out["spearman_ci_method"] = SPEARMAN_CI_METHOD
    out["note"] = "; ".join(notes)
    return out


def center_within(values: np.ndarray, groups: list[Any]) -> np.ndarray:
    """values minus the mean of their group (NaN stays NaN and is left out of the means)."""
    values = np.asarray(values, float).copy()
    labels = np.array([str(g) for g in groups])
    for g in set(labels.tolist()):
        sel = labels == g
        finite = sel & np.isfinite(values)
        if finite.any():
            values[sel] -= values[finite].mean()
    return values


def correlate_within(x: np.ndarray, y: np.ndarray, groups: list[Any], level: float = 0.95) -> dict[str, Any]:
    """Pearson r of x and y after removing each group's mean from both (the pooled within-group
    correlation: for the study, across optimizers at equal size, with the size effect taken out).

    Interval: Fisher z with variance 1 / (n - 3 - (k - 1)) for k groups, each group mean costing one degree
    of freedom, as for a partial correlation controlling for k - 1 group indicators. Rows with a NaN in x
    or y are left out before centering."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    g = [groups[i] for i in np.flatnonzero(ok)]
    x, y = center_within(x[ok], g), center_within(y[ok], g)
    k = len({str(v) for v in g})
    res = correlate_xy(x, y, level)
    n_eff = res["n"] - (k - 1)
    res["groups"] = k
    res["pearson_ci_low"], res["pearson_ci_high"] = fisher_ci(res["pearson_r"], n_eff, level)
    return res


def correlate_rows(
    rows: list[dict[str, Any]], target: str = "acc_drop", metrics: tuple[str, ...] = METRICS, level: float = 0.95
) -> list[dict[str, Any]]:
    """One output row per (scheme, qat, metric): the runs of that scheme are the sample."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        scheme = r.get("scheme")
        if scheme is None or scheme == FP_SCHEME:
            continue
        groups.setdefault((str(scheme), str(r.get("qat") or "none")), []).append(r)
    out = []
    for (scheme, qat), members in sorted(groups.items()):
        y = column(members, target)
        for metric in metrics:
            res = correlate_xy(column(members, metric), y, level)
            out.append({"scheme": scheme, "qat": qat, "metric": metric, "target": target, **res})
    return out
