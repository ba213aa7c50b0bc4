"""Command line: python -m quopt_post {collect, correlate, fit, report} ...

Exit status: 0 on success (also when some data is missing: what is missing is printed), 1 when the
input cannot be used at all (no run file could be read, not a table, unknown scheme), 2 for a usage
error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, intervals, scaling, stats
from .collect import collect
from .report import ReportError, make_report
from .table import ACC_METRICS, TableError, read_csv, write_csv, write_rows_csv


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m quopt_post",
        description="Postprocess quopt run files (run.h5): tables, correlations, scaling-law fits, report.",
    )
    p.add_argument("--version", action="version", version=f"quopt_post {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("collect", help="scan RUNS_DIR for run.h5 files and write the tidy table (CSV)")
    c.add_argument("runs_dir", metavar="RUNS_DIR", help="directory searched recursively for run.h5 (or one run.h5)")
    c.add_argument("--out", required=True, metavar="TABLE.csv")
    c.add_argument("--acc-metric", choices=ACC_METRICS, default="acc_norm",
                   help="task attribute used for the accuracy columns (default: acc_norm, as the paper)")
    c.add_argument("--resamples", type=int, default=intervals.DEFAULT_RESAMPLES,
                   help=f"bootstrap resamples of the intervals over evaluation items (default: {intervals.DEFAULT_RESAMPLES}; 0: none)")

    r = sub.add_parser("correlate", help="Pearson/Spearman of outlier and error metrics with PTQ degradation")
    r.add_argument("table", metavar="TABLE.csv")
    r.add_argument("--out", required=True, metavar="CORR.csv")
    r.add_argument("--target", choices=list(stats.TARGETS), default="acc_drop",
                   help="degradation measure (default: acc_drop)")
    r.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")

    f = sub.add_parser("fit", help="scaling-law fits with per-optimizer parameter efficiency rho")
    f.add_argument("table", metavar="TABLE.csv")
    f.add_argument("--out", required=True, metavar="FITS.csv")
    f.add_argument("--mode", choices=["both", "shared", "per-optimizer"], default="both",
                   help="shared: one law for all optimizers, rho(reference, fp) = 1; per-optimizer: "
                        "rho_FP = 1 for each optimizer (default: both)")
    f.add_argument("--law", choices=["auto", "n", "nd"], default="auto",
                   help="n: E + A/(rho N)^alpha; nd: + B/D^beta; auto: nd when D/N varies (default)")
    f.add_argument("--reference", default=None,
                   help=f"reference optimizer of the shared fit (default: {scaling.DEFAULT_REFERENCE} if present)")
    f.add_argument("--n-column", choices=["parameters", "non_embedding_parameters"], default="parameters",
                   help="model size N (default: parameters)")
    f.add_argument("--ptq", action="append", default=[], metavar="SCHEME",
                   help="also fit the PTQ loss of SCHEME as group (optimizer, ptq-SCHEME); repeatable")
    f.add_argument("--bootstrap", type=int, default=scaling.DEFAULT_BOOTSTRAP, help="bootstrap resamples (default: 200)")
    f.add_argument("--starts", type=int, default=scaling.DEFAULT_STARTS,
                   help="L-BFGS starts from the best grid points (default: 16)")
    f.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default: 0)")

    g = sub.add_parser("report", help="figures and report.md from RUNS_DIR or a collected table")
    g.add_argument("source", metavar="RUNS_DIR_or_TABLE.csv")
    g.add_argument("--out", required=True, metavar="REPORT_DIR")
    g.add_argument("--scheme", default=None, help="headline PTQ scheme (default: rtn-w4a4 if present)")
    g.add_argument("--target", choices=list(stats.TARGETS), default="acc_drop")
    g.add_argument("--bootstrap", type=int, default=scaling.DEFAULT_BOOTSTRAP)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--acc-metric", choices=ACC_METRICS, default="acc_norm",
                   help="task attribute used for the accuracy columns (default: acc_norm, as the paper)")
    g.add_argument("--resamples", type=int, default=intervals.DEFAULT_RESAMPLES,
                   help="bootstrap resamples of the intervals over evaluation items (default: 2000; 0: none)")
    g.add_argument("--abc-all-sizes", action="store_true",
                   help="ABC profiles for every model size (default: the largest size only)")
    return p


def _err(msg: str) -> int:
    print(f"quopt_post: error: {msg}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "collect":
            got = collect(args.runs_dir, acc_metric=args.acc_metric, resamples=args.resamples)
            if not got.rows:
                return _err(f"no run file could be read under {args.runs_dir}")
            write_csv(got.rows, args.out)
            print(
                f"quopt_post collect: {len(got.runs)} run(s), {len(got.rows)} row(s) -> {args.out}"
                + (f"; {len(got.skipped)} file(s) skipped" if got.skipped else ""),
                file=sys.stderr,
            )
            return 0
        if args.command == "correlate":
            if not 0.0 < args.level < 1.0:
                return _err(f"--level {args.level}: must be in (0, 1)")
            rows = read_csv(args.table)
            corr = stats.correlate_rows(rows, args.target, level=args.level)
            write_rows_csv(args.out, corr, stats.CORR_COLUMNS)
            if not corr:
                print(f"quopt_post correlate: {args.table} has no PTQ rows (scheme other than fp): "
                      f"wrote only the header to {args.out}", file=sys.stderr)
            else:
                print(f"quopt_post correlate: {len(corr)} row(s) -> {args.out}", file=sys.stderr)
            return 0
        if args.command == "fit":
            if args.bootstrap < 0 or args.starts < 1:
                return _err("--bootstrap must be >= 0 and --starts >= 1")
            rows = read_csv(args.table)
            fits, messages = scaling.fit_all(
                rows, mode=args.mode, law=args.law, reference=args.reference, n_column=args.n_column,
                ptq_schemes=tuple(args.ptq), starts=args.starts, bootstrap=args.bootstrap, seed=args.seed,
            )
            for m in messages:
                print(f"quopt_post fit: {m}", file=sys.stderr)
            out_rows = [r for fit in fits for r in scaling.fit_rows(fit)]
            write_rows_csv(args.out, out_rows, scaling.FIT_COLUMNS)
            print(f"quopt_post fit: {len(fits)} fit(s), {len(out_rows)} row(s) -> {args.out}", file=sys.stderr)
            return 0
        if args.command == "report":
            rep = make_report(args.source, args.out, scheme=args.scheme, target=args.target,
                              bootstrap=args.bootstrap, seed=args.seed, acc_metric=args.acc_metric,
                              abc_all_sizes=args.abc_all_sizes, resamples=args.resamples)
            print(rep.headline or "(no headline table: no full-precision runs)")
            if rep.missing:
                print("\nMissing:")
                for m in rep.missing:
                    print(f"- {m}")
            print(f"\nreport: {Path(args.out) / 'report.md'} ({len(rep.figures)} figure(s))")
            return 0
    except (TableError, ReportError, ValueError) as exc:
        return _err(str(exc))
    return _err(f"unknown command {args.command}")
