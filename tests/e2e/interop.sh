#!/usr/bin/env bash
# End-to-end Hugging Face interop (docs/interop.md), no network and no torch:
#   train a tiny model -> quopt export -> quopt import -> the same weights bitwise and the same eval
#   numbers (validation loss, built-in task, a JSONL task) and logits; quopt ptq then export --quant ->
#   import -> the PTQ weights; a tokenizer.json model evaluates tasks; and bad input (an existing export
#   directory, a foreign model_type, a truncated or incomplete checkpoint) is rejected with a clear
#   message and nothing written.
# Usage: interop.sh QUOPT_BINARY SOURCE_DIR
set -euo pipefail
QUOPT=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 300
cat > task.jsonl <<'JSONL'
{"context": "The king said", "choices": [" unto them", " the python module"], "label": 0}
{"context": "Import the", "choices": [" module", " king"], "label": 0}
{"context": "And it came to", "choices": [" pass", " config"], "label": 0}
JSONL
cat > run.toml <<TOML
[model]
name = "interop-tiny"
d_model = 32
n_layers = 2
n_heads = 4
n_kv_heads = 2
mlp = "swiglu"
tie_embeddings = false
vocab_size = 512
seq_len = 32
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tok"
vocab_size = 512
val_fraction = 0.1
[data]
train = "tok/train.bin"
val = "tok/val.bin"
tokenizer = "tok/tokenizer.model"
[train]
steps = 10
batch_size = 8
micro_batch_size = 4
seed = 7
log_every = 10
val_every = 10
val_batches = 1
[optimizer]
lr = 3e-3
[quant]
calibration_batches = 1
[eval]
builtin_examples = 20
val_batches = 2
tasks = ["task.jsonl"]
[output]
dir = "run"
TOML
"$QUOPT" tokenize run.toml > /dev/null
"$QUOPT" train run.toml > /dev/null

# --- round trip: export -> import gives the same weights and the same eval numbers ------------------
"$QUOPT" export run.toml --run run --to hf | tee export.log
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do [ -s "hf/$f" ] || fail "export did not write $f"; done
"$QUOPT" import hf --out imp | tee import.log
[ -f imp/run.h5 ] && [ -f imp/config.toml ] && [ -f imp/tokenizer.model ] || fail "import did not write its outputs"
# The imported config, with this run's data and eval settings.
EVAL_SETS=(--set data.train=tok/train.bin --set data.val=tok/val.bin --set eval.builtin_examples=20
           --set eval.val_batches=2 --set eval.tasks=task.jsonl --set train.micro_batch_size=4 --set quant.calibration_batches=1)
"$QUOPT" eval run.toml --run run --logits run_logits.safetensors | grep "full precision" > eval_run.txt
"$QUOPT" eval imp/config.toml --run imp "${EVAL_SETS[@]}" --logits imp_logits.safetensors | grep "full precision" > eval_imp.txt
cat eval_run.txt eval_imp.txt
cmp eval_run.txt eval_imp.txt || fail "the imported model evaluates differently"
grep -q "task acc" eval_imp.txt || fail "the JSONL task was not evaluated"
python3 - <<'PY'
import json, h5py, numpy as np

def weights(path):
    out = {}
    with h5py.File(path) as f:
        f["weights"].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out

def safetensors(path):  # the format by hand: u64 length, JSON header, raw little-endian tensors
    raw = open(path, "rb").read()
    n = int(np.frombuffer(raw[:8], "<u8")[0])
    header = json.loads(raw[8:8 + n])
    dt = {"F32": "<f4", "I32": "<i4"}
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}

a, b = weights("run/run.h5"), weights("imp/run.h5")
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
for k in a:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)), k
with h5py.File("run/run.h5") as f, h5py.File("imp/run.h5") as g:
    for key in ("val_loss", "perplexity", "tokens"):
        assert f["eval"].attrs[key] == g["eval"].attrs[key], key
    for t in f["eval/tasks"]:
        assert f["eval/tasks"][t].attrs["acc_norm"] == g["eval/tasks"][t].attrs["acc_norm"], t
la, lb = safetensors("run_logits.safetensors"), safetensors("imp_logits.safetensors")
for k in ("tokens", "targets", "logits", "loss"):
    assert np.array_equal(la[k], lb[k]), k
assert la["logits"].shape == (4, 32, 512), la["logits"].shape
# Per-token losses are the cross-entropy of the logits.
lg = la["logits"].astype(np.float64)
lse = np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1)) + lg.max(-1)
ce = lse - np.take_along_axis(lg, la["targets"][..., None].astype(np.int64), -1)[..., 0]
assert np.allclose(ce, la["loss"], atol=1e-5), np.abs(ce - la["loss"]).max()
h = json.load(open("hf/config.json"))
assert h["model_type"] == "olmo2" and h["hidden_act"] == "silu" and h["num_key_value_heads"] == 2, h
assert h["tie_word_embeddings"] is False and h["rms_norm_eps"] == 1e-6 and h["rope_theta"] == 500000.0, h
print("round trip: bitwise weights, same eval numbers and logits")
PY

# --- export --quant: the fake-quantized weights of a PTQ scheme --------------------------------------
"$QUOPT" ptq run.toml --run run --scheme rtn-w4 > /dev/null
"$QUOPT" export run.toml --run run --to hfq --quant rtn-w4a4 | tee exportq.log
grep -q "cannot express" exportq.log || fail "export --quant rtn-w4a4 did not say activations are left out"
"$QUOPT" import hfq --out impq > /dev/null
"$QUOPT" eval impq/config.toml --run impq "${EVAL_SETS[@]}" > /dev/null
python3 - <<'PY'
import h5py, numpy as np
with h5py.File("run/run.h5") as f, h5py.File("impq/run.h5") as g:
    n = 0
    for name, err in f["quant/rtn-w4/weights"].items():
        for p, e in err.items():
            if not p.endswith("_error"):
                continue
            w = f[f"weights/{name}/{p[:-6]}"][()]
            q = g[f"weights/{name}/{p[:-6]}"][()]
            assert np.allclose(q, w - e[()], rtol=0, atol=1e-6), (name, p)
            assert not np.array_equal(q, w)
            n += 1
    assert n > 0
    # The weights-only export evaluates as quopt's W4 (no activation quantization).
    assert abs(f["quant/rtn-w4/eval"].attrs["val_loss"] - g["eval"].attrs["val_loss"]) < 1e-6
print("export --quant: fake-quantized weights, W4 evaluation")
PY

# --- a tokenizer.json model (a copy with a byte-level BPE tokenizer) evaluates tasks -----------------
mkdir hfb
cp hf/config.json hf/model.safetensors hfb/
python3 - <<'PY'
import json
def byte_char(b):
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    return chr(b) if b in printable else chr(256 + [c for c in range(256) if c not in printable].index(b))
vocab = {byte_char(b): b for b in range(256)}
merges = []
for a, b in [("t", "h"), ("th", "e"), ("Ġ", "the"), ("i", "n"), ("Ġ", "a")]:
    vocab[a + b] = len(vocab)
    merges.append(f"{a} {b}")
json.dump({"version": "1.0", "added_tokens": [{"id": 511, "content": "<|endoftext|>", "special": True}],
           "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
           "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": vocab, "merges": merges}},
          open("hfb/tokenizer.json", "w"))
PY
"$QUOPT" import hfb --out impb > /dev/null
grep -q 'tokenizer = ".*impb/tokenizer.json"' impb/config.toml || fail "import did not set data.tokenizer to tokenizer.json"
# A tokenizer quopt cannot read: imported with a warning, without data.tokenizer.
mkdir hfn && cp hfb/config.json hfb/model.safetensors hfn/
python3 -c "import json; t = json.load(open('hfb/tokenizer.json')); t['normalizer'] = {'type': 'NFKC'}; json.dump(t, open('hfn/tokenizer.json', 'w'))"
"$QUOPT" import hfn --out impn > /dev/null 2> warn.txt
grep -q "normalizer NFKC is not supported" warn.txt || fail "no warning for an unreadable tokenizer"
grep -q '^tokenizer = ""' impn/config.toml || fail "an unreadable tokenizer was set as data.tokenizer"
cat > tokb.toml <<TOML
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tokb"
tokenizer = "impb/tokenizer.json"
val_fraction = 0.1
[model]
vocab_size = 512
TOML
"$QUOPT" tokenize tokb.toml > /dev/null
[ -s tokb/val.bin ] && [ -s tokb/tokenizer.json ] || fail "tokenize with tokenizer.json wrote nothing"
"$QUOPT" eval impb/config.toml --run impb --set data.val=tokb/val.bin --set eval.builtin_examples=10 \
  --set eval.val_batches=1 --set eval.tasks=task.jsonl --set train.micro_batch_size=4 | tee evalb.txt
grep -q "continuation acc" evalb.txt && grep -q "task acc" evalb.txt || fail "tokenizer.json model: tasks not evaluated"

# --- bad input: clear messages, nothing written ------------------------------------------------------
expect_fail() {  # expect_fail "message part" command...
  local want=$1
  shift
  if "$@" > out.txt 2> err.txt; then fail "expected failure: $*"; fi
  grep -qF -- "$want" err.txt || { cat err.txt; fail "message lacks '$want': $*"; }
}
sum_before=$(md5sum hf/model.safetensors)
expect_fail "already holds config.json" "$QUOPT" export run.toml --run run --to hf
[ "$(md5sum hf/model.safetensors)" = "$sum_before" ] || fail "a refused export changed hf/"
expect_fail "already holds run.h5" "$QUOPT" import hf --out imp
mkdir llama && cp hf/model.safetensors llama/ && sed 's/"olmo2"/"llama"/' hf/config.json > llama/config.json
expect_fail '"model_type" is "llama"; quopt imports only "olmo2"' "$QUOPT" import llama --out bad1
mkdir trunc && cp hf/config.json trunc/ && head -c 5000 hf/model.safetensors > trunc/model.safetensors
expect_fail "the file is truncated" "$QUOPT" import trunc --out bad2
mkdir miss && cp hf/config.json miss/ && python3 - <<'PY'
import json, numpy as np
raw = open("hf/model.safetensors", "rb").read()
n = int(np.frombuffer(raw[:8], "<u8")[0])
h = json.loads(raw[8:8 + n])
h.pop("__metadata__", None)
drop = "model.layers.1.self_attn.k_norm.weight"
keep = sorted((k for k in h if k != drop), key=lambda k: h[k]["data_offsets"][0])
data, off, out = b"", 0, {}
for k in keep:
    b, e = h[k]["data_offsets"]
    out[k] = dict(h[k], data_offsets=[off, off + e - b])
    data += raw[8 + n + b:8 + n + e]
    off += e - b
hdr = json.dumps(out).encode()
open("miss/model.safetensors", "wb").write(np.array([len(hdr)], "<u8").tobytes() + hdr + data)
PY
expect_fail 'has no tensor "model.layers.1.self_attn.k_norm.weight"' "$QUOPT" import miss --out bad3
sed 's/"hidden_act": "silu"/"hidden_act": "gelu"/' hf/config.json > hfb/config.json
expect_fail '"hidden_act" = "gelu" is not supported' "$QUOPT" import hfb --out bad4
for d in bad1 bad2 bad3 bad4; do [ ! -e "$d/run.h5" ] || fail "$d/run.h5 written despite the error"; done
expect_fail "model.qk_norm = false cannot be exported" "$QUOPT" export run.toml --run run --to bad5 --set model.qk_norm=false
[ ! -e bad5/model.safetensors ] || fail "a refused export wrote bad5"
echo "interop e2e: OK"
