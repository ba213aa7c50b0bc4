"""The learning-rate sweep section: final validation loss against the learning rate, per size and
optimizer (the mean over seeds; each seed a dot), the selected lr marked, and a table that flags an
optimum on the edge of the grid (the best lr may then lie outside it: widen the grid)."""

from __future__ import annotations

import math
from typing import Any, Callable

import matplotlib.pyplot as plt

from . import selection
from .markdown import fmt, fmt_params, md_table
from .table import FP_SCHEME


def sweep_section(rows: list[dict[str, Any]], figure: Callable[[plt.Figure, str], str]) -> tuple[str | None, str]:
    """(section text or None when no (size, optimizer) has more than one lr, reason when None)."""
    fp = [r for r in rows if r.get("scheme") == FP_SCHEME]
    table = selection.sweep_table(fp)
    best = selection.best_lrs(table)
    if not any(len(by_lr) > 1 for by_lr in table.values()):
        return None, "no learning-rate sweep (one lr per size and optimizer): no sweep curves"
    variants = sorted({g[2] for g in table})
    sizes = sorted({g[0] for g in table if isinstance(g[0], (int, float))})
    text = ["## Learning-rate sweeps", ""]
    text.append(
        "Final validation loss against the peak learning rate, the mean over seeds (dots: single seeds); "
        "the ring marks the selected lr, the lowest mean (the rule of `quopt study`, as the paper keeps the "
        "best of its sweep). An optimum on the edge of the grid means the best lr may lie outside it.")
    for variant in variants:
        fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.8), squeeze=False, layout="constrained")
        body = []
        for ax, n in zip(axes[0], sizes):
            for k, opt in enumerate(sorted({g[1] for g in table if g[0] == n and g[2] == variant})):
                g = (n, opt, variant)
                lrs = list(table[g])
                means = [table[g][lr][0] for lr in lrs]
                color = f"C{k % 10}"
                ax.plot(lrs, [m if math.isfinite(m) else math.nan for m in means], marker="o", color=color, label=opt)
                seeds = [(float(r["lr"]), r["final_val_loss"]) for r in fp if selection.group_key(r) == g
                         and isinstance(r.get("final_val_loss"), (int, float))]
                if seeds:
                    ax.scatter(*zip(*seeds), s=8, color=color, alpha=0.5)
                ax.scatter([best[g]], [table[g][best[g]][0]], s=120, facecolors="none", edgecolors=color, lw=1.5)
                where = selection.grid_position(lrs, best[g])
                body.append([opt, fmt_params(n), ", ".join(f"{lr:.3g}: {fmt(table[g][lr][0])}" for lr in lrs),
                             f"{best[g]:.3g}", where + (" (edge!)" if where in ("lowest", "highest") else ""),
                             str(max(s for _, s in table[g].values()))])
            ax.set_xscale("log")
            ax.set_xlabel("peak learning rate")
            ax.set_ylabel("final validation loss")
            ax.set_title(f"N = {fmt_params(n)}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        label = "full precision" if variant == "none" else f"QAT {variant}"
        fig.suptitle(f"learning-rate sweeps ({label})")
        name = figure(fig, f"sweep{'' if variant == 'none' else '_qat-' + variant}.png")
        text += ["", f"### {label}", "", f"![lr sweeps, {label}]({name})", "",
                 md_table(["optimizer", "N", "lr: mean final val loss", "selected lr", "position in grid", "seeds"], body)]
    return "\n".join(text), ""
