"""``marketlab/MacroHFT-v0``: minute-level target-position trading with a fixed holding, as in MacroHFT.

At minute t the agent sees the features of minute t and its current position P_t, picks a target
position a_t from ``positions`` (default {0, 1}: long-only as in the paper; {-1, 0, 1} optional) as a
multiple of ``size`` coins, is filled at ``close[t]`` and earns

    r_t = size * (a_t * (close[t+1] - close[t]) - fee * |a_t - P_t| * close[t])

(paper section 3.2; :func:`transition_reward`). The optimal-value supervisor (``agents.macrohft.supervisor``)
calls the same function, so the DP targets and the env can never use different fees (the reference code
used 10 bp in the DP and 2 bp in the env). Default fee: 2 bp per side.

A "required money" ledger (peak cash outlay) gives the reference code's return rate
``final_balance / required_money`` in ``info``. The env reads one contiguous series: a gap in ``ts``
(e.g. a trading halt) inside the episode is an error, never bridged silently.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.core.errors import DataError, SpecError

DEFAULT_FEE = 0.0002


def transition_reward(close_t: np.ndarray | float, close_next: np.ndarray | float, prev_pos: np.ndarray | float,
                      pos: np.ndarray | float, fee: float, size: float) -> np.ndarray:
    """Reward of holding ``pos`` from close t to close t+1 after trading from ``prev_pos`` at close t.

    All arguments broadcast; prices in quote currency, positions in units of ``size`` coins. Returns quote currency.
    """
    out: np.ndarray = size * (np.asarray(pos) * (np.asarray(close_next) - np.asarray(close_t))
                   - fee * np.abs(np.asarray(pos) - np.asarray(prev_pos)) * np.asarray(close_t))
    return out


class MoneyLedger:
    """Cash of a fixed-size trader and its peak outlay (the reference's ``required_money``)."""

    def __init__(self, fee: float, size: float) -> None:
        self.fee, self.size = fee, size
        self.cash = 0.0
        self.required = 0.0

    def trade(self, price: float, delta_pos: float) -> None:
        """Buy (delta > 0) or sell ``delta_pos * size`` coins at ``price`` paying ``fee`` on the notional."""
        notional = delta_pos * self.size * price
        self.cash -= notional + self.fee * abs(notional)
        self.required = max(self.required, -self.cash)

    def balance(self, pos: float, price: float) -> float:
        """Cash plus the position marked at ``price``."""
        return self.cash + pos * self.size * price


class MinuteTradingEnv(gym.Env):
    """One contiguous minute series (``prices``, not ``close``: gymnasium's ``close()`` owns that name). Observation: ``concat(features[t], [position])`` (float32).

    Args: ``close`` (T,) prices; ``features`` (T, F) already-scaled features (default: none);
    ``ts`` (T,) int64 ns used only to refuse gaps; ``fee`` per side; ``size`` coins per unit position;
    ``positions`` the allowed target positions; ``random_initial_position`` draws P_0 from ``positions``
    with the reset seed (the paper's training episodes) instead of 0.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        close: np.ndarray | None = None,
        features: np.ndarray | None = None,
        *,
        ts: np.ndarray | None = None,
        fee: float = DEFAULT_FEE,
        size: float = 1.0,
        positions: tuple[float, ...] = (0.0, 1.0),
        random_initial_position: bool = False,
    ) -> None:
        if close is None:
            raise SpecError(None, "close", "MacroHFT-v0 needs a close price series (close=...)")
        self.prices = np.asarray(close, dtype=np.float64)
        if self.prices.ndim != 1 or len(self.prices) < 2 or not np.all(np.isfinite(self.prices)) or np.any(self.prices <= 0):
            raise DataError(None, "close must be a 1-D series of >= 2 positive finite prices")
        self.features = np.zeros((len(self.prices), 0), np.float32) if features is None else np.asarray(features, np.float32)
        if len(self.features) != len(self.prices):
            raise DataError(None, f"features have {len(self.features)} rows, close has {len(self.prices)}")
        if ts is not None:
            from marketlab.core.timeutil import NS_PER_MIN

            bad = np.nonzero(np.diff(np.asarray(ts, dtype=np.int64)) != NS_PER_MIN)[0]
            if len(bad):
                raise DataError(None, f"gap in the minute series after {np.datetime64(int(ts[bad[0]]), 'ns')}: "
                                      "an episode must not cross a gap (trading halt)")
        if not 0 <= fee < 1:
            raise SpecError(None, "fee", f"must be in [0, 1), got {fee}")
        self.fee, self.size = float(fee), float(size)
        self.positions = tuple(float(p) for p in positions)
        self.random_initial_position = random_initial_position
        self.action_space = gym.spaces.Discrete(len(self.positions))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.features.shape[1] + 1,), np.float32)
        self.t = 0
        self.pos = 0.0
        self.ledger = MoneyLedger(self.fee, self.size)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.features[self.t], np.array([self.pos], np.float32)])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at minute 0 with position 0 (or a seeded random position); ``info["position"]``."""
        super().reset(seed=seed)
        self.t = 0
        self.pos = float(self.np_random.choice(self.positions)) if self.random_initial_position else 0.0
        self.ledger = MoneyLedger(self.fee, self.size)
        if self.pos:  # the reference buys the initial position at the first close
            self.ledger.trade(self.prices[0], self.pos)
        return self._obs(), {"position": self.pos}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Trade to ``positions[action]`` at close t, earn the move to close t+1 net of the fee."""
        a = self.positions[int(action)]
        p, p_next = self.prices[self.t], self.prices[self.t + 1]
        reward = float(transition_reward(p, p_next, self.pos, a, self.fee, self.size))
        self.ledger.trade(p, a - self.pos)
        self.pos = a
        self.t += 1
        done = self.t >= len(self.prices) - 1
        bal = self.ledger.balance(self.pos, self.prices[self.t])
        info = {"position": self.pos, "balance": bal, "required_money": self.ledger.required,
                "return_rate": bal / self.ledger.required if self.ledger.required > 0 else 0.0}
        return self._obs(), reward, done, False, info
