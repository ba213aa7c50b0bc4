#!/usr/bin/env bash
# The main job on the embedded default: the mini study (inputs/study/mini.toml). Installs what is
# missing, builds the cpu preset, builds the default corpus (Debian packages) and its tokenizer, trains
# three tiny OLMo2 sizes with each of the six optimizers, quantizes every model (RTN W4A4 and GPTQ W4),
# analyses the damage (outlier metrics, ABC decomposition), and writes the report. Prints the report's
# path and its headline table. Re-running it skips every stage that is already complete.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_deps
build_preset cpu quopt
QUOPT=build/cpu/quopt
STUDY=inputs/study/mini.toml
OUT=runs/mini

log "building the default corpus (inputs/data/build-corpus.sh)"
inputs/data/build-corpus.sh data/corpus

if [ -s data/tokens/train.bin ] && [ -s data/tokens/val.bin ] && [ data/tokens/train.bin -nt data/corpus/.stamp ]; then
  log "tokenizer and shards are up to date (data/tokens)"
else
  log "training the tokenizer and writing token shards"
  "$QUOPT" tokenize inputs/runs/study-base.toml
fi

log "running the study $STUDY ($("$QUOPT" study plan "$STUDY" --count) runs: train, ptq, analyze; done stages are skipped)"
"$QUOPT" study run "$STUDY"

log "postprocessing: tables, correlations, fits, figures"
PYTHONPATH=postprocess python3 -m quopt_post report "$OUT" --out "$OUT/report"
echo
echo "report: $OUT/report/report.md (figures beside it in $OUT/report/)"
