"""`report`: figures (PNG) and a Markdown report from a runs directory or a collected table.

Works with whatever subset of the data exists; every section that cannot be made says why in the
report ("What is missing") instead of failing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import intervals, scaling, selection, stats, summary  # noqa: E402
from .robustness import has_robustness, robustness_figure  # noqa: E402
from .collect import collect  # noqa: E402
from .runfile import NotARunFile, UnreadableRunFile, read_run  # noqa: E402
from .markdown import fmt, fmt_params, md_table  # noqa: E402
from .protocol import protocol_section  # noqa: E402
from .sweep import sweep_section  # noqa: E402
from .table import FP_SCHEME, column, read_csv, task_names, write_csv, write_rows_csv  # noqa: E402

DEFAULT_SCHEME = "rtn-w4a4"  # the paper's main PTQ setting: RTN AbsMax per row, W4A4 (DESIGN.md)
ABC_KEYS = ("R", "A", "B", "C")


class ReportError(Exception):
    pass


# ---- selection ----------------------------------------------------------------------------------


def _fp_loss(row: dict[str, Any]) -> float:
    for key in ("final_val_loss", "fp_val_loss"):
        v = row.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v)
    return math.inf


def best_runs(rows: list[dict[str, Any]], qat: str = "none") -> dict[tuple[str, float], dict[str, Any]]:
    """(optimizer, parameters) -> the FP row of the selected run (selection.py: the best lr by the mean final
    validation loss over seeds; of several seeds, the one with the lowest final loss)."""
    best: dict[tuple[str, float], dict[str, Any]] = {}
    for r in rows:
        if r.get("scheme") != FP_SCHEME or str(r.get("qat") or "none") != qat or r.get("selected") == 0:
            continue
        key = (str(r.get("optimizer")), float(r.get("parameters") or 0))
        if key not in best or _fp_loss(r) < _fp_loss(best[key]):
            best[key] = r
    return best


def _run_key(row: dict[str, Any]) -> tuple[Any, Any]:
    return row.get("run_file"), row.get("run_dir")


def _scheme_row(rows: list[dict[str, Any]], fp_row: dict[str, Any], scheme: str) -> dict[str, Any] | None:
    """The row of `scheme` of the same run as fp_row."""
    key = _run_key(fp_row)
    for r in rows:
        if r.get("scheme") == scheme and _run_key(r) == key:
            return r
    return None


def _candidates(rows: list[dict[str, Any]], fp_row: dict[str, Any]) -> int:
    return sum(
        1
        for r in rows
        if r.get("scheme") == FP_SCHEME
        and r.get("optimizer") == fp_row.get("optimizer")
        and r.get("parameters") == fp_row.get("parameters")
        and r.get("qat") == fp_row.get("qat")
    )


# ---- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    out_dir: Path
    rows: list[dict[str, Any]]
    scheme: str | None
    target: str
    bootstrap: int
    seed: int
    abc_all_sizes: bool
    acc_metric: str = "acc_norm"
    resamples: int = intervals.DEFAULT_RESAMPLES
    sections: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    headline: str = ""

    def figure(self, fig: plt.Figure, name: str) -> str:
        path = self.out_dir / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        self.figures.append(name)
        return name


def _schemes(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({str(r["scheme"]) for r in rows if r.get("scheme") not in (None, FP_SCHEME)})


def _headline_section(rep: Report, schemes: list[str]) -> None:
    best = best_runs(rep.rows)
    if not best:
        rep.missing.append("no full-precision (qat = none) runs: no headline table")
        return
    has_acc = bool(task_names(rep.rows))
    if not has_acc:
        rep.missing.append("no task accuracies in any run (/eval/tasks): accuracy columns show –")
    keys = sorted(best, key=lambda k: (k[1], k[0]))
    text = ["## Full precision vs PTQ, per model", ""]
    text.append(
        "Per optimizer and size, the selected run (the best learning rate by mean final validation loss over "
        "seeds; `runs` = how many runs competed). FP loss: the evaluation of the weights that were quantized. "
        f"Accuracies ({rep.acc_metric}) are the mean over tasks, in percent; acc drop = FP - PTQ (points), loss "
        "increase = PTQ - FP, with 95% paired bootstrap intervals over the evaluation's examples and windows."
    )
    for i, scheme in enumerate(schemes or [None]):
        headers = ["optimizer", "model", "N", "D/N", "runs", "FP loss", "FP acc"]
        if scheme is not None:
            headers += ["PTQ loss", "PTQ acc", "loss increase", "acc drop", "R_L"]
        body = []
        for key in keys:
            fp = best[key]
            cells = [
                str(fp.get("optimizer")),
                str(fp.get("model_name") or "–"),
                fmt_params(fp.get("parameters")),
                fmt(fp.get("tokens_per_param"), 1),
                str(_candidates(rep.rows, fp)),
                fmt(fp.get("fp_val_loss") if fp.get("fp_val_loss") is not None else fp.get("final_val_loss")),
                fmt(fp.get("fp_acc_avg"), 2, 100.0),
            ]
            if scheme is not None:
                q = _scheme_row(rep.rows, fp, scheme) or {}
                cells += [
                    fmt(q.get("val_loss")),
                    fmt(q.get("acc_avg"), 2, 100.0),
                    summary.fmt_ci(q, "loss_increase"),
                    summary.fmt_ci(q, "acc_drop", 2, 100.0),
                    fmt(q.get("R_L"), 4),
                ]
            body.append(cells)
        title = f"### Scheme `{scheme}`" if scheme else "### Full precision only"
        table = md_table(headers, body)
        text += ["", title, "", table]
        if i == 0 and not rep.headline:
            rep.headline = f"{title[4:]}\n\n{table}"
    rep.sections.append("\n".join(text))


def _summary_section(rep: Report, schemes: list[str]) -> None:
    """The headline: tokens per parameter, the selected lrs, the damage with intervals, the two verdicts."""
    if not summary.selected_fp(rep.rows):
        return
    text = ["## Headline", "", summary.tokens_sentence(rep.rows), ""]
    seeds = max((r.get("lr_seeds") or 1 for r in summary.selected_fp(rep.rows)), default=1)
    table, edges = summary.lr_table(rep.rows)
    text += [f"**Learning rates** selected by the sweep (lowest mean final validation loss over {seeds} seed(s); "
             "the cell says where the selected lr sits in the grid and how many lrs it has):", "", table, ""]
    if edges:
        text.append("On the edge of the grid (the optimum may lie outside it; widen the grid): " + "; ".join(edges) + ".")
    elif any(r.get("lr_grid") == "inside" for r in summary.selected_fp(rep.rows)):
        text.append("Every selected learning rate with a sweep lies inside its grid.")
    if schemes:
        text += ["", f"**PTQ damage** ({', '.join(f'`{s}`' for s in schemes)}; accuracy = {rep.acc_metric} in percent, "
                 "mean over tasks; 95% paired bootstrap intervals over the evaluation's windows and examples):", "",
                 summary.damage_table(rep.rows, schemes), ""]
        metrics = tuple(m for m in (*summary.OUTLIER_METRICS, "R_L") if np.isfinite(column(rep.rows, m)).any())
        for scheme in schemes:
            if not metrics or not summary.scheme_rows(rep.rows, scheme):
                continue
            text += [f"**Which metric predicts the damage?** `{scheme}`: Pearson r [95% Fisher-z CI] over the selected "
                     "models with the loss increase, the accuracy drop and the post-PTQ accuracy acc_avg (what the paper correlates: "
                     "R_L -0.89, MMR 0.62, kurtosis 0.70); pooled over sizes as the paper, and within sizes (each "
                     "size's mean removed, so only the optimizers differ: model size moves both the damage and the "
                     "accuracy).", "", summary.correlation_table(rep.rows, scheme, metrics), ""]
            for target in summary.TABLE_TARGETS:
                for within in (False, True):
                    text.append("- " + summary.rl_verdict(rep.rows, scheme, target, rep.resamples, rep.seed, within))
            text.append("")
        text.append("**Which optimizer loses least?**")
        text.append("")
        for scheme in schemes:
            for target in ("loss_increase", "acc_drop"):
                text.append("- " + summary.least_loss_verdict(rep.rows, scheme, target))
        text += ["", "The intervals cover the evaluation sample (windows, examples) only"
                 + (", not training noise: every configuration was trained with one seed." if seeds == 1 else
                    "; the per-seed rows show the training noise.")]
    section = "\n".join(text)
    rep.sections.append(section)
    rep.headline = section


def _qat_section(rep: Report) -> None:
    qats = sorted({str(r.get("qat")) for r in rep.rows if r.get("scheme") == FP_SCHEME and r.get("qat") not in (None, "none")})
    if not qats:
        rep.missing.append("no QAT runs (quant.qat = none everywhere): no QAT table")
        return
    fp_best = best_runs(rep.rows, "none")
    text = ["## Quantization-aware training", ""]
    text.append(
        "Best run per optimizer and size trained with QAT vs trained in full precision; "
        "diff = QAT - FP (accuracy in points, loss)."
    )
    for qat in qats:
        q_best = best_runs(rep.rows, qat)
        body = []
        for key in sorted(q_best, key=lambda k: (k[1], k[0])):
            q, fp = q_best[key], fp_best.get(key, {})
            qa, fa = q.get("fp_acc_avg"), fp.get("fp_acc_avg")
            ql, fl = _fp_loss(q), _fp_loss(fp) if fp else math.inf
            body.append(
                [
                    key[0],
                    fmt_params(key[1]),
                    fmt(fl if math.isfinite(fl) else None),
                    fmt(ql if math.isfinite(ql) else None),
                    fmt(ql - fl if math.isfinite(ql) and math.isfinite(fl) else None),
                    fmt(fa, 2, 100.0),
                    fmt(qa, 2, 100.0),
                    fmt((qa - fa) if qa is not None and fa is not None else None, 2, 100.0),
                ]
            )
        headers = ["optimizer", "N", "FP loss", "QAT loss", "loss diff", "FP acc", "QAT acc", "acc diff"]
        text += ["", f"### QAT `{qat}`", "", md_table(headers, body)]
    rep.sections.append("\n".join(text))


def _degradation_figures(rep: Report, schemes: list[str]) -> None:
    best = best_runs(rep.rows)
    for scheme in schemes:
        series: dict[str, list[tuple[float, float | None, float | None]]] = {}
        for (opt, n), fp in best.items():
            q = _scheme_row(rep.rows, fp, scheme)
            if q is None:
                continue
            series.setdefault(opt, []).append((n, q.get("loss_increase"), q.get("acc_drop")))
        panels = [("loss_increase", "val loss increase (PTQ - FP)", 1, 1.0), ("acc_drop", "accuracy drop (FP - PTQ, points)", 2, 100.0)]
        panels = [p for p in panels if any(v[p[2]] is not None for s in series.values() for v in s)]
        if not panels:
            rep.missing.append(f"scheme {scheme}: no evaluated PTQ results: no degradation figure")
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False, layout="constrained")
        for ax, (_, label, idx, scale) in zip(axes[0], panels):
            for opt, pts in sorted(series.items()):
                pts = sorted(pts, key=lambda p: p[0])
                xs = [p[0] for p in pts if p[idx] is not None]
                ys = [p[idx] * scale for p in pts if p[idx] is not None]
                if xs:
                    ax.plot(xs, ys, marker="o", label=opt)
            ax.set_xscale("log")
            ax.set_xlabel("parameters N")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"PTQ degradation per optimizer and size ({scheme})")
        name = rep.figure(fig, f"degradation_{scheme}.png")
        rep.sections.append(f"### PTQ degradation, `{scheme}`\n\n![PTQ degradation {scheme}]({name})")


def _correlation_section(rep: Report, schemes: list[str]) -> None:
    if not schemes:
        rep.missing.append("no PTQ schemes (/quant): no correlations")
        return
    ptq = [r for r in rep.rows if r.get("scheme") not in (None, FP_SCHEME) and r.get("selected") != 0]
    target = rep.target
    if not np.isfinite(column(ptq, target)).any():
        fallback = "loss_increase" if target != "loss_increase" else None
        if fallback and np.isfinite(column(ptq, fallback)).any():
            rep.missing.append(f"no values of {target} (no task accuracies?): correlating with {fallback} instead")
            target = fallback
        else:
            rep.missing.append(f"no values of {target}: no correlations")
            return
    if not any(np.isfinite(column(ptq, m)).any() for m in stats.METRICS):
        rep.missing.append("no /analysis/<scheme> aggregates (quopt analyze not run?): no correlations")
        return
    corr = stats.correlate_rows([r for r in rep.rows if r.get("selected") != 0], target)
    write_rows_csv(rep.out_dir / "correlations.csv", corr, stats.CORR_COLUMNS)
    body = [
        [
            c["scheme"],
            c["qat"],
            c["metric"],
            str(c["n"]),
            f"{fmt(c['pearson_r'], 2)} [{fmt(c['pearson_ci_low'], 2)}, {fmt(c['pearson_ci_high'], 2)}]",
            fmt(c["pearson_p"], 3),
            f"{fmt(c['spearman_rho'], 2)} [{fmt(c['spearman_ci_low'], 2)}, {fmt(c['spearman_ci_high'], 2)}]",
            fmt(c["spearman_p"], 3),
            c["note"] or "",
        ]
        for c in corr
    ]
    text = [
        f"## Which metric predicts PTQ damage? (target: {target})",
        "",
        f"{stats.TARGETS[target]}, across all runs of each scheme. 95% CIs: Pearson by the Fisher z-transform; "
        f"Spearman by the Fisher z-transform with the Bonett-Wright variance. The paper finds MMR and kurtosis "
        f"uninformative across optimizers and R_L predictive (Pearson -0.89 with post-PTQ accuracy). "
        f"MMR is the max-to-mean ratio (`mmr_tomean_*`, bounded by the feature count) in the figures; the "
        f"authors' max-to-median (`mmr_mean`, `mmr_max`) is in the table for comparison, but on ReLU^2 "
        f"models most mlp_down inputs have a median of ~0 and one token can carry its mean "
        f"(docs/analysis.md).",
        "",
        md_table(["scheme", "qat", "metric", "n", "Pearson r [95% CI]", "p", "Spearman rho [95% CI]", "p", "note"], body),
        "",
        "Table: `correlations.csv`.",
    ]
    for c0 in corr:
        if c0["metric"] != stats.FIGURE_METRICS[0]:
            continue  # one figure per (scheme, qat) group
        scheme, qat = c0["scheme"], c0["qat"]
        members = [r for r in ptq if r.get("scheme") == scheme and str(r.get("qat") or "none") == qat]
        metrics = [m for m in stats.FIGURE_METRICS if np.isfinite(column(members, m)).any()]
        if not metrics:
            continue
        y = column(members, target)
        opts = [str(r.get("optimizer")) for r in members]
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False, layout="constrained")
        for ax, metric in zip(axes[0], metrics):
            x = column(members, metric)
            for opt in sorted(set(opts)):
                sel = np.array([o == opt for o in opts]) & np.isfinite(x) & np.isfinite(y)
                ax.scatter(x[sel], y[sel], label=opt, s=22)
            c = next(c for c in corr if (c["scheme"], c["qat"], c["metric"]) == (scheme, qat, metric))
            ax.set_title(
                f"{metric}\nPearson {fmt(c['pearson_r'], 2)}, Spearman {fmt(c['spearman_rho'], 2)} (n={c['n']})",
                fontsize=9,
            )
            ax.set_xlabel(metric)
            ax.set_ylabel(target)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        suffix = "" if qat == "none" else f"_qat-{qat}"
        fig.suptitle(f"metrics vs {target} ({scheme}{'' if qat == 'none' else ', QAT ' + qat})")
        name = rep.figure(fig, f"correlation_{scheme}{suffix}.png")
        text += ["", f"![metrics vs {target}, {scheme}{suffix}]({name})"]
    rep.sections.append("\n".join(text))


def _abc_section(rep: Report, schemes: list[str]) -> None:
    best = best_runs(rep.rows)
    text = ["## Error propagation: per-module R, A, B, C", ""]
    text.append(
        "R = |dh|^2/|h|^2 after each module of the chain (embedding; per block attention, its norm, MLP, its "
        "norm; final norm; head), R = A + B + C; A: propagated error, B: local error, C: cross term "
        "(docs/analysis.md). One line per optimizer: its best run at that size."
    )
    made = 0
    unreadable: set[str] = set()
    for scheme in schemes:
        by_size: dict[float, dict[str, list]] = {}
        for (opt, n), fp in best.items():
            path = fp.get("run_file")
            if not path or not os.path.exists(str(path)):
                if path:
                    unreadable.add(str(path))
                continue
            try:
                run = read_run(path)
            except (NotARunFile, UnreadableRunFile):
                unreadable.add(str(path))
                continue
            s = run.schemes.get(scheme)
            if s and s.abc:
                by_size.setdefault(n, {})[opt] = s.abc
        sizes = sorted(by_size)
        if not rep.abc_all_sizes and sizes:  # the largest size among those with the most optimizers
            most = max(len(by_size[n]) for n in sizes)
            sizes = [max(n for n in sizes if len(by_size[n]) == most)]
        for n in sizes:
            per_opt = by_size[n]
            fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), layout="constrained")
            r_values = [m.values.get("R", np.nan) for ms in per_opt.values() for m in ms]
            positive = [v for v in r_values if np.isfinite(v) and v > 0]
            linthresh = 0.1 * min(positive) if positive else 1e-12  # C may be negative: symlog below it
            for ax, key in zip(axes, ABC_KEYS):
                for opt, modules in sorted(per_opt.items()):
                    ys = [m.values.get(key, np.nan) for m in modules]
                    ax.plot(range(len(ys)), ys, marker=".", label=opt)
                ax.set_title(key)
                if key == "C":
                    ax.set_yscale("symlog", linthresh=linthresh)
                else:
                    ax.set_yscale("log")
                labels = [m.module for m in next(iter(per_opt.values()))]
                step = max(1, len(labels) // 12)
                ax.set_xticks(range(0, len(labels), step))
                ax.set_xticklabels(labels[::step], rotation=60, fontsize=7, ha="right")
                ax.grid(alpha=0.3)
            axes[0].legend(fontsize=7)
            fig.suptitle(f"ABC profile, {scheme}, N = {fmt_params(n)}")
            name = rep.figure(fig, f"abc_{scheme}_{fmt_params(n)}.png")
            text += ["", f"![ABC {scheme} {fmt_params(n)}]({name})"]
            made += 1
    if unreadable:
        rep.missing.append(f"{len(unreadable)} run file(s) named in the table cannot be read: their ABC profiles are left out")
    if made == 0:
        rep.missing.append("no /analysis/<scheme>/abc groups in the best runs: no ABC profiles")
        return
    rep.sections.append("\n".join(text))


def _robustness_section(rep: Report) -> None:
    """Robustness tracked during training (track.every > 0): per training variant, the best run of each
    optimizer at the largest size that has curves (all sizes with abc_all_sizes)."""
    variants = sorted({str(r.get("qat") or "none") for r in rep.rows if r.get("scheme") == FP_SCHEME},
                      key=lambda q: (q != "none", q))
    text = ["## Quantization robustness during training", ""]
    text.append(
        "Measured every `track.every` steps on a fixed calibration batch (docs/analysis.md): the loss "
        "increase of the `track.scheme` PTQ model (a QAT run: of its own QAT quantization), R_L, both MMR "
        "variants and the kurtosis, against training tokens. One line per optimizer: its best run."
    )
    made = 0
    for qat in variants:
        by_size: dict[float, list] = {}
        for (_, n), fp in best_runs(rep.rows, qat).items():
            path = fp.get("run_file")
            if not path or not os.path.exists(str(path)):
                continue
            try:
                run = read_run(path)
            except (NotARunFile, UnreadableRunFile):
                continue
            if has_robustness(run):
                by_size.setdefault(n, []).append(run)
        sizes = sorted(by_size)
        if not rep.abc_all_sizes and sizes:
            most = max(len(by_size[n]) for n in sizes)
            sizes = [max(n for n in sizes if len(by_size[n]) == most)]
        for n in sizes:
            suffix = "" if qat == "none" else f"_qat-{qat}"
            name = f"robustness_{fmt_params(n)}{suffix}.png"
            what = "full precision" if qat == "none" else f"QAT {qat}"
            if robustness_figure(by_size[n], rep.out_dir / name, title=f"robustness during training, {what}, N = {fmt_params(n)}"):
                rep.figures.append(name)
                text += ["", f"![robustness during training, {what}, {fmt_params(n)}]({name})"]
                made += 1
    if made == 0:
        rep.missing.append("no /metrics/robustness_* curves in the best runs (track.every = 0): no robustness-during-training figure")
        return
    rep.sections.append("\n".join(text))


def _scaling_section(rep: Report) -> None:
    fits, messages = scaling.fit_all(rep.rows, mode="both", bootstrap=rep.bootstrap, seed=rep.seed)
    rep.missing += [f"scaling law: {m}" for m in messages]
    if not fits:
        return
    rows = [r for f in fits for r in scaling.fit_rows(f)]
    write_rows_csv(rep.out_dir / "fits.csv", rows, scaling.FIT_COLUMNS)
    text = ["## Scaling laws", ""]
    text.append(
        "Hoffmann-style fit (Huber loss on log residuals, L-BFGS-B from a grid); 95% bootstrap percentile "
        "intervals. `shared`: one (E, A, alpha) for all optimizers, rho of the reference optimizer's FP "
        "runs fixed to 1; `per-optimizer`: each optimizer's FP and QAT runs, rho_FP = 1 (the paper's rho_4bit)."
    )
    for f in fits:
        law = "L = E + A/(rho N)^alpha" if f.law == "n" else "L = E + A/(rho N)^alpha + B/D^beta"
        fit_note = "; ".join(f.notes)
        body = []
        for r in scaling.fit_rows(f):
            who = f"{r['optimizer']} {r['variant']}".strip()
            note = "" if r["note"] == fit_note else r["note"] or ""
            ci = f"[{fmt(r['ci_low'], 4)}, {fmt(r['ci_high'], 4)}]"
            body.append([r["parameter"], who, fmt(r["estimate"], 4), ci, note])
        n_boot = 0 if f.boot is None else len(f.boot)
        text += [
            "",
            f"### {f.name}: {law}",
            "",
            f"{f.n_points} points, rmse of the log loss {fmt(f.rmse_log, 4)}, {n_boot} bootstrap fits"
            + (f" ({fit_note})" if fit_note else "") + ".",
            "",
            md_table(["parameter", "group", "estimate", "95% CI", "note"], body),
        ]
    shared = next((f for f in fits if f.mode == "shared"), fits[0])
    points = scaling.select_points(rep.rows)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    Ns = np.array([p.N for p in points])
    grid = np.geomspace(Ns.min() / 1.3, Ns.max() * 1.3, 100)
    ratio = float(np.median([p.D / p.N for p in points]))
    opts = sorted({g[0] for g in shared.groups})
    variants = sorted({g[1] for g in shared.groups}, key=lambda v: (v != "fp", v))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    for g in shared.groups:
        pts = [p for p in points if (p.optimizer, p.variant) == g]
        color = f"C{opts.index(g[0]) % 10}"
        vi = variants.index(g[1]) % len(styles)
        ax.scatter([p.N for p in pts], [p.loss for p in pts], color=color, marker=markers[vi], s=20)
        ax.plot(grid, shared.predict(grid, grid * ratio, g), color=color, lw=1, ls=styles[vi],
                label=f"{g[0]} {g[1]}: rho={shared.rho()[g]:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{shared.name} fit" + (f" (curves at D/N = {ratio:.3g})" if shared.law == "nd" else ""))
    name = rep.figure(fig, "scaling.png")
    text += ["", f"![scaling law]({name})", "", "Table: `fits.csv`."]
    rep.sections.append("\n".join(text))


def make_report(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    scheme: str | None = None,
    target: str = "acc_drop",
    bootstrap: int = scaling.DEFAULT_BOOTSTRAP,
    seed: int = 0,
    acc_metric: str = "acc_norm",
    abc_all_sizes: bool = False,
    resamples: int = intervals.DEFAULT_RESAMPLES,
) -> Report:
    source = Path(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if source.is_dir():
        got = collect(source, acc_metric=acc_metric, quiet=True, resamples=resamples)
        rows = got.rows
        notes += got.skipped + got.warnings
        if rows:
            write_csv(rows, out / "table.csv")
    elif source.is_file():
        rows = read_csv(source)
    else:
        raise ReportError(f"{source}: no such directory or table")
    if not rows:
        raise ReportError(f"{source}: no run could be read, nothing to report" + ("".join(f"\n  {n}" for n in notes)))
    schemes = _schemes(rows)
    if scheme is not None:
        if scheme not in schemes:
            raise ReportError(f"--scheme {scheme}: not in the data; schemes present: {', '.join(schemes) or 'none'}")
    elif schemes:
        scheme = DEFAULT_SCHEME if DEFAULT_SCHEME in schemes else schemes[0]
    ordered = ([scheme] if scheme else []) + [s for s in schemes if s != scheme]
    selection.annotate(rows, FP_SCHEME)  # a table from an older collect has no selection columns
    acc_metric = next((str(r["acc_metric"]) for r in rows if r.get("acc_metric")), acc_metric)
    rep = Report(out, rows, scheme, target, bootstrap, seed, abc_all_sizes, acc_metric, resamples)
    rep.missing += notes

    # The sections in order; each says in rep.missing what it could not make.
    _summary_section(rep, ordered)
    for text, why in (sweep_section(rows, rep.figure), protocol_section(rows, scheme, rep.figure)):
        if text:
            rep.sections.append(text)
        else:
            rep.missing.append(why)
    _headline_section(rep, ordered)
    _qat_section(rep)
    if ordered:
        deg_before = len(rep.sections)
        _degradation_figures(rep, ordered)
        if len(rep.sections) > deg_before:
            rep.sections[deg_before] = "## PTQ degradation\n\n" + rep.sections[deg_before]
    _correlation_section(rep, ordered)
    if ordered:
        _abc_section(rep, ordered)
    _robustness_section(rep)
    _scaling_section(rep)

    runs = {r.get("run_file") for r in rows}
    optimizers = sorted({str(r.get("optimizer")) for r in rows if r.get("optimizer")})
    sizes = sorted({float(r["parameters"]) for r in rows if isinstance(r.get("parameters"), (int, float))})
    qats = sorted({str(r.get("qat")) for r in rows if r.get("scheme") == FP_SCHEME})
    head = [
        "# quopt report",
        "",
        f"Source: `{source}`. {len(runs)} run(s); optimizers: {', '.join(optimizers) or '–'}; "
        f"sizes: {', '.join(fmt_params(n) for n in sizes) or '–'}; PTQ schemes: {', '.join(ordered) or 'none'}; "
        f"training: {', '.join('FP' if q == 'none' else 'QAT ' + q for q in qats) or '–'}.",
    ]
    if rep.missing:
        head += ["", "## What is missing", ""] + [f"- {m}" for m in rep.missing]
    text = "\n".join(head) + "\n\n" + "\n\n".join(rep.sections) + "\n"
    (out / "report.md").write_text(text, encoding="utf-8")
    return rep
