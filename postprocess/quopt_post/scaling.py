"""`fit`: scaling laws with a per-optimizer parameter efficiency rho.

The law (DESIGN.md, after the paper, arXiv 2509.23500; rho N is an effective parameter count, as in
precision scaling laws, e.g. Kumar et al. 2024, arXiv 2411.04330):

    law "n"  (runs at one tokens-per-parameter ratio, D/N = 20 in the paper):
        L(N) = E + A' / (rho_g N)^alpha
    law "nd" (runs that vary D):
        L(N, D) = E + A / (rho_g N)^alpha + B / D^beta

g is a group of runs: (optimizer, variant) with variant "fp" (full-precision training), "qat-<method>"
(quantization-aware training, e.g. qat-quest) or, with --ptq SCHEME, "ptq-<scheme>" (the PTQ model's
loss). What is shared and what is fixed:

* mode "shared": ONE fit over every group. E, A' (A), alpha (B, beta) are shared by all groups; every
  group has its own rho_g except the reference group (reference optimizer, "fp"), whose rho is fixed
  to 1. rho_g is then the parameter efficiency of group g relative to the reference optimizer's
  full-precision model; rho_rel = rho(opt, variant) / rho(opt, "fp") is the efficiency of a quantized
  variant relative to the same optimizer's FP model.
* mode "per-optimizer": one fit per optimizer over its own groups: E, A', alpha (B, beta) shared by
  that optimizer's FP and quantized runs, rho_FP = 1 for that optimizer, rho of each quantized variant
  fitted. This is the paper's rho_4bit ("rho_FP = 1": Shampoo 0.879, AdamW 0.863, ...).

Fitting as Hoffmann et al. (2022, arXiv 2203.15556, Appendix D.2): parameters in log space
(e = log E, a = log A', r_g = log rho_g), prediction log L = logsumexp(e, a - alpha (r_g + log N)
[, b - beta log D]), Huber loss (delta = 1e-3, Hoffmann's value) of (predicted - observed log loss)
summed over runs, minimised by L-BFGS (scipy.optimize.minimize, method L-BFGS-B, analytic gradient).
Initial values: Hoffmann's grid, alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in
{0, 5, ..., 25}, r_g = 0. Deviation for speed: the objective is evaluated at every grid point and
L-BFGS is started from the `starts` best of them (default 16), not from all of them; the best local
optimum is kept. Bootstrap: B resamples (default 200) of the runs, with replacement WITHIN each group
(stratified, so every group keeps its size and its rho stays identifiable), each refitted from the
full-data optimum and the best grid point of the resample; 95% percentile intervals.

Which runs: rows with scheme "fp" (loss column fp_val_loss, falling back to final_val_loss when a run
has no /eval). Several learning rates / seeds of one (optimizer, variant, N, D): the loss is averaged
over seeds per lr, and the best lr (lowest mean loss) is kept, as the paper reports tuned runs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from .table import FP_SCHEME

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, Appendix D.2
GRID_ALPHA = np.arange(0.0, 2.01, 0.5)  # Hoffmann et al. 2022: alpha, beta in {0, 0.5, ..., 2}
GRID_E = np.arange(-1.0, 1.01, 0.5)  # e in {-1, -0.5, ..., 1}
GRID_A = np.arange(0.0, 25.01, 5.0)  # a, b in {0, 5, ..., 25}
DEFAULT_STARTS = 16  # quopt choice: L-BFGS from the 16 best grid points (Hoffmann: all of them)
DEFAULT_BOOTSTRAP = 200  # quopt choice (brief): B = 200 bootstrap resamples
LBFGS_OPTIONS = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}  # quopt choice: tight, as the objective is ~1
BOOT_GRID_STARTS = 1  # quopt choice: bootstrap refits start from the full-data optimum + the best grid point
DEFAULT_REFERENCE = "adamw"  # the paper's baseline optimizer
TOKENS_SPREAD_FOR_ND = 1.1  # auto law: "nd" when max(D/N) / min(D/N) > 1.1 (quopt choice)

FIT_COLUMNS = [
    "mode",
    "fit",
    "law",
    "parameter",
    "optimizer",
    "variant",
    "estimate",
    "ci_low",
    "ci_high",
    "n_points",
    "n_groups",
    "n_boot",
    "objective",
    "rmse_log",
    "note",
]


class FitError(Exception):
    pass


@dataclass
class Point:
    optimizer: str
    variant: str
    N: float
    D: float
    loss: float
    runs: int = 1  # how many run rows were averaged / selected into it


def _logsumexp(t: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(t))) along axis, shifted by the max for stability (scipy's is slow for tiny arrays)."""
    m = np.max(t, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(t - m), axis=axis))


def variant_of(row: dict[str, Any]) -> str | None:
    qat = str(row.get("qat") or "none")
    if row.get("scheme") == FP_SCHEME:
        return "fp" if qat == "none" else f"qat-{qat}"
    return None


def select_points(
    rows: list[dict[str, Any]],
    n_column: str = "parameters",
    loss_column: str = "fp_val_loss",
    ptq_schemes: tuple[str, ...] = (),
    best_lr: bool = True,
) -> list[Point]:
    """The data points of the fit, one per (optimizer, variant, N, D) after the best-lr selection."""
    raw: dict[tuple, dict[Any, list[float]]] = {}
    for r in rows:
        scheme = r.get("scheme")
        variant = variant_of(r)
        loss = r.get(loss_column)
        if variant is not None and loss is None and loss_column == "fp_val_loss":
            loss = r.get("final_val_loss")
        if variant is None:
            if scheme in ptq_schemes and str(r.get("qat") or "none") == "none":
                variant = f"ptq-{scheme}"
                loss = r.get("val_loss")
            else:
                continue
        N, D, opt = r.get(n_column), r.get("tokens"), r.get("optimizer")
        if not all(isinstance(v, (int, float)) for v in (N, D, loss)) or opt is None:
            continue
        if not (N > 0 and D > 0 and loss > 0 and math.isfinite(loss)):
            continue
        key = (str(opt), variant, float(N), float(f"{float(D):.4g}"))
        lr_key = r.get("lr") if best_lr else (r.get("lr"), r.get("seed"), r.get("run_dir"))
        raw.setdefault(key, {}).setdefault(lr_key, []).append(float(loss))
    points = []
    for (opt, variant, N, D), by_lr in sorted(raw.items()):
        if best_lr:
            means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
            best = min(means, key=lambda k: means[k])
            points.append(Point(opt, variant, N, D, means[best], runs=len(by_lr[best])))
        else:
            for losses in by_lr.values():
                points.append(Point(opt, variant, N, D, losses[0]))
    return points


@dataclass
class Fit:
    mode: str
    name: str
    law: str
    groups: list[tuple[str, str]]  # groups[0] is the reference (rho fixed to 1)
    theta: np.ndarray
    objective: float
    rmse_log: float
    n_points: int
    boot: np.ndarray | None = None  # [n_ok, n_params] of successful bootstrap fits
    notes: list[str] = field(default_factory=list)

    @property
    def n_core(self) -> int:
        return 3 if self.law == "n" else 5

    def named(self, theta: np.ndarray | None = None) -> dict[str, float]:
        t = self.theta if theta is None else theta
        out = {"E": math.exp(t[0]), "A": math.exp(t[1]), "alpha": float(t[2])}
        if self.law == "nd":
            out["B"] = math.exp(t[3])
            out["beta"] = float(t[4])
        return out

    def rho(self, theta: np.ndarray | None = None) -> dict[tuple[str, str], float]:
        t = self.theta if theta is None else theta
        out = {self.groups[0]: 1.0}
        for i, g in enumerate(self.groups[1:]):
            out[g] = math.exp(t[self.n_core + i])
        return out

    def predict(self, N: np.ndarray, D: np.ndarray | None, group: tuple[str, str]) -> np.ndarray:
        p = self.named()
        rho = self.rho()[group]
        N = np.asarray(N, float)
        L = p["E"] + p["A"] / (rho * N) ** p["alpha"]
        if self.law == "nd":
            if D is None:
                raise ValueError("law nd needs D")
            L = L + p["B"] / np.asarray(D, float) ** p["beta"]
        return L


# ---- the objective ------------------------------------------------------------------------------


class _Problem:
    """Huber loss of log residuals for fixed data.

    Public parameters theta = [e, a, alpha, (b, beta), r_1 .. r_{G-1}] (r_0 = 0: the reference group).
    L-BFGS works on the equivalent centred parameters phi, with a_c = a - alpha * mean(log N) and
    b_c = b - beta * mean(log D): the same model, far better conditioned (a and alpha are otherwise
    almost collinear because log N ~ 20), so it converges in fewer iterations.
    """

    def __init__(self, lnN: np.ndarray, lnD: np.ndarray, lnL: np.ndarray, gidx: np.ndarray, n_groups: int, law: str):
        self.lnN, self.lnD, self.lnL, self.gidx = lnN, lnD, lnL, gidx
        self.n_groups = n_groups
        self.law = law
        self.n_core = 3 if law == "n" else 5
        self.n_params = self.n_core + n_groups - 1
        self.N0 = float(np.mean(lnN))
        self.D0 = float(np.mean(lnD))
        self.lnNc = lnN - self.N0
        self.lnDc = lnD - self.D0

    # theta <-> phi
    def to_phi(self, theta: np.ndarray) -> np.ndarray:
        phi = np.array(theta, dtype=float)
        phi[1] = theta[1] - theta[2] * self.N0
        if self.law == "nd":
            phi[3] = theta[3] - theta[4] * self.D0
        return phi

    def to_theta(self, phi: np.ndarray) -> np.ndarray:
        theta = np.array(phi, dtype=float)
        theta[1] = phi[1] + phi[2] * self.N0
        if self.law == "nd":
            theta[3] = phi[3] + phi[4] * self.D0
        return theta

    def _r(self, p: np.ndarray) -> np.ndarray:
        r = np.zeros(self.n_groups)
        r[1:] = p[self.n_core :]
        return r[self.gidx]

    def _terms(self, phi: np.ndarray) -> np.ndarray:
        t = np.empty((self.lnL.size, 3 if self.law == "nd" else 2))
        t[:, 0] = phi[0]
        t[:, 1] = phi[1] - phi[2] * (self._r(phi) + self.lnNc)
        if self.law == "nd":
            t[:, 2] = phi[3] - phi[4] * self.lnDc
        return t

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """Predicted - observed log loss."""
        return _logsumexp(self._terms(self.to_phi(theta)), axis=1) - self.lnL

    def value_and_grad_phi(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        t = self._terms(phi)
        lse = _logsumexp(t, axis=1)
        res = lse - self.lnL
        absr = np.abs(res)
        f = float(np.sum(np.where(absr <= HUBER_DELTA, 0.5 * res**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA))))
        dres = np.clip(res, -HUBER_DELTA, HUBER_DELTA)  # the Huber derivative
        w = np.exp(t - lse[:, None]) * dres[:, None]  # softmax weights (d lse / d term) x dHuber
        g = np.empty(self.n_params)
        g[0] = w[:, 0].sum()
        g[1] = w[:, 1].sum()
        g[2] = -np.dot(w[:, 1], self._r(phi) + self.lnNc)
        if self.law == "nd":
            g[3] = w[:, 2].sum()
            g[4] = -np.dot(w[:, 2], self.lnDc)
        if self.n_groups > 1:
            g[self.n_core :] = np.bincount(self.gidx, weights=w[:, 1], minlength=self.n_groups)[1:] * -phi[2]
        return f, g

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective and gradient in the public parameters (chain rule through to_phi)."""
        f, gp = self.value_and_grad_phi(self.to_phi(theta))
        g = gp.copy()
        g[2] = gp[2] - gp[1] * self.N0
        if self.law == "nd":
            g[4] = gp[4] - gp[3] * self.D0
        return f, g

    def grid(self) -> np.ndarray:
        """Hoffmann's grid of initial values (r_g = 0), as rows of theta."""
        axes = [GRID_E, GRID_A, GRID_ALPHA]
        if self.law == "nd":
            axes += [GRID_A, GRID_ALPHA]
        core = np.array(list(itertools.product(*axes)))
        return np.hstack([core, np.zeros((core.shape[0], self.n_groups - 1))])

    def grid_values(self, thetas: np.ndarray) -> np.ndarray:
        """Objective at many theta at once (all with r_g = 0)."""
        e, a, alpha = thetas[:, 0:1], thetas[:, 1:2], thetas[:, 2:3]
        cols = [np.broadcast_to(e, (len(thetas), len(self.lnN))), a - alpha * self.lnN[None, :]]
        if self.law == "nd":
            cols.append(thetas[:, 3:4] - thetas[:, 4:5] * self.lnD[None, :])
        res = _logsumexp(np.stack(cols, axis=2), axis=2) - self.lnL[None, :]
        absr = np.abs(res)
        h = np.where(absr <= HUBER_DELTA, 0.5 * res**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA))
        return h.sum(axis=1)

    def minimize_from(self, starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
        """L-BFGS-B from each start (theta); the best optimum as (theta, objective)."""
        # The Huber sum of ~1e-3 residuals is ~1e-6: scaled by 1/delta^2 so that L-BFGS-B's ftol
        # test (relative to max(|f|, 1)) does not stop it after the first steps.
        scale = 1.0 / HUBER_DELTA**2

        def fun(phi: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = self.value_and_grad_phi(phi)
            return f * scale, g * scale

        best_phi, best_f = None, math.inf
        for x0 in starts:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                res = minimize(fun, self.to_phi(x0), jac=True, method="L-BFGS-B", options=LBFGS_OPTIONS)
            f = float(res.fun) / scale
            if np.all(np.isfinite(res.x)) and math.isfinite(f) and f < best_f:
                best_phi, best_f = res.x, f
        if best_phi is None:
            raise FitError("L-BFGS-B found no finite optimum")
        return self.to_theta(best_phi), best_f


def _problem(points: list[Point], groups: list[tuple[str, str]], law: str) -> _Problem:
    index = {g: i for i, g in enumerate(groups)}
    return _Problem(
        lnN=np.log([p.N for p in points]),
        lnD=np.log([p.D for p in points]),
        lnL=np.log([p.loss for p in points]),
        gidx=np.array([index[(p.optimizer, p.variant)] for p in points], dtype=int),
        n_groups=len(groups),
        law=law,
    )


def choose_law(points: list[Point], law: str = "auto") -> str:
    if law in ("n", "nd"):
        return law
    if law != "auto":
        raise ValueError(f"unknown law {law!r}; choose auto, n or nd")
    # "nd" needs D itself to vary (at least 3 values); at one fixed D (a fixed-steps study) the D term is
    # a constant, E + B/D^beta, which "n"'s E absorbs, whatever D/N does.
    ratios = np.array([p.D / p.N for p in points])
    varies = ratios.size and ratios.max() / ratios.min() > TOKENS_SPREAD_FOR_ND
    return "nd" if varies and len({p.D for p in points}) >= 3 else "n"


def fit_groups(
    points: list[Point],
    groups: list[tuple[str, str]],
    law: str,
    mode: str,
    name: str,
    starts: int = DEFAULT_STARTS,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    rng: np.random.Generator | None = None,
) -> Fit:
    """Fit one law over `points` (each belongs to one of `groups`; groups[0] has rho = 1)."""
    pts = [p for p in points if (p.optimizer, p.variant) in set(groups)]
    prob = _problem(pts, groups, law)
    n_distinct_N = len({p.N for p in pts})
    if n_distinct_N < 3:
        raise FitError(f"{n_distinct_N} model size(s): a power law in N needs at least 3 sizes")
    if len(pts) <= prob.n_params:
        raise FitError(f"{len(pts)} data points for {prob.n_params} parameters: need more runs")
    if law == "nd" and len({p.D for p in pts}) < 3:
        raise FitError("law nd needs at least 3 distinct token counts D")

    grid = prob.grid()
    order = np.argsort(prob.grid_values(grid))
    theta, obj = prob.minimize_from([grid[i] for i in order[:starts]])
    res = prob.residuals(theta)
    fit = Fit(
        mode=mode,
        name=name,
        law=law,
        groups=list(groups),
        theta=theta,
        objective=obj,
        rmse_log=float(np.sqrt(np.mean(res**2))),
        n_points=len(pts),
    )
    if bootstrap > 0:
        rng = rng or np.random.default_rng(0)
        by_group = [np.flatnonzero(prob.gidx == i) for i in range(len(groups))]
        samples = []
        for _ in range(bootstrap):
            idx = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in by_group if m.size])
            sub = _Problem(prob.lnN[idx], prob.lnD[idx], prob.lnL[idx], prob.gidx[idx], len(groups), law)
            if len(np.unique(sub.lnN)) < 3:
                continue  # a resample with fewer than 3 sizes has no power law
            b_order = np.argsort(sub.grid_values(grid))
            try:
                t, _ = sub.minimize_from([theta] + [grid[i] for i in b_order[:BOOT_GRID_STARTS]])
            except FitError:
                continue
            samples.append(t)
        fit.boot = np.array(samples) if samples else np.zeros((0, prob.n_params))
        if len(samples) < bootstrap:
            fit.notes.append(f"{bootstrap - len(samples)} of {bootstrap} bootstrap resamples failed or had < 3 sizes")
    return fit


def _ci(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def fit_rows(fit: Fit) -> list[dict[str, Any]]:
    """The long-format rows of one fit (estimates with bootstrap percentile CIs)."""
    base = {
        "mode": fit.mode,
        "fit": fit.name,
        "law": fit.law,
        "n_points": fit.n_points,
        "n_groups": len(fit.groups),
        "n_boot": 0 if fit.boot is None else len(fit.boot),
        "objective": fit.objective,
        "rmse_log": fit.rmse_log,
    }
    note = "; ".join(fit.notes)
    boots = fit.boot if fit.boot is not None and len(fit.boot) else None
    out = []
    named = fit.named()
    boot_named = [fit.named(t) for t in boots] if boots is not None else []
    for key, value in named.items():
        lo, hi = _ci(np.array([b[key] for b in boot_named])) if boot_named else (math.nan, math.nan)
        out.append(dict(base, parameter=key, optimizer="", variant="", estimate=value, ci_low=lo, ci_high=hi, note=note))
    rho = fit.rho()
    boot_rho = [fit.rho(t) for t in boots] if boots is not None else []
    for g, value in rho.items():
        if g == fit.groups[0]:
            lo = hi = 1.0
            gnote = "reference: fixed to 1"
        else:
            lo, hi = _ci(np.array([b[g] for b in boot_rho])) if boot_rho else (math.nan, math.nan)
            gnote = note
        out.append(dict(base, parameter="rho", optimizer=g[0], variant=g[1], estimate=value, ci_low=lo, ci_high=hi, note=gnote))
    if fit.mode == "shared":  # efficiency of a quantized variant relative to the same optimizer's FP
        for g, value in rho.items():
            fp = (g[0], "fp")
            if g[1] == "fp" or fp not in rho:
                continue
            lo, hi = (
                _ci(np.array([b[g] / b[fp] for b in boot_rho])) if boot_rho else (math.nan, math.nan)
            )
            out.append(
                dict(
                    base,
                    parameter="rho_rel",
                    optimizer=g[0],
                    variant=g[1],
                    estimate=value / rho[fp],
                    ci_low=lo,
                    ci_high=hi,
                    note=f"rho({g[0]}, {g[1]}) / rho({g[0]}, fp)",
                )
            )
    return out


def fit_all(
    rows: list[dict[str, Any]],
    mode: str = "both",
    law: str = "auto",
    reference: str | None = None,
    n_column: str = "parameters",
    ptq_schemes: tuple[str, ...] = (),
    starts: int = DEFAULT_STARTS,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[list[Fit], list[str]]:
    """All fits the data allows; returns (fits, messages about what was skipped and why)."""
    if mode not in ("shared", "per-optimizer", "both"):
        raise ValueError(f"unknown mode {mode!r}; choose shared, per-optimizer or both")
    points = select_points(rows, n_column=n_column, ptq_schemes=ptq_schemes)
    messages: list[str] = []
    if not points:
        return [], ["no run has a loss, a size and a token count (rows with scheme 'fp'): no fit"]
    law = choose_law(points, law)
    present = sorted({(p.optimizer, p.variant) for p in points})
    optimizers = sorted({g[0] for g in present})
    ref_opt = reference or (DEFAULT_REFERENCE if (DEFAULT_REFERENCE, "fp") in present else None)
    if ref_opt is None:
        fp_opts = [o for o, v in present if v == "fp"]
        ref_opt = fp_opts[0] if fp_opts else present[0][0]
    rng = np.random.default_rng(seed)
    fits: list[Fit] = []

    if mode in ("shared", "both"):
        ref = (ref_opt, "fp") if (ref_opt, "fp") in present else None
        if ref is None:
            messages.append(f"shared fit skipped: no full-precision runs of the reference optimizer {ref_opt!r}")
        else:
            groups = [ref] + [g for g in present if g != ref]
            try:
                fits.append(fit_groups(points, groups, law, "shared", "shared", starts, bootstrap, rng))
            except FitError as exc:
                messages.append(f"shared fit skipped: {exc}")
    if mode in ("per-optimizer", "both"):
        for opt in optimizers:
            mine = [g for g in present if g[0] == opt]
            if (opt, "fp") not in mine:
                messages.append(f"per-optimizer fit of {opt} skipped: no full-precision runs (rho_FP = 1 needs them)")
                continue
            groups = [(opt, "fp")] + [g for g in mine if g[1] != "fp"]
            try:
                fits.append(fit_groups(points, groups, law, "per-optimizer", f"per-optimizer:{opt}", starts, bootstrap, rng))
            except FitError as exc:
                messages.append(f"per-optimizer fit of {opt} skipped: {exc}")
    return fits, messages
