"""Invariants of the BSDE/xVA building blocks (hypothesis)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.pricing.bsde.solver import huber
from marketlab.pricing.xva import XvaRun
from marketlab.pricing.xva.layers import pinball
from marketlab.pricing.xva.market import psd_sqrt


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_psd_sqrt_reproduces_correlation(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, max(1, n - 1)))  # possibly singular
    cov = a @ a.T + 1e-12 * np.eye(n)
    d = np.sqrt(np.diag(cov))
    corr = cov / np.outer(d, d)
    L = psd_sqrt(corr)
    assert np.allclose(L @ L.T, corr, atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.55, 0.995), st.integers(0, 10_000))
def test_pinball_is_minimised_by_the_empirical_quantile(alpha, seed):
    x = torch.tensor(np.random.default_rng(seed).standard_normal(2000))
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)
    losses = torch.stack([pinball(q, x, alpha).mean() for q in grid])
    best = float(grid[losses.argmin()])
    assert abs(best - float(torch.quantile(x, alpha))) < 0.03


@settings(max_examples=30, deadline=None)
@given(st.floats(-200, 200), st.floats(1.0, 100.0))
def test_huber_is_nonnegative_and_continuous_at_clip(delta, clip):
    d = torch.tensor([delta, clip - 1e-9, clip + 1e-9], dtype=torch.float64)
    h = huber(d, clip)
    assert bool((h >= 0).all())
    assert abs(float(h[1] - h[2])) < 1e-6 * clip


def _structural(bridge: bool, vol: float, barrier: float) -> dict:
    return {"run": {"steps": 20, "paths": 64, "layers": ["clean"], "clean": "analytic", "bridge": bridge,
                    "progress": False, "plots": False, "device": "cpu"},
            "market": {"r": 0.02, "spot": 100.0, "vol": 0.25},
            "counterparties": [{"name": "C", "model": "structural", "asset0": 1.0, "barrier": barrier,
                                "asset_vol": vol, "recovery": 0.4}],
            "trades": [{"type": "forward", "counterparty": "C", "strike": 100.0, "maturity": 1.0}]}


@settings(max_examples=15, deadline=None)
@given(st.floats(0.1, 0.5), st.floats(0.4, 0.9), st.integers(0, 1000))
def test_bridge_monitoring_only_adds_defaults(vol, barrier, seed):
    """Same normals and uniforms: a bridge-detected crossing can only come earlier than a grid crossing."""
    a = XvaRun.from_dict(_structural(True, vol, barrier)).market.sample(500, torch.Generator().manual_seed(seed))
    b = XvaRun.from_dict(_structural(False, vol, barrier)).market.sample(500, torch.Generator().manual_seed(seed))
    assert torch.equal(a.x, b.x)
    assert bool((a.exit_idx <= b.exit_idx).all())


@settings(max_examples=10, deadline=None)
@given(st.floats(0.1, 5.0))
def test_cva_is_positively_homogeneous_in_trade_size(q):
    base = {"run": {"steps": 10, "paths": 64, "layers": ["clean"], "clean": "analytic", "progress": False,
                    "plots": False, "device": "cpu"},
            "market": {"r": 0.02, "spot": 100.0, "vol": 0.25},
            "counterparties": [{"name": "C", "model": "intensity", "intensity": 0.1, "recovery": 0.3}],
            "trades": [{"type": "call", "counterparty": "C", "strike": 100.0, "maturity": 1.0, "quantity": 1.0}]}
    one, _ = XvaRun.from_dict(base).outer_estimates(256, seed=3)
    base["trades"][0]["quantity"] = q
    scaled, _ = XvaRun.from_dict(base).outer_estimates(256, seed=3)
    assert np.allclose(scaled, q * one, rtol=1e-9, atol=1e-12)
