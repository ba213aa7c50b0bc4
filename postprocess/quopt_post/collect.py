"""`collect`: scan a directory tree for run files and build the tidy table."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runfile import NotARunFile, RunData, UnreadableRunFile, find_run_files, read_run
from .table import rows_for_run


@dataclass
class Collected:
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: list[RunData] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one message per file that could not be used
    warnings: list[str] = field(default_factory=list)


def collect(runs_dir: str | Path, acc_metric: str = "acc", quiet: bool = False) -> Collected:
    """Read every run.h5 below runs_dir. Bad files are reported on stderr (unless quiet) and skipped."""
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
        result.rows.extend(rows_for_run(run, base, acc_metric))
    if not quiet:
        log = sys.stderr
        for msg in result.skipped + result.warnings:
            print(f"quopt_post collect: {msg}", file=log)
        if not files and runs_dir.exists():
            print(f"quopt_post collect: no {runs_dir}/**/run.h5 found", file=log)
    return result
