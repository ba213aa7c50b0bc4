"""Quantization robustness tracked during training (``[track]``, docs/analysis.md): the figure.

A run trained with ``track.every > 0`` holds ``/metrics/robustness_*`` curves in its run file (read by
:func:`quopt_post.runfile.read_run` into ``RunData.robustness``): at each measured step the loss of the
full-precision and the quantized model on a fixed calibration batch and its increase, R_L, both MMR
variants and the kurtosis. :func:`robustness_figure` plots them against training tokens, one line per
run, coloured by optimizer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .runfile import RunData  # noqa: E402

# (curve, axis label, log scale): the quantities the report plots, in panel order.
ROBUSTNESS_PANELS = (
    ("loss_increase", "PTQ loss increase (calibration batch)", False),
    ("R_L", "R_L (relative error of the logits)", True),
    ("mmr_tomean_mean", "MMR max-to-mean (mean over layers)", True),
    ("mmr_mean", "MMR max-to-median, authors' (mean over layers)", True),
    ("kurtosis_mean", "activation kurtosis (mean over layers)", True),
)


def has_robustness(run: RunData) -> bool:
    return bool(run.robustness.get("tokens") is not None and len(run.robustness["tokens"]))


def robustness_figure(
    runs: Iterable[RunData],
    path: str | os.PathLike[str],
    title: str | None = None,
    label: str = "optimizer",
) -> Path | None:
    """Plot every tracked quantity against training tokens, one line per run with robustness curves.

    ``label``: the legend entry of a run, ``"optimizer"`` (default: one line per optimizer, as the
    report passes one run per optimizer) or ``"run"`` (optimizer, model and learning rate). Lines of
    the same optimizer share a colour. Returns the path written, or None when no run has robustness
    curves (nothing is written then).
    """
    runs = [r for r in runs if has_robustness(r)]
    if not runs:
        return None
    optimizers = sorted({str(r.optimizer) for r in runs})
    panels = [p for p in ROBUSTNESS_PANELS if any(p[0] in r.robustness for r in runs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False, layout="constrained")
    for ax, (key, ylabel, log) in zip(axes[0], panels):
        for run in sorted(runs, key=lambda r: (str(r.optimizer), r.parameters or 0, r.lr or 0)):
            y = run.robustness.get(key)
            if y is None:
                continue
            x = run.robustness["tokens"]
            ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log else True)
            name = str(run.optimizer)
            if label == "run":
                name = f"{run.optimizer} {run.model_name} lr={run.lr:g}" if run.lr else f"{run.optimizer} {run.model_name}"
            color = f"C{optimizers.index(str(run.optimizer)) % 10}"
            ax.plot(x[ok], y[ok], marker=".", color=color, label=name)
        ax.set_xlabel("training tokens")
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    schemes = sorted({str(r.cfg("track", "scheme") or "rtn-w4a4") if r.qat == "none" else "qat" for r in runs})
    fig.suptitle(title or f"quantization robustness during training ({', '.join(schemes)})")
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
