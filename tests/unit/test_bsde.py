"""Deep BSDE library: equations, reference formulas, solver mechanics and the fast accuracy oracles (R1, R3)."""

from __future__ import annotations

import math

import pytest
import torch

from marketlab.pricing.bsde import (HJBLQ, AllenCahn, BlackScholesLinear, BurgersType, DeepBSDESolver,
                                    PricingDefaultRisk, PricingDiffRate, QuadraticGradient, ReactionDiffusion,
                                    SolverConfig, make_equation, solve)
from marketlab.pricing.bsde.reference import bs_call, bs_put, hjb_lq_y0, reference_for
from marketlab.core.errors import SpecError

FAST = dict(progress=False, log_every=50, device="cpu")


def test_reference_formulas_reproduce_note_values():
    # R1 and R3 of the research note: the formulas in code give the quoted oracles
    assert bs_call(100, 100, 0.01, 0.25, 1.0) == pytest.approx(10.403539, abs=2e-6)
    assert bs_call(100, 100, 0.02, 0.25, 1.0) == pytest.approx(10.870558, abs=2e-6)
    assert 100 - 100 * math.exp(-0.01) == pytest.approx(0.995017, abs=1e-6)
    assert hjb_lq_y0(100, 1.0, 1.0) == pytest.approx(4.590162, abs=2e-6)
    # put-call parity
    assert bs_call(90, 100, 0.03, 0.3, 2) - bs_put(90, 100, 0.03, 0.3, 2) == pytest.approx(90 - 100 * math.exp(-0.06))


@pytest.mark.parametrize(
    "eq",
    [HJBLQ(dim=5, N=4), AllenCahn(dim=5, N=4), PricingDefaultRisk(dim=5, N=4), PricingDiffRate(dim=5, N=4),
     BurgersType(dim=5, N=4), QuadraticGradient(dim=5, N=4), ReactionDiffusion(dim=5, N=4),
     BlackScholesLinear("call", dim=3, N=4)],
    ids=lambda e: e.name,
)
def test_equation_shapes_and_terminal(eq):
    gen = torch.Generator().manual_seed(0)
    b = eq.sample(7, gen)
    assert b.x.shape == (7, eq.N + 1, eq.dim) and b.dw.shape == (7, eq.N, eq.dim_w)
    y = torch.zeros(7, 1, dtype=torch.float64)
    z = torch.zeros(7, 1, eq.dim_w, dtype=torch.float64)
    assert eq.f(0, 0.0, b.x[:, 0], y, z, {}).shape == (7, 1)
    idx, val = eq.terminal(b)
    assert idx.shape == val.shape == (7, 1) and bool((idx == eq.N).all())
    assert torch.isfinite(val).all()


def test_exact_solutions_match_terminal_conditions():
    # Burgers: u(T, x) equals g(x); reaction-diffusion and quadratic-gradient references are their closed forms
    eq = BurgersType(dim=50)
    x = torch.randn(11, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(eq.exact(eq.T, x), eq.g(x))
    assert float(eq.exact(0.0, torch.zeros(1, 50, dtype=torch.float64))) == pytest.approx(0.5)
    assert QuadraticGradient().reference == pytest.approx(math.sin(1.0))
    assert ReactionDiffusion().reference == pytest.approx(1.6)


def test_exact_and_euler_gbm_agree_in_mean():
    gen = torch.Generator().manual_seed(3)
    ex = PricingDefaultRisk(dim=4, N=10, scheme="exact").sample(20000, gen).x[:, -1].mean()
    eu = PricingDefaultRisk(dim=4, N=10, scheme="euler").sample(20000, gen).x[:, -1].mean()
    expected = 100 * math.exp(0.02)
    assert float(ex) == pytest.approx(expected, rel=3e-3) and float(eu) == pytest.approx(expected, rel=3e-3)


def test_unknown_equation_is_one_line_spec_error():
    with pytest.raises(SpecError, match="unknown equation id 'nope'"):
        make_equation("nope")


def test_lr_schedule_lengths_are_checked():
    with pytest.raises(ValueError, match="one more entry"):
        DeepBSDESolver(HJBLQ(dim=2, N=3), SolverConfig(lr_values=(1e-2,), lr_boundaries=(10,), **FAST))


@pytest.mark.parametrize("network", ["time", "per_step"])
def test_r1_black_scholes_call(network):
    """R1: linear BSDE f = -r y, exact GBM; y0 within 1 % of the closed form (Y-scheme bias ~1e-4 at N=20)."""
    eq = BlackScholesLinear("call", dim=1, r=0.01, sigma=0.25, N=20)
    cfg = SolverConfig(network=network, hidden=(16, 16), batch_size=256, iterations=400, lr_values=(5e-3, 5e-4),
                       lr_boundaries=(300,), y0_lr_factor=5, **FAST)
    _, res = solve(eq, cfg)
    ref = bs_call(100, 100, 0.01, 0.25, 1.0)
    print(f"ORACLE R1 call[{network}] {res.y0[0]:.4f} ref {ref:.6f} err {abs(res.y0[0] - ref) / ref:.4%}")
    assert abs(res.y0[0] - ref) / ref < 0.01, res.y0


def test_r1_forward_is_tight():
    """R1': forward S0 - K e^{-rT} = 0.995017; a linear payoff is hedged exactly, so the tolerance is tight."""
    eq = BlackScholesLinear("forward", dim=1, r=0.01, sigma=0.25, N=20)
    cfg = SolverConfig(hidden=(16, 16), batch_size=256, iterations=400, lr_values=(5e-3, 5e-4),
                       lr_boundaries=(300,), y0_lr_factor=5, **FAST)
    _, res = solve(eq, cfg)
    print(f"ORACLE R1' forward {res.y0[0]:.5f} ref 0.995017 loss {res.valid_loss:.3f}")
    assert res.y0[0] == pytest.approx(reference_for(eq), abs=0.015)
    # Var(g) ~ 650; the discrete-hedging floor of a perfect Z is ~ S^2 sigma^4 T dt / 2 ~ 1
    assert res.valid_loss < 3.0


def test_seeded_runs_are_deterministic_and_seed_sensitive():
    eq = HJBLQ(dim=4, N=5)
    cfg = SolverConfig(hidden=(8,), batch_size=32, iterations=20, **FAST)
    _, a = solve(eq, cfg)
    _, b = solve(eq, cfg)
    _, c = solve(eq, SolverConfig(hidden=(8,), batch_size=32, iterations=20, seed=1, **FAST))
    assert a.y0 == b.y0 and a.valid_loss == b.valid_loss
    assert a.y0 != c.y0


@pytest.mark.parametrize("precision", ["float32", "autocast"])
def test_reduced_precision_runs_close_to_float64(precision):
    eq = BlackScholesLinear("forward", dim=1, N=10)
    base = dict(hidden=(16, 16), batch_size=256, iterations=300, lr_values=(5e-3, 5e-4), lr_boundaries=(200,),
                y0_lr_factor=5, **FAST)
    _, r64 = solve(eq, SolverConfig(**base))
    s32, r32 = solve(eq, SolverConfig(precision=precision, **base))
    assert s32.y0.dtype == torch.float32
    assert r32.y0[0] == pytest.approx(r64.y0[0], abs=0.03)
    assert r32.y0[0] == pytest.approx(reference_for(eq), abs=0.03)


def test_early_stop_on_target_and_on_tolerance():
    eq = BlackScholesLinear("forward", dim=1, N=10)
    ref = reference_for(eq)
    _, r = solve(eq, SolverConfig(hidden=(8,), batch_size=128, iterations=2000, lr_values=(2e-2,), target=ref,
                                  rtol=0.05, log_every=10, progress=False, device="cpu"))
    assert r.stopped == "target" and r.iterations < 2000
    _, r = solve(eq, SolverConfig(hidden=(8,), batch_size=128, iterations=2000, lr_values=(1e-3,), tol=0.5,
                                  patience=2, log_every=10, progress=False, device="cpu"))
    assert r.stopped == "tol" and r.iterations == 20


def test_save_load_roundtrip(tmp_path):
    eq = HJBLQ(dim=3, N=4)
    s, _ = solve(eq, SolverConfig(network="per_step", hidden=(8,), batch_size=16, iterations=5, **FAST))
    s.save(tmp_path / "m")
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "m.json").is_file()
    t = DeepBSDESolver.load(tmp_path / "m", eq)
    b = eq.sample(9, torch.Generator().manual_seed(5))
    assert torch.equal(s.rollout(b), t.rollout(b))


def test_per_step_and_time_nets_give_z_on_every_step():
    eq = HJBLQ(dim=3, N=6)
    for net in ("per_step", "time"):
        s = DeepBSDESolver(eq, SolverConfig(network=net, hidden=(5,), **FAST))
        b = eq.sample(4, torch.Generator().manual_seed(0))
        assert s.z_all(b).shape == (4, 6, 1, 3)
        assert s.rollout(b).shape == (4, 7, 1)


def test_r3_hjb_reduced_dimension():
    """R3 at d=10 (CI size): Cole-Hopf quadrature reference; the X-path is exact, so only the Y-scheme and the
    network/optimiser bias remain: 1.5 %."""
    eq = HJBLQ(dim=10)
    cfg = SolverConfig(hidden=(32, 32), batch_size=128, iterations=400, lr_values=(1e-2, 1e-3),
                       lr_boundaries=(250,), y0_lr_factor=10, **FAST)
    _, r = solve(eq, cfg)
    ref = hjb_lq_y0(10)
    print(f"ORACLE R3(d=10) {r.y0[0]:.5f} ref {ref:.6f} err {abs(r.y0[0] - ref) / ref:.4%}")
    assert abs(r.y0[0] - ref) / ref < 0.015, (r.y0, ref)


def test_cli_bsde_json_and_bad_option():
    import json

    from typer.testing import CliRunner

    from marketlab.cli.main import app

    r = CliRunner().invoke(app, ["bsde", "bs_forward", "--steps", "5", "--iterations", "20", "--batch-size", "32",
                                 "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reference"] == pytest.approx(100 - 100 * math.exp(-0.01)) and out["steps"] == 5
    bad = CliRunner().invoke(app, ["bsde", "hjb_lq", "--network", "cnn"])
    assert bad.exit_code == 2 and "network" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
