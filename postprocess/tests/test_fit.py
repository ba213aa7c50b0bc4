import numpy as np
import pytest
from scipy.optimize import approx_fprime

from quopt_post import scaling
from quopt_post.cli import main
from quopt_post.table import read_rows_csv, write_csv

SIZES = [5e7, 1.25e8, 3.5e8, 5e8, 7.6e8, 1.5e9]  # the paper's sizes
DENSE_SIZES = list(np.geomspace(5e7, 1.5e9, 10))  # the same range, 10 sizes
TRUE = {"E": 1.8, "A": 400.0, "alpha": 0.34}  # Chinchilla-like (Hoffmann et al.: E 1.69, A 406, alpha 0.34)
RHO = {
    ("adamw", "none"): 1.0,
    ("adamw", "quest"): 0.86,
    ("muon", "none"): 1.08,
    ("muon", "quest"): 0.85,
    ("shampoo", "none"): 0.95,
    ("shampoo", "quest"): 0.88,
}
RHO_TOL = 0.02


# Noise: 0.1% of the loss (log-normal). With 10 sizes the standard error of each rho is about 0.006,
# so the tolerance 0.02 is > 3 standard errors.
def _rows_law_n(rng, noise=0.001):
    rows = []
    for (opt, qat), rho in RHO.items():
        for n in DENSE_SIZES:
            loss = (TRUE["E"] + TRUE["A"] / (rho * n) ** TRUE["alpha"]) * np.exp(rng.normal(0, noise))
            for lr, extra in ((1e-3, 0.0), (3e-3, 0.15), (3e-4, 0.08)):  # only the best lr is fitted
                rows.append(
                    dict(scheme="fp", qat=qat, optimizer=opt, parameters=int(n), tokens=20 * n,
                         fp_val_loss=loss + extra, lr=lr, seed=1, run_dir=f"{opt}/{qat}/{n}/{lr}")
                )
            # a PTQ row of the same run must not enter the fit
            rows.append(dict(scheme="rtn-w4a4", qat=qat, optimizer=opt, parameters=int(n), tokens=20 * n,
                             fp_val_loss=loss, val_loss=loss + 1.0, lr=1e-3))
    return rows


def _get(rows, fit, parameter, optimizer="", variant=""):
    found = [r for r in rows if r["fit"] == fit and r["parameter"] == parameter
             and r["optimizer"] == optimizer and r["variant"] == variant]
    assert len(found) == 1, (fit, parameter, optimizer, variant)
    return found[0]


def _variant(qat):
    return "fp" if qat == "none" else f"qat-{qat}"


def test_recovers_known_parameters_at_fixed_tokens_per_parameter():
    rng = np.random.default_rng(2024)
    rows = _rows_law_n(rng)
    points = scaling.select_points(rows)
    assert len(points) == len(RHO) * len(DENSE_SIZES)  # best lr only, PTQ rows ignored
    fits, messages = scaling.fit_all(rows, mode="both", bootstrap=20, seed=1)
    assert messages == []
    assert [f.name for f in fits] == ["shared", "per-optimizer:adamw", "per-optimizer:muon", "per-optimizer:shampoo"]
    out = [r for f in fits for r in scaling.fit_rows(f)]
    assert all(r["law"] == "n" for r in out)

    # shared fit: one (E, A, alpha), rho(adamw, fp) = 1 fixed, every other group's rho fitted
    assert _get(out, "shared", "alpha")["estimate"] == pytest.approx(TRUE["alpha"], abs=0.03)
    assert _get(out, "shared", "E")["estimate"] == pytest.approx(TRUE["E"], abs=0.05)
    ref = _get(out, "shared", "rho", "adamw", "fp")
    assert ref["estimate"] == 1.0 and ref["ci_low"] == 1.0 and "fixed" in ref["note"]
    for (opt, qat), rho in RHO.items():
        r = _get(out, "shared", "rho", opt, _variant(qat))
        assert abs(r["estimate"] - rho) < RHO_TOL, (opt, qat, r["estimate"], rho)
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
        assert r["n_boot"] == 20
        if qat != "none":  # rho_rel: QAT efficiency relative to the same optimizer's FP
            rel = _get(out, "shared", "rho_rel", opt, _variant(qat))
            assert abs(rel["estimate"] - rho / RHO[(opt, "none")]) < RHO_TOL

    # per-optimizer fits: rho_FP = 1 for each optimizer, rho_QAT relative to it (the paper's rho_4bit)
    for opt in ("adamw", "muon", "shampoo"):
        fit = f"per-optimizer:{opt}"
        assert _get(out, fit, "rho", opt, "fp")["estimate"] == 1.0
        r = _get(out, fit, "rho", opt, "qat-quest")
        assert abs(r["estimate"] - RHO[(opt, "quest")] / RHO[(opt, "none")]) < RHO_TOL
        assert r["n_points"] == 2 * len(DENSE_SIZES)


def test_full_law_when_tokens_vary():
    rng = np.random.default_rng(7)
    E, A, alpha, B, beta = 1.7, 400.0, 0.34, 410.0, 0.28  # Hoffmann et al.: B 410.7, beta 0.28
    rho = {"adamw": 1.0, "soap": 0.9}
    rows = []
    for opt, r in rho.items():
        for n in SIZES[:5]:
            for ratio in (10, 20, 40, 80):
                d = ratio * n
                loss = (E + A / (r * n) ** alpha + B / d**beta) * np.exp(rng.normal(0, 0.001))
                rows.append(dict(scheme="fp", qat="none", optimizer=opt, parameters=n, tokens=d,
                                 fp_val_loss=loss, lr=1e-3))
    fits, messages = scaling.fit_all(rows, mode="shared", bootstrap=0)
    assert messages == []
    (fit,) = fits
    assert fit.law == "nd"
    assert fit.rho()[("soap", "fp")] == pytest.approx(0.9, abs=RHO_TOL)
    p = fit.named()
    assert p["alpha"] == pytest.approx(alpha, abs=0.05) and p["beta"] == pytest.approx(beta, abs=0.05)
    assert fit.rmse_log < 0.003
    # the law "n" can be forced; the D term is then missing and the fit is worse
    forced, _ = scaling.fit_all(rows, mode="shared", law="n", bootstrap=0)
    assert forced[0].law == "n" and forced[0].rmse_log > fit.rmse_log


@pytest.mark.parametrize("law", ["n", "nd"])
def test_gradient_matches_finite_differences(law):
    rng = np.random.default_rng(0)
    n = 12
    lnN = np.log(rng.uniform(1e7, 1e9, n))
    lnD = lnN + np.log(rng.uniform(10, 40, n))
    prob = scaling._Problem(lnN, lnD, np.log(rng.uniform(2.5, 4, n)), np.arange(n) % 3, 3, law)
    theta = np.array([0.5, 6.0, 0.3, 6.0, 0.25, 0.1, -0.2])[: prob.n_params] if law == "nd" else \
        np.array([0.5, 6.0, 0.3, 0.1, -0.2])
    f, g = prob.value_and_grad(theta)
    num = approx_fprime(theta, lambda t: prob.value_and_grad(t)[0], 1e-7)
    assert np.allclose(g, num, rtol=1e-4, atol=1e-9 * max(1.0, abs(f)))
    # Huber: quadratic below delta, linear above
    assert prob.residuals(theta).shape == (n,)


def test_too_little_data_is_reported_not_fatal(tmp_path, capsys):
    rows = [dict(scheme="fp", qat="none", optimizer="adamw", parameters=n, tokens=20 * n, fp_val_loss=3.0 - 0.1 * k, lr=1e-3)
            for k, n in enumerate([1e6, 2e6])]
    fits, messages = scaling.fit_all(rows, bootstrap=0)
    assert fits == [] and any("at least 3 sizes" in m for m in messages)
    table = tmp_path / "t.csv"
    write_csv(rows, table)
    out = tmp_path / "f.csv"
    assert main(["fit", str(table), "--out", str(out), "--bootstrap", "0"]) == 0
    assert "at least 3 sizes" in capsys.readouterr().err
    assert out.read_text().splitlines() == [",".join(scaling.FIT_COLUMNS)]
    fits, messages = scaling.fit_all([dict(scheme="fp", qat="quest", optimizer="muon", parameters=1e6, tokens=2e7,
                                           fp_val_loss=3.0)], bootstrap=0)
    assert fits == [] and any("no full-precision runs" in m for m in messages)


def test_fit_command_writes_rows(tmp_path):
    rows = _rows_law_n(np.random.default_rng(1))
    table = tmp_path / "t.csv"
    write_csv(rows, table)
    out = tmp_path / "fits.csv"
    assert main(["fit", str(table), "--out", str(out), "--mode", "shared", "--bootstrap", "4",
                 "--reference", "muon", "--ptq", "rtn-w4a4"]) == 0
    _, got = read_rows_csv(out)
    assert {r["fit"] for r in got} == {"shared"}
    assert _get(got, "shared", "rho", "muon", "fp")["estimate"] == 1.0  # the chosen reference
    adam = _get(got, "shared", "rho", "adamw", "fp")["estimate"]
    assert adam == pytest.approx(1.0 / 1.08, abs=RHO_TOL)
    # --ptq adds the PTQ losses as their own groups
    assert _get(got, "shared", "rho", "adamw", "ptq-rtn-w4a4")["estimate"] < adam
    assert all(r["n_boot"] == 4 for r in got)
