"""Reduced-size accuracy runs of the d=100 benchmark equations (R2-R5) and the deep xVA oracles R7, R9, R10.

Marked slow: each is a few hundred iterations (the published configs use 2 000-30 000). Tolerances: tight
against the value of the SAME discretisation where the note gives one (R4 at N=20, R5 on the Euler N=40
grid), looser against the continuum and for the equations the repo trains 10-100x longer.
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from marketlab.pricing.bsde import (HJBLQ, AllenCahn, BurgersType, PricingDefaultRisk, PricingDiffRate,
                                    QuadraticGradient, ReactionDiffusion, SolverConfig, make_equation, solve)
from marketlab.pricing.bsde.reference import basket_call_mc, hjb_lq_y0, reference_for
from marketlab.pricing.xva import XvaRun

pytestmark = pytest.mark.slow


def cfg(iterations: int = 300, lr: float = 1e-2, y0f: float = 1.0, batch: int = 128, **kw) -> SolverConfig:
    return SolverConfig(hidden=(32, 32), batch_size=batch, iterations=iterations, lr_values=(lr, lr / 10),
                        lr_boundaries=(int(0.7 * iterations),), y0_lr_factor=y0f, progress=False, log_every=50,
                        device="cpu", **kw)


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_r2_basket_call_100d():
    price, se = basket_call_mc(100, 100.0, 10_000.0, 0.01, 0.25, 1.0, 100_000, seed=0)
    assert abs(price - 158.245) < 3 * se + 0.03  # the note's 8e6-path reference
    eq = make_equation("basket_call", N=10)
    _, r = solve(eq, cfg(300, 1e-2, 30.0))
    print(f"ORACLE R2 {r.y0[0]:.4f} ref 158.245 err {rel(r.y0[0], 158.245):.4%}")
    assert rel(r.y0[0], 158.245) < 0.01, r.y0


def test_r3_hjb_100d():
    _, r = solve(HJBLQ(dim=100), cfg(400, 1e-2, 10.0))
    print(f"ORACLE R3 {r.y0[0]:.5f} ref 4.590162 err {rel(r.y0[0], hjb_lq_y0(100)):.4%}")
    assert rel(r.y0[0], hjb_lq_y0(100)) < 0.01, r.y0


def test_r4_allen_cahn_100d_same_grid():
    eq = AllenCahn()
    _, r = solve(eq, cfg(300, 5e-3, 10.0))
    print(f"ORACLE R4 {r.y0[0]:.6f} ref(N=20) 0.0526654 err {rel(r.y0[0], 0.0526654):.4%}")
    assert rel(r.y0[0], reference_for(eq)) < 0.02, r.y0  # 0.0526654 at N=20 (continuum 0.05279)


def test_r5_pricing_default_risk_100d_euler_grid():
    eq = PricingDefaultRisk(scheme="euler", N=40)
    _, r = solve(eq, cfg(300, 1e-2, 20.0))
    print(f"ORACLE R5 {r.y0[0]:.4f} ref(Euler N=40) 57.062 err {rel(r.y0[0], 57.062):.4%} "
          f"vs continuum 57.29 {rel(r.y0[0], 57.29):.4%}")
    assert rel(r.y0[0], 57.062) < 0.005, r.y0  # same-grid regression-MC reference
    assert rel(r.y0[0], 57.29) < 0.01  # continuum: the Euler grid sits 0.4 % below


@pytest.mark.parametrize(
    "eq, ref, tol",
    [(BurgersType(), 0.5, 0.08), (QuadraticGradient(), math.sin(1.0), 0.01), (ReactionDiffusion(), 1.6, 0.05),
     (PricingDiffRate(), 21.27, 0.015)],
    ids=lambda v: getattr(v, "name", ""),
)
def test_cms_equations_reduced(eq, ref, tol):
    # 300 iterations vs 4 000-30 000 in the repo configs; Burgers and reaction-diffusion converge slowest.
    _, r = solve(eq, cfg(300, 1e-2, 10.0))
    print(f"ORACLE {eq.name} {r.y0[0]:.5f} ref {ref:.5f} err {rel(r.y0[0], ref):.4%}")
    assert rel(r.y0[0], ref) < tol, (eq.name, r.y0)


def _bachelier_left_cva(N: int) -> float:
    mu, sig, lam, R, T = 100.0, 25.0 * 10.0, 0.1, 0.3, 1.0
    dt, total = T / N, 0.0
    for n in range(N):
        t = n * dt
        s = sig * math.sqrt(t)
        epe = mu if t == 0 else mu * norm.cdf(mu / s) + s * norm.pdf(mu / s)
        total += dt * (1 + lam * dt) ** (-(n + 1)) * epe
    return (1 - R) * lam * total


def test_r7_deep_cva_bachelier_basket_100d():
    d = {"run": {"steps": 20, "paths": 2048, "layers": ["clean", "xva"], "clean": "analytic", "progress": False,
                 "plots": False, "device": "cpu"},
         "market": {"r": 0.0, "model": "bachelier", "n_assets": 100, "spot": 100.0, "vol": 25.0},
         "counterparties": [{"name": "C", "model": "intensity", "intensity": 0.1, "recovery": 0.3}],
         "trades": [{"type": "basket_forward", "counterparty": "C", "strike": 9900.0, "maturity": 1.0}],
         "training": {"xva": {"iterations": 200, "batch_size": 128, "lr_values": [1e-2, 1e-3],
                              "lr_boundaries": [140], "hidden": [32, 32], "y0_lr_factor": 40.0}}}
    res = XvaRun.from_dict(d).run()
    grid = _bachelier_left_cva(20)
    cva = res["xva_table"]["C"]["cva"]
    print(f"ORACLE R7 deep {cva:.4f} grid(N=20) {grid:.4f} err {rel(cva, grid):.4%} vs 8.62571 {rel(cva, 8.62571):.4%}")
    assert rel(res["xva_table"]["C"]["cva"], grid) < 0.02, (res["xva_table"], grid)
    assert rel(grid, 8.62571) < 0.02  # the N=20 left-point bias vs the continuum oracle


def test_r9_dva_of_short_basket_call_100d():
    d = {"run": {"steps": 10, "paths": 4096, "layers": ["clean"], "clean": "deep", "progress": False,
                 "plots": False, "device": "cpu", "warm_start": True},
         "market": {"r": 0.01, "n_assets": 100, "spot": 100.0, "vol": 0.25},
         "bank": {"model": "intensity", "intensity": 0.01, "recovery": 0.4},
         "counterparties": [{"name": "C", "model": "intensity", "intensity": 0.1, "recovery": 0.3}],
         "trades": [{"type": "basket_call", "counterparty": "C", "strike": 10000.0, "maturity": 1.0,
                     "quantity": -1.0}],
         "training": {"clean": {"iterations": 300, "batch_size": 128, "lr_values": [1e-2, 1e-3],
                                "lr_boundaries": [200], "hidden": [32, 32], "y0_lr_factor": 10.0}}}
    run = XvaRun.from_dict(d)
    res = run.run()
    v0 = -res["clean"]["y0"][0]
    assert rel(v0, 158.245) < 0.015
    mc, se = run.outer_estimates(4096)
    closed = 0.6 * 0.01 * v0 * (1 - math.exp(-0.11)) / 0.11  # DVA of a sign-definite trade, given v0
    # bank short a call: CVA is 0 in exact arithmetic; forward-recursed deep clean paths carry the clean
    # layer's error along the path (research note 4.5) and occasionally turn positive -> small spurious CVA
    assert mc[0, 0] < 0.15 * mc[0, 1]
    assert rel(mc[0, 1], closed) < 0.01 + 3 * se[0, 1] / closed
    print(f"ORACLE R9 clean {v0:.3f} DVA {mc[0, 1]:.5f}+-{se[0, 1]:.5f} closed(v0) {closed:.5f} "
          f"vs 0.8991 {rel(mc[0, 1], 0.8991):.4%}")
    assert abs(mc[0, 1] - 0.8991) < 3 * se[0, 1] + 0.01 * 0.8991


def test_r10_deep_structural_cva_with_measure_change():
    """Mixture training (pricing measure + tilted measure, shared y0 and Z-net); the P-only vs mixture
    variance comparison over seeds lives in benchmarks/bsde.py."""
    res = XvaRun.from_spec("specs/xva/structural_forward_cva.toml", device="cpu").run()  # change_of_measure on
    deep = res["xva_table"]["C"]["cva"]
    mc, se = res["xva"]["outer_mc"]["C"]["cva"], res["xva"]["outer_mc_se"]["C"]["cva"]
    # Brownian-bridge monitoring keeps the N=50 grid value close to the continuous one (0.256574; 0.25697 at
    # N=100). The outer-MC check is loose (structural CVA is a rare-event payoff); the deep y0 is held to 8 %
    # at this reduced budget (the note's 1 500-iteration experiment: +1.9 % for the mixture).
    print(f"ORACLE R10 deep {deep:.5f} outerMC {mc:.5f}+-{se:.5f} ref 0.256574 err {rel(deep, 0.256574):.4%}")
    assert abs(mc - 0.256574) < 3 * se + 0.01
    assert rel(deep, 0.256574) < 0.08, (deep, mc, se)
