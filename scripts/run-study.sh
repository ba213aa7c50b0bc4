#!/usr/bin/env bash
# Runs a study on this machine, several single-threaded processes at once, then its report:
#
#   scripts/run-study.sh STUDY.toml [REPORT_DIR]
#
# The stages go one after the other (every run trains before any is quantized: the PTQ stage compares
# the runs of a size), each over all runs of the plan with QUOPT_JOBS processes at a time (default: the
# number of cores), largest runs first; each run's output goes to <out_dir>/logs/<stage>-<index>.log.
# Prints the wall and CPU time of each stage. Done stages are skipped, so it continues an interrupted
# study. The study's data must exist (for the studies in inputs/study/: inputs/data/build-corpus.sh,
# then quopt tokenize inputs/data/bpe512.toml; scripts/demo.sh does both). The binary is $QUOPT
# (default build/cpu/quopt). On a Slurm cluster use jobs/submit-study.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2; }
STUDY=$1
QUOPT=${QUOPT:-build/cpu/quopt}
JOBS=${QUOPT_JOBS:-$(nproc)}
[ -f "$STUDY" ] || { echo "run-study.sh: no study file $STUDY" >&2; exit 2; }
[ -x "$QUOPT" ] || { echo "run-study.sh: no quopt binary at $QUOPT (build it: cmake --preset cpu && cmake --build build/cpu --target quopt, or set QUOPT)" >&2; exit 2; }
# One core per process: the CPU studies' models are too small for BLAS threads to pay (2 OpenBLAS
# threads made a training run slower than 1), and the runs themselves fill the cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

N=$("$QUOPT" study plan "$STUDY" --count | tr -d '[:space:]')
OUT=$(dirname "$("$QUOPT" study plan "$STUDY" | awk -F '\t' '$1 == 0 {print $2}')")
REPORT=${2:-$OUT/report}
mkdir -p "$OUT/logs"

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
TIMEFORMAT="    %R s wall, %U s user + %S s system CPU"

stage() {  # stage STAGE: that stage of every run, JOBS at a time, the last index (largest size) first
  seq $((N - 1)) -1 0 | xargs -P "$JOBS" -I{} sh -c '
    if "$0" study run "$1" --index {} --stage "$2" > "$3/logs/$2-{}.log" 2>&1; then
      grep -h "^study: run" "$3/logs/$2-{}.log" | head -n 1
    else
      echo "run {}: $2 failed; the end of $3/logs/$2-{}.log:" >&2; tail -n 20 "$3/logs/$2-{}.log" >&2; exit 255
    fi' "$QUOPT" "$STUDY" "$1" "$OUT"
}
log "training: $N runs of $STUDY, $JOBS at a time (done runs are skipped)"
time stage train
log "PTQ: the best lr of each (size, optimizer), at the protocol's step; evaluation"
time stage ptq
log "analysis: outlier metrics, ABC decomposition, R_L"
time stage analyze
log "report (postprocess/): tables, sweeps, intervals, correlations, figures"
time PYTHONPATH=postprocess python3 -m quopt_post report "$OUT" --out "$REPORT"
echo
echo "report: $REPORT/report.md (figures beside it); per-run logs: $OUT/logs/"
