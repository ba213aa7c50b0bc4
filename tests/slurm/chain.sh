#!/usr/bin/env bash
# The tiny study submitted with jobs/submit-study.sh: training array -> PTQ array (afterok: the selection
# compares all trained runs) -> analysis array (aftercorr) -> report (afterok). Every job and element
# ends COMPLETED, the selected run's run.h5 has its quant/<scheme> and analysis/<scheme> groups at the
# step its /study record names, the other run only its /study record, and the report exists.
# Usage (through cluster.sh): chain.sh QUOPT_BINARY SOURCE_DIR
. "$(dirname "$0")/study_common.sh" "$@"
write_study "$W"
cd "$W"
plan=$("$QUOPT" study plan study.toml)
echo "$plan"
n=$(echo "$plan" | grep -c $'^[0-9]\+\t')
[ "$n" -eq 2 ] || fail "the tiny study should have 2 runs, the plan lists $n"

submit_study --throttle 2 study.toml
table=$(wait_jobs 420 "$TRAIN" "$PTQ" "$ANALYZE" "$REPORT") || fail "the chain did not finish in 420 s"
echo "$table"
[ "$(echo "$table" | wc -l)" -eq $((3 * n + 1)) ] || fail "expected $((3 * n + 1)) jobs and elements"
bad=$(echo "$table" | awk '$3 != "COMPLETED"')
[ -z "$bad" ] || {
  tail -n 30 "$W"/study/slurm-logs/*.out >&2 || true
  fail "not COMPLETED: $bad"
}
note "all $((3 * n + 1)) jobs and elements COMPLETED"

# Order: each element started after its counterpart of the previous stage ended, the report last.
python3 - "$TRAIN" "$PTQ" "$ANALYZE" "$REPORT" << 'PY'
import subprocess, sys
from datetime import datetime
def times(job):
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=True).stdout
    t = {}
    for line in out.splitlines():
        f = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        key = f.get("ArrayTaskId", "-")
        t[key] = (datetime.fromisoformat(f["StartTime"]), datetime.fromisoformat(f["EndTime"]))
    return t
train, ptq, analyze, report = (times(j) for j in sys.argv[1:])
trained = max(e for _, e in train.values())
for i in train:
    assert ptq[i][0] >= trained, f"ptq {i} started before every training element ended"
    assert analyze[i][0] >= ptq[i][1], f"analyze {i} started before ptq {i} ended"
last = max(e for _, e in list(train.values()) + list(analyze.values()))
assert report["-"][0] >= last, "the report started before every element ended"
print("dependency order respected (Slurm start/end times, 1 s resolution)")
PY

python3 - "$SCHEME" $(echo "$plan" | grep $'^[0-9]\+\t' | cut -f2) << 'PY'
import sys
import h5py
scheme, dirs = sys.argv[1], sys.argv[2:]
chosen = []
for d in dirs:
    with h5py.File(f"{d}/run.h5", "r") as f:
        st = f["study"].attrs
        if int(st["selected"]):
            chosen.append(d)
            for g in (f"quant/{scheme}", f"analysis/{scheme}", "eval"):
                assert int(f[g].attrs["step"]) == int(st["ptq_step"]), (d, g)
        else:
            assert "quant" not in f and "analysis" not in f, f"{d}: not selected but quantized"
assert len(chosen) == 1, f"one of the two learning rates should be selected: {chosen}"
print(f"selected {chosen[0]}; the other run recorded selected = 0")
PY
note "the selected run.h5 has quant/$SCHEME/ and analysis/$SCHEME/ at its /study step, the other only /study"
[ -d "$REPORT_DIR" ] && [ -n "$(ls -A "$REPORT_DIR")" ] || fail "no report in $REPORT_DIR"
note "report: $(ls "$REPORT_DIR" | tr '\n' ' ')"

# Submitting again is harmless: every stage is complete, so every element skips its work.
submit_study study.toml > /dev/null
table=$(wait_jobs 300 "$TRAIN" "$PTQ" "$ANALYZE" "$REPORT") || fail "the resubmitted chain did not finish"
[ -z "$(echo "$table" | awk '$3 != "COMPLETED"')" ] || fail "resubmission: $table"
grep -q "already complete, skipped" "$W"/study/slurm-logs/*-"$TRAIN"_0.out || fail "the resubmitted train element did not skip"
note "chain: OK"
