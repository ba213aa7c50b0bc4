#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds the cpu preset, builds the
# default corpus (Debian packages) and its tokenizer, trains the default tiny OLMo2 model and prints
# where its run file is and the first and last validation loss. Re-running it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_deps
build_preset cpu quopt
QUOPT=build/cpu/quopt
RUN=inputs/runs/demo.toml
OUT=runs/demo

log "building the default corpus (inputs/data/build-corpus.sh)"
inputs/data/build-corpus.sh data/corpus

if [ -s data/tokens/train.bin ] && [ -s data/tokens/val.bin ] && [ data/tokens/train.bin -nt data/corpus/.stamp ]; then
  log "tokenizer and shards are up to date (data/tokens)"
else
  log "training the tokenizer and writing token shards"
  "$QUOPT" tokenize "$RUN"
fi

# A finished run is reused when neither the binary nor the configs changed since.
if [ -f "$OUT/run.h5" ] && [ -z "$(find "$QUOPT" inputs/runs inputs/models inputs/optimizers inputs/data \
      -newer "$OUT/run.h5" -print -quit)" ]; then
  log "$OUT/run.h5 is up to date"
else
  log "training $(grep -m1 '^name' inputs/models/olmo2-tiny.toml | cut -d'"' -f2) ($RUN)"
  rm -rf "$OUT"
  "$QUOPT" train "$RUN" --out "$OUT"
fi

python3 - "$OUT" <<'PY'
import json, math, sys
out = sys.argv[1]
val = [(r["step"], r["val_loss"]) for r in map(json.loads, open(f"{out}/metrics.jsonl")) if r.get("val_loss") is not None]
(s0, v0), (s1, v1) = val[0], val[-1]
print(f"\nrun file: {out}/run.h5   (inspect with: h5ls -r {out}/run.h5)")
print(f"validation loss: {v0:.4f} at step {s0} -> {v1:.4f} at step {s1}  (ln(vocab) = {math.log(4096):.4f})")
PY
