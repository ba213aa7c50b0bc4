"""The report's headline: what a study measured, stated with its uncertainty, and the answers to its two
questions (does R_L predict PTQ damage better than the outlier metrics; which optimizer loses least).

Everything here works on the selected runs (selection.py): the best learning rate of each (size,
optimizer), as the paper (arXiv 2509.23500) reports tuned models. Verdicts are made by rules written
out in the text they produce, so a reader can check them:

* "R_L predicts better than the outlier metrics" when |Pearson r| of R_L with the damage is above that of
  every outlier metric; "clearly" when the bootstrap interval of |r(R_L)| - |r(best outlier metric)|
  (models resampled, intervals.correlation_difference_ci) lies above 0, otherwise the difference is
  within the sampling noise of this many models.
* "Optimizer X loses least" by the mean over sizes of the loss increase (and, separately, of the
  accuracy drop); "clearly" when X's interval does not overlap the runner-up's. The intervals cover
  the evaluation sample (windows, examples), not training noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import intervals, stats
from .markdown import fmt_params, md_table
from .table import FP_SCHEME, column

OUTLIER_METRICS = tuple(m for m in stats.METRICS if m != "R_L")  # every MMR and kurtosis aggregate
# The damage (loss increase, accuracy drop) and acc_avg, the post-PTQ accuracy, which the paper correlates.
TABLE_TARGETS = ("loss_increase", "acc_drop", "acc_avg")


def _fmt(v: Any, digits: int = 3, scale: float = 1.0) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v * scale:.{digits}f}"


def fmt_ci(row: dict[str, Any], column_name: str, digits: int = 3, scale: float = 1.0) -> str:
    """'v [lo, hi]' from a row's value and its _ci_low/_ci_high columns."""
    v = row.get(column_name)
    lo, hi = row.get(f"{column_name}_ci_low"), row.get(f"{column_name}_ci_high")
    text = _fmt(v, digits, scale)
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        text += f" [{_fmt(lo, digits, scale)}, {_fmt(hi, digits, scale)}]"
    return text


def selected_fp(rows: list[dict[str, Any]], qat: str = "none") -> list[dict[str, Any]]:
    return [r for r in rows if r.get("scheme") == FP_SCHEME and r.get("selected") == 1
            and str(r.get("qat") or "none") == qat]


def scheme_rows(rows: list[dict[str, Any]], scheme: str) -> list[dict[str, Any]]:
    """The PTQ rows of `scheme` of the selected full-precision runs."""
    return [r for r in rows if r.get("scheme") == scheme and r.get("selected") == 1
            and str(r.get("qat") or "none") == "none"]


def tokens_sentence(rows: list[dict[str, Any]]) -> str:
    fp = selected_fp(rows)
    tpp = [r["tokens_per_param"] for r in fp if isinstance(r.get("tokens_per_param"), (int, float))]
    if not tpp:
        return "Tokens per parameter: not recorded."
    text = (f"**Training:** {len(fp)} selected model(s), trained to D/N = {min(tpp):.1f}"
            + (f"-{max(tpp):.1f}" if max(tpp) - min(tpp) > 0.05 else "")
            + " tokens per parameter (the paper: 20)")
    ptq = [r for r in rows if r.get("scheme") not in (None, FP_SCHEME) and r.get("selected") == 1]
    at = [r["ptq_tokens_per_param"] for r in ptq if isinstance(r.get("ptq_tokens_per_param"), (int, float))]
    protocols = sorted({str(r.get("ptq_protocol")) for r in ptq if r.get("ptq_protocol")})
    if at and protocols:
        text += (f"; quantized ({', '.join(protocols)} protocol) at D/N = {min(at):.1f}"
                 + (f"-{max(at):.1f}" if max(at) - min(at) > 0.05 else ""))
    return text + "."


def lr_table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Markdown table optimizer x size of the selected lr (and its place in the grid); edge warnings."""
    fp = [r for r in rows if r.get("scheme") == FP_SCHEME and str(r.get("qat") or "none") == "none"]
    sizes = sorted({r["parameters"] for r in fp if isinstance(r.get("parameters"), (int, float))})
    opts = sorted({str(r.get("optimizer")) for r in fp})
    body, edges = [], []
    for opt in opts:
        cells = [opt]
        for n in sizes:
            sel = [r for r in fp if r.get("optimizer") == opt and r.get("parameters") == n and r.get("selected") == 1]
            if not sel:
                cells.append("–")
                continue
            r = sel[0]
            grid = sorted({x["lr"] for x in fp if x.get("optimizer") == opt and x.get("parameters") == n
                           and isinstance(x.get("lr"), (int, float))})
            where = r.get("lr_grid") or "?"
            cells.append(f"{r['lr']:.3g} (no sweep)" if where == "single" else f"{r['lr']:.3g} ({where} of {len(grid)})")
            if where in ("lowest", "highest"):
                edges.append(f"{opt} at {fmt_params(n)} ({where} lr of the grid {', '.join(f'{g:.3g}' for g in grid)})")
        body.append(cells)
    headers = ["optimizer"] + [fmt_params(n) for n in sizes]
    return md_table(headers, body), edges


def damage_table(rows: list[dict[str, Any]], schemes: list[str]) -> str:
    """optimizer x size rows; per scheme the loss increase and the accuracy drop with their intervals."""
    headers = ["optimizer", "N", "FP loss", "FP acc"]
    for s in schemes:
        headers += [f"{s}: loss increase", f"{s}: acc drop (points)"]
    fp = sorted(selected_fp(rows), key=lambda r: (r.get("parameters") or 0, str(r.get("optimizer")), r.get("seed") or 0))
    seeds = len({r.get("seed") for r in fp}) > 1
    if seeds:
        headers.insert(2, "seed")
    body = []
    for f in fp:
        cells = [str(f.get("optimizer")), fmt_params(f.get("parameters"))]
        if seeds:
            cells.append(str(f.get("seed")))
        cells += [_fmt(f.get("fp_val_loss")), fmt_ci(f, "fp_acc_avg", 1, 100.0)]
        for s in schemes:
            q = next((r for r in rows if r.get("scheme") == s and r.get("run_file") == f.get("run_file")), {})
            cells += [fmt_ci(q, "loss_increase"), fmt_ci(q, "acc_drop", 1, 100.0)]
        body.append(cells)
    return md_table(headers, body)


def _r_cell(res: dict[str, Any]) -> str:
    r, lo, hi = res["pearson_r"], res["pearson_ci_low"], res["pearson_ci_high"]
    return f"{_fmt(r, 2)} [{_fmt(lo, 2)}, {_fmt(hi, 2)}]" if math.isfinite(r) else "–"


def correlation_table(rows: list[dict[str, Any]], scheme: str, metrics: tuple[str, ...]) -> str:
    """metric x target Pearson r [95% CI] over the selected runs of one scheme: pooled over sizes (as the
    paper correlates) and within sizes (each size's mean removed: across optimizers only)."""
    members = scheme_rows(rows, scheme)
    sizes = [r.get("parameters") for r in members]
    headers = ["metric"]
    for t in TABLE_TARGETS:
        headers += [f"r with {t}", "within sizes"]
    body = []
    for m in metrics:
        cells = [m]
        x = column(members, m)
        for t in TABLE_TARGETS:
            y = column(members, t)
            cells += [_r_cell(stats.correlate_xy(x, y)), _r_cell(stats.correlate_within(x, y, sizes))]
        body.append(cells)
    n = len(members)
    k = len(set(sizes))
    return md_table(headers, body) + f"\n\n{n} models, {k} size(s)."


def rl_verdict(rows: list[dict[str, Any]], scheme: str, target: str, resamples: int, seed: int,
               within: bool = False) -> str:
    """One sentence: does R_L predict `target` better than every outlier metric here? within: after
    removing each size's mean from every quantity (across optimizers only)."""
    members = scheme_rows(rows, scheme)
    sizes = [r.get("parameters") for r in members]

    def col(name: str) -> np.ndarray:
        v = column(members, name)
        return stats.center_within(v, sizes) if within else v

    y = col(target)
    rl = col("R_L")
    res_rl = stats.correlate_xy(rl, y)
    others = [(m, stats.correlate_xy(col(m), y)) for m in OUTLIER_METRICS]
    others = [(m, r) for m, r in others if math.isfinite(r["pearson_r"])]
    where = f"{scheme}, {target}" + (", within sizes" if within else "")
    if not math.isfinite(res_rl["pearson_r"]) or not others:
        return f"**{where}:** not enough analysed runs to compare R_L with the outlier metrics (n = {res_rl['n']})."
    best_m, best_r = max(others, key=lambda mr: abs(mr[1]["pearson_r"]))
    a, b = abs(res_rl["pearson_r"]), abs(best_r["pearson_r"])
    est, lo, hi = intervals.correlation_difference_ci(rl, col(best_m), y, resamples, seed=seed)
    ci = f"bootstrap 95% CI of |r(R_L)| - |r({best_m})| over the {res_rl['n']} models: [{_fmt(lo, 2)}, {_fmt(hi, 2)}]"
    if a > b:
        strength = "clearly" if math.isfinite(lo) and lo > 0 else "but not clearly (the interval includes 0)"
        return (f"**{where}:** R_L predicts it better than MMR and kurtosis, {strength}: "
                f"|r| = {a:.2f} for R_L vs {b:.2f} for {best_m}, the best outlier metric ({ci}).")
    strength = "clearly" if math.isfinite(hi) and hi < 0 else "though not clearly (the interval includes 0)"
    return (f"**{where}:** R_L does NOT predict it better than the outlier metrics here, {strength}: "
            f"|r| = {a:.2f} for R_L vs {b:.2f} for {best_m} ({ci}).")


def _mean_ci(values: list[tuple[float, float | None, float | None]]) -> tuple[float, float, float]:
    """Mean of estimates and a normal-approximation interval from their (independent) percentile intervals."""
    est = [v for v, _, _ in values]
    m = float(np.mean(est))
    ses = [(hi - lo) / (2 * 1.96) for _, lo, hi in values if isinstance(lo, float) and isinstance(hi, float)]
    if len(ses) != len(values):
        return m, math.nan, math.nan
    se = math.sqrt(sum(s * s for s in ses)) / len(values)
    return m, m - 1.96 * se, m + 1.96 * se


def least_loss_verdict(rows: list[dict[str, Any]], scheme: str, target: str = "loss_increase") -> str:
    """One sentence: which optimizer's models lose least under `scheme`, by the mean of `target` over sizes."""
    members = scheme_rows(rows, scheme)
    sizes = sorted({r["parameters"] for r in members if isinstance(r.get("parameters"), (int, float))})
    per_opt: dict[str, list[tuple[float, float | None, float | None]]] = {}
    for opt in sorted({str(r.get("optimizer")) for r in members}):
        vals = []
        for n in sizes:
            rs = [r for r in members if r.get("optimizer") == opt and r.get("parameters") == n
                  and isinstance(r.get(target), (int, float)) and math.isfinite(r[target])]
            if rs:  # several seeds: their mean, interval from the first (the evaluation noise is alike)
                vals.append((float(np.mean([r[target] for r in rs])), rs[0].get(f"{target}_ci_low"),
                             rs[0].get(f"{target}_ci_high")))
        if len(vals) == len(sizes) and vals:
            per_opt[opt] = vals
    if len(per_opt) < 2:
        return f"**{scheme}, {target}:** fewer than two optimizers measured at every size; no ranking."
    scale, unit = (100.0, " points") if target.startswith("acc") else (1.0, "")
    ranked = sorted(((o, _mean_ci(v)) for o, v in per_opt.items()), key=lambda x: x[1][0])
    (best, (m1, lo1, hi1)), (second, (m2, lo2, hi2)) = ranked[0], ranked[1]
    clear = math.isfinite(hi1) and math.isfinite(lo2) and hi1 < lo2
    order = ", ".join(f"{o} {_fmt(m, 3 if scale == 1 else 1, scale)}" for o, (m, _, _) in ranked)
    return (f"**{scheme}, {target}:** {best} loses least (mean over {len(sizes)} size(s): "
            f"{_fmt(m1, 3 if scale == 1 else 1, scale)} [{_fmt(lo1, 3 if scale == 1 else 1, scale)}, "
            f"{_fmt(hi1, 3 if scale == 1 else 1, scale)}]{unit}), "
            + ("clearly ahead of" if clear else "not clearly ahead of (intervals overlap)")
            + f" {second} ({_fmt(m2, 3 if scale == 1 else 1, scale)} [{_fmt(lo2, 3 if scale == 1 else 1, scale)}, "
            f"{_fmt(hi2, 3 if scale == 1 else 1, scale)}]). All: {order}.")
