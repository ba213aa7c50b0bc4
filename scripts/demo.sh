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
python3 - "$OUT" <<'PY'
import glob, json, sys
print("\nvalidation loss, first -> last step, and each run file:")
for run in sorted(glob.glob(f"{sys.argv[1]}/*/metrics.jsonl")):
    val = [(r["step"], r["val_loss"]) for r in map(json.loads, open(run)) if r.get("val_loss") is not None]
    d = run.rsplit("/", 1)[0]
    print(f"  {val[0][1]:.3f} (step {val[0][0]}) -> {val[-1][1]:.3f} (step {val[-1][0]})   {d}/run.h5")
PY
echo
echo "report: $OUT/report/report.md (figures beside it in $OUT/report/)"
