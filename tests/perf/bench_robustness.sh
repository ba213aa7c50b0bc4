#!/usr/bin/env bash
# Cost of robustness tracking during training ([track], src/train/robustness.hpp): the same training run
# with track.every = 0 (off) and with measurements every N steps, interleaved over several rounds on the
# e2e synthetic corpus. Prints, per setting, the median CPU time (user + system, from getrusage; one
# BLAS thread) and wall time of the whole `quopt train` process as ratios to the untracked run, and the
# tracker's own share of the training loop (its log line). CPU time is the number to trust on a loaded
# machine: the process is single-threaded, so other load barely changes it.
#   tests/perf/bench_robustness.sh [build/cpu/quopt] [rounds] [np]
set -euo pipefail
QUOPT=$(realpath "${1:-build/cpu/quopt}")
ROUNDS=${2:-3}
NP=${3:-1}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W"
python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 400
# The demo model's width and depth (inputs/models/olmo2-tiny.toml) on a 512-token vocabulary.
cat > run.toml <<TOML
[model]
d_model = 64
n_layers = 2
n_heads = 4
vocab_size = 512
seq_len = 64
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[data]
train = "tok/train.bin"
val = "tok/val.bin"
[train]
steps = 300
batch_size = 16
micro_batch_size = 16
log_every = 100
val_every = 100
val_batches = 2
TOML
"$QUOPT" tokenize run.toml > /dev/null
LAUNCH=()
if [ "$NP" -gt 1 ]; then
  LAUNCH=(mpirun --oversubscribe -np "$NP"); [ "$(id -u)" -eq 0 ] && LAUNCH+=(--allow-run-as-root)
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
python3 - "$QUOPT" "$ROUNDS" "${LAUNCH[@]}" <<'PY'
import re, resource, statistics, subprocess, sys, time
quopt, rounds, launch = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
settings = [0, 100, 50, 25]  # track.every; 0 = off
walls = {e: [] for e in settings}
cpus = {e: [] for e in settings}
shares = {e: [] for e in settings}
def child_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime
for r in range(rounds):
    for e in settings:  # interleaved: every round runs each setting once, in the same order
        cmd = launch + [quopt, "train", "run.toml", "--out", f"run_{e}_{r}", "--set", f"track.every={e}"]
        t0, c0 = time.perf_counter(), child_cpu()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        walls[e].append(time.perf_counter() - t0)
        cpus[e].append(child_cpu() - c0)
        m = re.search(r"robustness tracking: \S+ s \(([\d.e+-]+)% of", out.stdout + out.stderr)
        if m:
            shares[e].append(float(m.group(1)))
base, cbase = statistics.median(walls[0]), statistics.median(cpus[0])
print(f"{rounds} rounds, np={max(1, len(launch) and int(launch[launch.index('-np') + 1]))}, "
      f"300 steps of 16 x 64 tokens, tracked on 8 sequences (track.sequences default), rtn-w4a4")
for e in settings:
    med, cpu = statistics.median(walls[e]), statistics.median(cpus[e])
    share = f"{statistics.median(shares[e]):5.1f}%" if shares[e] else "    -"
    label = "off" if e == 0 else f"every {e}"
    print(f"track {label:9s} cpu {cpu:6.2f} s  ratio {cpu / cbase:5.3f} | wall {med:6.2f} s  ratio {med / base:5.3f} "
          f"| tracker's own share of the loop {share}")
PY
