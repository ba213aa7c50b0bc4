#!/usr/bin/env bash
# Ranks that disagree or stall never hang a job: two ranks started with different configs stop at once
# with one error naming the ranks and the key; a rank stopped with SIGSTOP ends the job within the
# collective timeout, with a message saying which phase stalled; SIGUSR1 to mpirun checkpoints every
# rank and mpirun exits 75 (docs/reliability.md).
. "$(dirname "$0")/common.sh"
W=$(mktemp -d); JOB=""
trap '[ -n "$JOB" ] && kill -9 $JOB 2>/dev/null; rm -rf "$W"' EXIT
cd "$DATA"

# Two ranks, two optimizers (an MPMD launch): an error before anything is written, not a hang.
set +e
timeout 120 "${MPIRUN[@]}" -np 1 "$QUOPT" train run.toml --out "$W/a" : \
  -np 1 "$QUOPT" train run.toml --out "$W/a" --set optimizer.name=muon > "$W/mpmd.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$W/mpmd.log"; fail "mismatched ranks: exit status $rc"; }
grep -qF 'rank 0 and rank 1 were started with different commands or configs (first difference, rank 0 vs rank 1: config key optimizer.name = "adamw" vs "muon")' "$W/mpmd.log" ||
  { cat "$W/mpmd.log"; fail "the disagreement is not named"; }
[ ! -e "$W/a/metrics.jsonl" ] || fail "mismatched ranks wrote metrics"

# SIGSTOP one rank of a long run with parallel.collective_timeout = 3: the job ends by itself.
"${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml --out "$W/stall" --set train.steps=100000 \
  --set parallel.collective_timeout=3 > "$W/stall.log" 2>&1 &
JOB=$!
for _ in $(seq 600); do grep -q '"step":3,' "$W/stall/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
ranks=$(pgrep -f -- "--out $W/stall" | while read -r p; do [ "$(ps -o comm= -p "$p")" = quopt ] && echo "$p"; done)
[ "$(echo "$ranks" | wc -w)" -eq 2 ] || fail "expected 2 quopt ranks, found: $ranks"
kill -STOP "$(echo "$ranks" | tail -n 1)"
t0=$(date +%s)
for _ in $(seq 600); do kill -0 $JOB 2>/dev/null || break; sleep 0.1; done
elapsed=$(( $(date +%s) - t0 ))
if kill -0 $JOB 2>/dev/null; then  # still hanging after a minute: what happens without the timeout
  for p in $ranks; do kill -9 "$p" 2>/dev/null || true; done
  fail "the stalled job was still hanging after $elapsed s (parallel.collective_timeout = 3)"
fi
set +e
wait $JOB
rc=$?
set -e
JOB=""
[ "$rc" -ne 0 ] || fail "the stalled job exited 0"
grep -q "has not finished after [0-9]* s (parallel.collective_timeout = 3)" "$W/stall.log" ||
  { cat "$W/stall.log"; fail "no collective-timeout message"; }
for p in $ranks; do  # mpirun killed the stopped rank too (give the kernel a moment to reap it)
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$p" 2>/dev/null || { kill -9 "$p"; fail "rank $p outlived the job"; }
done

# SIGUSR1 to mpirun: forwarded to every rank, each checkpoints; mpirun exits 75.
"${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml --out "$W/usr1" --set train.steps=100000 > "$W/usr1.log" 2>&1 &
JOB=$!
for _ in $(seq 600); do grep -q '"step":2,' "$W/usr1/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
kill -USR1 $JOB
set +e
wait $JOB
rc=$?
set -e
JOB=""
[ "$rc" -eq 75 ] || { cat "$W/usr1.log"; fail "SIGUSR1 to mpirun: exit status $rc, expected 75"; }
grep -q "stopped on a signal after step" "$W/usr1.log" || fail "no stop message"
ls "$W"/usr1/checkpoints/step-*.h5 > /dev/null || fail "no checkpoint after SIGUSR1"
echo "ranks: OK"
