# shellcheck shell=bash
# Shared by the slurm tests. Sourced by a test script that tests/slurm/cluster.sh runs, with the
# arguments QUOPT_BINARY SOURCE_DIR. Provides: QUOPT, SRC, HERE, W (a work directory inside the
# cluster's directory, removed with it), fail, note, wait_jobs, job_table, never_started, make_data,
# compare_losses.
set -euo pipefail
QUOPT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${QUOPT_SLURM_DIR:?run the slurm tests through tests/slurm/cluster.sh run -- TEST QUOPT SRC}"
W=$(mktemp -d "$QUOPT_SLURM_DIR/work.XXXXXX")
chmod 755 "$W"
T0=$(date +%s)
export QUOPT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
note() { printf '[%s +%3ds] %s\n' "$(basename "$0" .sh)" "$(($(date +%s) - T0))" "$*"; }

# wait_jobs TIMEOUT ID...: waits until every job (array elements included) has ended; prints the table
# "JOBID NAME STATE REASON EXITCODE RESTARTS" to stdout.
wait_jobs() {
  local limit=$1
  shift
  python3 "$HERE/jobs.py" wait --timeout "$limit" "$@"
}
job_table() { python3 "$HERE/jobs.py" table "$@"; }

# never_started JOB: Slurm never gave JOB a node (no BatchHost, empty NodeList). A pending job that
# is cancelled gets StartTime = the cancel time, so StartTime does not tell.
never_started() {
  local rec
  rec=$(scontrol show job -o "$1")
  [[ $rec != *BatchHost=* ]] && [[ $rec == *" NodeList= "* ]]
}

# make_data DIR: a tiny synthetic corpus, tokenized, and DIR/run.toml (a 2-block model) using it.
make_data() {
  local d=$1
  mkdir -p "$d"
  python3 "$SRC/tests/e2e/make_corpus.py" "$d/corpus.txt" 300
  cat > "$d/run.toml" << TOML
[model]
name = "slurm-tiny"
d_model = 32
n_layers = 2
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
tokenizer = "tok/tokenizer.model"
[train]
steps = 20
batch_size = 8
micro_batch_size = 8
seed = 11
log_every = 1
val_every = 10
val_batches = 2
[optimizer]
lr = 3e-3
[checkpoint]
every = 0
keep = 2
[eval]
builtin_examples = 20
val_batches = 2
TOML
  (cd "$d" && "$QUOPT" tokenize run.toml > tokenize.log 2>&1) || {
    cat "$d/tokenize.log" >&2
    fail "quopt tokenize failed"
  }
}

# compare_losses DIR_A DIR_B: the (step, loss, val_loss) rows of both metrics.jsonl are identical.
compare_losses() {
  python3 - "$1" "$2" << 'PY'
import json, sys
def rows(d):
    with open(d + "/metrics.jsonl") as f:
        return [(r["step"], r.get("loss"), r.get("val_loss")) for r in map(json.loads, f)]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len(a) > 1, f"{sys.argv[1]} has only {len(a)} metrics rows"
steps_a = [r[0] for r in a]
assert steps_a == sorted(set(steps_a)), f"{sys.argv[1]}: logged steps repeat or go back: {steps_a[:20]}..."
for ra, rb in zip(a, b):
    assert ra == rb, f"first difference at step {ra[0]}: {ra} vs {rb}"
assert len(a) == len(b), f"{len(a)} rows vs {len(b)} rows"
print(f"identical losses over {len(a)} logged steps (last step {a[-1][0]}, loss {a[-1][1]})")
PY
}
