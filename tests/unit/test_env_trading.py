"""Trading-v0: API checks, registration, determinism, no look-ahead, vector envs, batched torch agreement."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import marketlab.envs  # noqa: F401  (registers the gymnasium ids)
from marketlab.core.errors import SpecError
from marketlab.envs.batched import BatchedTradingEnv
from marketlab.market import MarketData, synthetic_market
from marketlab.envs.trading import TradingEnv

COSTS = {"commission": 0.001, "spread": 0.0004, "slippage": 0.0003}


@pytest.fixture(scope="module")
def market1() -> MarketData:
    return synthetic_market(300, 1, seed=3, vol=0.01)


@pytest.fixture(scope="module")
def market3() -> MarketData:
    return synthetic_market(300, 3, seed=4, vol=0.01)


@pytest.mark.parametrize(
    "action,n",
    [({"kind": "discrete-v1"}, 1), ({"kind": "discrete-v1"}, 3), ({"kind": "weights-v1"}, 3), ({"kind": "weights-v1", "long_only": True}, 1)],
)
def test_env_passes_gymnasium_and_sb3_checkers(action, n, market1, market3):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = TradingEnv({"costs": COSTS, "action": action, "period": "all"}, market=market1 if n == 1 else market3)
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_gym_make_by_versioned_id(market1):
    env = gym.make("marketlab/Trading-v0", market=market1, config={"period": "all", "observation": {"window": 4}})
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (4 * 4 + 1,)
    assert info["value"] == pytest.approx(10_000.0)


def test_reset_seed_reproducible(market1):
    cfg = {"costs": COSTS, "period": "all", "episode_length": 50, "random_start": True}

    def rollout(seed: int) -> tuple[int, list[float]]:
        env = TradingEnv(cfg, market=market1)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, done = [], False
        while not done:
            _, r, done, _, _ = env.step(env.action_space.sample())
            rewards.append(r)
        return env.start, rewards

    assert rollout(7) == rollout(7)
    starts = {rollout(s)[0] for s in range(6)}
    assert len(starts) > 1  # random_start really draws


def _perturb_after(m: MarketData, t: int, rng: np.random.Generator) -> MarketData:
    def bump(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[t + 1 :] *= np.exp(rng.normal(0, 0.05, a[t + 1 :].shape))
        return a

    high, low = bump(m.high), bump(m.low)
    return MarketData(
        m.ts, m.symbols, bump(m.open), np.maximum(high, low), np.minimum(high, low), bump(m.close), bump(m.volume),
        m.tradable, {k: bump(v) for k, v in m.extra.items()}, m.source,
    )


@pytest.mark.parametrize("normalize", [True, False])
def test_no_look_ahead(normalize, market3):
    """Perturbing every datum after t leaves every observation (and value) up to t unchanged."""
    m = market3.with_extra({"alpha": np.random.default_rng(0).normal(size=market3.close.shape)})
    split_row = 150
    cfg = {
        "costs": COSTS,
        "period": "all",
        "action": {"kind": "weights-v1"},
        "observation": {"window": 8, "normalize": normalize},
        "data": {"test_start": str(np.datetime64(int(m.ts[split_row]), "ns"))},
    }
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (m.n_steps, 3)).astype(np.float32)
    # Normalisation statistics come from the train split, so t is taken in the test period.
    for t in (split_row + 5, 220, m.n_steps - 3):
        runs = []
        for market in (m, _perturb_after(m, t, np.random.default_rng(t))):
            env = TradingEnv(cfg, market=market)
            obs, info = env.reset()
            seen, values = [obs], [info["value"]]
            while env.t < t:
                obs, _, _, _, info = env.step(actions[env.t])
                seen.append(obs)
                values.append(info["value"])
            runs.append((np.stack(seen), values))
        np.testing.assert_array_equal(runs[0][0], runs[1][0])
        assert runs[0][1] == runs[1][1]
        # and the perturbation is visible one step later (the test can fail)
        env_a, env_b = TradingEnv(cfg, market=m), TradingEnv(cfg, market=_perturb_after(m, t, np.random.default_rng(t)))
        assert not np.array_equal(env_a.state_interp.observe(t + 1, np.zeros(3)), env_b.state_interp.observe(t + 1, np.zeros(3)))


def test_signals_become_observation_features(market1):
    m = market1.with_extra({"prob_up": np.linspace(0, 1, market1.n_steps)[:, None]})
    env = TradingEnv({"period": "all", "observation": {"window": 2, "normalize": False}}, market=m)
    obs, _ = env.reset()
    assert obs.shape == (2 * 5 + 1,)
    assert obs[4] == pytest.approx(m.extra["prob_up"][0, 0], abs=1e-6)  # row t-1, 5th feature
    assert obs[9] == pytest.approx(m.extra["prob_up"][1, 0], abs=1e-6)


def test_costs_reduce_value_and_zero_costs_track_returns(market1):
    env0 = TradingEnv({"period": "all", "action": {"levels": [0.0, 1.0]}}, market=market1)
    env1 = TradingEnv({"period": "all", "action": {"levels": [0.0, 1.0]}, "costs": COSTS}, market=market1)
    for env in (env0, env1):
        env.reset()
        done = False
        while not done:
            _, _, done, _, info = env.step(1)
    c = market1.close[:, 0]
    # all-in at close[t0] with no costs: value follows the price exactly
    assert env0.value == pytest.approx(10_000 * c[-1] / c[env0.start], rel=1e-12)
    assert env1.value < env0.value


@pytest.mark.parametrize("reward", ["pnl", "log_return", "diff_sharpe"])
def test_rewards(reward, market1):
    env = TradingEnv({"period": "all", "reward": {"kind": reward.replace("_", "-") + "-v1"}, "costs": COSTS}, market=market1)
    env.reset()
    rewards, values = [], [env.value]
    for k in range(60):
        _, r, _, _, info = env.step(2 if k % 7 else 0)
        rewards.append(r)
        values.append(info["value"])
    v = np.array(values)
    if reward == "pnl":
        np.testing.assert_allclose(rewards, np.diff(v) / 10_000, rtol=1e-12)
    elif reward == "log_return":
        np.testing.assert_allclose(rewards, np.diff(np.log(v)), rtol=1e-9)
    else:
        assert rewards[0] == 0.0 and np.isfinite(rewards).all() and np.abs(rewards[5:]).sum() > 0


def test_bad_config_is_one_line_error(market1):
    with pytest.raises(SpecError, match=r"env\.costs\.comission.*unknown key"):
        TradingEnv({"costs": {"comission": 0.001}}, market=market1)
    with pytest.raises(SpecError, match=r"env\.observation\.window.*expected an integer"):
        TradingEnv({"observation": {"window": "8"}}, market=market1)
    with pytest.raises(SpecError, match=r"env\.period.*no steps"):
        TradingEnv({"period": "test"}, market=market1)
    with pytest.raises(SpecError, match=r"env\.reward\.kind.*unknown reward id"):
        TradingEnv({"reward": {"kind": "sortino"}}, market=market1)
    with pytest.raises(SpecError, match=r"env\.observation\.features.*unknown feature"):
        TradingEnv({"observation": {"features": ["rsi"]}}, market=market1)


def test_component_swappable_by_registered_id(market1):
    """A spec names a registry id; an importable "module:attr" string is refused (issue 13 item 6)."""
    from marketlab.core import registry
    from marketlab.envs.rewards import LogReturnReward

    with pytest.raises(SpecError, match=r"env\.reward\.kind.*unknown reward id 'marketlab.envs.rewards:LogReturnReward'"):
        TradingEnv({"period": "all", "reward": {"kind": "marketlab.envs.rewards:LogReturnReward"}}, market=market1)
    registry.register("reward/test-log-v1", LogReturnReward)
    try:
        env = TradingEnv({"period": "all", "reward": {"kind": "test-log-v1"}}, market=market1)
        env.reset()
        _, r, _, _, info = env.step(2)
        _, r, _, _, info2 = env.step(2)
        assert r == pytest.approx(np.log(info2["value"] / info["value"]))
    finally:
        registry.unregister("reward/test-log-v1")


def _make(market: MarketData, seed: int):
    def thunk():
        return gym.make("marketlab/Trading-v0", market=market, config={"costs": COSTS, "period": "all", "episode_length": 20, "random_start": True})

    return thunk


@pytest.mark.parametrize("vector_cls", ["sync", "async"])
def test_vector_envs_match_single_env(vector_cls, market1):
    fns = [_make(market1, i) for i in range(2)]
    venv = gym.vector.SyncVectorEnv(fns) if vector_cls == "sync" else gym.vector.AsyncVectorEnv(fns, context="fork")
    try:
        obs, _ = venv.reset(seed=11)
        singles = [TradingEnv({"costs": COSTS, "period": "all", "episode_length": 20, "random_start": True}, market=market1) for _ in range(2)]
        for i, e in enumerate(singles):
            o, _ = e.reset(seed=11 + i)  # vector envs seed sub-env i with seed + i
            np.testing.assert_array_equal(o, obs[i])
        for k in range(10):
            acts = np.array([k % 3, (k + 1) % 3])
            obs, rew, term, trunc, _ = venv.step(acts)
            for i, e in enumerate(singles):
                o, r, *_ = e.step(acts[i])
                np.testing.assert_array_equal(o, obs[i])
                assert r == pytest.approx(rew[i], rel=1e-12)
    finally:
        venv.close()


@pytest.mark.parametrize(
    "n,action,reward", [(1, "discrete", "pnl"), (3, "weights", "diff_sharpe"), (2, "discrete", "log_return")]
)
def test_batched_torch_env_agrees_with_single_env(n, action, reward, market1, market3):
    m = market1 if n == 1 else synthetic_market(300, n, seed=5, vol=0.01) if n == 2 else market3
    cfg = {"costs": COSTS, "period": "all", "action": {"kind": action + "-v1"}, "reward": {"kind": reward.replace("_", "-") + "-v1"}, "episode_length": 60, "random_start": True}
    b = 6
    benv = BatchedTradingEnv(cfg, market=m, num_envs=b, device="cpu", seed=0)
    obs_b = benv.reset(seed=2)
    singles = [TradingEnv(cfg, market=m) for _ in range(b)]
    obs = [e.reset(options={"start": int(s)})[0] for e, s in zip(singles, benv.t.tolist(), strict=True)]
    np.testing.assert_allclose(np.stack(obs), obs_b.numpy(), atol=1e-6)
    rng = np.random.default_rng(0)
    for _step in range(60):
        if action == "weights":
            a = rng.uniform(-1, 1, (b, n))
        else:
            a = rng.integers(0, 3, (b, n)) if n > 1 else rng.integers(0, 3, b)
        ob, rb, tb, _, ib = benv.step(torch.as_tensor(a))
        for i, e in enumerate(singles):
            o, r, done, _, info = e.step(a[i])
            assert info["value"] == pytest.approx(ib["value"][i].item(), rel=1e-9)
            assert r == pytest.approx(rb[i].item(), rel=1e-5, abs=1e-6)
            assert done == bool(tb[i])
            if not done:
                np.testing.assert_allclose(o, ob[i].numpy(), atol=1e-5)
    assert bool(tb.all())  # every episode ended at step 60 and was auto-reset


def test_batched_env_autoreset_and_device(market1):
    benv = BatchedTradingEnv({"period": "all", "episode_length": 5}, market=market1, num_envs=4, device="auto")
    obs = benv.reset()
    assert obs.device.type == benv.device.type and obs.shape == (4, benv.obs_dim)
    for _ in range(5):
        obs, r, term, trunc, info = benv.step(torch.full((4,), 2))
    assert term.all() and "final_value" in info
    assert (benv.t == benv.t_lo).all() and torch.allclose(benv.value, torch.full((4,), 10_000.0, dtype=benv.dtype))
