#!/usr/bin/env bash
# Fixture: a tiny corpus, its tokenizer and shards, and the run config the parallel tests share.
set -euo pipefail
QUOPT=$1; SRC=$2; DATA=$3
rm -rf "$DATA" && mkdir -p "$DATA" && cd "$DATA"
python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 300
cat > run.toml <<TOML
[model]
name = "parallel-tiny"
d_model = 32
n_layers = 4
n_heads = 2
n_kv_heads = 2
vocab_size = 512
seq_len = 32
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[data]
train = "tok/train.bin"
val = "tok/val.bin"
[train]
steps = 20
batch_size = 8
micro_batch_size = 2
seed = 3
log_every = 1
val_every = 10
val_batches = 4
[optimizer]
lr = 3e-3
[checkpoint]
every = 0
keep = 3
TOML
"$QUOPT" tokenize run.toml > tokenize.log
