#!/usr/bin/env bash
# End-to-end: text -> tokenize -> train (twice, same seed) -> run.h5 -> h5ls/h5py checks -> the stored
# config reproduces the run -> bad input is rejected with a clear message and nothing written.
# Usage: train_pipeline.sh QUOPT_BINARY SOURCE_DIR
set -euo pipefail
QUOPT=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 300
cat > run.toml <<TOML
[model]
name = "e2e-tiny"
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
steps = 40
batch_size = 8
micro_batch_size = 4
seed = 7
log_every = 10
val_every = 20
val_batches = 2
[optimizer]
lr = 3e-3
[eval]
builtin_examples = 40
val_batches = 4
[output]
dir = "run1"
TOML

"$QUOPT" tokenize run.toml
[ -s tok/train.bin ] && [ -s tok/val.bin ] && [ -s tok/tokenizer.model ] || fail "tokenize did not write its outputs"

"$QUOPT" train run.toml
"$QUOPT" train run.toml --out run2
for d in run1 run2; do [ -f "$d/run.h5" ] && [ -f "$d/metrics.jsonl" ] || fail "$d is incomplete"; done

python3 - <<'PY'
import json, math
def losses(d):
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in rows]
a, b = losses("run1"), losses("run2")
assert a == b, f"same seed, different losses:\n{a}\n{b}"
val = [v for _, _, v in a if v is not None]
assert len(val) >= 3, val
assert val[-1] < val[0] - 0.5, f"validation loss did not fall: {val}"
assert val[-1] < math.log(512), f"final validation loss {val[-1]} not below ln(vocab)"
print("e2e: identical losses for the same seed; val loss", val[0], "->", val[-1])
PY

h5ls -r run1/run.h5 > h5ls.txt
grep -q '^/weights/block.00/attn_q  *Dataset {32, 32}' h5ls.txt || { cat h5ls.txt; fail "h5ls does not show attn_q with its shape"; }
grep -q '^/weights/embed/weight  *Dataset {512, 32}' h5ls.txt || fail "h5ls does not show the embedding"
grep -q '^/metrics/val_loss' h5ls.txt || fail "no /metrics/val_loss"

if python3 -c "import h5py" 2>/dev/null; then
  python3 - <<'PY'
import h5py, tomllib
with h5py.File("run1/run.h5", "r") as f:
    cfg = tomllib.loads(f.attrs["config"])
    assert cfg["model"]["d_model"] == 32 and cfg["train"]["seed"] == 7
    names = []
    f["weights"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    assert "block.01/mlp_down" in names and "final_norm/weight" in names, names
    assert f["weights/block.01/mlp_down"].shape == (32, 128)
    assert f["weights/block.01/mlp_down"].attrs["dims"] == "out_features, in_features"
    assert int(f.attrs["world_size"]) == 1
    open("resolved.toml", "w").write(f.attrs["config"])
print("e2e: h5py reads the run file; config attribute parses")
PY
  # The stored config is accepted as it is and reproduces the run bitwise.
  "$QUOPT" train resolved.toml --out run3
  python3 -c "
import json
l = lambda d: [(r['step'], r.get('loss'), r.get('val_loss')) for r in map(json.loads, open(d + '/metrics.jsonl'))]
assert l('run1') == l('run3'), 'the resolved config did not reproduce the run'
print('e2e: resolved config reproduces the run')"
fi

# PTQ with two schemes, then eval: quantized losses are higher, every promised dataset is there.
"$QUOPT" ptq run.toml --run run1 --scheme rtn-w4a4 --scheme gptq-w4 > ptq.log
"$QUOPT" eval run.toml --run run1 --quant rtn-w4a4 > eval.log
python3 - <<'PY'
import h5py
with h5py.File("run1/run.h5", "r") as f:
    fp = f["eval"].attrs["val_loss"]
    assert "continuation" in f["eval/tasks"], list(f["eval/tasks"])
    for s in ("rtn-w4a4", "gptq-w4"):
        g = f["quant/" + s]
        q = g["eval"].attrs["val_loss"]
        assert q > fp, f"{s}: quantized loss {q} not above full precision {fp}"
        assert g.attrs["weight_bits"] == 4 and g.attrs["method"] == s.split("-")[0]
        assert g.attrs["act_bits"] == (4 if s.endswith("a4") else 0)
        for blk in ("block.00", "block.01"):
            for p in ("attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_down"):
                w = f[f"weights/{blk}/{p}"]
                assert g[f"weights/{blk}/{p}_error"].shape == w.shape
                assert g[f"weights/{blk}/{p}_scale"].shape == (w.shape[0],)
                x = g[f"activations/{blk}/{p}_input"]
                assert x.shape[1] == w.shape[1] and g[f"activations/{blk}/{p}_input_error"].shape == x.shape
                assert g[f"outputs/{blk}/{p}_output_error"].shape == (x.shape[0], w.shape[0])
        for t in ("acc", "acc_norm", "n"):
            assert t in g["eval/tasks/continuation"].attrs
    print(f"e2e: ptq fp {fp:.4f}, rtn-w4a4 {f['quant/rtn-w4a4/eval'].attrs['val_loss']:.4f}, "
          f"gptq-w4 {f['quant/gptq-w4/eval'].attrs['val_loss']:.4f}")
PY

# Analysis of both schemes: every module's R = A + B + C, R_L at the logits, per-layer metrics.
"$QUOPT" analyze run.toml --run run1 --quant rtn-w4a4 --quant gptq-w4 > analyze.log
python3 - <<'PY'
import h5py, math
with h5py.File("run1/run.h5", "r") as f:
    for s in ("rtn-w4a4", "gptq-w4"):
        g = f["analysis/" + s]
        mods = sorted(g["abc"])
        assert mods[0] == "000_embed" and mods[-1].endswith("_head") and len(mods) == 4 * 2 + 3, mods
        assert mods[1:5] == ["001_block.00.attn", "002_block.00.attn_norm", "003_block.00.mlp", "004_block.00.mlp_norm"], mods
        for m in mods:
            d = g["abc/" + m]
            R, A, B, C = (float(d[k][()]) for k in "RABC")
            assert abs(R - (A + B + C)) <= 1e-9 * max(R, 1e-30), (s, m, R, A, B, C)
        assert math.isclose(g.attrs["R_L"], float(g[f"abc/{mods[-1]}/R"][()]))
        assert g.attrs["R_L"] > 0 and "G1" in g[f"abc/{mods[-1]}"]
        lay = g["layers/block.01/mlp_down"].attrs
        for k in ("act_mmr", "act_mmr_mean", "act_kurtosis", "act_rms_kurtosis", "weight_mmr", "weight_kurtosis"):
            assert k in lay, k
    print("e2e: analysis R_L", {s: float(f["analysis/" + s].attrs["R_L"]) for s in ("rtn-w4a4", "gptq-w4")})
PY

# A scheme that does not fit the model (group 48 does not divide d_model = 32) is rejected before
# anything is written: the run file stays byte for byte as it was, /eval and earlier schemes included.
cp run1/run.h5 before.h5
if "$QUOPT" ptq run.toml --run run1 --scheme rtn-w4 --scheme rtn-w4g48 > badscheme.log 2>&1; then
  fail "ptq with a group size that does not divide the layers succeeded"
fi
grep -q "group size 48 does not divide the 32 input columns" badscheme.log || { cat badscheme.log; fail "unclear error"; }
cmp -s before.h5 run1/run.h5 || fail "a rejected ptq scheme changed run1/run.h5"
if "$QUOPT" eval run.toml --run run1 --quant rtn-w4g48 > badscheme.log 2>&1; then fail "eval --quant rtn-w4g48 succeeded"; fi
cmp -s before.h5 run1/run.h5 || fail "a rejected eval scheme changed run1/run.h5"
echo "e2e: a scheme that does not fit is rejected before anything is written"

# QAT with QuEST (the tied head quantized too): the run file records the scheme, and the run is
# evaluated as it was trained: /eval on the trainer's validation windows (eval.val_batches =
# train.val_batches) equals the trainer's own final validation loss. PTQ on top is refused; analyze
# measures the QAT quantization itself.
"$QUOPT" train run.toml --out qat --set quant.qat=quest --set quant.qat_head=true --set quant.hadamard_block=32 \
  --set train.steps=10 > qat.log
"$QUOPT" eval run.toml --run qat --set eval.val_batches=2 > qat_eval.log 2>&1
grep -q "trained with quest-w4a4-head arithmetic" qat_eval.log || { cat qat_eval.log; fail "no note that the run's own QAT setting is used"; }
cp qat/run.h5 qat_before.h5
if "$QUOPT" ptq run.toml --run qat --scheme rtn-w4a4 > qat_ptq.log 2>&1; then fail "ptq of a QAT run succeeded"; fi
grep -q "is a QAT run" qat_ptq.log || { cat qat_ptq.log; fail "unclear error for ptq of a QAT run"; }
cmp -s qat_before.h5 qat/run.h5 || fail "a refused ptq changed qat/run.h5"
if "$QUOPT" export run.toml --run qat --to hf_qat --quant rtn-w4 > qat_export.log 2>&1; then fail "export --quant of a QAT run succeeded"; fi
grep -q "is a QAT run" qat_export.log || { cat qat_export.log; fail "unclear error for export --quant of a QAT run"; }
[ ! -e hf_qat ] || fail "a refused export created its directory"
"$QUOPT" export run.toml --run qat --to hf_qat > qat_export.log 2>&1
grep -q "export holds the latent weights" qat_export.log || { cat qat_export.log; fail "export of a QAT run did not say what it holds"; }
"$QUOPT" analyze run.toml --run qat > qat_analyze.log
python3 - <<'PY'
import h5py, math, tomllib
with h5py.File("qat/run.h5", "r") as f:
    cfg = tomllib.loads(f.attrs["config"])
    assert cfg["quant"]["qat"] == "quest" and cfg["quant"]["qat_head"] is True, cfg["quant"]
    trained = float(f["metrics/val_loss"][-1])
    ev = f["eval"].attrs
    assert ev["arithmetic"] == "quest-w4a4-head", ev["arithmetic"]
    assert int(ev["tokens"]) == 2 * 4 * 32, ev["tokens"]  # train.val_batches x micro_batch_size x seq_len
    assert abs(ev["val_loss"] - trained) <= 1e-9 * trained, (ev["val_loss"], trained)
    assert "quant" not in f, list(f)
    g = f["analysis/qat"]
    assert g.attrs["arithmetic"] == "quest-w4a4-head" and g.attrs["R_L"] > 0, dict(g.attrs)
    for m in g["abc"]:
        R, A, B, C = (float(g[f"abc/{m}/{k}"][()]) for k in "RABC")
        assert abs(R - (A + B + C)) <= 1e-9 * max(R, 1e-30), (m, R, A, B, C)
    print(f"e2e: QAT run evaluated as trained: /eval {ev['val_loss']:.6f} = trainer {trained:.6f}; "
          f"R_L of its QuEST quantization {g.attrs['R_L']:.4g}")
PY

# Bad input: clear message, non-zero exit, nothing written.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  if "$QUOPT" "$@" > out.txt 2>&1; then fail "quopt $* succeeded; expected an error"; fi
  grep -q -- "$pattern" out.txt || { cat out.txt; fail "error for 'quopt $*' does not mention '$pattern'"; }
}
expect_error "did you mean 'train.steps'" train run.toml --set train.stepz=3 --out bad1
[ ! -e bad1 ] || fail "a rejected config created its output directory"
expect_error "optimizer.lr" train run.toml --set optimizer.lr=-1 --out bad2
[ ! -e bad2 ] || fail "a rejected config created its output directory"
echo "not a shard" > junk.bin
expect_error "junk.bin" train run.toml --set data.train=junk.bin --out bad3
[ ! -e bad3 ] || fail "a rejected data file created the output directory"
expect_error "no_such.toml" train no_such.toml
echo "e2e: OK"
