#!/usr/bin/env bash
# A failing array element: training of run 1 fails (quopt is wrapped so that exactly that element exits
# 3). Its state is FAILED with exit code 3; the PTQ stage needs every run trained (the selection compares
# them), so both PTQ and both analysis elements and the report are CANCELLED with
# Reason=DependencyNeverSatisfied without ever starting; run 0 is trained and not quantized.
# Usage (through cluster.sh): failure.sh QUOPT_BINARY SOURCE_DIR
. "$(dirname "$0")/study_common.sh" "$@"
write_study "$W"
cd "$W"
real=$QUOPT
cat > "$W/quopt-failing" << SH
#!/bin/bash
# quopt, except that training run 1 of a study fails
case " \$* " in
  *" study run "*" --index 1 "*"--stage train"*) echo "injected failure: training of run 1" >&2; exit 3 ;;
esac
exec "$real" "\$@"
SH
chmod +x "$W/quopt-failing"

QUOPT=$W/quopt-failing submit_study study.toml
table=$(wait_jobs 420 "$TRAIN" "$PTQ" "$ANALYZE" "$REPORT") || fail "the chain did not settle in 420 s"
echo "$table"
expect() {  # expect JOB "STATE REASON EXITCODE"
  local got
  got=$(state_of "$table" "$1")
  [ "$got" = "$2" ] || fail "$1: '$got', expected '$2'"
}
expect "${TRAIN}_0" "COMPLETED None 0:0"
expect "${TRAIN}_1" "FAILED NonZeroExitCode 3:0"
# The PTQ array is cancelled before Slurm splits it into elements: one record, "<id>_[0-1%4]".
ptq_rows=$(echo "$table" | awk -v j="$PTQ" 'index($1, j "_") == 1')
[ -n "$ptq_rows" ] || fail "no PTQ job in the table"
[ -z "$(echo "$ptq_rows" | awk '$3 " " $4 " " $5 != "CANCELLED DependencyNeverSatisfied 0:0"')" ] ||
  fail "every PTQ element should be CANCELLED DependencyNeverSatisfied: $ptq_rows"
for j in "${ANALYZE}_0" "${ANALYZE}_1" "$REPORT"; do
  expect "$j" "CANCELLED DependencyNeverSatisfied 0:0"
done
for j in "$PTQ" "${ANALYZE}_0" "${ANALYZE}_1" "$REPORT"; do
  never_started "$j" || fail "$j was started: $(scontrol show job -o "$j")"
done
logs=$W/study/slurm-logs
grep -q "injected failure" "$logs"/*-"$TRAIN"_1.out || fail "the failing element's log lacks its error"
grep -q "the step failed with exit status 3" "$logs"/*-"$TRAIN"_1.out || fail "the job script did not report the failure"
ls "$logs"/*-"$PTQ"_*.out "$logs"/*-"$REPORT".out > /dev/null 2>&1 && fail "a cancelled job wrote a log"
run0=$(cd "$W" && "$QUOPT" study plan study.toml | awk -F '\t' '$1 == 0 {print $2}')
run_h5_has "$run0/run.h5" weights || fail "run 0 was not trained"
run_h5_has "$run0/run.h5" "quant/$SCHEME" && fail "run 0 was quantized although run 1 never trained"
[ ! -e "$REPORT_DIR" ] || fail "a report was written although a run failed"
note "failure: OK"
