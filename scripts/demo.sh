#!/usr/bin/env bash
# The main job on the embedded default: the mini study (inputs/study/mini.toml). Installs what is
# missing, builds the cpu preset, builds the default corpus (Debian packages) and its 512-piece
# tokenizer, trains three small OLMo2 sizes with each of the six optimizers at three learning rates to
# 20 tokens per parameter, quantizes the best run of each (size, optimizer) at the size's common loss
# (RTN W4A4 and W3A3), evaluates and analyses them (MMR, kurtosis, ABC and R_L), writes the report and
# prints its headline. Runs QUOPT_JOBS (default: the number of cores) single-threaded processes at once.
# Re-running it skips every stage that is already complete. Prints the wall and CPU seconds of each stage.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_deps
build_preset cpu quopt
QUOPT=build/cpu/quopt
STUDY=inputs/study/mini.toml
DATA=inputs/data/bpe512.toml
OUT=runs/mini
JOBS=${QUOPT_JOBS:-$(nproc)}
# One core per process: the models are too small for BLAS threads to pay (measured: 2 OpenBLAS threads
# made one training run slower than 1), and the runs themselves fill the cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

TIMEFORMAT="    %R s wall, %U s user + %S s system CPU"
timed() {  # timed LABEL COMMAND...: runs it, then prints its wall and CPU time (children included)
  local label=$1
  shift
  log "$label"
  time "$@"
}

corpus() { inputs/data/build-corpus.sh data/corpus; }
timed "building the default corpus (inputs/data/build-corpus.sh)" corpus

tokens() {
  if [ -s data/tokens512/train.bin ] && [ -s data/tokens512/val.bin ] && [ data/tokens512/train.bin -nt data/corpus/.stamp ]; then
    echo "tokenizer and shards are up to date (data/tokens512)"
  else
    "$QUOPT" tokenize "$DATA"
  fi
}
timed "training the 512-piece tokenizer and writing token shards ($DATA)" tokens

# stage STAGE: that stage of every run, JOBS at a time, largest runs first (the plan lists sizes in
# ascending order); each run's output goes to $OUT/logs/<stage>-<index>.log.
stage() {
  local st=$1 n
  n=$("$QUOPT" study plan "$STUDY" --count | tr -d '[:space:]')
  mkdir -p "$OUT/logs"
  seq $((n - 1)) -1 0 | xargs -P "$JOBS" -I{} sh -c '
    if "$0" study run "$1" --index {} --stage "$2" > "$3/logs/$2-{}.log" 2>&1; then
      grep -h "^study: run" "$3/logs/$2-{}.log" | head -n 1
    else
      echo "run {}: $2 failed; the end of $3/logs/$2-{}.log:" >&2; tail -n 20 "$3/logs/$2-{}.log" >&2; exit 255
    fi' "$QUOPT" "$STUDY" "$st" "$OUT"
}
N=$("$QUOPT" study plan "$STUDY" --count | tr -d '[:space:]')
timed "training: $N runs, $JOBS at a time (done runs are skipped)" stage train
timed "PTQ: the best lr of each (size, optimizer), at the size's common loss; evaluation" stage ptq
timed "analysis: outlier metrics, ABC decomposition, R_L" stage analyze

report() {
  PYTHONPATH=postprocess python3 -m quopt_post report "$OUT" --out "$OUT/report"
}
timed "report (postprocess/): tables, sweeps, intervals, correlations, figures" report
echo
echo "report: $OUT/report/report.md (figures beside it in $OUT/report/); per-run logs: $OUT/logs/"
