#!/usr/bin/env bash
# cluster.sh cleans up after itself: a job and an interactive step still running when the test command
# ends are cancelled, and munged, slurmctld, slurmd and every job process are gone afterwards; the
# command's exit status comes back (124 when it runs past --timeout). Usage: harness.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
if ! command -v slurmctld > /dev/null 2>&1 || ! command -v munged > /dev/null 2>&1; then
  echo "SKIP: slurmctld or munged not installed (apt-get install slurm-wlm munge)"
  exit 77
fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT

t0=$(date +%s)
"$HERE/cluster.sh" run --keep -- bash -c '
  set -e
  sbatch --parsable --output=/dev/null --wrap "sleep 300" > "$QUOPT_SLURM_DIR/batch-job"
  srun --output=/dev/null sleep 300 &
  for i in $(seq 60); do
    [ "$(squeue -h -t RUNNING | wc -l)" -ge 2 ] && break
    sleep 0.5
  done
  squeue
  [ "$(squeue -h -t RUNNING | wc -l)" -ge 2 ]' 2> "$err" || {
  cat "$err" >&2
  fail "could not start a batch job and an srun step on the test cluster"
}
cat "$err"
dir=$(sed -n 's/^\[cluster\] kept //p' "$err")
[ -d "$dir" ] || fail "cluster.sh did not report its directory"
echo "started and stopped a cluster with 2 running jobs in $(($(date +%s) - t0)) s"
for d in munged slurmctld slurmd; do
  pid=$(cat "$dir/$d.child")
  if kill -0 "$pid" 2> /dev/null; then fail "$d (pid $pid) still runs"; fi
done
left=""
for p in /proc/[0-9]*; do
  if { tr '\0' '\n' < "$p/environ"; } 2> /dev/null | grep -qxF "SLURM_CONF=$dir/slurm.conf"; then
    left+=" ${p#/proc/}($(cat "$p/comm" 2> /dev/null))"
  fi
done
[ -z "$left" ] || fail "processes of the test cluster still run:$left"
rm -rf "$dir"
echo "daemons and job processes all gone"

set +e
"$HERE/cluster.sh" run -- bash -c 'exit 7' 2> /dev/null
rc=$?
[ "$rc" -eq 7 ] || fail "the command's exit status 7 came back as $rc"
"$HERE/cluster.sh" run --timeout 3 -- sleep 60 2> /dev/null
rc=$?
[ "$rc" -eq 124 ] || fail "a command past --timeout gave $rc, expected 124"
set -e
echo "exit statuses pass through (7, and 124 on timeout)"
echo "harness: OK"
