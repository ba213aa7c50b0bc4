"""quopt against transformers itself: export, import and tokenizers (docs/interop.md).

Runs only where torch and transformers import (scripts/test-hf.sh makes such a venv; scripts/test.sh
does not install torch), and skips with a message otherwise. Needs the quopt binary: $QUOPT_BIN, or
else the newest build/*/quopt.

- export: tiny quopt models (ReLU^2 with a tied head; SwiGLU with grouped KV heads and an untied head)
  are trained for a few steps, exported, loaded with AutoModelForCausalLM (no custom code), and their
  logits on the tokens of `quopt eval --logits` compared with quopt's, and the mean loss too;
- import: small Olmo2 models built in transformers from a config (random weights, save_pretrained,
  single file and sharded, f32 and bf16) are imported and evaluated by quopt on random tokens, and
  quopt's logits compared with transformers';
- tokenizers: the exported SentencePiece tokenizer loaded by AutoTokenizer, and byte-level BPE
  tokenizer.json files trained with the `tokenizers` library read by quopt, encode the same text to
  the same ids.

Numbers are printed (pytest -s shows them); scripts/test-hf.sh collects them.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/test-hf.sh makes a venv with it)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (scripts/test-hf.sh)")
np = pytest.importorskip("numpy")
from safetensors.numpy import load_file  # noqa: E402  (transformers depends on safetensors)

REPO = Path(__file__).resolve().parents[2]
# fp32 rounding: the two implementations order their sums differently (BLAS vs torch GEMMs, attention
# in one pass vs softmax then matmul), so logits agree to a few ulps of their magnitude, not bitwise.
REL_TOL = 1e-5


def quopt_bin():
    env = os.environ.get("QUOPT_BIN")
    if env:
        return Path(env)
    found = sorted(REPO.glob("build/*/quopt"), key=lambda p: p.stat().st_mtime)
    if not found:
        pytest.skip("no quopt binary (set QUOPT_BIN or build one under build/)")
    return found[-1]


def run(*args, cwd):
    proc = subprocess.run([str(quopt_bin()), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"quopt {' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def rel_diff(a, b):
    """max |a - b| / max |b|: the largest logit error relative to the logits' scale."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def report(name, value):
    print(f"\nHF-INTEROP {name} = {value:.3e}")
    with open(os.environ.get("QUOPT_HF_REPORT", os.devnull), "a") as f:
        f.write(f"{name} {value:.3e}\n")


def hf_logits(model_dir, tokens):
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert type(model).__name__ == "Olmo2ForCausalLM"
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(tokens.astype(np.int64)))
    return out.logits.numpy()


def write_shard(path, tokens, vocab):
    """A quopt token shard (docs/data.md: QUOPTTOK, version 1, width, count, vocabulary)."""
    width = 2 if vocab <= 65536 else 4
    header = b"QUOPTTOK" + np.array([1, width], "<u4").tobytes() + np.array([len(tokens), vocab], "<u8").tobytes()
    Path(path).write_bytes(header + np.asarray(tokens, "<u2" if width == 2 else "<u4").tobytes())


CORPUS_WORDS = ("the a one of to and in that is was he for it with as his on be at by i this had not are but "
                "from or have an they which you were her she there would their we him been has when who will "
                "more no if out so said what up its about into than them can only other new some could time "
                "these two may then do first any my now such like our over man me even most made after also "
                "did many before must through back years where much your way well down should because each "
                "just those people how too little state good very make world still own see men work long get "
                "here between both life being under never day same another know while last might us great old "
                "year off come since against go came right used take three").split()


def make_corpus(path, docs, seed):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(CORPUS_WORDS) + 1)
    p /= p.sum()
    with open(path, "w") as f:
        for _ in range(docs):
            for _ in range(rng.integers(2, 5)):
                words = rng.choice(CORPUS_WORDS, size=rng.integers(6, 16), p=p)
                f.write(" ".join(words).capitalize() + ".\n")
            f.write("\n")


def train_quopt(tmp, name, model_toml):
    make_corpus(tmp / "corpus.txt", 400, 1)
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f"""
[model]
name = "{name}"
{model_toml}
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
steps = 30
batch_size = 8
micro_batch_size = 4
seed = 3
log_every = 10
val_every = 30
val_batches = 1
[optimizer]
lr = 3e-3
[eval]
builtin_examples = 0
val_batches = 2
[output]
dir = "{name}"
""")
    if not (tmp / "tok" / "val.bin").exists():
        run("tokenize", cfg, cwd=tmp)
    run("train", cfg, cwd=tmp)
    return cfg


@pytest.mark.parametrize("mlp", ["relu2", "swiglu"])
def test_exported_model_matches_transformers(tmp_path, mlp):
    model_toml = ('d_model = 32\nn_layers = 2\nn_heads = 4\nn_kv_heads = 4\nmlp = "relu2"\n' if mlp == "relu2" else
                  'd_model = 32\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nmlp = "swiglu"\nmlp_ratio = 2.75\n'
                  'tie_embeddings = false\nz_loss = 1e-4\n')
    cfg = train_quopt(tmp_path, mlp, model_toml)
    run("export", cfg, "--run", mlp, "--to", "hf", cwd=tmp_path)
    run("eval", cfg, "--run", mlp, "--logits", "logits.safetensors", cwd=tmp_path)
    q = load_file(tmp_path / "logits.safetensors")
    ref = hf_logits(tmp_path / "hf", q["tokens"])
    d = rel_diff(q["logits"], ref)
    report(f"export_{mlp}_max_rel_logit_diff", d)
    assert d < REL_TOL
    # The loss: transformers' cross-entropy on the same targets, against quopt's per-token loss.
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(ref).reshape(-1, ref.shape[-1]),
                                           torch.from_numpy(q["targets"].astype(np.int64)).reshape(-1),
                                           reduction="none").numpy()
    report(f"export_{mlp}_max_abs_loss_diff", float(np.max(np.abs(ce - q["loss"].reshape(-1)))))
    assert np.allclose(ce, q["loss"].reshape(-1), rtol=1e-5, atol=1e-5)
    if mlp == "relu2":  # ReLU^2 as relu(gate x) * (up x): the two projections are the same tensor
        w = load_file(tmp_path / "hf" / "model.safetensors")
        assert np.array_equal(w["model.layers.0.mlp.gate_proj.weight"], w["model.layers.0.mlp.up_proj.weight"])
        assert "lm_head.weight" not in w  # tied, as transformers stores it


def hf_model(tmp, name, dtype=torch.float32, shard=None, **overrides):
    args = dict(vocab_size=300, hidden_size=48, intermediate_size=104, num_hidden_layers=2, num_attention_heads=6,
                num_key_value_heads=2, max_position_embeddings=24, rms_norm_eps=1e-6, rope_theta=10000.0,
                tie_word_embeddings=False, hidden_act="silu", eos_token_id=0, pad_token_id=0, bos_token_id=None)
    args.update(overrides)
    torch.manual_seed(0)
    model = transformers.Olmo2ForCausalLM(transformers.Olmo2Config(**args))
    with torch.no_grad():  # random gains too, so a mapping error between norms cannot hide
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
    model = model.to(dtype)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(tmp / name, safe_serialization=True, **kw)
    return model


@pytest.mark.parametrize("case", ["f32", "sharded", "bf16", "tied_relu2"])
def test_imported_model_matches_transformers(tmp_path, case):
    kw = {}
    if case == "sharded":
        kw["shard"] = "40KB"
    if case == "bf16":
        kw["dtype"] = torch.bfloat16
    if case == "tied_relu2":
        kw.update(tie_word_embeddings=True, hidden_act="relu")
    model = hf_model(tmp_path, "hf", **kw)
    if case == "sharded":
        assert (tmp_path / "hf" / "model.safetensors.index.json").exists()
    if case == "tied_relu2":  # quopt's ReLU^2 form: gate = up
        with torch.no_grad():
            for layer in model.model.layers:
                layer.mlp.gate_proj.weight.copy_(layer.mlp.up_proj.weight)
        model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    run("import", "hf", "--out", "imp", cwd=tmp_path)
    rng = np.random.default_rng(5)
    write_shard(tmp_path / "val.bin", rng.integers(0, 300, size=4 * 24 + 1), 300)
    run("eval", "imp/config.toml", "--run", "imp", "--set", "data.val=val.bin", "--set", "train.micro_batch_size=4",
        "--set", "eval.val_batches=1", "--logits", "logits.safetensors", cwd=tmp_path)
    q = load_file(tmp_path / "logits.safetensors")
    # Loaded from disk in f32 as quopt loads it (bf16 weights are exact in f32; an in-memory .float()
    # would keep the RoPE frequencies rounded to bf16).
    ref = hf_logits(tmp_path / "hf", q["tokens"])
    d = rel_diff(q["logits"], ref)
    report(f"import_{case}_max_rel_logit_diff", d)
    assert d < REL_TOL


def test_import_rejects_gated_relu(tmp_path):
    hf_model(tmp_path, "hf", hidden_act="relu")  # gate != up: not quopt's ReLU^2
    proc = subprocess.run([str(quopt_bin()), "import", "hf", "--out", "imp"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert "gated ReLU MLP" in proc.stderr, proc.stderr
    assert not (tmp_path / "imp" / "run.h5").exists()


def quopt_tokens(tmp, tokenizer, docs):
    """quopt's ids of each document (quopt tokenize with an existing tokenizer, val_fraction 0)."""
    (tmp / "docs.txt").write_text("\n\n".join(docs) + "\n")
    (tmp / "tok.toml").write_text(f"""
[tokenize]
inputs = ["docs.txt"]
out_dir = "out"
tokenizer = "{tokenizer}"
val_fraction = 0.0
[model]
vocab_size = 100000
""")
    run("tokenize", "tok.toml", cwd=tmp)
    raw = (tmp / "out" / "train.bin").read_bytes()
    width = int(np.frombuffer(raw[12:16], "<u4")[0])
    return np.frombuffer(raw[32:], "<u2" if width == 2 else "<u4").astype(np.int64)


TEXTS = ["Hello world, it's 2024: the café's naïve résumé costs $3.50!", "  leading spaces\tand\ttabs   ",
         "numbers 1234567 and 3.14159; ÆØÅ ĳ 漢字 かな 🙂 emoji", "Don't won't I'll we've they're.",
         "line one\nline two\n\nnot a new document here", "<|endoftext|> inside text <|endoftext|>"]


@pytest.mark.parametrize("style", ["gpt2", "llama3_split"])
def test_bpe_tokenizer_json_matches_tokenizers(tmp_path, style):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
    tok = tokenizers.Tokenizer(models.BPE())
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:  # Llama 3 / cl100k pattern as a Split step, then ByteLevel without its own regex
        pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                   r"|\s*[\r\n]+|\s+(?!\S)|\s+")
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    make_corpus(tmp_path / "train.txt", 300, 2)
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(tmp_path / "train.txt")], trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    # Documents without blank lines (quopt tokenize splits documents at blank lines).
    docs = [t.replace("\n\n", "\n") for t in TEXTS] + open(tmp_path / "train.txt").read().split("\n\n")[:50]
    docs = [d.strip("\n") for d in docs if d.strip()]
    eos = tok.token_to_id("<|endoftext|>")
    want = np.concatenate([np.array(tok.encode(d).ids + [eos], np.int64) for d in docs])
    got = quopt_tokens(tmp_path, "tokenizer.json", docs)
    agree = float(np.mean(got == want)) if len(got) == len(want) else 0.0
    report(f"bpe_{style}_token_agreement", agree)
    assert len(got) == len(want) and np.array_equal(got, want)


def test_exported_sentencepiece_tokenizer_loads_in_transformers(tmp_path):
    cfg = train_quopt(tmp_path, "relu2", 'd_model = 32\nn_layers = 1\nn_heads = 4\nmlp = "relu2"\n')
    run("export", cfg, "--run", "relu2", "--to", "hf", cwd=tmp_path)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    docs = [d.strip() for d in open(tmp_path / "corpus.txt").read().split("\n\n")[:40] if d.strip()]
    docs += ["Hello world, the naive man said.", "one two three"]
    # quopt's own ids of each document (its tokenizer, no training).
    sub = tmp_path / "t2"
    sub.mkdir()
    (sub / "tokenizer.model").write_bytes((tmp_path / "tok" / "tokenizer.model").read_bytes())
    got = quopt_tokens(sub, "tokenizer.model", docs)
    eos = hf_tok.eos_token_id
    want = np.concatenate([np.array(hf_tok(d, add_special_tokens=True)["input_ids"] + [eos], np.int64)
                           for d in docs])
    agree = float(np.mean(got == want)) if len(got) == len(want) else 0.0
    report("export_sentencepiece_token_agreement", agree)
    assert len(got) == len(want) and np.array_equal(got, want)
