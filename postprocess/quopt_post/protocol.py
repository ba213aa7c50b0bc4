"""Where each selected model was quantized: the protocol (final weights, or the paper's common loss), the
common loss of each size, and the step, tokens and validation loss each model was taken at; with a figure
of the selected runs' validation curves, the threshold and the points taken."""

from __future__ import annotations

import math
from typing import Any, Callable

import matplotlib.pyplot as plt

from .markdown import fmt, fmt_params, md_table
from .runfile import NotARunFile, UnreadableRunFile, read_run
from .table import FP_SCHEME


def protocol_section(rows: list[dict[str, Any]], scheme: str | None,
                     figure: Callable[[plt.Figure, str], str]) -> tuple[str | None, str]:
    """(section text or None, reason when None)."""
    if scheme is None:
        return None, "no PTQ scheme: no quantization protocol to report"
    q = [r for r in rows if r.get("scheme") == scheme and r.get("selected") == 1 and str(r.get("qat") or "none") == "none"]
    if not q:
        return None, f"no selected run has /quant/{scheme}: no quantization protocol to report"
    protocols = sorted({str(r.get("ptq_protocol") or "final (not recorded)") for r in q})
    sizes = sorted({r["parameters"] for r in q if isinstance(r.get("parameters"), (int, float))})
    text = ["## Where the models were quantized", ""]
    if protocols == ["common-loss"]:
        text.append(
            "Protocol **common-loss** (the paper's): per size, the threshold is the lowest validation loss that "
            "every selected run reaches (the maximum over them of their minimum); each model is quantized at its "
            "first validation point at or below it, so all optimizers of a size enter PTQ at equal quality.")
    elif protocols == ["final"]:
        text.append("Protocol **final**: every model is quantized with its final weights (not the paper's common "
                    "loss: optimizers then enter PTQ at different quality).")
    else:
        text.append(f"Protocols: {', '.join(protocols)}.")
    body = []
    for r in sorted(q, key=lambda r: (r.get("parameters") or 0, str(r.get("optimizer")), r.get("seed") or 0)):
        fp = next((x for x in rows if x.get("scheme") == FP_SCHEME and x.get("run_file") == r.get("run_file")), {})
        body.append([str(r.get("optimizer")), fmt_params(r.get("parameters")), str(r.get("ptq_protocol") or "–"),
                     fmt(r.get("ptq_threshold"), 4), f"{r.get('ptq_step')} / {r.get('steps')}",
                     fmt(r.get("ptq_tokens_per_param"), 1), fmt(r.get("ptq_train_val_loss"), 4),
                     fmt(fp.get("final_val_loss"), 4), fmt(fp.get("fp_val_loss"), 4)])
    text += ["", md_table(["optimizer", "N", "protocol", "threshold", "step / steps", "D/N there",
                           "train val loss there", "final val loss", "eval loss (FP)"], body)]
    text.append("\n`train val loss` is the trainer's validation (train.val_batches windows), on which the threshold "
                "is set; `eval loss` is `quopt ptq`'s evaluation of the same weights on eval.val_batches windows.")
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.6), squeeze=False, layout="constrained")
    drawn = 0
    colors = {o: f"C{k % 10}" for k, o in enumerate(sorted({str(r.get("optimizer")) for r in q}))}
    for ax, n in zip(axes[0], sizes):
        members = [r for r in q if r.get("parameters") == n]
        labelled: set[str] = set()
        for r in sorted(members, key=lambda r: (str(r.get("optimizer")), r.get("seed") or 0)):
            try:
                run = read_run(r["run_file"])
            except (NotARunFile, UnreadableRunFile, OSError):
                continue
            if run.val_step.size == 0:
                continue
            opt = str(r.get("optimizer"))
            color = colors[opt]
            ax.plot(run.val_step, run.val_loss, color=color, lw=1, label=None if opt in labelled else opt)
            labelled.add(opt)
            if isinstance(r.get("ptq_step"), (int, float)) and isinstance(r.get("ptq_train_val_loss"), (int, float)):
                ax.scatter([r["ptq_step"]], [r["ptq_train_val_loss"]], color=color, s=30, zorder=3)
            drawn += 1
        thr = next((r.get("ptq_threshold") for r in members if isinstance(r.get("ptq_threshold"), (int, float))), None)
        if thr is not None and math.isfinite(thr):
            ax.axhline(thr, color="k", ls="--", lw=0.8, label="common loss")
            ax.set_ylim(thr - 0.6, thr + 1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss")
        ax.set_title(f"N = {fmt_params(n)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if drawn:
        fig.suptitle("selected runs: validation loss; dots: where quantized")
        name = figure(fig, "protocol.png")
        text += ["", f"![validation curves and quantization points]({name})"]
    else:
        plt.close(fig)
    return "\n".join(text), ""
