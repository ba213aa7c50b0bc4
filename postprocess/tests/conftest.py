"""Synthetic quopt run files, written with h5py following docs/run-file.md."""

import os

# Single-threaded BLAS before numpy loads (see quopt_post/__init__.py): keeps the fits fast.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # postprocess/ without pip install


def config_toml(model: str, d_model: int, optimizer: str, lr: float, seed: int, qat: str | None) -> str:
    text = f"""[model]
name = "{model}"
d_model = {d_model}
n_layers = 2

[optimizer]
name = "{optimizer}"
lr = {lr!r}
weight_decay = 0.1

[train]
seed = {seed}
tokens_per_param = 20.0
"""
    if qat is not None:
        text += f'\n[quant]\nqat = "{qat}"\n'
    return text


def _eval(group: h5py.Group, val_loss: float, tasks: dict | None, window_loss=None, items: dict | None = None,
          weights: dict | None = None) -> None:
    """items: task -> (correct, correct_norm) per-example 0/1 arrays; weights: the step attributes."""
    group.attrs["val_loss"] = np.float64(val_loss)
    group.attrs["perplexity"] = np.float64(np.exp(val_loss))
    group.attrs["tokens"] = np.int64(4096)
    if window_loss is not None:
        group["window_loss"] = np.asarray(window_loss, dtype=np.float64)
    for key, value in (weights or {}).items():
        group.attrs[key] = value
    for task, acc in (tasks or {}).items():
        t = group.create_group(f"tasks/{task}")
        acc, acc_norm = acc if isinstance(acc, tuple) else (acc, acc)
        t.attrs["acc"] = np.float64(acc)
        t.attrs["acc_norm"] = np.float64(acc_norm)
        t.attrs["n"] = np.int64(100)
        if items and task in items:
            t["correct"] = np.asarray(items[task][0], dtype=np.int32)
            t["correct_norm"] = np.asarray(items[task][1], dtype=np.int32)


ABC_MODULES = ["embed"] + [f"block.{b:02d}.{m}" for b in range(2) for m in ("attn", "attn_norm", "mlp", "mlp_norm")] + [
    "final_norm",
    "head",
]


def write_run(
    path: Path,
    *,
    optimizer: str = "adamw",
    parameters: int = 1_000_000,
    lr: float = 1e-3,
    seed: int = 1,
    qat: str | None = None,
    model: str | None = None,
    tokens: float | None = None,
    train_loss: float = 3.0,
    val_loss: float | None = None,
    fp_eval: dict | None = None,  # {"val_loss": x, "tasks": {...}}; None: no /eval group
    schemes: dict | None = None,  # name -> {"val_loss", "tasks", "analysis": {...}, "abc": [R...] }
    config: str | None = None,
    study: dict | None = None,  # /study attributes
    robustness: dict | None = None,  # name -> values: /metrics/robustness_<name> (tracked in training)
) -> Path:
    """Write one run file; returns its path. Absent arguments mean absent groups."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = 20.0 * parameters if tokens is None else tokens
    val_loss = train_loss + 0.05 if val_loss is None else val_loss
    with h5py.File(path, "w") as f:
        f.attrs["quopt_version"] = "0.1.0"
        f.attrs["git_revision"] = "deadbeef"
        f.attrs["seed"] = np.int64(seed)
        f.attrs["world_size"] = np.int64(1)
        f.attrs["config"] = config if config is not None else config_toml(
            model or f"m{parameters}", 64, optimizer, lr, seed, qat
        )
        f.attrs["model_name"] = model or f"m{parameters}"
        f.attrs["parameters"] = np.int64(parameters)
        f.attrs["non_embedding_parameters"] = np.int64(parameters * 3 // 4)
        w = f.create_dataset("weights/block.00/attn_q", data=np.zeros((4, 4), np.float32))
        w.attrs["role"] = "hidden"
        w.attrs["dims"] = "out_features, in_features"
        steps = np.arange(1, 11, dtype=np.float64)
        f["metrics/train_step"] = steps
        f["metrics/tokens"] = steps * tokens / 10
        f["metrics/train_loss"] = np.linspace(train_loss + 2, train_loss, 10)
        f["metrics/lr"] = np.full(10, lr)
        f["metrics/grad_norm"] = np.ones(10)
        f["metrics/val_step"] = np.array([0.0, 10.0])
        f["metrics/val_loss"] = np.array([val_loss + 3, val_loss])
        if study is not None:
            g = f.create_group("study")
            for key, value in study.items():
                g.attrs[key] = value
        for name, values in (robustness or {}).items():
            f[f"metrics/robustness_{name}"] = np.asarray(values, dtype=np.float64)
        if fp_eval is not None:
            _eval(f.create_group("eval"), fp_eval["val_loss"], fp_eval.get("tasks"), fp_eval.get("window_loss"),
                  fp_eval.get("items"), fp_eval.get("weights"))
        for name, s in (schemes or {}).items():
            q = f.create_group(f"quant/{name}")
            q.attrs["method"] = name.split("-")[0]
            q.attrs["weight_bits"] = np.int64(4)
            q.attrs["act_bits"] = np.int64(4 if "a4" in name else 0)
            q.attrs["granularity"] = "row"
            q.attrs["group_size"] = np.int64(0)
            q.attrs["layers"] = "hidden"
            for key, value in s.get("weights", {}).items():
                q.attrs[key] = value
            if "val_loss" in s:
                _eval(q.create_group("eval"), s["val_loss"], s.get("tasks"), s.get("window_loss"), s.get("items"))
            if "analysis" in s or "abc" in s:
                a = f.create_group(f"analysis/{name}")
                for k, v in s.get("analysis", {}).items():
                    a.attrs[k] = np.float64(v)
                lay = a.create_group("layers/block.00/attn_q")
                lay.attrs["act_mmr"] = np.float64(3.0)
                for i, R in enumerate(s.get("abc", [])):
                    g = a.create_group(f"abc/{i:03d}_{ABC_MODULES[i % len(ABC_MODULES)]}")
                    A, B = 0.6 * R, 0.3 * R
                    for key, value in {"R": R, "A": A, "B": B, "C": R - A - B, "G": 1.1}.items():
                        g.create_dataset(key, data=np.float64(value))
    return path


@pytest.fixture
def make_run():
    return write_run


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    return path


def write_foreign(path: Path) -> Path:
    """A valid HDF5 file that is not a quopt run file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(5)
        f.attrs["creator"] = "someone else"
    return path


TASKS = ("arc_easy", "hellaswag", "piqa")


@pytest.fixture
def study(tmp_path):
    """A small study: 3 optimizers x 3 sizes, FP + QAT, two PTQ schemes, with the ground truth."""
    runs = tmp_path / "runs"
    truth = []
    rng = np.random.default_rng(42)
    sizes = [1_000_000, 3_000_000, 10_000_000]
    opt_quality = {"adamw": 0.0, "muon": -0.02, "shampoo": 0.01}
    for opt, dq in opt_quality.items():
        for n in sizes:
            for qat in (None, "quest"):
                fp_loss = 2.0 + 30.0 / n**0.3 + dq + (0.05 if qat else 0.0)
                fp_tasks = {t: 0.4 + 0.02 * k + 0.01 * np.log10(n) for k, t in enumerate(TASKS)}
                schemes = {}
                for scheme, scale in (("rtn-w4a4", 1.0), ("gptq-w4", 0.3)):
                    inc = scale * float(rng.uniform(0.05, 0.5))
                    drops = {t: scale * float(rng.uniform(0.0, 0.1)) for t in TASKS}
                    schemes[scheme] = {
                        "val_loss": fp_loss + inc,
                        "tasks": {t: fp_tasks[t] - drops[t] for t in TASKS},
                        "analysis": {
                            "R_L": inc / 2,  # linear in the loss increase
                            "mmr_mean": float(np.exp(inc)),  # monotone in the loss increase
                            "mmr_max": float(rng.uniform(1, 10)),
                            "mmr_tomean_mean": 1.0 + 4.0 * inc,  # linear in the loss increase
                            "mmr_tomean_max": 8.0 - inc,  # decreasing in it
                            "kurtosis_mean": float(rng.uniform(3, 30)),
                            "kurtosis_max": float(rng.uniform(3, 300)),
                        },
                        "abc": [1e-4 * (k + 1) * (1 + inc) for k in range(len(ABC_MODULES))],
                    }
                    truth.append(
                        dict(optimizer=opt, n=n, qat=qat or "none", scheme=scheme, inc=inc,
                             drop=float(np.mean(list(drops.values()))))
                    )
                d = runs / opt / f"n{n}" / ("qat" if qat else "fp")
                steps = np.array([0.0, 5.0, 10.0])  # tracked at steps 0, 5, 10 (FP runs only)
                track = None if qat else {
                    "step": steps, "tokens": steps * 2.0 * n, "loss_increase": [0.5, 0.1, 0.2 + dq],
                    "R_L": [0.3, 0.01, 0.02], "mmr_tomean_mean": [4.0, 5.0, 6.0], "mmr_mean": [1e4, 3.0, 9e8],
                    "kurtosis_mean": [3.0, 8.0, 20.0],
                }
                write_run(d / "run.h5", optimizer=opt, parameters=n, qat=qat,
                          fp_eval={"val_loss": fp_loss, "tasks": fp_tasks}, schemes=schemes, robustness=track)
    return runs, truth
