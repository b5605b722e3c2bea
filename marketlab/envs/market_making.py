"""``marketlab/MarketMaking-v0``: quote both sides in the simulator, with an inventory penalty.

Each step the agent's previous quotes are cancelled and a new bid and ask of ``quote_size`` lots are
posted ``offset`` ticks behind the best prices: action ``a`` in Discrete(n*n) picks
(bid offset, ask offset) = (a // n, a % n) with n = ``n_offsets``. A side is not quoted when the
inventory already sits at ``max_inventory`` in that direction. The market then runs one step on the
agent-based simulator (default; ``simulator = "replay"`` replays recorded events, see :mod:`.venues`).

Reward = change of mark-to-market PnL (cash + inventory x mid, in ticks x lots) minus
``inventory_penalty`` x inventory^2, divided by ``quote_size`` (so it is in ticks per quoted lot).
Observation (float32): inventory / max_inventory, time fraction, spread / 10, level-1 imbalance,
mid change over the step in ticks / 10, the last reward / 10, clipped to [-10, 10].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.core.config import from_dict
from marketlab.core.errors import SpecError
from marketlab.envs.venues import AbmVenue, AgentFill, ReplayVenue, events_from_frame


@dataclass(frozen=True)
class MarketMakingConfig:
    simulator: str = "abm"
    sim_spec: str | None = None
    dataset: str = "synth_lob"
    symbol: str | None = None
    store: str | None = None
    step_seconds: float = 5.0
    warmup_seconds: float = 120.0
    step_events: int = 100
    warmup_events: int = 500
    horizon: int = 100
    quote_size: int = 100
    n_offsets: int = 4
    max_inventory: int = 1_000
    inventory_penalty: float = 0.0001
    random_start: bool = True


class MarketMakingEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": [], "render_fps": 30}

    def __init__(self, config: MarketMakingConfig | dict[str, Any] | None = None, *, events: Any = None, store: Any = None) -> None:
        super().__init__()
        cfg = config if isinstance(config, MarketMakingConfig) else from_dict(MarketMakingConfig, dict(config or {}), prefix="env.")
        self.config = cfg
        if cfg.quote_size < 1 or cfg.n_offsets < 1 or cfg.max_inventory < cfg.quote_size:
            raise SpecError(None, "env.quote_size", "need quote_size >= 1, n_offsets >= 1, max_inventory >= quote_size")
        if cfg.simulator == "abm":
            self.venue: Any = AbmVenue(cfg.sim_spec, cfg.step_seconds, cfg.warmup_seconds)
        elif cfg.simulator == "replay":
            if events is None:
                from marketlab.envs.lob_execution import ExecutionConfig, LOBExecutionEnv

                events = LOBExecutionEnv._load_events(ExecutionConfig(dataset=cfg.dataset, symbol=cfg.symbol, store=cfg.store), store)
            elif not isinstance(events, np.ndarray):
                events = events_from_frame(events)
            self.venue = ReplayVenue(events, cfg.step_events)
        else:
            raise SpecError(None, "env.simulator", f"must be 'abm' or 'replay', got {cfg.simulator!r}")
        self.action_space = gym.spaces.Discrete(cfg.n_offsets * cfg.n_offsets)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(6,), dtype=np.float32)
        self.inventory = 0
        self.cash = 0.0
        self.step_no = 0
        self.last_mid = 0.0
        self.last_reward = 0.0

    def _mid(self) -> float:
        b, a = self.venue.quotes()
        if b and a:
            return (a + b) / 2.0
        return float(b or a or self.last_mid)

    def _observe(self, mid_change: float) -> np.ndarray:
        cfg = self.config
        b, a = self.venue.quotes()
        snap = self.venue.snapshot(1)
        bid1, ask1 = float(snap[3]), float(snap[1])
        obs = np.array(
            [
                self.inventory / cfg.max_inventory,
                self.step_no / cfg.horizon,
                ((a - b) if (a and b) else 0) / 10.0,
                (bid1 - ask1) / (bid1 + ask1) if bid1 + ask1 > 0 else 0.0,
                mid_change / 10.0,
                self.last_reward / 10.0,
            ],
            dtype=np.float32,
        )
        return np.clip(obs, -10.0, 10.0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        cfg = self.config
        if cfg.simulator == "abm":
            self.venue.reset(int(self.np_random.integers(0, 2**31 - 1)))
        else:
            last = self.venue.n_events - cfg.horizon * cfg.step_events
            start = int(self.np_random.integers(cfg.warmup_events, last + 1)) if cfg.random_start and last > cfg.warmup_events else cfg.warmup_events
            self.venue.reset(min(start, self.venue.n_events))
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

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        cfg = self.config
        a = int(action)
        off_b, off_a = divmod(a, cfg.n_offsets)
        prev_pnl = self.cash + self.inventory * self.last_mid
        self.venue.cancel_all()
        b, ask = self.venue.quotes()
        q = cfg.quote_size
        if b and self.inventory + q <= cfg.max_inventory:
            self._account(self.venue.limit(1, b - off_b, q))
        if ask and self.inventory - q >= -cfg.max_inventory:
            self._account(self.venue.limit(-1, ask + off_a, q))
        self._account(self.venue.advance())
        mid = self._mid()
        pnl = self.cash + self.inventory * mid
        reward = (pnl - prev_pnl - cfg.inventory_penalty * self.inventory**2) / q
        mid_change = mid - self.last_mid
        self.last_mid = mid
        self.last_reward = reward
        self.step_no += 1
        done = self.step_no >= cfg.horizon or self.venue.exhausted
        if done:
            self.venue.cancel_all()
        info = {"inventory": self.inventory, "pnl_ticks": pnl, "mid": mid}
        return self._observe(mid_change), float(reward), bool(done), False, info
