"""The batched env's numba and torch engines reproduce the single env under random markets, costs,
windows, leverage and action sequences (including extreme, wiping-out ones)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.envs.batched import BatchedTradingEnv
from marketlab.market import synthetic_market
from marketlab.envs.trading import TradingEnv


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_assets=st.integers(1, 3),
    commission=st.sampled_from([0.0, 0.0005, 0.05]),
    slippage=st.sampled_from([0.0, 0.002]),
    window=st.integers(1, 5),
    leverage=st.sampled_from([0.5, 1.0, 3.0]),
    engine=st.sampled_from(["numba", "torch"]),
)
def test_batched_engines_match_single_env(seed, n_assets, commission, slippage, window, leverage, engine):
    m = synthetic_market(40, n_assets, seed=seed, vol=0.05)
    cfg = {"period": "all", "action": {"kind": "weights-v1", "max_leverage": leverage}, "reward": {"kind": "log-return-v1"},
           "costs": {"commission": commission, "slippage": slippage}, "observation": {"window": window}}
    b = 3
    benv = BatchedTradingEnv(cfg, market=m, num_envs=b, device="cpu", engine=engine)
    benv.reset(seed=seed)
    singles = [TradingEnv(cfg, market=m) for _ in range(b)]
    for e in singles:
        e.reset()
    rng = np.random.default_rng(seed)
    live = [True] * b  # an episode wiped out early is auto-reset by the batched env: stop comparing it
    for _ in range(m.n_steps - window):
        a = rng.uniform(-3, 3, (b, n_assets))
        ob, rb, tb, _, ib = benv.step(torch.as_tensor(a))
        for i, e in enumerate(singles):
            if not live[i]:
                continue
            o, r, done, _, info = e.step(a[i])
            live[i] = not done
            assert ib["value"][i].item() == pytest.approx(info["value"], rel=1e-9, abs=1e-9)
            assert rb[i].item() == pytest.approx(np.float32(r), rel=1e-5, abs=1e-6)
            assert bool(tb[i]) == done
        if not any(live):
            break
