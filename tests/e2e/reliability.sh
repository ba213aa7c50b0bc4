#!/usr/bin/env bash
# Reliability end to end (docs/reliability.md; issue 14): what quopt does on a full disk, with bad or
# foreign checkpoints and run files, with a changed config on resume, with a second writer, when a run
# diverges, with a torn metrics.jsonl, with bad command lines, and on a signal before the first step.
# Each case must end in a clear error (the file, key or rank named, exit status 2) or the documented
# recovery, with nothing already written damaged.
# A full disk is simulated without root by a file-size limit (ulimit -f; SIGXFSZ ignored, so writes
# past the limit fail with EFBIG): the same failed-write paths as ENOSPC on a full file system (checked
# by hand with a 1 MB tmpfs: the same errors).
# Usage: reliability.sh QUOPT_BINARY SOURCE_DIR
set -euo pipefail
QUOPT=$1
SRC=$2
W=$(mktemp -d)
BG=""
trap '[ -n "$BG" ] && kill -9 $BG 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect RC LOG CMD...: runs CMD, its output in LOG; its exit status must be RC.
expect() {
  local rc=$1 log=$2
  shift 2
  set +e
  "$@" > "$log" 2>&1
  local got=$?
  set -e
  [ "$got" -eq "$rc" ] || { cat "$log" >&2; fail "exit status $got (expected $rc): $*"; }
}
# has LOG TEXT...: LOG contains every TEXT (fixed strings).
has() {
  local log=$1
  shift
  for t in "$@"; do grep -qF -- "$t" "$log" || { cat "$log" >&2; fail "$log lacks: $t"; }; done
}
lacks() { ! grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 should not say: $2"; }; }
sums() { (cd "$1" && find . -type f ! -name quopt.lock -print0 | sort -z | xargs -0 md5sum); }
valid_jsonl() {
  python3 - "$1" <<'PY'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
assert steps == sorted(set(steps)), f"steps out of order or repeated: {steps}"
print(len(steps))
PY
}

python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 200
cat > run.toml <<TOML
[model]
name = "rel-tiny"
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
steps = 12
batch_size = 8
micro_batch_size = 4
seed = 3
log_every = 1
val_every = 6
val_batches = 2
[schedule]
warmup_fraction = 0.25
decay_fraction = 0.25
[optimizer]
lr = 3e-3
[eval]
builtin_examples = 16
val_batches = 2
[quant]
record_rows = 16
calibration_batches = 1
[checkpoint]
every = 4
keep = 3
TOML
"$QUOPT" tokenize run.toml > tokenize.log

echo "-- a reference run; checkpoint.every = 0 still checkpoints the last step (13); the lr follows the schedule"
expect 0 ref.log "$QUOPT" train run.toml --out ref
[ "$(cd ref/checkpoints && ls)" = "$(printf 'step-00000004.h5\nstep-00000008.h5\nstep-00000012.h5')" ] ||
  fail "ref checkpoints: $(ls ref/checkpoints)"
expect 0 e0.log "$QUOPT" train run.toml --out e0 --set checkpoint.every=0
[ "$(ls e0/checkpoints)" = "step-00000012.h5" ] || fail "checkpoint.every = 0 wrote: $(ls e0/checkpoints 2>&1)"
python3 - ref/metrics.jsonl <<'PY'
# WSD, 12 steps: warmup 3 steps (lr * t/3), stable, then linear decay over the last 3 to 0.
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    t = r["step"]
    if t == 0:
        continue
    m = t / 3 if t <= 3 else (1.0 if t <= 9 else (12 - t) / 3)
    assert abs(r["lr"] - 3e-3 * m) <= 1e-15, f"step {t}: lr {r['lr']}, schedule says {3e-3 * m}"
PY

echo "-- 2: a new run never truncates or replaces an earlier run's files"
before=$(sums ref)
expect 2 again.log "$QUOPT" train run.toml --out ref --set train.seed=4
has again.log "already holds a run (metrics.jsonl, run.h5 and 3 checkpoints)" "--resume auto"
[ "$(sums ref)" = "$before" ] || fail "refused run changed ref/"
expect 2 oom.log "$QUOPT" train run.toml --out oom --set train.batch_size=40000000 --set train.micro_batch_size=40000000
has oom.log "out of host memory" "train.micro_batch_size = 40000000"    # 11: the key that asked for it
mkdir -p crashed && head -n 3 ref/metrics.jsonl > crashed/metrics.jsonl  # died before its first checkpoint
expect 0 crashed.log "$QUOPT" train run.toml --out crashed --resume auto
has crashed.log "moved the earlier run's metrics.jsonl to $W/crashed/previous-1"
[ "$(wc -l < crashed/previous-1/metrics.jsonl)" -eq 3 ] || fail "the earlier metrics.jsonl was not kept whole"

echo "-- 3: every load verifies the checkpoint (--resume PATH as --resume auto)"
python3 - ref/checkpoints/step-00000008.h5 <<'PY'
import h5py, shutil, sys
src = sys.argv[1]
shutil.copy(src, "incomplete.h5")
with h5py.File("incomplete.h5", "r+") as f:
    f.attrs["complete"] = 0
shutil.copy(src, "flipped.h5")
with h5py.File("flipped.h5", "r+") as f:
    d = f["weights/block.01/mlp_up"]
    a = d[...]
    a.view("u4")[3, 5] ^= 1 << 20  # one bit of one weight
    d[...] = a
with h5py.File("foreign.h5", "w") as f:
    f["x"] = 1
PY
expect 2 incomplete.log "$QUOPT" train run.toml --out r3a --resume incomplete.h5
has incomplete.log "cannot resume from incomplete.h5: not marked complete"
expect 2 flipped.log "$QUOPT" train run.toml --out r3b --resume flipped.h5
has flipped.log "cannot resume from flipped.h5" "checksum mismatch in weights/block.01/mlp_up"
expect 2 foreign.log "$QUOPT" train run.toml --out r3c --resume foreign.h5
has foreign.log "foreign.h5: not a quopt checkpoint"                       # 11
[ ! -e r3a/metrics.jsonl ] && [ ! -e r3b/metrics.jsonl ] || fail "a refused resume wrote metrics"

echo "-- 4: a resume compares the configs; an allowed change is recorded in run.h5"
expect 2 seed.log "$QUOPT" train run.toml --out r4 --resume ref/checkpoints/step-00000008.h5 --set train.seed=9
has seed.log "train.seed: 3 in the checkpoint, 9 now" "--allow-config-change train.seed"
expect 0 steps.log "$QUOPT" train run.toml --out r4 --resume ref/checkpoints/step-00000008.h5 --set train.steps=14
expect 0 allow.log "$QUOPT" train run.toml --out r4b --resume ref/checkpoints/step-00000008.h5 --set train.seed=9 \
  --allow-config-change train.seed
python3 - r4b/run.h5 <<'PY'
import h5py, sys
h = h5py.File(sys.argv[1])["/"].attrs["resume_history"]
assert "train.seed 3 -> 9 (--allow-config-change)" in h, h
PY

echo "-- 6: one writer per run directory; the lock ends with its holder"
"$QUOPT" train run.toml --out lk --set train.steps=100000 --set checkpoint.every=0 > lk.log 2>&1 &
BG=$!
for _ in $(seq 300); do grep -q '"step":2,' lk/metrics.jsonl 2>/dev/null && break; sleep 0.05; done
expect 2 lk2.log timeout 120 "$QUOPT" train run.toml --out lk --resume auto   # unlocked it would run on
has lk2.log "is in use by another quopt process" "pid $BG" "quopt train run.toml --out lk --set train.steps=100000"
expect 2 lk3.log "$QUOPT" ptq run.toml --run lk
has lk3.log "is in use by another quopt process" "pid $BG"
kill -9 $BG; wait $BG 2>/dev/null || true; BG=""
expect 0 lk4.log "$QUOPT" train run.toml --out lk --resume auto   # no stale lock
has lk4.log "moved the earlier run's metrics.jsonl"

echo "-- 7: divergence: never applied, never checkpointed, a true message"
expect 2 dv.log "$QUOPT" train run.toml --out dv --set optimizer.lr=1e4
has dv.log "the training loss is" "lower optimizer.lr (now 10000) or lower train.grad_clip (now 1)"
lacks dv.log "enable train.grad_clip"
expect 2 dv0.log "$QUOPT" train run.toml --out dv0 --set optimizer.lr=1e4 --set train.grad_clip=0
has dv0.log "enable train.grad_clip"
expect 2 dvs.log "$QUOPT" train run.toml --out dvs --set optimizer.lr=1e4 --set train.max_nonfinite_skips=2 \
  --set checkpoint.every=1
has dvs.log "(1 of at most 2 skips" "(2 of at most 2 skips" "2 step(s) were skipped already"
grep -q '"skipped_steps":2' dvs/metrics.jsonl || fail "metrics.jsonl does not count the skipped steps"
python3 - dvs/checkpoints <<'PY'
import glob, h5py, numpy as np, sys
files = sorted(glob.glob(sys.argv[1] + "/step-*.h5"))
assert files, "no checkpoint before the divergence"
for p in files:
    with h5py.File(p) as f:
        bad = []
        f.visititems(lambda n, o: bad.append(n) if isinstance(o, h5py.Dataset) and n.startswith(("weights/", "optimizer/")) and not np.isfinite(o[...]).all() else None)
        assert not bad, f"{p} holds non-finite {bad[:3]}"
PY

echo "-- 8: a torn metrics.jsonl is repaired on resume"
mkdir -p torn/checkpoints && cp ref/checkpoints/step-00000008.h5 torn/checkpoints/
python3 - ref/metrics.jsonl torn/metrics.jsonl <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
# records up to step 8, a torn line left by a crash, two records of a run that went on, a torn tail
text = "".join(lines[:9]) + lines[9][:20] + "\n" + "".join(lines[9:11]) + '{"step":'
open(sys.argv[2], "w").write(text)
PY
expect 0 torn.log "$QUOPT" train run.toml --out torn --resume auto
has torn.log "dropped 2 incomplete line(s) (line 10, 13"
[ "$(valid_jsonl torn/metrics.jsonl)" -eq 13 ] || fail "torn/metrics.jsonl is not steps 0..12"
cmp <(python3 -c "import json,sys; [print(json.loads(l)['loss']) for l in open(sys.argv[1])]" ref/metrics.jsonl) \
    <(python3 -c "import json,sys; [print(json.loads(l)['loss']) for l in open(sys.argv[1])]" torn/metrics.jsonl) ||
  fail "the repaired run's losses differ from the reference"

echo "-- 9: non-finite weights in run.h5 are refused by eval, ptq and analyze, naming the tensor"
mkdir -p nan && cp ref/run.h5 nan/
python3 -c "
import h5py, numpy as np
with h5py.File('nan/run.h5', 'r+') as f:
    d = f['weights/block.00/attn_q']; a = d[...]; a[0, 0] = np.nan; a[1, 1] = np.inf; d[...] = a"
before=$(sums nan)
for c in eval ptq analyze; do
  expect 2 nan-$c.log "$QUOPT" $c run.toml --run nan
  has nan-$c.log "nan/run.h5: /weights/block.00/attn_q holds 2 non-finite values"
done
[ "$(sums nan)" = "$before" ] || fail "a refused command changed nan/run.h5"

echo "-- 1: a full disk: a clear error (never a crash), nothing written damaged"
# PMIX_MCA_gds=hash: MPI's start-up keeps its data in memory instead of in shared-memory files, which
# the file-size limit would otherwise break.
# The output goes through a pipe: the limit would cut a log file too.
full() {
  local kb=$1
  shift
  (trap '' XFSZ; ulimit -f "$kb"; PMIX_MCA_gds=hash "$@" 2>&1) | cat
  return "${PIPESTATUS[0]}"
}
expect 2 fd1.log full 300 "$QUOPT" train run.toml --out fd1
has fd1.log "step-00000004.h5.tmp" "The checkpoint was not written"
[ -z "$(ls fd1/checkpoints)" ] || fail "a failed checkpoint left files: $(ls fd1/checkpoints)"
valid_jsonl fd1/metrics.jsonl > /dev/null
expect 2 fd2.log full 1 "$QUOPT" train run.toml --out fd2 --set checkpoint.every=0
has fd2.log "cannot append the record of step" "fd2/metrics.jsonl" "--resume auto"
mkdir -p fdp && cp ref/run.h5 fdp/
before=$(sums fdp)
size=$(( $(stat -c %s fdp/run.h5) / 1024 ))
expect 2 fdp1.log full $((size / 2)) "$QUOPT" ptq run.toml --run fdp        # no room for the working copy
has fdp1.log "cannot copy" "fdp/run.h5 is unchanged"
expect 2 fdp2.log full $((size + 8)) "$QUOPT" ptq run.toml --run fdp        # the copy fits, the results do not
has fdp2.log "run.h5.tmp" "fdp/run.h5 is unchanged"
[ "$(sums fdp)" = "$before" ] || fail "ptq on a full disk changed fdp/run.h5"
expect 0 fdp3.log "$QUOPT" ptq run.toml --run fdp
before=$(sums fdp)
size=$(( $(stat -c %s fdp/run.h5) / 1024 ))
expect 2 fda.log full $((size + 2)) "$QUOPT" analyze run.toml --run fdp
has fda.log "fdp/run.h5 is unchanged"
[ "$(sums fdp)" = "$before" ] || fail "analyze on a full disk changed fdp/run.h5"
[ ! -e fdp/run.h5.tmp ] || fail "the working copy was left behind"

echo "-- 10, 11: bad command lines and inputs"
expect 2 out.log "$QUOPT" train run.toml --out ""
has out.log "--out was given an empty directory name"
mkdir -p adir
expect 2 dir.log "$QUOPT" info adir
has dir.log "config file 'adir' is a directory"
expect 2 trian.log "$QUOPT" trian run.toml
has trian.log "unknown command 'trian'; did you mean 'train'?"
mkdir -p fr && python3 -c "import h5py; h5py.File('fr/run.h5', 'w')['x'] = 1"
expect 2 fr.log "$QUOPT" eval run.toml --run fr
has fr.log "fr/run.h5" "quopt train"   # not a run file quopt wrote: said, with the file

echo "-- 12: a signal that arrives before training starts is caught: one step, a checkpoint, exit 75"
python3 - "$QUOPT" <<'PY'
# SIGTERM pending from the first instruction on: blocked, sent, then exec. quopt unblocks it once its
# handler is installed (before MPI and Kokkos start), so it is caught, never the default action.
import os, signal, subprocess, sys
def pending_term():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)
p = subprocess.run([sys.argv[1], "train", "run.toml", "--out", "sig"], preexec_fn=pending_term,
                   capture_output=True, text=True)
assert p.returncode == 75, (p.returncode, p.stdout, p.stderr)
assert "stopped on a signal after step 1; checkpoint" in p.stdout, p.stdout
PY
expect 0 sig2.log "$QUOPT" train run.toml --out sig --resume auto
has sig2.log "resumed from $W/sig/checkpoints/step-00000001.h5 at step 1"
echo "reliability: OK"
