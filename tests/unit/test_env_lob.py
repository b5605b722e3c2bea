"""LOBExecution-v0 and MarketMaking-v0: API checks, queue priority in replay, completion, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import marketlab.envs  # noqa: F401  (registers the gymnasium ids)
from marketlab.core.errors import SpecError
from marketlab.market.venues import ReplayVenue, events_from_frame


@pytest.fixture(scope="module")
def lob_events():
    from marketlab.store.synth import synth_lob

    return events_from_frame(synth_lob(0, n_events=3_000)["events"])


def _events(rows):
    dt = [(c, np.int64) for c in ("ts", "type", "order_id", "side", "price", "size")]
    return np.array([tuple(r) for r in rows], dtype=dt)


def test_agent_child_queues_behind_resting_orders():
    """Agent joins the bid behind order 2; a later order 3 queues behind the agent. An execution of 2
    does not touch the agent; an execution 'of 3' hits the agent first (it is ahead of 3)."""
    ev = _events([
        (1, 1, 1, -1, 101, 5),  # ask 5 @101
        (2, 1, 2, 1, 99, 5),    # bid 5 @99
        (3, 1, 3, 1, 99, 4),    # (after the agent joins) bid 4 @99
        (4, 4, 2, 1, 99, 5),    # execution of order 2 (5 lots)
        (5, 4, 3, 1, 99, 2),    # execution of 2 lots against order 3
    ])
    v = ReplayVenue(ev, step_events=1)
    v.reset(start=2)
    assert v.quotes() == (99, 101)
    assert v.limit(1, 99, 3) == [] and v.queue_ahead() == 5
    assert v.advance() == []            # order 3 arrives behind the agent
    assert v.advance() == [] and v.queue_ahead() == 0  # order 2 executed; agent now first
    fills = v.advance()
    assert [(f.side, f.price, f.size, f.maker) for f in fills] == [(1, 99, 2, True)]
    assert v.resting() == 1


def test_execution_env_checkers_and_completion(lob_events):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("marketlab/LOBExecution-v0", config={"quantity": 500, "horizon": 8, "step_events": 100}, events=lob_events)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    for action in range(5):
        obs, _ = env.reset(seed=3)
        done, total = False, 0.0
        while not done:
            obs, r, done, _, info = env.step(action)
            total += r
        assert info["filled"] == 500  # the remainder is sent at the horizon
        assert total == pytest.approx(-info["shortfall_bps"], abs=1e-9)


def test_execution_env_reproducible(lob_events):
    def run(seed):
        env = gym.make("marketlab/LOBExecution-v0", config={"quantity": 300, "horizon": 6, "step_events": 80}, events=lob_events)
        env.reset(seed=seed)
        return [env.step(a)[1] for a in (1, 2, 0, 1, 3, 1)]

    assert run(5) == run(5)


def test_execution_env_bad_config(lob_events):
    with pytest.raises(SpecError, match=r"env\.horizon.*exceeds"):
        gym.make("marketlab/LOBExecution-v0", config={"horizon": 1000, "step_events": 100}, events=lob_events)
    with pytest.raises(SpecError, match=r"env\.quantitty.*unknown key"):
        gym.make("marketlab/LOBExecution-v0", config={"quantitty": 5}, events=lob_events)


def test_market_making_on_abm_and_replay(lob_events):
    from gymnasium.utils.env_checker import check_env

    env = gym.make("marketlab/MarketMaking-v0", config={"horizon": 6, "warmup_seconds": 30, "step_seconds": 2})
    check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=1)
    done, inv = False, []
    while not done:
        _, r, done, _, info = env.step(0)
        inv.append(info["inventory"])
        assert np.isfinite(r)
    assert max(abs(i) for i in inv) <= 1_000
    rep = gym.make("marketlab/MarketMaking-v0", config={"venue": "replay-v1", "horizon": 10, "step_events": 50}, events=lob_events)
    rep.reset(seed=2)
    rewards = [rep.step(5)[1] for _ in range(10)]
    rep.reset(seed=2)
    assert rewards == [rep.step(5)[1] for _ in range(10)]
