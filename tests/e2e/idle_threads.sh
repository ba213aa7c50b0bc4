#!/usr/bin/env bash
# quopt starts libgomp and OpenBLAS with passive idle threads (OMP_WAIT_POLICY=passive,
# OPENBLAS_THREAD_TIMEOUT=4) unless the user chose them or runs one thread (app/idle_threads.hpp): it
# re-executes itself, also as an MPI rank. `quopt bench` prints what the libraries were started with.
# usage: idle_threads.sh QUOPT SOURCE_DIR [MPIEXEC FLAGS...]
set -euo pipefail
quopt=$1 src=$2
shift 2
model=$src/inputs/models/olmo2-tiny.toml
settings() {  # what quopt reports, run with the given environment changes
  env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT -u OPENBLAS_NUM_THREADS "$@" "$quopt" bench "$model" \
    --steps 1 --warmup 0 2>&1 | sed -n 's/^host loops: .*thread(s); //p'
}
check() {  # expected actual what
  if [ "$2" != "$1" ]; then echo "FAIL: $3: expected '$1', got '$2'"; exit 1; fi
  echo "ok: $3: $2"
}
passive="OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4"
check "$passive" "$(settings OMP_NUM_THREADS=2)" "unset, 2 threads"
check "$passive" "$(settings -u OMP_NUM_THREADS)" "unset, threads chosen by quopt"
check "$passive" "$(settings OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2)" "unset, 2 OpenBLAS threads"
check "OMP_WAIT_POLICY=active, OPENBLAS_THREAD_TIMEOUT=4" \
  "$(settings OMP_NUM_THREADS=2 OMP_WAIT_POLICY=active)" "the user's OMP_WAIT_POLICY is kept"
check "OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=28" \
  "$(settings OMP_NUM_THREADS=2 OPENBLAS_THREAD_TIMEOUT=28)" "the user's OPENBLAS_THREAD_TIMEOUT is kept"
check "OMP_WAIT_POLICY=unset, OPENBLAS_THREAD_TIMEOUT=unset" "$(settings OMP_NUM_THREADS=1)" \
  "one thread: no re-execution"
if [ $# -gt 0 ]; then
  out=$(env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT OMP_NUM_THREADS=1 "$@" -x OMP_NUM_THREADS=2 \
    "$quopt" bench "$model" --steps 1 --warmup 0 2>&1) ||
    { echo "$out"; echo "FAIL: quopt under mpiexec after re-execution"; exit 1; }
  check "$passive" "$(sed -n 's/^host loops: .*thread(s); //p' <<<"$out")" "2 MPI ranks"
fi
