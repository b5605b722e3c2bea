"""The batched Trading env: both engines agree with the single env step for step (values, rewards,
observations, fees), with each other, and under float32 within the documented tolerance; buffers,
auto-reset, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.core.errors import SpecError
from marketlab.envs.batched import BatchedTradingEnv
from marketlab.market import synthetic_market
from marketlab.envs.trading import TradingEnv

COSTS = {"commission": 0.001, "spread": 0.0004, "slippage": 0.0003}
STEPS = 40


@pytest.fixture(scope="module")
def markets() -> dict[int, object]:
    return {n: synthetic_market(200, n, seed=10 + n, vol=0.01) for n in (1, 2, 3)}


def _actions(rng: np.random.Generator, action: str, b: int, n: int) -> np.ndarray:
    if action == "weights":
        return rng.uniform(-1.2, 1.2, (b, n))  # some outside [-1, 1]: clipping is part of the contract
    return rng.integers(0, 3, (b, n)) if n > 1 else rng.integers(0, 3, b)


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize(
    "n,action,reward,trade_on_change,extra",
    [(1, "discrete", "pnl", True, {}), (1, "weights", "log_return", False, {}), (3, "weights", "diff_sharpe", True, {}),
     (2, "discrete", "log_return", True, {}), (3, "discrete", "pnl", False, {}),
     # the over-trading guards: decision interval (25 bars = 7 steps of 4, the last capped), turnover
     # penalty, position limit
     (1, "discrete", "pnl", True, {"decision_interval": 4, "penalty": 0.01, "max_position": 0.6}),
     (3, "weights", "log_return", False, {"decision_interval": 3, "penalty": 0.002, "max_position": 0.25})],
)
def test_engines_agree_with_single_env(engine, n, action, reward, trade_on_change, extra, markets):
    cfg = {"costs": COSTS, "period": "all", "action": {"kind": action + "-v1"}, "reward": {"kind": reward.replace("_", "-") + "-v1", "scale": 3.0},
           "episode_length": 25, "random_start": True, "trade_on_change": trade_on_change, "observation": {"window": 8}}
    if extra:
        cfg["decision_interval"] = extra["decision_interval"]
        cfg["reward"]["turnover_penalty"] = extra["penalty"]
        cfg["action"]["max_position"] = extra["max_position"]
    b = 5
    benv = BatchedTradingEnv(cfg, market=markets[n], num_envs=b, device="cpu", seed=0, engine=engine)
    assert benv.engine == engine
    obs_b = benv.reset(seed=3).clone()
    singles = [TradingEnv(cfg, market=markets[n]) for _ in range(b)]
    obs = [e.reset(options={"start": int(s)})[0] for e, s in zip(singles, benv.t.tolist(), strict=True)]
    np.testing.assert_array_equal(np.stack(obs), obs_b.numpy())
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(STEPS):
        a = _actions(rng, action, b, n)
        ob, rb, tb, trb, ib = benv.step(torch.as_tensor(a))
        assert not trb.any()
        for i, e in enumerate(singles):
            o, r, done, _, info = e.step(a[i])
            assert ib["value"][i].item() == pytest.approx(info["value"], rel=1e-12)
            assert ib["fees"][i].item() == pytest.approx(info["fees"], rel=1e-12, abs=1e-12)
            assert ib["traded"][i].item() == pytest.approx(info["traded"], rel=1e-12, abs=1e-12)
            assert int(ib["t"][i]) == info["t"]
            assert rb[i].item() == pytest.approx(np.float32(r), rel=1e-6, abs=1e-7)  # rewards are float32
            assert done == bool(tb[i])
            if done:
                ended += 1
                assert ib["final_value"][i].item() == pytest.approx(info["value"], rel=1e-12)
                o, _ = e.reset(options={"start": int(benv.t[i])})  # follow the batched env's auto-reset
            np.testing.assert_allclose(o, ob[i].numpy(), rtol=0, atol=1e-6)
    assert ended >= b  # every episode ended at least once and was followed through its reset


def test_numba_engine_is_bit_identical_to_single_env(markets):
    """The numba engine runs the single env's float64 kernels: values are equal, not just close."""
    cfg = {"costs": COSTS, "period": "all", "action": {"kind": "weights-v1"}, "episode_length": 30, "random_start": True}
    benv = BatchedTradingEnv(cfg, market=markets[3], num_envs=4, device="cpu", engine="numba")
    benv.reset(seed=7)
    singles = [TradingEnv(cfg, market=markets[3]) for _ in range(4)]
    for e, s in zip(singles, benv.t.tolist(), strict=True):
        e.reset(options={"start": int(s)})
    rng = np.random.default_rng(2)
    for _ in range(29):
        a = rng.uniform(-1, 1, (4, 3))
        _, _, _, _, ib = benv.step(torch.as_tensor(a))
        for i, e in enumerate(singles):
            _, _, _, _, info = e.step(a[i])
            assert ib["value"][i].item() == info["value"]
            np.testing.assert_array_equal(benv.shares[i].numpy(), e.sim.shares)


def test_float32_torch_engine_within_documented_tolerance(markets):
    """float32 accounting drifts ~1e-7 relative per step: values within 1e-5 over 40 steps."""
    cfg = {"costs": COSTS, "period": "all", "episode_length": 0}
    b = 8
    envs = {d: BatchedTradingEnv(cfg, market=markets[1], num_envs=b, device="cpu", engine="torch", dtype=d) for d in (torch.float32, torch.float64)}
    for e in envs.values():
        e.reset(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(STEPS):
        a = torch.as_tensor(rng.integers(0, 3, b))
        v32 = envs[torch.float32].step(a)[4]["value"].double()
        v64 = envs[torch.float64].step(a)[4]["value"]
        np.testing.assert_allclose(v32.numpy(), v64.numpy(), rtol=1e-5)
    assert envs[torch.float32].value.dtype == torch.float32


def test_engines_same_seed_same_trajectory(markets):
    cfg = {"costs": COSTS, "period": "all", "episode_length": 7, "random_start": True}

    def run(engine: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        env = BatchedTradingEnv(cfg, market=markets[1], num_envs=16, device="cpu", seed=5, engine=engine)
        env.reset()
        gen = torch.Generator().manual_seed(9)
        obs, vals, ts = [], [], []
        for _ in range(20):
            o, _, _, _, info = env.step(torch.randint(0, 3, (16,), generator=gen))
            obs.append(o.clone().numpy())
            vals.append(info["value"].clone().numpy())
            ts.append(info["t"].clone().numpy())
        return np.stack(obs), np.stack(vals), np.stack(ts)

    a, b = run("numba"), run("numba")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = run("torch")
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_allclose(a[1], c[1], rtol=1e-12)
    np.testing.assert_array_equal(a[2], c[2])


def test_step_outputs_are_reused_buffers(markets):
    env = BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=3, device="cpu")
    o0 = env.reset(seed=0)
    o1, r1, *_ = env.step(torch.tensor([2, 0, 1]))
    o2, r2, *_ = env.step(torch.tensor([2, 0, 1]))
    assert o0.data_ptr() == o1.data_ptr() == o2.data_ptr() and r1.data_ptr() == r2.data_ptr()


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_bad_input(engine, markets):
    env = BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=2, device="cpu", engine=engine)
    env.reset()
    with pytest.raises((ValueError, IndexError)):
        env.step(torch.tensor([0, 3]))  # only 3 levels
    with pytest.raises(ValueError, match="starts must lie"):
        env.reset(starts=np.array([0, 10**6]))
    with pytest.raises(ValueError, match="starts must hold"):
        env.reset(starts=np.array([50]))


def test_bad_construction(markets):
    with pytest.raises(ValueError, match="engine must be"):
        BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=2, device="cpu", engine="jax")
    with pytest.raises(ValueError, match="float64"):
        BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=2, device="cpu", engine="numba", dtype=torch.float32)
    with pytest.raises(ValueError, match="CUDA"):
        BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=2, device="cpu", engine="torch", compile=True)
    with pytest.raises(ValueError, match="num_envs"):
        BatchedTradingEnv({"period": "all"}, market=markets[1], num_envs=0, device="cpu")
    with pytest.raises(SpecError, match="env.reward.kind"):
        BatchedTradingEnv({"period": "all", "reward": {"kind": "tests.x:Y"}}, market=markets[1], num_envs=2, device="cpu")
