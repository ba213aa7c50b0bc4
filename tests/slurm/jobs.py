#!/usr/bin/env python3
"""Job states of the test cluster, from `scontrol show job -o` (no accounting database needed: the
cluster keeps finished jobs for MinJobAge seconds).

  jobs.py table ID...              one line per job or array element:
                                   JOBID NAME STATE REASON EXITCODE RESTARTS
                                   (array elements as ARRAYID_INDEX; pending ones not yet split off
                                   as ARRAYID_[RANGE])
  jobs.py wait --timeout S ID...   wait until every job is in a final state, print the table; exit 1
                                   (with the table) when S seconds pass first
"""

import argparse
import subprocess
import sys
import time

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE"}


def records(job_id):
    """The records scontrol prints for JOB_ID (all elements for an array id)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"scontrol show job {job_id} failed: {out.stderr.strip()}")
    recs = []
    for line in out.stdout.splitlines():
        fields = {}
        for tok in line.split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                fields.setdefault(k, v)
        if "JobId" in fields:
            recs.append(fields)
    return recs


def label(r):
    if "ArrayJobId" in r and "ArrayTaskId" in r:
        task = r["ArrayTaskId"]
        return f"{r['ArrayJobId']}_{task}" if task.isdigit() else f"{r['ArrayJobId']}_[{task}]"
    return r["JobId"]


def table(ids):
    rows = []
    for i in ids:
        for r in records(i):
            rows.append((label(r), r.get("JobName", "?"), r.get("JobState", "?"), r.get("Reason", "?"),
                         r.get("ExitCode", "?"), r.get("Restarts", "?")))
    rows.sort(key=lambda row: [(0, int(x), "") if x.isdigit() else (1, 0, x)
                               for x in row[0].replace("_", " ").replace("[", " ").split()])
    return rows


def show(rows, stream=sys.stdout):
    for row in rows:
        print(" ".join(row), file=stream)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["table", "wait"])
    ap.add_argument("ids", nargs="+")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    if a.cmd == "table":
        show(table(a.ids))
        return 0
    deadline = time.time() + a.timeout
    while True:
        rows = table(a.ids)
        if rows and all(r[2] in FINAL for r in rows):
            show(rows)
            return 0
        if time.time() > deadline:
            print(f"jobs {' '.join(a.ids)} not finished after {a.timeout:.0f} s:", file=sys.stderr)
            show(rows, sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
