#!/usr/bin/env bash
# The main job on the embedded default: the mini study (inputs/study/mini.toml). Installs what is
# missing, builds the cpu preset, builds the default corpus (Debian packages) and its 512-piece
# tokenizer, trains three small OLMo2 sizes with each of the six optimizers at three learning rates to
# 20 tokens per parameter, quantizes the best run of each (size, optimizer) at the size's common loss
# (RTN W4A4 and W3A3), evaluates and analyses them (MMR, kurtosis, ABC and R_L), writes the report and
# prints its headline (scripts/run-study.sh: QUOPT_JOBS single-threaded processes at once, default the
# number of cores). Re-running it skips every stage that is already complete. Prints the wall and CPU
# seconds of each stage.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_deps
build_preset cpu quopt
QUOPT=build/cpu/quopt
STUDY=inputs/study/mini.toml
DATA=inputs/data/bpe512.toml
export QUOPT

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

timed "the study $STUDY: train, PTQ, analysis, report" scripts/run-study.sh "$STUDY"
