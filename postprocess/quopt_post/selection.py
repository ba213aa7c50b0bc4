"""The best run per (size, optimizer, training variant): the rule `quopt study` applies (src/io/study_select.hpp).

For each learning rate, the mean over seeds of the runs' final validation losses (the last entry of
/metrics/val_loss; a non-finite one counts as +inf); the learning rate with the lowest mean wins (a tie
keeps the smaller lr) and every seed of it is selected. The paper (arXiv 2509.23500) keeps the best of
8 learning rates per (size, optimizer) this way. The same rule here means a report made from any
directory of runs, with or without the study's /study records, selects what the study selected.

Each fp row gets: selected (1/0), lr_mean_val_loss, lr_seeds, best_lr, and lr_grid: where the best lr
sits in the grid of that (size, optimizer, variant): "inside", "lowest" or "highest" (on the grid's edge:
the optimum may lie outside the grid), or "single" (no sweep).
"""

from __future__ import annotations

import math
from typing import Any

GroupKey = tuple[Any, str, str]  # (parameters, optimizer, qat)


def group_key(row: dict[str, Any]) -> GroupKey:
    return (row.get("parameters"), str(row.get("optimizer")), str(row.get("qat") or "none"))


def _final(row: dict[str, Any]) -> float:
    v = row.get("final_val_loss")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


def sweep_table(fp_rows: list[dict[str, Any]]) -> dict[GroupKey, dict[float, tuple[float, int]]]:
    """group -> lr -> (mean final validation loss over seeds, number of seeds)."""
    sums: dict[GroupKey, dict[float, list[float]]] = {}
    for r in fp_rows:
        lr = r.get("lr")
        if not isinstance(lr, (int, float)):
            continue
        sums.setdefault(group_key(r), {}).setdefault(float(lr), []).append(_final(r))
    return {
        g: {lr: (sum(v) / len(v), len(v)) for lr, v in sorted(by_lr.items())} for g, by_lr in sums.items()
    }


def best_lrs(table: dict[GroupKey, dict[float, tuple[float, int]]]) -> dict[GroupKey, float]:
    best = {}
    for g, by_lr in table.items():
        lr, _ = min(by_lr.items(), key=lambda kv: (kv[1][0], kv[0]))  # lowest mean, then smaller lr
        best[g] = lr
    return best


def grid_position(lrs: list[float], best: float) -> str:
    if len(lrs) < 2:
        return "single"
    if best == min(lrs):
        return "lowest"
    if best == max(lrs):
        return "highest"
    return "inside"


def annotate(rows: list[dict[str, Any]], fp_scheme: str = "fp") -> None:
    """Adds the selection columns to every row (all rows of a run get its run's values)."""
    fp_rows = [r for r in rows if r.get("scheme") == fp_scheme]
    table = sweep_table(fp_rows)
    best = best_lrs(table)
    for r in rows:
        g = group_key(r)
        lr = r.get("lr")
        if g not in table or not isinstance(lr, (int, float)):
            continue
        mean, seeds = table[g][float(lr)]
        r["selected"] = int(float(lr) == best[g])
        r["lr_mean_val_loss"] = mean if math.isfinite(mean) else None
        r["lr_seeds"] = seeds
        r["best_lr"] = best[g]
        r["lr_grid"] = grid_position(list(table[g]), best[g])
