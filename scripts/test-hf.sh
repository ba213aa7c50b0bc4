#!/usr/bin/env bash
# The check against transformers itself (tests/python/test_hf_transformers.py, docs/interop.md): makes a
# virtual environment with torch, transformers, tokenizers and sentencepiece from PyPI (about 5 GB, as
# PyPI's Linux torch wheel brings CUDA libraries; nothing runs on a GPU), builds quopt (cpu preset) and
# runs those tests, printing the measured agreement. scripts/test.sh does not install torch; there the
# same tests skip themselves.
#   scripts/test-hf.sh            # venv in build/hf-venv (reused when it is there)
#   QUOPT_HF_VENV=DIR scripts/test-hf.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_deps
build_preset cpu quopt
VENV=${QUOPT_HF_VENV:-build/hf-venv}
if ! "$VENV/bin/python" -c "import torch, transformers, tokenizers, sentencepiece, pytest" 2>/dev/null; then
  log "creating $VENV (torch, transformers, tokenizers, sentencepiece, pytest from PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch transformers tokenizers sentencepiece protobuf numpy pytest
fi
"$VENV/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
REPORT=$(mktemp)
trap 'rm -f "$REPORT"' EXIT
log "running tests/python/test_hf_transformers.py"
QUOPT_BIN="$PWD/build/cpu/quopt" QUOPT_HF_REPORT="$REPORT" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python/test_hf_transformers.py
log "measured (max relative logit difference = max|quopt - transformers| / max|transformers|)"
cat "$REPORT"
