"""``marketlab/MarketMaking-v0``: quote both sides in the simulator, with an inventory penalty.

Each step the agent's previous quotes are cancelled and a new bid and ask of ``quote_size`` lots are
posted ``offset`` ticks behind the best prices: action ``a`` in Discrete(n*n) picks
(bid offset, ask offset) = (a // n, a % n) with n = ``n_offsets``. A side is not quoted when the
inventory already sits at ``max_inventory`` in that direction. The market then runs one step on the
venue named by ``venue`` (default ``abm-v1``, the agent-based market; ``replay-v1`` replays recorded
events; see :mod:`.lob_venue`).

Prices move in the venue's ticks (:func:`.lob_venue.venue_tick`: 1 price unit for the replay and agent-based
venues, the price grid for ``trades-v1``). Reward = change of mark-to-market PnL (cash + inventory x mid, in ticks x lots) minus
``inventory_penalty`` x inventory^2, divided by ``quote_size`` (so it is in ticks per quoted lot).
Observation (float32): inventory / max_inventory, time fraction, spread / 10, level-1 imbalance,
mid change over the step in ticks / 10, the last reward / 10, clipped to [-10, 10].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.core.config import NonNegativeFloat, PositiveInt
from marketlab.core.errors import SpecError
from marketlab.core.protocols import AgentFill
from marketlab.envs.lob_venue import VenueEnv, VenueFields, venue_mid, venue_tick


@dataclass(frozen=True)
class MarketMakingConfig(VenueFields):
    """Quote ``quote_size`` lots per side at one of ``n_offsets`` ticks behind the best prices for
    ``horizon`` steps, inventory within +-``max_inventory``; the venue fields are
    :class:`~marketlab.envs.lob_venue.VenueFields` (default ``venue = "abm-v1"``)."""

    venue: str = "abm-v1"  # registry id of kind venue (default: the agent-based market)
    warmup_seconds: NonNegativeFloat = 120.0  # generative venues: seconds simulated before the episode
    horizon: PositiveInt = 100  # steps per episode
    quote_size: PositiveInt = 100  # lots per quote and side
    n_offsets: PositiveInt = 4  # quote offsets 0..n-1 ticks behind the best price per side (Discrete(n*n) actions)
    max_inventory: PositiveInt = 1_000  # no quote on the side that would take |inventory| past this (lots)
    inventory_penalty: NonNegativeFloat = 0.0001  # reward -= penalty x inventory^2 (ticks x lots^2) per step

    def validate(self, path: Any = None) -> None:
        """Venue registered; one quote fits in the inventory limit."""
        super().validate(path)
        if self.max_inventory < self.quote_size:
            raise SpecError(path, "env.max_inventory", f"must be >= quote_size ({self.max_inventory} < {self.quote_size})")


class MarketMakingEnv(VenueEnv):
    """See the module docstring."""

    config_class = MarketMakingConfig
    config: MarketMakingConfig

    def __init__(self, config: MarketMakingConfig | dict[str, Any] | None = None, *, events: Any = None, store: Any = None) -> None:
        super().__init__(config, events=events, store=store)
        cfg = self.config
        self.action_space = gym.spaces.Discrete(cfg.n_offsets * cfg.n_offsets)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(6,), dtype=np.float32)
        self.inventory = 0
        self.cash = 0.0
        self.step_no = 0
        self.last_mid = 0.0
        self.last_reward = 0.0

    def _mid(self) -> float:
        return venue_mid(self.venue, self.last_mid)

    def _observe(self, mid_change: float) -> np.ndarray:
        cfg = self.config
        b, a = self.venue.quotes()
        snap = self.venue.snapshot(1)
        bid1, ask1 = float(snap[3]), float(snap[1])
        obs = np.array(
            [
                self.inventory / cfg.max_inventory,
                self.step_no / cfg.horizon,
                ((a - b) if (a and b) else 0) / venue_tick(self.venue) / 10.0,
                (bid1 - ask1) / (bid1 + ask1) if bid1 + ask1 > 0 else 0.0,
                mid_change / venue_tick(self.venue) / 10.0,
                self.last_reward / 10.0,
            ],
            dtype=np.float32,
        )
        return np.clip(obs, -10.0, 10.0)

    def start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Episode start after the venue reset: flat inventory, no cash, mid from the venue."""
        self.inventory = 0
        self.cash = 0.0
        self.step_no = 0
        self.last_reward = 0.0
        self.last_mid = 0.0
        self.last_mid = self._mid()
        return self._observe(0.0), {"mid": self.last_mid}

    def _account(self, fills: list[AgentFill]) -> None:
        for f in fills:
            self.inventory += f.side * f.size
            self.cash -= f.side * f.size * f.price

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` and run the market one step (gymnasium API)."""
        cfg = self.config
        a = int(action)
        off_b, off_a = divmod(a, cfg.n_offsets)
        prev_pnl = self.cash + self.inventory * self.last_mid
        self.venue.cancel_all()
        b, ask = self.venue.quotes()
        q = cfg.quote_size
        tick = venue_tick(self.venue)
        if b and self.inventory + q <= cfg.max_inventory:
            self._account(self.venue.limit(1, b - off_b * tick, q))
        if ask and self.inventory - q >= -cfg.max_inventory:
            self._account(self.venue.limit(-1, ask + off_a * tick, q))
        self._account(self.venue.advance())
        mid = self._mid()
        pnl = self.cash + self.inventory * mid
        reward = ((pnl - prev_pnl) / tick - cfg.inventory_penalty * self.inventory**2) / q
        mid_change = mid - self.last_mid
        self.last_mid = mid
        self.last_reward = reward
        self.step_no += 1
        done = self.step_no >= cfg.horizon or self.venue.exhausted
        if done:
            self.venue.cancel_all()
        info = {"inventory": self.inventory, "pnl_ticks": pnl / tick, "mid": mid}
        return self._observe(mid_change), float(reward), bool(done), False, info
