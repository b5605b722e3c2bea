"""``marketlab/LOBExecution-v0``: execute a parent order within a horizon through the matching engine.

The agent must buy (``side`` +1) or sell (-1) ``quantity`` lots within ``horizon`` decision steps. Each
step it picks one of five child-order actions, then the market runs one step on its venue (``venue``: a registry id,
``replay-v1`` = ``step_events`` recorded events, ``abm-v1`` = ``step_seconds`` of the agent-based market;
see :mod:`.lob_venue`):

  0 wait · 1 join the best price on its own side (passive limit, queues behind resting orders) ·
  2 improve the best price by one tick when the spread allows (else join) · 3 market order ·
  4 cancel its resting child orders.

Each placed child is ``ceil(unplaced / steps_left)`` lots (a TWAP slice). At the horizon the remainder is
sent as a market order. Reward per step = implementation shortfall saved on that step's fills, in basis
points of the parent's arrival notional: ``side * (arrival_mid - fill_price) * size / (quantity *
arrival_mid) * 1e4``; whatever cannot be filled at the end costs ``unfilled_penalty_bps`` per parent.

Observation (float32, clipped to [-10, 10]): remaining fraction, time fraction, resting-child fraction,
queue ahead of the agent's oldest child / quantity, spread in ticks (:func:`.lob_venue.venue_tick`) / 10, level-1 imbalance, mid move
since arrival in bps / 10, then log1p of the top ``depth`` bid and ask sizes / 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from marketlab.core.config import NonNegativeFloat, PositiveInt
from marketlab.core.protocols import AgentFill
from marketlab.envs.lob_venue import VenueEnv, VenueFields, check_room, venue_mid, venue_tick


@dataclass(frozen=True)
class ExecutionConfig(VenueFields):
    """Buy (``side`` 1) or sell (-1) ``quantity`` lots within ``horizon`` steps; the venue fields are
    :class:`~marketlab.envs.lob_venue.VenueFields` (default ``venue = "replay-v1"``)."""

    side: Literal[1, -1] = 1  # 1 buy, -1 sell the parent order
    quantity: PositiveInt = 1_000  # parent order size in lots
    horizon: PositiveInt = 20  # decision steps to complete it (the remainder is sent as a market order at the end)
    depth: PositiveInt = 5  # book levels per side in the observation
    unfilled_penalty_bps: NonNegativeFloat = 100.0  # cost (bps of the parent) of what cannot be filled at the end


N_ACTIONS = 5


class LOBExecutionEnv(VenueEnv):
    """See the module docstring. ``events``: a structured array or polars frame of one symbol's events."""

    config_class = ExecutionConfig
    config: ExecutionConfig

    def __init__(self, config: ExecutionConfig | dict[str, Any] | None = None, *, events: Any = None, store: Any = None) -> None:
        super().__init__(config, events=events, store=store)
        cfg = self.config
        check_room(self.venue, cfg.horizon)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.obs_dim = 7 + 2 * cfg.depth
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(self.obs_dim,), dtype=np.float32)
        self.filled = 0
        self.step_no = 0
        self.arrival_mid = 0.0
        self.cost_ticks = 0.0

    # ------------------------------------------------------------------------------------------------
    def _mid(self) -> float:
        return venue_mid(self.venue, self.arrival_mid)

    def _observe(self) -> np.ndarray:
        cfg = self.config
        b, a = self.venue.quotes()
        snap = self.venue.snapshot(cfg.depth).reshape(cfg.depth, 4)  # ask_px, ask_sz, bid_px, bid_sz
        bid1, ask1 = float(snap[0, 3]), float(snap[0, 1])
        imb = (bid1 - ask1) / (bid1 + ask1) if bid1 + ask1 > 0 else 0.0
        spread = (a - b) if (a and b) else 0
        mid = self._mid()
        obs = np.empty(self.obs_dim, dtype=np.float32)
        q = float(cfg.quantity)
        obs[0] = (q - self.filled) / q
        obs[1] = self.step_no / cfg.horizon
        obs[2] = self.venue.resting() / q
        obs[3] = self.venue.queue_ahead() / q
        obs[4] = spread / venue_tick(self.venue) / 10.0
        obs[5] = imb
        obs[6] = (mid / self.arrival_mid - 1.0) * 1e3 if self.arrival_mid else 0.0
        obs[7 : 7 + cfg.depth] = np.log1p(snap[:, 3]) / 10.0
        obs[7 + cfg.depth :] = np.log1p(snap[:, 1]) / 10.0
        return np.clip(obs, -10.0, 10.0)

    def start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Episode start after the venue reset: nothing filled, arrival mid from the venue."""
        self.filled = 0
        self.step_no = 0
        self.cost_ticks = 0.0
        self.arrival_mid = 0.0
        self.arrival_mid = self._mid()
        return self._observe(), {"arrival_mid": self.arrival_mid}

    def _book(self, fills: list[AgentFill]) -> float:
        """Account parent-side fills; returns their reward contribution (bps of arrival notional)."""
        side, q = self.config.side, self.config.quantity
        r = 0.0
        for f in fills:
            if f.side != side:
                continue  # cannot happen with same-side children; ignore defensively
            size = min(f.size, q - self.filled)
            self.filled += size
            shortfall = side * (self.arrival_mid - f.price) * size  # ticks * lots saved vs arrival
            self.cost_ticks -= shortfall
            r += shortfall / (q * self.arrival_mid) * 1e4
        return r

    def _slice(self) -> int:
        steps_left = max(1, self.config.horizon - self.step_no)
        unplaced = self.config.quantity - self.filled - self.venue.resting()
        return max(0, int(math.ceil(unplaced / steps_left)))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` and run the market one step (gymnasium API)."""
        a = int(action)
        cfg = self.config
        side = cfg.side
        reward = 0.0
        size = self._slice()
        b, ask = self.venue.quotes()
        if a in (1, 2) and size > 0:
            tick = venue_tick(self.venue)
            own, other = (b, ask) if side == 1 else (ask, b)
            if own is None:
                own = (other - side * tick) if other else tick * int(round(self.arrival_mid / tick))
            px = own
            if a == 2 and other is not None and abs(other - own) > tick:
                px = own + side * tick  # one tick inside the spread
            reward += self._book(self.venue.limit(side, px, size))
        elif a == 3 and size > 0:
            reward += self._book(self.venue.market(side, size))
        elif a == 4:
            self.venue.cancel_all()
        reward += self._book(self.venue.advance())
        self.step_no += 1
        done = self.filled >= cfg.quantity or self.step_no >= cfg.horizon or self.venue.exhausted
        if done and self.filled < cfg.quantity:
            self.venue.cancel_all()
            reward += self._book(self.venue.market(side, cfg.quantity - self.filled))
            if self.filled < cfg.quantity:  # the book could not absorb it
                reward -= cfg.unfilled_penalty_bps * (cfg.quantity - self.filled) / cfg.quantity
        if done:
            self.venue.cancel_all()
        info = {"filled": self.filled, "shortfall_bps": self.cost_ticks / (cfg.quantity * self.arrival_mid) * 1e4 if self.arrival_mid else 0.0}
        return self._observe(), float(reward), bool(done), False, info
