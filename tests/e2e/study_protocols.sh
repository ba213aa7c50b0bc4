#!/usr/bin/env bash
# End-to-end: a tiny study (one size; AdamW at two learning rates x two seeds, Muon at one) through
# `quopt study run` with both PTQ protocols:
#   common-loss  only the best lr (mean final val loss over seeds) is quantized, each selected run at the
#                first validation point at or below the common loss (max over the selected runs of their
#                minimum); snapshots exist exactly at the validation records; ptq, eval and analyze
#                record the step; the other runs' ptq stage is a recorded no-op;
#   final        the same trained runs (training is skipped) quantized at their final weights;
# and a study with QAT: its QAT run is evaluated and analysed as trained (no PTQ on top).
# The expected decisions are recomputed here from the run files' curves, independently of quopt.
# Usage: study_protocols.sh QUOPT_BINARY SOURCE_DIR
set -euo pipefail
QUOPT=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 200
cat > base.toml <<TOML
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
[data]
train = "tok/train.bin"
val = "tok/val.bin"
tokenizer = "tok/tokenizer.model"
[train]
batch_size = 8
log_every = 5
val_every = 4
val_batches = 2
[quant]
calibration_batches = 1
record_rows = 8
[eval]
builtin_examples = 30
val_batches = 2
TOML
cat > model.toml <<TOML
[model]
name = "e2e-study"
d_model = 16
n_layers = 2
n_heads = 2
vocab_size = 512
seq_len = 32
TOML
write_study() {  # write_study FILE PROTOCOL
  cat > "$1" <<TOML
[study]
name = "e2e"
base = "base.toml"
out_dir = "runs"
sizes = ["model.toml"]
optimizers = ["adamw", "muon"]
optimizer_dir = "$SRC/inputs/optimizers"
tokens_per_param = 0
ptq_schemes = ["rtn-w4a4"]
ptq_protocol = "$2"
seeds = ["1", "2"]
overrides = ["train.steps=24", "optimizer.muon.adam_lr=1e-2"]
[study.lr]
adamw = ["1e-3", "1e-2"]
muon = ["2e-2"]
TOML
}
write_study common.toml common-loss
write_study final.toml final
"$QUOPT" tokenize base.toml --set model.vocab_size=512 > tokenize.log

"$QUOPT" study plan common.toml > plan.txt
[ "$(grep -c $'^[0-9]\+\t' plan.txt)" -eq 6 ] || { cat plan.txt; fail "expected 6 runs in the plan"; }
"$QUOPT" study run common.toml > common.log 2>&1 || { cat common.log; fail "study run (common-loss) failed"; }
grep -q "not selected" common.log || fail "no run was reported as not selected"

# check_protocol PROTOCOL: the decisions in the run files match the rules, recomputed from the curves.
check_protocol() {
  python3 - "$1" <<'PY'
import glob, math, os, sys
import h5py, numpy as np
protocol = sys.argv[1]
runs = {}
for f in sorted(glob.glob("runs/*/run.h5")):
    name = os.path.basename(os.path.dirname(f))
    opt, lr = name.split("_")[1], name.split("_")[2] if name.count("_") >= 3 else None
    with h5py.File(f, "r") as h:
        runs[name] = dict(file=f, opt=opt, lr=lr, steps=h["metrics/val_step"][()].astype(int),
                          val=h["metrics/val_loss"][()], final_step=int(h["metrics/train_step"][-1]))
# Best lr per optimizer by the mean final loss over the two seeds.
groups = {}
for n, r in runs.items():
    groups.setdefault(r["opt"], {}).setdefault(r["lr"], []).append(r["val"][-1])
best = {o: min(by_lr, key=lambda lr: (np.mean(by_lr[lr]), float(lr[2:]) if lr else 0)) for o, by_lr in groups.items()}
selected = [n for n, r in runs.items() if r["lr"] == best[r["opt"]]]
assert len(selected) == 4, selected  # 2 seeds of adamw's best lr + 2 of muon
threshold = max(min(runs[n]["val"][1:]) for n in selected)  # [0]: step 0, the untrained model
early = 0
for n, r in runs.items():
    with h5py.File(r["file"], "r") as h:
        st = h["study"].attrs
        assert int(st["selected"]) == (n in selected), (n, dict(st))
        assert st["protocol"] == protocol
        if n not in selected:
            assert "quant" not in h or protocol == "final", n  # never quantized (final reuses the files)
            continue
        if protocol == "common-loss":
            first = 1 + int(np.argmax(r["val"][1:] <= threshold))  # the first crossing after step 0
            assert r["val"][first] <= threshold and (r["val"][1:first] > threshold).all()
            step = int(r["steps"][first])
            assert math.isclose(st["threshold"], threshold, rel_tol=1e-12), (st["threshold"], threshold)
        else:
            step = r["final_step"]
        assert int(st["ptq_step"]) == step, (n, int(st["ptq_step"]), step)
        early += step < r["final_step"]
        for g in ("eval", "quant/rtn-w4a4", "analysis/rtn-w4a4"):
            assert int(h[g].attrs["step"]) == step, (n, g, int(h[g].attrs["step"]), step)
            assert h[g].attrs["protocol"] == protocol, (n, g, h[g].attrs["protocol"])
        # The evaluated weights are those of that step: the snapshot (or run.h5 for the final step).
        src = r["file"] if step == r["final_step"] else f"runs/{n}/snapshots/step-{step:08d}.h5"
        with h5py.File(src, "r") as w:
            wq = w["weights/block.00/attn_q"][()]
        err = h["quant/rtn-w4a4/weights/block.00/attn_q_error"][()]
        row = np.abs(wq).max(axis=1, keepdims=True) / 7  # RTN AbsMax W4 of that weight, recomputed
        q = np.clip(np.round(wq / row), -7, 7) * row
        assert np.allclose(wq - q, err, atol=1e-6), f"{n}: /quant error is not of the step-{step} weights"
        assert h["eval/window_loss"].shape[0] > 0 and h["eval/tasks/continuation/correct_norm"].shape == (30,)
        # /eval's tokens: validation tokens (windows x seq_len); train_tokens: the step's training tokens.
        assert int(h["eval"].attrs["tokens"]) == h["eval/window_loss"].shape[0] * 32, (int(h["eval"].attrs["tokens"]), h["eval/window_loss"].shape)
        assert int(h["eval"].attrs["train_tokens"]) == step * 8 * 32, (n, int(h["eval"].attrs["train_tokens"]))
        assert math.isclose(h["eval"].attrs["val_loss"], float(np.mean(h["eval/window_loss"][()])), rel_tol=1e-6)  # f32 sums
        acc = h["eval/tasks/continuation"].attrs["acc_norm"]
        assert math.isclose(acc, float(np.mean(h["eval/tasks/continuation/correct_norm"][()])), rel_tol=1e-12)
# The common loss is the worst selected run's minimum: some run reaches it before its end, so a snapshot
# is used (if this fails, the runs happen to be identical in quality: change the study, not the check).
assert (early > 0) == (protocol == "common-loss"), early
print(f"e2e study ({protocol}): selected {sorted(selected)}, threshold {threshold:.4f}, {early} quantized early")
PY
}
check_protocol common-loss

# Snapshots: exactly the validation points that set a new minimum, except the final step.
python3 - <<'PY'
import glob, os
import h5py
for f in sorted(glob.glob("runs/*/run.h5")):
    d = os.path.dirname(f)
    with h5py.File(f, "r") as h:
        steps, val, last = h["metrics/val_step"][()].astype(int), h["metrics/val_loss"][()], int(h["metrics/train_step"][-1])
    want = [int(s) for i, s in enumerate(steps) if 0 < s < last and all(val[i] < v for v in val[:i])]
    have = sorted(int(p[-11:-3]) for p in glob.glob(f"{d}/snapshots/step-*.h5"))
    assert have == want, (d, have, want)
print("e2e study: snapshots exactly at the validation records")
PY

"$QUOPT" study run common.toml > again.log 2>&1
[ "$(grep -c 'already complete, skipped' again.log)" -eq 18 ] || { cat again.log; fail "a rerun should skip all 18 stages"; }

# The final protocol on the same runs: nothing is retrained, every selected run is requantized.
"$QUOPT" study run final.toml > final.log 2>&1 || { cat final.log; fail "study run (final) failed"; }
[ "$(grep -c 'train: already complete' final.log)" -eq 6 ] || fail "the final protocol retrained runs"
check_protocol final

# QAT in a study: the QAT run is selected among the QAT runs, evaluated as trained at its final weights
# (/eval, arithmetic quest-w4a4: the same loss as the trainer's own validation of the quantized model on
# the same windows), analysed as trained (/analysis/qat), never post-training quantized; a rerun skips.
cat > qat.toml <<TOML
[study]
name = "e2e-qat"
base = "base.toml"
out_dir = "runs_qat"
sizes = ["model.toml"]
optimizers = ["adamw"]
optimizer_dir = "$SRC/inputs/optimizers"
tokens_per_param = 0
ptq_schemes = ["rtn-w4a4"]
qat = true
overrides = ["train.steps=24", "quant.hadamard_block=16"]
[study.lr]
adamw = ["1e-2"]
TOML
"$QUOPT" study run qat.toml > qat.log 2>&1 || { cat qat.log; fail "study run (qat) failed"; }
grep -q "a QAT run, evaluated as trained" qat.log || { cat qat.log; fail "the QAT run was not evaluated"; }
python3 - <<'PY'
import glob, math
import h5py
files = sorted(glob.glob("runs_qat/*/run.h5"))
assert len(files) == 2, files
for f in files:
    with h5py.File(f, "r") as h:
        qat = f.endswith("_qat/run.h5")
        assert int(h["study"].attrs["selected"]) == 1, f
        final = int(h["metrics/train_step"][-1])
        assert int(h["study"].attrs["ptq_step"]) == final, (f, int(h["study"].attrs["ptq_step"]))
        if not qat:
            assert h["eval"].attrs["arithmetic"] == "exact" and "analysis/rtn-w4a4" in h, f
            continue
        assert h["study"].attrs["protocol"] == "final", f
        assert "quant" not in h, f"{f}: a QAT run was post-training quantized"
        e = h["eval"].attrs
        assert e["arithmetic"] == "quest-w4a4" and int(e["step"]) == final and e["protocol"] == "final", dict(e)
        trainer = float(h["metrics/val_loss"][-1])  # the trainer validates the model as it computes
        assert math.isclose(float(e["val_loss"]), trainer, rel_tol=1e-5), (float(e["val_loss"]), trainer)
        a = h["analysis/qat"].attrs
        assert a["arithmetic"] == "quest-w4a4" and math.isfinite(float(a["R_L"])) and float(a["R_L"]) > 0, dict(a)
print("e2e study (qat): the QAT run evaluated and analysed as trained")
PY
"$QUOPT" study run qat.toml > qat-again.log 2>&1
[ "$(grep -c 'already complete, skipped' qat-again.log)" -eq 6 ] || { cat qat-again.log; fail "a rerun of the QAT study should skip all 6 stages"; }

# --step names a step without weights: a clear error, nothing written.
run=$(ls -d runs/*_lr0.001_s1)
before=$(md5sum "$run/run.h5")
if "$QUOPT" eval "$run/config.toml" --run "$run" --step 5 > err.txt 2>&1; then fail "eval --step 5 succeeded"; fi
grep -q "has no weights of step 5" err.txt || { cat err.txt; fail "unclear error for a missing snapshot"; }
[ "$before" = "$(md5sum "$run/run.h5")" ] || fail "a failed eval changed run.h5"
echo "e2e study: OK"
