"""``marketlab/LOBExecution-v0``: execute a parent order within a horizon through the matching engine.

The agent must buy (``side`` +1) or sell (-1) ``quantity`` lots within ``horizon`` decision steps. Each
step it picks one of five child-order actions, then the market runs one step (``step_events`` recorded
events on the replay venue, ``step_seconds`` on the agent-based venue, see :mod:`.venues`):

  0 wait · 1 join the best price on its own side (passive limit, queues behind resting orders) ·
  2 improve the best price by one tick when the spread allows (else join) · 3 market order ·
  4 cancel its resting child orders.

Each placed child is ``ceil(unplaced / steps_left)`` lots (a TWAP slice). At the horizon the remainder is
sent as a market order. Reward per step = implementation shortfall saved on that step's fills, in basis
points of the parent's arrival notional: ``side * (arrival_mid - fill_price) * size / (quantity *
arrival_mid) * 1e4``; whatever cannot be filled at the end costs ``unfilled_penalty_bps`` per parent.

Observation (float32, clipped to [-10, 10]): remaining fraction, time fraction, resting-child fraction,
queue ahead of the agent's oldest child / quantity, spread in ticks / 10, level-1 imbalance, mid move
since arrival in bps / 10, then log1p of the top ``depth`` bid and ask sizes / 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.core.config import from_dict
from marketlab.core.errors import SpecError
from marketlab.envs.venues import AbmVenue, AgentFill, ReplayVenue, events_from_frame


@dataclass(frozen=True)
class ExecutionConfig:
    """``simulator`` "replay" (``dataset``/``symbol`` events from the store, or ``events`` passed in) or
    "abm" (the agent-based simulator from ``sim_spec``, default spec when None)."""

    simulator: str = "replay"
    dataset: str = "synth_lob"
    symbol: str | None = None
    start: str | None = None
    end: str | None = None
    store: str | None = None
    sim_spec: str | None = None
    side: int = 1
    quantity: int = 1_000
    horizon: int = 20
    step_events: int = 100
    warmup_events: int = 500
    step_seconds: float = 5.0
    warmup_seconds: float = 300.0
    random_start: bool = True
    depth: int = 5
    unfilled_penalty_bps: float = 100.0


N_ACTIONS = 5


class LOBExecutionEnv(gym.Env):
    """See the module docstring. ``events``: a structured array or polars frame of one symbol's events."""

    metadata = {"render_modes": [], "render_fps": 30}

    def __init__(self, config: ExecutionConfig | dict[str, Any] | None = None, *, events: Any = None, store: Any = None) -> None:
        super().__init__()
        cfg = config if isinstance(config, ExecutionConfig) else from_dict(ExecutionConfig, dict(config or {}), prefix="env.")
        self.config = cfg
        if cfg.side not in (1, -1):
            raise SpecError(None, "env.side", f"must be +1 (buy) or -1 (sell), got {cfg.side}")
        if cfg.quantity < 1 or cfg.horizon < 1:
            raise SpecError(None, "env.quantity", "quantity and horizon must be >= 1")
        if cfg.simulator == "replay":
            if events is None:
                events = self._load_events(cfg, store)
            elif not isinstance(events, np.ndarray):
                events = events_from_frame(events)
            self.venue: Any = ReplayVenue(events, cfg.step_events)
            need = cfg.warmup_events + cfg.horizon * cfg.step_events
            if need > events.shape[0]:
                raise SpecError(None, "env.horizon", f"warmup + horizon * step_events = {need} exceeds the {events.shape[0]} events")
        elif cfg.simulator == "abm":
            self.venue = AbmVenue(cfg.sim_spec, cfg.step_seconds, cfg.warmup_seconds)
        else:
            raise SpecError(None, "env.simulator", f"must be 'replay' or 'abm', got {cfg.simulator!r}")
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.obs_dim = 7 + 2 * cfg.depth
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(self.obs_dim,), dtype=np.float32)
        self.filled = 0
        self.step_no = 0
        self.arrival_mid = 0.0
        self.cost_ticks = 0.0

    @staticmethod
    def _load_events(cfg: ExecutionConfig, store: Any) -> np.ndarray:
        from marketlab.envs.data import resolve_store

        store = store if store is not None else resolve_store(cfg.store)
        lf = store.scan_events(cfg.dataset, symbols=[cfg.symbol] if cfg.symbol else None, start=cfg.start, end=cfg.end)
        frame = lf.collect()
        if cfg.symbol is None and frame.height and frame["symbol"].n_unique() > 1:
            raise SpecError(None, "env.symbol", f"dataset '{cfg.dataset}' has several symbols: name one")
        return events_from_frame(frame, source=f"dataset '{cfg.dataset}'")

    # ------------------------------------------------------------------------------------------------
    def _mid(self) -> float:
        b, a = self.venue.quotes()
        if b and a:
            return (a + b) / 2.0
        return float(b or a or self.arrival_mid)

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
        obs[4] = spread / 10.0
        obs[5] = imb
        obs[6] = (mid / self.arrival_mid - 1.0) * 1e3 if self.arrival_mid else 0.0
        obs[7 : 7 + cfg.depth] = np.log1p(snap[:, 3]) / 10.0
        obs[7 + cfg.depth :] = np.log1p(snap[:, 1]) / 10.0
        return np.clip(obs, -10.0, 10.0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        cfg = self.config
        if cfg.simulator == "replay":
            last = self.venue.n_events - cfg.horizon * cfg.step_events
            if options and "start_event" in options:
                start = int(options["start_event"])
            elif cfg.random_start and last > cfg.warmup_events:
                start = int(self.np_random.integers(cfg.warmup_events, last + 1))
            else:
                start = cfg.warmup_events
            self.venue.reset(start)
        else:
            self.venue.reset(int(self.np_random.integers(0, 2**31 - 1)))
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
        return max(0, math.ceil(unplaced / steps_left))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = int(action)
        cfg = self.config
        side = cfg.side
        reward = 0.0
        size = self._slice()
        b, ask = self.venue.quotes()
        if a in (1, 2) and size > 0:
            own, other = (b, ask) if side == 1 else (ask, b)
            if own is None:
                own = (other - side) if other else int(round(self.arrival_mid))
            px = own
            if a == 2 and other is not None and abs(other - own) > 1:
                px = own + side  # one tick inside the spread
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
