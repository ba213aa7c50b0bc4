#!/usr/bin/env bash
# quopt starts libgomp with OMP_WAIT_POLICY=passive unless the user chose a policy or runs one thread
# (app/omp_wait_policy.hpp): it re-executes itself, also as an MPI rank. `quopt bench` prints the policy.
# usage: omp_wait_policy.sh QUOPT SOURCE_DIR [MPIEXEC FLAGS...]
set -euo pipefail
quopt=$1 src=$2
shift 2
model=$src/inputs/models/olmo2-tiny.toml
policy() {  # prints the policy quopt reports, run with the given environment changes
  env -u OMP_WAIT_POLICY "$@" "$quopt" bench "$model" --steps 1 --warmup 0 2>&1 |
    sed -n 's/.*OMP_WAIT_POLICY: //p'
}
check() {  # expected actual what
  if [ "$2" != "$1" ]; then echo "FAIL: $3: expected '$1', got '$2'"; exit 1; fi
  echo "ok: $3: $2"
}
check passive "$(policy OMP_NUM_THREADS=2)" "unset, 2 threads"
check passive "$(policy -u OMP_NUM_THREADS)" "unset, threads chosen by quopt"
check active "$(policy OMP_NUM_THREADS=2 OMP_WAIT_POLICY=active)" "the user's choice is kept"
check "default (spinning)" "$(policy OMP_NUM_THREADS=1)" "one thread: no re-execution"
if [ $# -gt 0 ]; then
  out=$(env -u OMP_WAIT_POLICY OMP_NUM_THREADS=1 "$@" -x OMP_NUM_THREADS=2 "$quopt" bench "$model" \
    --steps 1 --warmup 0 2>&1) || { echo "$out"; echo "FAIL: quopt under mpiexec after re-execution"; exit 1; }
  check passive "$(sed -n 's/.*OMP_WAIT_POLICY: //p' <<<"$out")" "2 MPI ranks"
fi
