"""MacroHFT baselines in the same env: rules against independent implementations, no look-ahead, the value-based
baselines (DQN / Double DQN through the phase-1 trainer) and the PPO env, and the all-in env ledger by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from marketlab.agents.macrohft import baselines as bl
from marketlab.agents.macrohft.dataset import prepare
from marketlab.agents.macrohft.evaluate import allin_env_value, net_positions
from marketlab.agents.macrohft.nets import SubAgentNet
from marketlab.agents.macrohft.train import train_dqn
from marketlab.envs.macrohft_env import transition_reward
from tests.unit.test_macrohft_agent import TINY, _cfg, _synthetic


def test_macd_matches_pandas_ewm() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 3000)))
    s = pd.Series(close)
    line = s.ewm(span=12, adjust=False).mean() - s.ewm(span=26, adjust=False).mean()
    want = (line > line.ewm(span=9, adjust=False).mean()).astype(int).to_numpy()
    np.testing.assert_array_equal(bl.macd_positions(close, 12, 26, 9), want)
    np.testing.assert_allclose(bl.ema(close, 50), s.ewm(span=50, adjust=False).mean().to_numpy(), rtol=1e-12)


def test_rules_read_only_the_past() -> None:
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 2000)))
    flow = rng.uniform(-1, 1, 2000)
    t = 1200
    close2, flow2 = close.copy(), flow.copy()
    close2[t + 1:] *= 1.5
    flow2[t + 1:] = -flow2[t + 1:]
    np.testing.assert_array_equal(bl.macd_positions(close, 60, 130, 45)[:t + 1], bl.macd_positions(close2, 60, 130, 45)[:t + 1])
    np.testing.assert_array_equal(bl.taker_flow_positions(flow, 60, 0.05)[:t + 1], bl.taker_flow_positions(flow2, 60, 0.05)[:t + 1])


def test_taker_flow_window_by_hand() -> None:
    flow = np.array([0.3, -0.1, -0.1, 0.2, 0.2, -0.9])
    # means over the last 3 minutes (fewer at the start): .3, .1, .0333, .0, .1, -.1667
    np.testing.assert_array_equal(bl.taker_flow_positions(flow, 3, 0.02), [1, 1, 1, 0, 1, 0])


def test_allin_env_value_by_hand() -> None:
    close = np.array([100.0, 110.0, 121.0, 110.0])
    fee = 0.01
    v = allin_env_value(close, np.array([1, 1, 0, 0]), fee, 1000.0)
    coins = 1000 / (100 * 1.01)  # bought at close 0 with the fee on top
    np.testing.assert_allclose(v, [coins * 100, coins * 110, coins * 121 * 0.99, coins * 121 * 0.99], rtol=1e-12)
    # the per-minute all-in returns the rules are tuned with agree to first order in the fee
    r = bl.allin_returns(close, np.array([1, 1, 0, 0]), fee)
    np.testing.assert_allclose(r, [0.1 - fee, 0.1, -fee], rtol=1e-12)


def test_tuned_rule_is_the_grid_best_on_validation() -> None:
    cfg = _cfg()
    prep = prepare(cfg, _synthetic())
    val = prep.splits["val"]
    tuned = bl.tune_rules(val, cfg.fee)
    sharpes = {p: bl._sharpe(bl.allin_returns(val.close, bl.taker_flow_positions(val.flow, *p), cfg.fee)) for p in bl.FLOW_GRID}
    best = max(sharpes, key=lambda p: sharpes[p])
    assert (tuned["taker_flow"]["window"], tuned["taker_flow"]["threshold"]) == best
    assert tuned["macd"]["val_sharpe"] == max(
        bl._sharpe(bl.allin_returns(val.close, bl.macd_positions(val.close, *g), cfg.fee)) for g in bl.MACD_GRID)
    assert val.flow is not None and np.abs(val.flow).max() <= 1.0  # the raw imbalance, not the z-scored feature


@pytest.mark.slow
def test_dqn_and_double_dqn_share_the_subagent_net_without_adapter_or_kl() -> None:
    cfg = _cfg(sub={**TINY["sub"], "epochs": 1, "max_chunks": 4})
    prep = prepare(cfg, _synthetic())
    dqn, m1 = bl.train_value_baseline(cfg, prep, double=False)
    ddqn, m2 = bl.train_value_baseline(cfg, prep, double=True)
    assert not dqn.adapter and m1["alpha"] == 0.0 and m1["train_chunks"] == len(prep.decomposition["train"].chunks)
    assert not m1["double"] and m2["double"]
    tr = prep.splits["train"]
    sub = SubAgentNet(tr.s1.shape[1], tr.s2.shape[1], 2, cfg.sub.hidden)  # a MacroHFT sub-agent: same size
    assert sum(p.numel() for p in dqn.parameters()) == sum(p.numel() for p in sub.parameters())
    # same seed, only the bootstrap differs: the two targets must give different nets; the same call twice the same
    d = prep.decomposition
    runs = [train_dqn(cfg, prep, d["train"].chunks, d["val"].chunks, alpha=0.0, seed=5, adapter=False, double=dbl, progress=False)[0]
            for dbl in (False, True, True)]
    for a, b in zip(runs[1].state_dict().values(), runs[2].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # seeded: bit-for-bit
    assert any(not torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values(), strict=True))
    pos = net_positions(dqn, prep.splits["test"])
    assert pos.shape == (prep.splits["test"].n,) and set(np.unique(pos)) <= {0, 1}


def test_chunk_env_episodes_stay_in_one_chunk_and_pay_the_env_reward() -> None:
    cfg = _cfg()
    prep = prepare(cfg, _synthetic())
    train = prep.splits["train"]
    chunks = prep.decomposition["train"].chunks
    env = bl.ChunkEnv(train, chunks, cfg.fee, cfg.size)
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape and obs[-1] == info["position"]
    assert env.inner is not None
    lo = next(lo for lo, hi in chunks if np.array_equal(env.inner.prices, train.close[lo:hi]))
    rng = np.random.default_rng(0)
    pos, total, want, t, done = info["position"], 0.0, 0.0, 0, False
    while not done:
        a = int(rng.integers(2))
        _, r, term, trunc, _ = env.step(a)
        want += float(transition_reward(train.close[lo + t], train.close[lo + t + 1], pos, a, cfg.fee, cfg.size))
        total += r
        pos, t, done = a, t + 1, term or trunc
    assert t == cfg.chunk - 1 and total == pytest.approx(want, abs=1e-9)


@pytest.mark.slow
def test_ppo_baseline_trains_and_acts_greedily() -> None:
    cfg = _cfg()
    prep = prepare(cfg, _synthetic())
    model = bl.train_ppo(cfg, prep, timesteps=1024, seed=0, n_envs=2)
    best = bl.ppo_best_actions(model, prep.splits["test"])
    assert best.shape == (prep.splits["test"].n, 2) and set(np.unique(best)) <= {0, 1}
    again = bl.ppo_best_actions(bl.train_ppo(cfg, prep, timesteps=1024, seed=0, n_envs=2), prep.splits["test"])
    np.testing.assert_array_equal(best, again)
