"""The tidy results table: one row per (run, scheme), plus one row per run with scheme "fp".

Column meanings (docs/postprocess.md has the same list):

run_dir                 run directory relative to the scanned RUNS_DIR ("." for RUNS_DIR itself)
run_file                absolute path of the run.h5 (the report reads /analysis/<scheme>/abc from it)
model_name, parameters, non_embedding_parameters     root attributes of the run file
optimizer, lr           [optimizer] name and lr of the resolved config
seed                    root attribute seed
qat                     [quant] qat of the config ("none" when absent: files from before QAT existed)
tokens                  training tokens (last entry of /metrics/tokens); tokens_per_param = tokens / parameters
steps                   optimizer steps (last entry of /metrics/train_step)
final_train_loss, final_val_loss    last entries of /metrics/train_loss and /metrics/val_loss
min_val_loss            the lowest entry of /metrics/val_loss
selected, lr_mean_val_loss, lr_seeds, best_lr, lr_grid   the best-run selection (selection.py): 1 for
                        the runs of the best lr of their (size, optimizer, qat), the mean final val loss
                        over the seeds of this run's lr, the winning lr and where it sits in the grid
scheme                  "fp" for the full-precision (or QAT) model itself, else the /quant/<scheme> name
ptq_step, ptq_tokens, ptq_tokens_per_param, ptq_protocol, ptq_threshold, ptq_train_val_loss
                        which weights the row's evaluation used (attributes of /eval, /quant/<scheme>):
                        training step and tokens, the protocol (final, common-loss, step), the common
                        loss of the size (common-loss), the trainer's val loss at that step
quant_method, weight_bits, act_bits, granularity, group_size    attributes of /quant/<scheme>
fp_val_loss             /eval val_loss (the model as trained)
fp_acc_<task>           /eval/tasks/<task> accuracy (the metric named in acc_metric); fp_acc_avg their mean
val_loss                the row's own val loss: /quant/<scheme>/eval val_loss (= fp_val_loss for "fp")
acc_<task>, acc_avg     the row's own accuracies and their mean
loss_increase           val_loss - fp_val_loss (PTQ rows only)
acc_drop                mean over the tasks evaluated both in FP and quantized of (fp acc - quantized acc)
*_ci_low, *_ci_high     95% bootstrap intervals (intervals.py) of fp_acc_avg, acc_avg, loss_increase and
                        acc_drop over the evaluation's windows and examples (paired for the differences)
R_L, mmr_mean, mmr_max, mmr_tomean_mean, mmr_tomean_max, kurtosis_mean, kurtosis_max
                        attributes of /analysis/<scheme> (PTQ rows; mmr_* the authors' max-to-median
                        MMR, mmr_tomean_* the max-to-mean MMR); on the "fp" row of a QAT run, those of
                        /analysis/qat (its QAT quantization)
acc_metric              "acc" or "acc_norm": which task attribute the accuracy columns hold

Accuracies are stored as the run file has them (fractions in [0, 1]); the report shows percent.
Missing values are empty cells.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import intervals
from .runfile import ANALYSIS_KEYS, EvalResult, RunData

FP_SCHEME = "fp"

STRING_COLUMNS = {  # also those of the correlation and fit CSVs
    "target",
    "metric",
    "mode",
    "fit",
    "law",
    "parameter",
    "variant",
    "note",
    "pearson_ci_method",
    "spearman_ci_method",
    "run_dir",
    "run_file",
    "model_name",
    "optimizer",
    "qat",
    "scheme",
    "quant_method",
    "granularity",
    "acc_metric",
    "lr_grid",
    "ptq_protocol",
}
INT_COLUMNS = {"n", "n_points", "n_groups", "n_boot", "parameters", "non_embedding_parameters", "seed", "steps",
               "weight_bits", "act_bits", "group_size", "selected", "lr_seeds", "ptq_step"}

HEAD_COLUMNS = [
    "run_dir",
    "run_file",
    "model_name",
    "parameters",
    "non_embedding_parameters",
    "optimizer",
    "lr",
    "seed",
    "qat",
    "tokens",
    "tokens_per_param",
    "steps",
    "final_train_loss",
    "final_val_loss",
    "min_val_loss",
    "selected",
    "lr_mean_val_loss",
    "lr_seeds",
    "best_lr",
    "lr_grid",
    "scheme",
    "quant_method",
    "weight_bits",
    "act_bits",
    "granularity",
    "group_size",
    "ptq_step",
    "ptq_tokens",
    "ptq_tokens_per_param",
    "ptq_protocol",
    "ptq_threshold",
    "ptq_train_val_loss",
    "fp_val_loss",
    "fp_acc_avg",
    "fp_acc_avg_ci_low",
    "fp_acc_avg_ci_high",
]
# then fp_acc_<task>..., then:
MID_COLUMNS = ["val_loss", "acc_avg", "acc_avg_ci_low", "acc_avg_ci_high"]
# then acc_<task>..., then:
TAIL_COLUMNS = ["loss_increase", "loss_increase_ci_low", "loss_increase_ci_high", "acc_drop", "acc_drop_ci_low",
                "acc_drop_ci_high", *ANALYSIS_KEYS, "acc_metric"]

ACC_METRICS = ("acc", "acc_norm")


def _task_acc(tasks: dict[str, dict[str, float]], metric: str) -> dict[str, float]:
    return {t: v[metric] for t, v in tasks.items() if metric in v}


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


def _weights_columns(weights: dict[str, Any], params: int | None) -> dict[str, Any]:
    tokens = weights.get("train_tokens")
    return {
        "ptq_step": weights.get("step"),
        "ptq_tokens": tokens,
        "ptq_tokens_per_param": tokens / params if isinstance(tokens, (int, float)) and params else None,
        "ptq_protocol": weights.get("protocol"),
        "ptq_threshold": weights.get("threshold"),
        "ptq_train_val_loss": weights.get("train_val_loss"),
    }


def _item_groups(result: EvalResult | None, metric: str, tasks: list[str]) -> list[np.ndarray] | None:
    """Per-example outcomes of `tasks` (all present), else None."""
    if result is None or not tasks or any(metric not in result.items.get(t, {}) for t in tasks):
        return None
    return [result.items[t][metric] for t in tasks]


def _set_ci(row: dict[str, Any], column: str, ci: tuple[float, float, float]) -> None:
    _, lo, hi = ci
    row[f"{column}_ci_low"] = lo if math.isfinite(lo) else None
    row[f"{column}_ci_high"] = hi if math.isfinite(hi) else None


def rows_for_run(
    run: RunData, runs_dir: Path, acc_metric: str = "acc", resamples: int = intervals.DEFAULT_RESAMPLES
) -> list[dict[str, Any]]:
    """The table rows of one run: the "fp" row first, then one per scheme (sorted by name)."""
    try:
        run_dir = Path(os.path.relpath(run.path.parent, runs_dir)).as_posix()
    except ValueError:  # another drive on Windows
        run_dir = run.path.parent.as_posix()
    params = run.parameters
    base: dict[str, Any] = {
        "run_dir": run_dir,
        "run_file": str(run.path.resolve()),
        "model_name": run.model_name,
        "parameters": None if params is None else int(params),
        "non_embedding_parameters": (
            None if run.non_embedding_parameters is None else int(run.non_embedding_parameters)
        ),
        "optimizer": run.optimizer,
        "lr": run.lr,
        "seed": run.seed,
        "qat": run.qat,
        "tokens": run.tokens,
        "tokens_per_param": (run.tokens / params) if run.tokens is not None and params else None,
        "steps": run.steps,
        "final_train_loss": run.final_train_loss,
        "final_val_loss": run.final_val_loss,
        "min_val_loss": float(np.min(run.val_loss)) if np.isfinite(run.val_loss).any() else None,
        "acc_metric": acc_metric,
    }
    fp_acc = _task_acc(run.eval.tasks, acc_metric) if run.eval else {}
    base["fp_val_loss"] = run.eval.val_loss if run.eval else None
    base["fp_acc_avg"] = _mean(fp_acc.values())
    for task, acc in fp_acc.items():
        base[f"fp_acc_{task}"] = acc
    fp_items = _item_groups(run.eval, acc_metric, sorted(fp_acc))
    if fp_items is not None:
        _set_ci(base, "fp_acc_avg", intervals.mean_of_means_ci(fp_items, resamples))

    rows = []
    fp_row = dict(base, scheme=FP_SCHEME, val_loss=base["fp_val_loss"], acc_avg=base["fp_acc_avg"],
                  acc_avg_ci_low=base.get("fp_acc_avg_ci_low"), acc_avg_ci_high=base.get("fp_acc_avg_ci_high"))
    fp_row.update(_weights_columns(run.eval.weights if run.eval else {}, base["parameters"]))
    for task, acc in fp_acc.items():
        fp_row[f"acc_{task}"] = acc
    if run.qat_analysis:
        fp_row.update(run.qat_analysis)
    rows.append(fp_row)

    for name, scheme in sorted(run.schemes.items()):
        row = dict(base, scheme=name)
        a = scheme.attrs
        row["quant_method"] = a.get("method")
        for key in ("weight_bits", "act_bits", "group_size"):
            v = a.get(key)
            row[key] = int(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
        row["granularity"] = a.get("granularity")
        row.update(_weights_columns(scheme.weights, base["parameters"]))
        q_acc: dict[str, float] = {}
        if scheme.eval is not None:
            row["val_loss"] = scheme.eval.val_loss
            q_acc = _task_acc(scheme.eval.tasks, acc_metric)
            for task, acc in q_acc.items():
                row[f"acc_{task}"] = acc
            row["acc_avg"] = _mean(q_acc.values())
            q_items = _item_groups(scheme.eval, acc_metric, sorted(q_acc))
            if q_items is not None:
                _set_ci(row, "acc_avg", intervals.mean_of_means_ci(q_items, resamples))
        if row.get("val_loss") is not None and base["fp_val_loss"] is not None:
            row["loss_increase"] = row["val_loss"] - base["fp_val_loss"]
            if run.eval is not None and run.eval.window_loss is not None and scheme.eval.window_loss is not None:
                ci = intervals.paired_difference_ci([scheme.eval.window_loss], [run.eval.window_loss], resamples)
                _set_ci(row, "loss_increase", ci)
        common = sorted(set(fp_acc) & set(q_acc))
        row["acc_drop"] = _mean(fp_acc[t] - q_acc[t] for t in common)
        fp_common = _item_groups(run.eval, acc_metric, common)
        q_common = _item_groups(scheme.eval, acc_metric, common)
        if fp_common is not None and q_common is not None:
            _set_ci(row, "acc_drop", intervals.paired_difference_ci(fp_common, q_common, resamples))
        if scheme.analysis:
            row.update(scheme.analysis)
        rows.append(row)
    return rows


def columns_for(rows: list[dict[str, Any]]) -> list[str]:
    """The table's column order: fixed columns with the task columns (sorted) in their places."""
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    fp_tasks = sorted(k for k in keys if k.startswith("fp_acc_") and k != "fp_acc_avg")
    tasks = sorted(k for k in keys if k.startswith("acc_") and k not in ("acc_avg", "acc_drop", "acc_metric"))
    return HEAD_COLUMNS + fp_tasks + MID_COLUMNS + tasks + TAIL_COLUMNS


def task_names(rows: list[dict[str, Any]], prefix: str = "fp_acc_") -> list[str]:
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    skip = {"avg", "drop", "metric"}
    return sorted(
        k[len(prefix) :] for k in keys if k.startswith(prefix) and k[len(prefix) :] not in skip
    )


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(value) else repr(float(value))  # shortest exact round trip
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def write_rows_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows (dicts) as CSV with the given columns; None and non-finite floats as empty cells."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(c)) for c in columns])


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """The results table (columns_for(rows) order)."""
    write_rows_csv(path, rows, columns_for(rows))


def _parse(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in STRING_COLUMNS:
        return text
    try:
        value = float(text)
    except ValueError:
        return text
    if column in INT_COLUMNS and value.is_integer():
        return int(value)
    return value


class TableError(Exception):
    """A CSV that is not a quopt_post table."""


def read_rows_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Any CSV written here (table, correlations, fits): (columns, rows), numbers parsed, empty -> None."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [{k: _parse(k, v or "") for k, v in row.items() if k is not None} for row in reader]
        return list(reader.fieldnames or []), rows


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The results table written by `collect`."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file (write it with: python -m quopt_post collect RUNS_DIR --out {path})")
    columns, rows = read_rows_csv(path)
    if "scheme" not in columns:
        raise TableError(
            f"{path}: not a quopt_post table (no 'scheme' column); "
            "write one with: python -m quopt_post collect RUNS_DIR --out TABLE.csv"
        )
    return rows


def column(rows: list[dict[str, Any]], name: str) -> np.ndarray:
    """A numeric column as float array, missing values as NaN."""
    out = np.full(len(rows), np.nan)
    for i, r in enumerate(rows):
        v = r.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
    return out
