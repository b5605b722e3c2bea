"""Issue 12's done-when: a newcomer adds a venue, a reward and a signal source by writing one class each
and registering one id from outside the package, then names the ids in a spec. Nothing here touches
marketlab's files; the registrations are undone after each test."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from numba import njit

from marketlab.backtests import Backtest, BacktestSpec
from marketlab.core import registry
from marketlab.core.protocols import AgentFill, SignalSource, Venue
from marketlab.envs.rewards import KernelReward
from marketlab.market import synthetic_market


# --- a venue: a fixed book (bid 99, ask 101, unlimited size) that fills every resting order each step --
class FixedBookVenue:
    """Market orders fill at the touch; resting limit orders fill at their price at the next advance."""

    def __init__(self) -> None:
        self.reset()

    @classmethod
    def from_config(cls, config: Any, *, events: Any = None, store: Any = None) -> FixedBookVenue:
        return cls()

    def start_bounds(self, horizon: int) -> None:
        return None

    def reset(self, seed: int = 0, start: int = 0) -> None:
        self.now: int = 0
        self.orders: list[tuple[int, int, int]] = []

    @property
    def exhausted(self) -> bool:
        return False

    @property
    def now_ns(self) -> int:
        return self.now

    def advance(self) -> list[AgentFill]:
        self.now += 1_000_000_000
        fills, self.orders = [AgentFill(s, p, q, True) for s, p, q in self.orders], []
        return fills

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        self.orders.append((side, price, size))
        return []

    def market(self, side: int, size: int) -> list[AgentFill]:
        return [AgentFill(side, 101 if side > 0 else 99, size, False)]

    def cancel_all(self) -> None:
        self.orders = []

    def resting(self) -> int:
        return sum(q for _, _, q in self.orders)

    def queue_ahead(self) -> int:
        return 0

    def quotes(self) -> tuple[int | None, int | None]:
        return 99, 101

    def snapshot(self, depth: int) -> np.ndarray:
        return np.tile(np.array([101, 1_000, 99, 1_000], dtype=np.int64), depth)


# --- a reward: the step's return in basis points, as a numba kernel (so the batched env runs it too) ---
@njit(cache=False)
def _bps_kernel(state: np.ndarray, prev_value: float, value: float, params: np.ndarray) -> float:
    state[0] += 1.0  # steps seen this episode (exercises the per-episode state)
    return params[0] * (value / prev_value - 1.0) * 1e4


class ReturnBps(KernelReward):
    kernel = _bps_kernel
    state_size = 1


@njit(cache=False)
def _const_kernel(state: np.ndarray, prev_value: float, value: float, params: np.ndarray) -> float:
    return params[0]  # the scale, whatever the step did


class ConstantReward(KernelReward):
    kernel = _const_kernel


# --- a signal source: fully long every asset from the first row ---------------------------------------
class AlwaysLong:
    gives: ClassVar[str] = "weights"

    def __init__(self, signal: Any, backtest: Any) -> None:
        self.size = float(signal.params.get("size", 1.0))

    def decisions(self, market: Any, lo: int) -> tuple[str, Any]:
        w = np.full(market.close.shape, np.nan)
        w[lo] = self.size / market.n_assets
        return "weights", w


@pytest.fixture
def registered():
    ids = {"venue/test-fixed-book-v1": FixedBookVenue, "reward/test-return-bps-v1": ReturnBps,
           "reward/test-constant-v1": ConstantReward, "signal/test-always-long-v1": AlwaysLong}
    for rid, obj in ids.items():
        registry.register(rid, obj)
    yield
    for rid in ids:
        registry.unregister(rid)


def test_the_classes_satisfy_the_core_protocols():
    assert isinstance(FixedBookVenue(), Venue)
    assert isinstance(AlwaysLong.__new__(AlwaysLong), SignalSource)


def test_new_venue_drives_lob_execution(registered):
    import gymnasium as gym

    import marketlab.envs  # noqa: F401  (gymnasium ids)

    env = gym.make("marketlab/LOBExecution-v0", config={"venue": "test-fixed-book-v1", "quantity": 10, "horizon": 2})
    env.reset(seed=0)
    rewards = [env.step(1)[1] for _ in range(2)]  # join the bid (99) twice: 5 lots each, both filled
    # arrival mid 100; each fill saves 1 tick on 5 of 10 lots: 1 * 5 / (10 * 100) * 1e4 = 50 bps
    assert rewards == pytest.approx([50.0, 50.0])
    env.reset(seed=0)
    _, r, done, _, info = env.step(3)  # market buy of 5 at the ask (101): -50 bps
    assert r == pytest.approx(-50.0) and info["filled"] == 5 and not done


def test_new_reward_in_single_and_batched_env(registered):
    from marketlab.envs.batched import BatchedTradingEnv
    from marketlab.envs.trading import TradingEnv

    m = synthetic_market(120, 1, seed=4, vol=0.01)
    cfg = {"period": "all", "reward": {"kind": "test-return-bps-v1", "scale": 2.0}, "episode_length": 10}
    env = TradingEnv(cfg, market=m)
    env.reset()
    values, rewards = [env.value], []
    for _ in range(10):
        _, r, _, _, info = env.step(2)
        values.append(info["value"])
        rewards.append(r)
    np.testing.assert_allclose(rewards, 2.0 * np.diff(values) / np.array(values[:-1]) * 1e4, rtol=1e-12)
    assert env.reward_fn.state[0] == 10
    benv = BatchedTradingEnv(cfg, market=m, num_envs=3, device="cpu", engine="numba")
    benv.reset(starts=np.full(3, env.start))
    got = [benv.step(torch.full((3,), 2))[1].clone() for _ in range(10)]
    np.testing.assert_allclose(torch.stack(got)[:, 0].numpy(), np.float32(rewards), rtol=1e-6)


@pytest.mark.slow  # compiles two user kernels into the batched step (~3 s of CPU)
def test_two_new_rewards_each_get_their_own_batched_step(registered):
    """The batched env compiles a user's kernel into its step loop once per kernel: a second reward in the same
    process runs its own kernel, not the first one's."""
    from marketlab.envs.batched import BatchedTradingEnv

    m = synthetic_market(120, 1, seed=4, vol=0.01)
    envs = {kind: BatchedTradingEnv({"period": "all", "reward": {"kind": kind, "scale": 3.0}}, market=m, num_envs=2, device="cpu",
                                    engine="numba") for kind in ("test-return-bps-v1", "test-constant-v1")}
    for env in envs.values():
        env.reset(starts=np.full(2, 40))
    (_, r_bps, _, _, info), (_, r_const, _, _, _) = (env.step(torch.full((2,), 2)) for env in envs.values())
    assert r_const.tolist() == [3.0, 3.0]
    init = envs["test-return-bps-v1"].init_cash  # the first step starts at the initial cash
    np.testing.assert_allclose(r_bps.numpy(), 3.0 * (info["value"].numpy() / init - 1.0) * 1e4, rtol=1e-5)


def test_new_signal_source_in_a_backtest(registered):
    m = synthetic_market(50, 1, seed=2, vol=0.02, bar_seconds=86_400)
    spec = BacktestSpec.from_dict({"name": "newcomer", "data": {"dataset": "mem"}, "strategy": {"kind": "weights"},
                                   "signal": {"kind": "test-always-long-v1", "params": {"size": 1.0}}, "benchmark": {"kind": "none"}})
    res = Backtest(spec, market=m).run(report=False)
    assert res.value[-1] == pytest.approx(10_000.0 * m.close[-1, 0] / m.close[0, 0], rel=1e-12)  # no costs: buy and hold


def test_a_file_can_only_name_registered_ids(registered):
    from marketlab.core.errors import SpecError

    with pytest.raises(SpecError, match=r"key 'signal\.kind': unknown signal id 'tests.unit.test_newcomer_components:AlwaysLong'"):
        BacktestSpec.from_dict({"name": "x", "data": {"dataset": "mem"}, "strategy": {"kind": "weights"},
                                "signal": {"kind": "tests.unit.test_newcomer_components:AlwaysLong"}})
