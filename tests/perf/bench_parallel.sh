#!/usr/bin/env bash
# Training throughput on the host at np 1 and np 2 (data parallel, and pipeline parallel), with the time
# spent in MPI, on the e2e synthetic corpus and a small model. Prints ratios.
#   tests/perf/bench_parallel.sh [build/cpu/quopt]
set -euo pipefail
QUOPT=$(realpath "${1:-build/cpu/quopt}")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W"
python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 400
cat > run.toml <<TOML
[model]
d_model = 128
n_layers = 4
n_heads = 4
vocab_size = 512
seq_len = 128
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[data]
train = "tok/train.bin"
val = "tok/val.bin"
[train]
steps = 30
batch_size = 16
micro_batch_size = 4
log_every = 10
val_every = 0
val_batches = 1
TOML
"$QUOPT" tokenize run.toml > /dev/null
MPI=(mpirun --oversubscribe); [ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
run() { "$@" | grep -o 'wrote.*' ; }
r1=$(run "$QUOPT" train run.toml --out np1)
r2=$(run "${MPI[@]}" -np 2 "$QUOPT" train run.toml --out dp2)
r3=$(run "${MPI[@]}" -np 2 "$QUOPT" train run.toml --out pp2 --set parallel.pipeline_stages=2)
python3 - "$r1" "$r2" "$r3" <<'PY'
import re, sys
def parse(s):
    tps, secs, mpi = re.search(r"\((\d+) tokens/s over ([\d.e+-]+) s, ([\d.e+-]+) s in MPI\)", s).groups()
    return float(tps), float(secs), float(mpi)
names = ["np=1", "np=2 data parallel", "np=2 pipeline (2 stages)"]
base = parse(sys.argv[1])[0]
for n, s in zip(names, sys.argv[1:]):
    tps, secs, mpi = parse(s)
    print(f"{n:26s} {tps:8.0f} tokens/s  ratio to np=1 {tps / base:5.2f}  MPI time {mpi:6.2f} s of {secs:6.2f} s ({100*mpi/secs:4.1f}%)")
PY
