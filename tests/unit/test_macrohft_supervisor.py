"""Optimal-value supervisor Q* against brute force, and the MacroHFT env's reward and money ledger."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from marketlab.agents.macrohft.supervisor import optimal_q
from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_MIN
from marketlab.envs.macrohft_env import MinuteTradingEnv


def _brute_force(p: np.ndarray, t: int, prev: float, a: float, fee: float, size: float, gamma: float,
                 positions: tuple[float, ...]) -> float:
    """max over every action sequence after (t, prev -> a) of the discounted sum of written-out rewards."""
    best = -np.inf
    steps = len(p) - 1 - t  # actions at t..T-2
    for tail in itertools.product(positions, repeat=steps - 1):
        seq = (a, *tail)
        total, cur = 0.0, prev
        for k, pos in enumerate(seq):
            i = t + k
            total += gamma**k * size * (pos * (p[i + 1] - p[i]) - fee * abs(pos - cur) * p[i])
            cur = pos
        best = max(best, total)
    return best


@pytest.mark.parametrize("positions", [(0.0, 1.0), (-1.0, 0.0, 1.0)])
def test_q_star_matches_brute_force(positions: tuple[float, ...]) -> None:
    p = np.array([100.0, 100.3, 99.8, 100.1, 100.12, 99.5, 100.4])
    fee, size, gamma = 0.002, 0.5, 0.9  # a fee large enough to make some round trips unprofitable
    q = optimal_q(p, fee=fee, size=size, gamma=gamma, positions=positions)
    assert q.shape == (7, len(positions), len(positions))
    for t in range(len(p) - 1):
        for i, prev in enumerate(positions):
            for j, a in enumerate(positions):
                assert q[t, i, j] == pytest.approx(_brute_force(p, t, prev, a, fee, size, gamma, positions), abs=1e-12)
    assert not q[-1].any()


def test_q_star_depends_on_the_fee() -> None:
    """With a fee that eats a 0.1 % move, Q* prefers staying flat over a round trip; without fee it trades."""
    p = np.array([100.0, 100.1, 100.0])
    q0 = optimal_q(p, fee=0.0, gamma=1.0)
    q1 = optimal_q(p, fee=0.001, gamma=1.0)
    assert q0[0, 0].argmax() == 1 and q1[0, 0].argmax() == 0


def test_env_rewards_sum_to_the_ledger_balance() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    env = MinuteTradingEnv(close, rng.normal(size=(50, 3)), fee=0.0002, size=0.2)
    obs, info = env.reset(seed=1)
    assert obs.shape == (4,) and info["position"] == 0.0
    total, done = 0.0, False
    actions = rng.integers(0, 2, 49)
    k = 0
    while not done:
        obs, r, done, _, info = env.step(int(actions[k]))
        total += r
        k += 1
    assert k == 49
    assert total == pytest.approx(info["balance"], abs=1e-9)
    assert info["required_money"] > 0
    # the same rewards as the supervisor's one-step terms at the fee the env charges
    q = optimal_q(close[:2], fee=0.0002, size=0.2, gamma=0.0)
    assert q[0, 0, 1] == pytest.approx(0.2 * ((close[1] - close[0]) - 0.0002 * close[0]))


def test_env_refuses_a_gap_inside_an_episode() -> None:
    ts = np.r_[np.arange(10), np.arange(90, 100)] * NS_PER_MIN
    with pytest.raises(DataError, match="gap"):
        MinuteTradingEnv(np.full(20, 100.0), ts=ts)
