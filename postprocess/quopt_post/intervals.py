"""Confidence intervals over evaluation items, for one model or a paired comparison of two.

The units are what the run file records per item: validation windows (``/eval/window_loss``: mean
cross-entropy of one window) and task examples (``/eval/tasks/<task>/correct`` and ``correct_norm``:
1 right, 0 wrong). A quantized model is evaluated on the same windows and examples as its full-precision
model, so a difference (loss increase, accuracy drop) is a paired comparison: resampling the items
(with replacement) and recomputing the difference on each resample gives its sampling distribution.

* Intervals are bootstrap percentile intervals (Efron & Tibshirani 1993, ch. 13) over B resamples
  (default 2000, a quopt choice: the 2.5% and 97.5% percentiles are then stable to about 0.1 of the
  interval's width); the random generator is seeded, so a report is reproducible.
* A mean over several tasks resamples each task's examples independently (stratified bootstrap).
* What the intervals cover: the finite evaluation sample only. Training noise (another seed, another
  data order) is not in them; with several seeds per configuration the report shows their spread.

Consecutive validation windows come from the same documents and are correlated, so the window
bootstrap is somewhat optimistic; the examples of the built-in task are drawn at random positions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def _resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` bootstrap resamples of values (one row per resample)."""
    n = values.size
    idx = rng.integers(0, n, size=(resamples, n))
    return values[idx].mean(axis=1)


def mean_of_means_ci(
    groups: Sequence[np.ndarray],
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high) of the mean over groups of each group's mean; each group resampled on its own.

    A group holds per-item values: outcomes (accuracy), or paired differences (FP - quantized outcome,
    quantized - FP window loss). Empty or non-finite groups make the result NaN.
    """
    arrays = [np.asarray(g, dtype=float).ravel() for g in groups]
    if not arrays or any(a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
        return math.nan, math.nan, math.nan
    estimate = float(np.mean([a.mean() for a in arrays]))
    if resamples <= 0:
        return estimate, math.nan, math.nan
    rng = _rng(seed)
    boot = np.mean([_resampled_means(a, resamples, rng) for a in arrays], axis=0)
    lo, hi = _percentiles(boot, level)
    return estimate, lo, hi


def paired_difference_ci(
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high) of mean over groups of mean(a_g - b_g), items paired within each group.

    Groups whose two arrays differ in length (not the same items) make the result NaN.
    """
    if len(a) != len(b):
        return math.nan, math.nan, math.nan
    diffs = []
    for x, y in zip(a, b):
        x = np.asarray(x, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        if x.size != y.size:
            return math.nan, math.nan, math.nan
        diffs.append(x - y)
    return mean_of_means_ci(diffs, resamples, level, seed)


def correlation_difference_ci(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high) of |r(x1, y)| - |r(x2, y)| (Pearson), resampling the models (rows) jointly.

    Answers "does metric x1 predict y better than x2 on these models?": an interval above 0 says yes at
    that level. Rows with a non-finite value are left out; fewer than 4 rows give NaN.
    """
    x1, x2, y = (np.asarray(v, dtype=float).ravel() for v in (x1, x2, y))
    ok = np.isfinite(x1) & np.isfinite(x2) & np.isfinite(y)
    x1, x2, y = x1[ok], x2[ok], y[ok]
    n = y.size
    if n < 4:
        return math.nan, math.nan, math.nan

    def absr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # Pearson r of each row pair (a[k], b[k]); rows of constant values give NaN.
        a = a - a.mean(axis=-1, keepdims=True)
        b = b - b.mean(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs((a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1)))

    estimate = float(absr(x1, y) - absr(x2, y))
    if resamples <= 0 or not math.isfinite(estimate):
        return estimate, math.nan, math.nan
    idx = _rng(seed).integers(0, n, size=(resamples, n))
    d = absr(x1[idx], y[idx]) - absr(x2[idx], y[idx])
    d = d[np.isfinite(d)]
    if d.size < resamples // 2:
        return estimate, math.nan, math.nan
    lo, hi = _percentiles(d, level)
    return estimate, lo, hi
