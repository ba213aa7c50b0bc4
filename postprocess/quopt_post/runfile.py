"""Reading quopt run files (``DIR/run.h5``).

The layout is the contract in docs/run-file.md. Everything here is tolerant: a group that is absent
gives ``None`` / an empty dict, so that a run that was trained but not yet quantized, evaluated or
analysed still yields what it has. Only two things make a file unusable:

* it cannot be opened as HDF5 (corrupt, truncated, not HDF5)      -> :class:`UnreadableRunFile`
* it is HDF5 but has neither the root attribute ``config`` nor ``quopt_version``
  (some other program's file)                                      -> :class:`NotARunFile`
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

RUN_FILE_NAME = "run.h5"


class NotARunFile(Exception):
    """An HDF5 file that was not written by quopt."""


class UnreadableRunFile(Exception):
    """A file that h5py cannot open or read (corrupt, truncated, not HDF5)."""


@dataclass
class EvalResult:
    """One evaluation: /eval or /quant/<scheme>/eval."""

    val_loss: float | None = None
    perplexity: float | None = None
    tokens: float | None = None
    # task -> {"acc": float, "acc_norm": float, "n": float}
    tasks: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per-window validation losses (/eval/window_loss) and per-example outcomes
    # (/eval/tasks/<task>/correct, correct_norm as "acc", "acc_norm"): what paired confidence intervals
    # resample. Absent in files written before they were recorded.
    window_loss: np.ndarray | None = None
    items: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # Which weights were evaluated: step, final_step, train_tokens, protocol, train_val_loss, threshold.
    weights: dict[str, Any] = field(default_factory=dict)


@dataclass
class AbcModule:
    """One module of the ABC chain: /analysis/<scheme>/abc/<NNN>_<module>."""

    index: int
    module: str
    values: dict[str, float]  # R, A, B, C, G and for linear modules G1, G2


@dataclass
class SchemeResult:
    """Everything stored for one PTQ scheme."""

    name: str
    attrs: dict[str, Any] = field(default_factory=dict)  # method, weight_bits, act_bits, ...
    eval: EvalResult | None = None
    analysis: dict[str, float] | None = None  # R_L, mmr_mean, mmr_max, kurtosis_mean, kurtosis_max
    abc: list[AbcModule] = field(default_factory=list)
    weights: dict[str, Any] = field(default_factory=dict)  # step, protocol, ... the scheme was applied at


@dataclass
class RunData:
    """What postprocess needs from one run file (weights and raw tensors are not loaded)."""

    path: Path
    attrs: dict[str, Any]
    config: dict[str, Any]
    config_error: str | None
    final_train_loss: float | None
    final_val_loss: float | None
    tokens: float | None
    steps: int | None
    eval: EvalResult | None
    schemes: dict[str, SchemeResult]
    # /study: the study's decision for this run (selected, best_lr, protocol, ptq_step, threshold, ...)
    study: dict[str, Any] = field(default_factory=dict)
    val_step: np.ndarray = field(default_factory=lambda: np.zeros(0))  # /metrics/val_step
    val_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))  # /metrics/val_loss
    # A QAT run's /analysis/qat: the aggregates of its QAT quantization (the model as trained against
    # its weights computed exactly), not a PTQ scheme.
    qat_analysis: dict[str, float] | None = None
    # /metrics/robustness_<name> (training with track.every > 0), without the prefix: step, tokens,
    # loss_fp, loss_quant, loss_increase, R_L, mmr_*, kurtosis_*, seconds. Empty when not tracked.
    robustness: dict[str, np.ndarray] = field(default_factory=dict)

    # ---- convenience accessors over the config and the root attributes ----------------------------
    def cfg(self, section: str, key: str, default: Any = None) -> Any:
        value = self.config.get(section, {})
        if not isinstance(value, dict):
            return default
        return value.get(key, default)

    @property
    def model_name(self) -> str | None:
        name = self.attrs.get("model_name")
        return name if name is not None else self.cfg("model", "name")

    @property
    def parameters(self) -> float | None:
        return _as_float(self.attrs.get("parameters"))

    @property
    def non_embedding_parameters(self) -> float | None:
        return _as_float(self.attrs.get("non_embedding_parameters"))

    @property
    def optimizer(self) -> str | None:
        return self.cfg("optimizer", "name")

    @property
    def lr(self) -> float | None:
        return _as_float(self.cfg("optimizer", "lr"))

    @property
    def seed(self) -> int | None:
        seed = self.attrs.get("seed")
        if seed is None:
            seed = self.cfg("train", "seed")
        return None if seed is None else int(seed)

    @property
    def qat(self) -> str:
        # [quant] and quant.qat are absent in files written before QAT existed: those runs are FP.
        qat = self.cfg("quant", "qat")
        return "none" if qat is None else str(qat)


def _decode(value: Any) -> Any:
    """HDF5 attribute -> plain Python (str for strings, int/float for one-element numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O", "U"):
            items = [_decode(v) for v in value.ravel().tolist()]
            return items[0] if len(items) == 1 else items
        if value.size == 1:
            return value.ravel()[0].item()
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: _decode(v) for k, v in obj.attrs.items()}


def _last(f: h5py.File, path: str) -> float | None:
    if path not in f:
        return None
    obj = f[path]
    if not isinstance(obj, h5py.Dataset) or obj.size == 0:
        return None
    data = np.asarray(obj[()], dtype=float).ravel()
    return _as_float(data[-1])


WEIGHTS_KEYS = ("step", "final_step", "train_tokens", "protocol", "train_val_loss", "threshold")


def _weights(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in WEIGHTS_KEYS if k in attrs}


def _array(obj: Any) -> np.ndarray | None:
    if not isinstance(obj, h5py.Dataset) or obj.ndim != 1:
        return None
    return np.asarray(obj[()], dtype=float)


def _read_eval(group: h5py.Group) -> EvalResult:
    a = _attrs(group)
    result = EvalResult(
        val_loss=_as_float(a.get("val_loss")),
        perplexity=_as_float(a.get("perplexity")),
        tokens=_as_float(a.get("tokens")),
        window_loss=_array(group.get("window_loss")),
        weights=_weights(a),
    )
    tasks = group.get("tasks")
    if isinstance(tasks, h5py.Group):
        for task in sorted(tasks):
            t = tasks[task]
            if not isinstance(t, h5py.Group):
                continue
            ta = _attrs(t)
            values = {k: _as_float(ta.get(k)) for k in ("acc", "acc_norm", "n")}
            result.tasks[task] = {k: v for k, v in values.items() if v is not None}
            items = {m: arr for m, key in (("acc", "correct"), ("acc_norm", "correct_norm"))
                     if (arr := _array(t.get(key))) is not None}
            if items:
                result.items[task] = items
    return result


def _scalar_dataset(obj: Any) -> float | None:
    if not isinstance(obj, h5py.Dataset):
        return None
    data = np.asarray(obj[()], dtype=float).ravel()
    return _as_float(data[0]) if data.size else None


def _read_abc(group: h5py.Group) -> list[AbcModule]:
    modules = []
    for name in group:
        sub = group[name]
        if not isinstance(sub, h5py.Group):
            continue
        head, sep, module = name.partition("_")
        index = int(head) if sep and head.isdigit() else len(modules)
        values = {}
        for key in sub:
            v = _scalar_dataset(sub[key])
            if v is not None:
                values[key] = v
        for key, v in _attrs(sub).items():  # tolerate the values stored as attributes as well
            fv = _as_float(v)
            if fv is not None and key not in values:
                values[key] = fv
        modules.append(AbcModule(index=index, module=module if sep else name, values=values))
    modules.sort(key=lambda m: m.index)
    return modules


# mmr_*: the authors' max-to-median MMR; mmr_tomean_*: the max-to-mean MMR (docs/analysis.md).
ANALYSIS_KEYS = ("R_L", "mmr_mean", "mmr_max", "mmr_tomean_mean", "mmr_tomean_max", "kurtosis_mean", "kurtosis_max")
QAT_ANALYSIS = "qat"  # /analysis/qat of a QAT run (quopt analyze without --quant)
ROBUSTNESS_PREFIX = "robustness_"  # /metrics/robustness_* (robustness tracked during training)


def _open(path: Path) -> h5py.File:
    try:
        try:
            return h5py.File(path, "r", locking=False)  # a run may sit on a file system without locks
        except TypeError:  # h5py built against an HDF5 without the locking argument
            return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise UnreadableRunFile(f"{path}: cannot open as HDF5 ({exc})") from exc


def read_run(path: str | os.PathLike[str]) -> RunData:
    """Read the summary of one run file. Raises NotARunFile or UnreadableRunFile."""
    path = Path(path)
    with _open(path) as f:
        try:
            return _read_open_run(path, f)
        except (NotARunFile, UnreadableRunFile):
            raise
        except (OSError, KeyError, RuntimeError) as exc:  # a truncated file may open and fail later
            raise UnreadableRunFile(f"{path}: cannot read ({exc})") from exc


def _read_open_run(path: Path, f: h5py.File) -> RunData:
    attrs = _attrs(f)
    if "config" not in attrs and "quopt_version" not in attrs:
        raise NotARunFile(
            f"{path}: not a quopt run file (no root attribute 'config' or 'quopt_version'; "
            "see docs/run-file.md)"
        )
    config: dict[str, Any] = {}
    config_error = None
    text = attrs.get("config")
    if isinstance(text, str):
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            config_error = f"{path}: root attribute 'config' is not valid TOML ({exc})"
    elif text is not None:
        config_error = f"{path}: root attribute 'config' is not a string"
    else:
        config_error = f"{path}: no root attribute 'config'"

    steps = None
    if "metrics/train_step" in f and f["metrics/train_step"].size:
        steps = int(np.asarray(f["metrics/train_step"][()]).ravel()[-1])

    eval_result = _read_eval(f["eval"]) if isinstance(f.get("eval"), h5py.Group) else None

    schemes: dict[str, SchemeResult] = {}
    quant = f.get("quant")
    if isinstance(quant, h5py.Group):
        for name in sorted(quant):
            g = quant[name]
            if not isinstance(g, h5py.Group):
                continue
            s = SchemeResult(name=name, attrs=_attrs(g))
            s.weights = _weights(s.attrs)
            if isinstance(g.get("eval"), h5py.Group):
                s.eval = _read_eval(g["eval"])
            schemes[name] = s
    qat_analysis = None
    analysis = f.get("analysis")
    if isinstance(analysis, h5py.Group):
        for name in sorted(analysis):
            g = analysis[name]
            if not isinstance(g, h5py.Group):
                continue
            a = _attrs(g)
            values = {k: v for k in ANALYSIS_KEYS if (v := _as_float(a.get(k))) is not None}
            if name == QAT_ANALYSIS:
                qat_analysis = values
                continue
            s = schemes.setdefault(name, SchemeResult(name=name))
            s.analysis = values
            if isinstance(g.get("abc"), h5py.Group):
                s.abc = _read_abc(g["abc"])

    robustness: dict[str, np.ndarray] = {}
    metrics = f.get("metrics")
    if isinstance(metrics, h5py.Group):
        for name in metrics:
            obj = metrics[name]
            if name.startswith(ROBUSTNESS_PREFIX) and isinstance(obj, h5py.Dataset):
                robustness[name[len(ROBUSTNESS_PREFIX) :]] = np.asarray(obj[()], dtype=float).ravel()

    return RunData(
        path=path,
        attrs=attrs,
        config=config,
        config_error=config_error,
        final_train_loss=_last(f, "metrics/train_loss"),
        final_val_loss=_last(f, "metrics/val_loss"),
        tokens=_last(f, "metrics/tokens"),
        steps=steps,
        eval=eval_result,
        schemes=schemes,
        study=_attrs(f["study"]) if isinstance(f.get("study"), h5py.Group) else {},
        val_step=_curve(f, "metrics/val_step"),
        val_loss=_curve(f, "metrics/val_loss"),
        qat_analysis=qat_analysis,
        robustness=robustness,
    )


def _curve(f: h5py.File, path: str) -> np.ndarray:
    obj = f.get(path)
    if not isinstance(obj, h5py.Dataset) or obj.size == 0:
        return np.zeros(0)
    return np.asarray(obj[()], dtype=float).ravel()


def find_run_files(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """Every ``run.h5`` below runs_dir (recursively, symlinked directories not followed), sorted."""
    root = Path(runs_dir)
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if RUN_FILE_NAME in filenames:
            found.append(Path(dirpath) / RUN_FILE_NAME)
    return sorted(found)
