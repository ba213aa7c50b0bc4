#!/usr/bin/env bash
# jobs/train.sbatch given a time limit shorter than its run: before the limit Slurm sends SIGUSR1 to the
# batch shell (--signal=B:USR1@10), the script forwards it to the srun step, quopt writes a checkpoint
# and exits 75, the script requeues the job, and the next start resumes with --resume auto. The job ends
# COMPLETED after at least one restart, and its losses are identical to those of the same run trained
# without interruption.
#
# Slurm's time limits are whole minutes and its time-limit signal is sent by a check that runs every
# 30 s when at most warn+30 s are left, so with --time=1 and @10 the signal comes 20 to 50 s into each
# start. The run is sized (from a short calibration run) to need about 70 s of training, which no
# single start can finish. Usage (through cluster.sh): requeue.sh QUOPT_BINARY SOURCE_DIR
. "$(dirname "$0")/common.sh" "$@"

make_data "$W/data"
cd "$W/data"
target_s=${QUOPT_SLURM_REQUEUE_SECONDS:-70}

# Calibration: seconds per step of this run on this machine, from the training time a 100-step run
# records in its metrics.jsonl (start-up excluded).
SET=(--set train.log_every=10 --set train.val_every=200 --set train.val_batches=2)
"$QUOPT" train run.toml "${SET[@]}" --set train.steps=100 --out "$W/calibrate" > "$W/calibrate.log" 2>&1 ||
  {
    cat "$W/calibrate.log"
    fail "calibration run failed"
  }
steps=$(python3 - "$W/calibrate/metrics.jsonl" "$target_s" << 'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
t = max(r["time"] for r in rows if r["step"] == 100)
print(max(200, int(round(float(sys.argv[2]) * 100 / t / 100.0)) * 100))
PY
)
note "calibrated: $steps steps should take about ${target_s} s"
SET+=(--set train.steps="$steps")

# The job: one task, 1-minute limit, SIGUSR1 10 s before it (plus Slurm's up to 30 s latency).
jid=$(sbatch --parsable --job-name=requeue-test --time=1 --signal=B:USR1@10 --output="$W/train-%j.out" \
  "$SRC/jobs/train.sbatch" run.toml "${SET[@]}" --out "$W/slurm-run")
jid=${jid%%;*}
note "submitted job $jid"

# The uninterrupted reference, meanwhile, outside Slurm.
"$QUOPT" train run.toml "${SET[@]}" --out "$W/reference" > "$W/reference.log" 2>&1 || {
  cat "$W/reference.log"
  fail "reference run failed"
}
note "reference run done"

table=$(wait_jobs 480 "$jid") || {
  cat "$W/train-$jid.out" >&2 || true
  fail "job $jid did not finish in 480 s"
}
note "job $jid ended: $table"
log="$W/train-$jid.out"
read -r _ _ state reason exit_code restarts <<< "$table"
[ "$state" = COMPLETED ] || {
  cat "$log"
  fail "job $jid ended $state ($reason, exit $exit_code), expected COMPLETED"
}
[ "$restarts" -ge 1 ] || {
  cat "$log"
  fail "job $jid was never requeued (Restarts=$restarts): the run finished within one time limit;" \
    "raise QUOPT_SLURM_REQUEUE_SECONDS"
}
n_signal=$(grep -c 'SIGUSR1 (time limit near)' "$log" || true)
n_requeue=$(grep -c 'requeueing job' "$log" || true)
n_resume=$(grep -c 'resumed from' "$log" || true)
n_start=$(grep -c 'start #' "$log" || true)
note "log: $n_start starts, $n_signal signals, $n_requeue requeues, $n_resume resumes"
[ "$n_start" -eq $((restarts + 1)) ] || fail "log shows $n_start starts, Slurm counts $((restarts + 1))"
[ "$n_requeue" -eq "$restarts" ] || fail "$n_requeue requeues in the log but Restarts=$restarts"
[ "$n_signal" -ge "$restarts" ] || fail "only $n_signal time-limit signals for $restarts requeues"
[ "$n_resume" -eq "$restarts" ] || {
  cat "$log"
  fail "$n_resume starts resumed from a checkpoint, expected $restarts"
}
# Order within each start: signal forwarded -> quopt checkpoints and stops -> srun ends -> requeue.
# (A requeue before quopt stopped would kill the step and only KillWait's SIGTERM would save the run.)
python3 - "$log" << 'PY'
import re, sys
events = []
for line in open(sys.argv[1], errors="replace"):
    for key, pat in (("start", r"\] job \d+ .*start #"), ("signal", r"SIGUSR1 \(time limit near\)"),
                     ("stopped", r"stopped on a signal"), ("exit75", r"Exited with exit code 75"),
                     ("requeue", r"requeueing job"), ("step-killed", r"STEP \S+ .*CANCELLED")):
        if re.search(pat, line):
            events.append(key)
assert "step-killed" not in events, f"Slurm killed a job step: {events}"
starts = [i for i, e in enumerate(events) if e == "start"] + [len(events)]
for a, b in zip(starts, starts[1:-1]):  # every start but the last ends in a requeue
    seq = [e for e in events[a + 1:b]]
    assert seq == ["signal", "stopped", "exit75", "requeue"], f"start at event {a}: {seq}"
last = events[starts[-2] + 1:]
assert "requeue" not in last and "stopped" not in last, f"the last start did not run to the end: {last}"
print("log order per start: signal -> checkpoint and stop -> srun exit 75 -> requeue")
PY
ls "$W/slurm-run"/checkpoints/step-*.h5 > /dev/null 2>&1 || fail "no checkpoint in $W/slurm-run/checkpoints"
compare_losses "$W/reference" "$W/slurm-run"
note "requeue: OK"
