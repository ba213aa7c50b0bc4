#!/usr/bin/env bash
# Checkpoint and resume: SIGKILL at random points (during steps and checkpoint writes) followed by
# `--resume auto` ends with losses bitwise equal to an uninterrupted run; SIGTERM checkpoints and exits
# 75; a truncated newest checkpoint is reported and skipped; a checkpoint written at np=1 resumes at
# np=2 (resharded) and np=2 (pp=2).
. "$(dirname "$0")/common.sh"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$DATA"
SET=(--set train.steps=40 --set train.batch_size=32 --set train.micro_batch_size=8 --set checkpoint.every=2
     --set checkpoint.keep=3)
t0=$(date +%s.%N)
"$QUOPT" train run.toml "${SET[@]}" --out "$W/ref" > "$W/ref.log"
# Two steps' time (a step and a checkpoint write) of the uninterrupted run, at most 0.3 s: the kill delay
# must stay below the time the last attempt (5 steps from its target to the end) has left.
window_ms=$(python3 -c "print(max(10, min(300, int(2000 * ($(date +%s.%N) - $t0) / 40))))")

# SIGKILL at random moments, then resume until done. Each attempt is killed a random 0-window_ms after
# it has logged a target step (increasing targets, so every attempt is interrupted mid-run, in a step or
# in one of the checkpoint writes every 2 steps).
K="$W/killed"
RANDOM=4242
kills=0
last_step() { python3 -c "
import json, sys
try: print(max(json.loads(l)['step'] for l in open(sys.argv[1])))
except Exception: print(-1)" "$K/metrics.jsonl"; }
for target in 5 11 17 23 29 35; do
  "$QUOPT" train run.toml "${SET[@]}" --out "$K" --resume auto > "$W/kill$target.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ "$(last_step)" -ge "$target" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$(python3 -c "print(($RANDOM % $window_ms) / 1000)")"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
done
echo "killed $kills times ($(ls "$K"/checkpoints/*.tmp 2>/dev/null | wc -l) interrupted checkpoint write(s) left behind as .tmp)"
[ "$kills" -ge 5 ] || fail "only $kills of 6 runs were still running when killed; the test did not interrupt enough"
"$QUOPT" train run.toml "${SET[@]}" --out "$K" --resume auto > "$W/kill-final.log"
grep -q "resumed from" "$W/kill-final.log" || fail "the final run did not resume from a checkpoint"
compare_losses "$W/ref" "$K" 0

# SIGTERM (what Slurm's --signal sends): checkpoint at the end of the step, exit 75, resume bitwise.
S="$W/sigterm"
"$QUOPT" train run.toml "${SET[@]}" --set checkpoint.every=0 --out "$S" > "$W/term.log" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q '"step":2,' "$S/metrics.jsonl" 2>/dev/null && break; sleep 0.02; done
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" -eq 75 ] || { cat "$W/term.log"; fail "SIGTERM exit status $rc, expected 75"; }
grep -q "stopped on a signal" "$W/term.log" || fail "no message after SIGTERM"
ls "$S"/checkpoints/step-*.h5 > /dev/null || fail "no checkpoint after SIGTERM"
"$QUOPT" train run.toml "${SET[@]}" --set checkpoint.every=0 --out "$S" --resume auto > "$W/term2.log"
compare_losses "$W/ref" "$S" 0

# A truncated newest checkpoint is reported and skipped in favour of the previous one.
C="$W/corrupt"
mkdir -p "$C/checkpoints"
cp "$W/ref/checkpoints/step-00000036.h5" "$W/ref/checkpoints/step-00000038.h5" "$C/checkpoints/"
python3 "$SRC/tests/parallel/metrics_upto.py" "$W/ref/metrics.jsonl" 38 > "$C/metrics.jsonl"
f="$C/checkpoints/step-00000038.h5"
truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
"$QUOPT" train run.toml "${SET[@]}" --out "$C" --resume auto > "$W/corrupt.log" 2>&1
grep -q "skipping checkpoint .*step-00000038.h5" "$W/corrupt.log" || { cat "$W/corrupt.log"; fail "truncated checkpoint not reported"; }
grep -q "resumed from .*step-00000036.h5" "$W/corrupt.log" || fail "did not fall back to the previous checkpoint"
compare_losses "$W/ref" "$C" 0

# Resharding: a checkpoint from np=1 continues on 2 ranks (data parallel, and pipeline).
for mode in dp2 pp2; do
  R="$W/reshard-$mode"
  mkdir -p "$R/checkpoints"
  cp "$W/ref/checkpoints/step-00000036.h5" "$R/checkpoints/"
  python3 "$SRC/tests/parallel/metrics_upto.py" "$W/ref/metrics.jsonl" 36 > "$R/metrics.jsonl"
  extra=()
  [ "$mode" = pp2 ] && extra=(--set parallel.pipeline_stages=2)
  "${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml "${SET[@]}" "${extra[@]}" --out "$R" --resume auto > "$W/$mode.log"
  grep -q "resumed from" "$W/$mode.log" || fail "$mode did not resume"
  compare_losses "$W/ref" "$R" 1e-5
done
echo "resume: OK"
