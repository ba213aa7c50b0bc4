"""`collect`: scan a directory tree for run files and build the tidy table."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import intervals, selection
from .runfile import NotARunFile, RunData, UnreadableRunFile, find_run_files, read_run
from .table import FP_SCHEME, rows_for_run


@dataclass
class Collected:
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: list[RunData] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one message per file that could not be used
    warnings: list[str] = field(default_factory=list)


def collect(
    runs_dir: str | Path,
    acc_metric: str = "acc_norm",
    quiet: bool = False,
    resamples: int = intervals.DEFAULT_RESAMPLES,
) -> Collected:
    """Read every run.h5 below runs_dir. Bad files are reported on stderr (unless quiet) and skipped.

    acc_metric: which task accuracy fills the accuracy columns; acc_norm (lm-evaluation-harness's
    length-normalized accuracy) as the paper reports (arXiv 2509.23500). resamples: bootstrap resamples
    of the confidence intervals (0: none).
    """
    runs_dir = Path(runs_dir)
    result = Collected()
    if not runs_dir.exists():
        result.skipped.append(f"{runs_dir}: no such file or directory")
    files = find_run_files(runs_dir) if runs_dir.exists() else []
    base = runs_dir.parent if runs_dir.is_file() else runs_dir
    for path in files:
        try:
            run = read_run(path)
        except (NotARunFile, UnreadableRunFile) as exc:
            result.skipped.append(f"skipped {exc}")
            continue
        if run.config_error:
            result.warnings.append(f"warning: {run.config_error}; optimizer, lr and qat left empty")
        result.runs.append(run)
        result.rows.extend(rows_for_run(run, base, acc_metric, resamples))
    selection.annotate(result.rows, FP_SCHEME)
    for run in result.runs:  # the study's own record (/study) should agree with the rule applied here
        recorded = run.study.get("selected")
        row = next((r for r in result.rows if r["run_file"] == str(run.path.resolve()) and r["scheme"] == FP_SCHEME), None)
        if recorded is not None and row is not None and row.get("selected") is not None and int(recorded) != row["selected"]:
            result.warnings.append(
                f"warning: {run.path}: the study recorded selected = {int(recorded)}, but among the runs found "
                f"here it is {row['selected']} (runs of another study in the same directory, or a run missing?)"
            )
    if not quiet:
        log = sys.stderr
        for msg in result.skipped + result.warnings:
            print(f"quopt_post collect: {msg}", file=log)
        if not files and runs_dir.exists():
            print(f"quopt_post collect: no {runs_dir}/**/run.h5 found", file=log)
    return result
