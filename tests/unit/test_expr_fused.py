"""Fused elementwise evaluation (one numba pass per elementwise sub-tree on CPU) == op-by-op evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.features.expr import Evaluator, RPNBuilder, Vocabulary, parse
from tests.support.panels import feature_tensors, price_volume_panel


@pytest.fixture(scope="module")
def feats():
    return feature_tensors(*price_volume_panel(4, 90, 7, sigma=0.03, nan_frac=0.05, log_volume=10, zero_volume_frac=0.05))


def _pair(feats):
    fused = Evaluator(feats, cache_bytes=0)
    plain = Evaluator(feats, cache_bytes=0)
    plain._fuse = False  # the op-by-op path (same numba rolling kernels)
    assert fused._fuse
    return fused, plain


@pytest.mark.parametrize("f", [
    "Add(5, Mul(Div(close, -5), Abs(low)))", "Div(close, Sub(open, open))", "Div(5, Sub(volume, volume))",
    "Greater(close, 20)", "Less(-0.5, Sub(close, high))", "Greater(open, Less(close, vwap))", "Sign(Sub(close, open))",
    "Pow(Div(close, open), 3)", "Pow(2, Div(close, open))", "Mul(volume, Mul(volume, Mul(volume, volume)))",
    "Sub(Log(volume), Div(Mean(close, 5), 0))", "Add(Sub(close, open), Sub(Sub(close, open), Abs(Sub(close, open))))",
    "Div(Add(open, Add(high, Add(low, Add(close, Add(vwap, volume))))), Sub(Ref(close, 1), Ref(open, 2)))",
])  # fmt: skip
def test_fused_equals_op_by_op(feats, f):
    fused, plain = _pair(feats)
    a, b = fused(f).numpy(), plain(f).numpy()
    assert not np.isinf(a).any()  # +-inf is NaN after Div / Mul / Pow / Log, as op by op
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=f)


def test_sign_keeps_nan_on_both_paths(feats):
    fused, plain = _pair(feats)
    torch_ev = Evaluator(feats, engine="torch", cache_bytes=0)
    nan = torch.isnan(feats["close"]).numpy()
    for ev in (fused, plain, torch_ev):
        s = ev("Sign(close)").numpy()
        assert np.isnan(s[nan]).all() and (s[~nan] == 1).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_random_grammar_formulas_fused_match(seed):
    rng = np.random.default_rng(seed)
    vocab = Vocabulary()
    b = RPNBuilder(vocab, max_len=14, max_lookback=30)
    while not b.finished:
        b.push(int(rng.choice(np.flatnonzero(b.action_mask()))))
    e = b.result()
    fused, plain = _pair(_FEATS)  # module-level: hypothesis re-runs the body, fixtures do not reset
    x, y = fused(e).numpy(), plain(e).numpy()
    # one rounding may differ (torch divides a constant by a tensor as reciprocal * constant): compare
    # with a relative tolerance, and NaN positions exactly
    np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=str(e))
    np.testing.assert_allclose(x, y, rtol=2e-3, atol=1e-5, equal_nan=True, err_msg=str(e))


def _make_feats():
    rng = np.random.default_rng(9)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, (70, 5)), 0))
    close[rng.random((70, 5)) < 0.05] = np.nan
    d = {k: torch.tensor(close * (1 + 0.01 * i), dtype=torch.float32) for i, k in enumerate(["open", "high", "low", "close", "vwap"])}
    d["volume"] = torch.tensor(rng.lognormal(10, 1, (70, 5)), dtype=torch.float32)
    return d


_FEATS = _make_feats()


def test_cache_keeps_formulas_and_expensive_nodes_not_fused_interiors(feats):
    ev = Evaluator(feats)
    base = parse("Add(Div(close, -5), Mean(low, 5))")
    a = ev(base).clone()
    keys = set(ev._cache)
    assert base.key in keys and parse("Mean(low, 5)").key in keys and parse("Div(close, -5)").key not in keys
    h = ev.hits
    v = ev(parse("Abs(Add(Div(close, -5), Mean(low, 5)))"))  # the variant reuses the cached formula
    assert ev.hits == h + 1
    torch.testing.assert_close(v, a.abs(), equal_nan=True)
