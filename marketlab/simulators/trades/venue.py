"""``venue/trades-v1``: a :class:`marketlab.core.protocols.Venue` in which the TRADES generator is the world
agent and one outside agent (an RL agent through the LOB envs, a rule) trades against it in the same
matching engine.

Each :meth:`TradesVenue.advance` lets the generator place orders until ``step_seconds`` of market time
have passed; the agent's orders rest in the same book (price-time priority), the generator never
cancels them, and the generator's next orders are conditioned on the book the agent helped shape — so
the world reacts to the agent. An episode starts at the beginning of the held-back test part of the day
(history window and book from the real data) and lasts ``horizon_seconds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.protocols import AgentFill
from marketlab.simulators.trades.train import load_checkpoint, load_day
from marketlab.simulators.trades.world import TradesMarkets

AGENT_ID_BASE = 1 << 45  # the agent's order ids; the generator's count up from 1


class TradesVenue:
    """Venue over one generated market. ``checkpoint``: a TRADES checkpoint directory; ``store``,
    ``dataset``, ``symbol``: the real data the episode starts from."""

    def __init__(self, checkpoint: str | Path, store: Any, dataset: str, symbol: str, *, step_seconds: float = 1.0,
                 horizon_seconds: float = 600.0, method: str = "ddim", steps: int = 10, start: str = "test",
                 device: str = "cpu", weights: str = "ema") -> None:
        self.model, self.stats, cfg = load_checkpoint(checkpoint, device=device, ema=weights == "ema")
        if not hasattr(store, "scan_events"):
            from marketlab.store import Store

            store = Store(store)
        self.tokens, day = load_day(store, dataset, symbol, cfg.levels, stats=self.stats)
        if start not in day.splits:
            raise ValueError(f"start must be one of {sorted(day.splits)}, got {start!r}")
        self.start_row = max(day.splits[start].start, cfg.window - 1)
        self.tick = int(self.tokens.grid)  # the price grid (store price units): agents' limit prices must lie on it
        self.step_ns = int(step_seconds * 1e9)
        self.horizon_ns = int(horizon_seconds * 1e9)
        self.method, self.steps, self.device = method, steps, device
        self.world: TradesMarkets | None = None
        self._mine: dict[int, tuple[int, int]] = {}
        self._next_id = AGENT_ID_BASE
        self._seen = 0
        self.t_end = 0

    @classmethod
    def from_config(cls, config: Any, *, events: Any = None, store: Any = None) -> TradesVenue:
        """From an LOB env config (``venue = "trades-v1"``): ``sim_spec`` names a TRADES session spec
        (``specs/simulators/trades_goog.toml``: checkpoint, source dataset/symbol/split, sampler, steps,
        ``duration_s`` = the episode's market time), ``step_seconds`` is the decision step. ``store``
        overrides the spec's source store; ``events`` is not used (the generator makes the flow)."""
        from marketlab.core.errors import SpecError
        from marketlab.simulators.trades.simulation import TradesSimSpec

        if not config.sim_spec:
            raise SpecError(None, "env.sim_spec", "venue trades-v1 needs sim_spec = a TRADES session spec (e.g. specs/simulators/trades_goog.toml)")
        spec_path = Path(config.sim_spec)
        spec = TradesSimSpec.from_toml(spec_path)
        base = spec_path.parent

        def resolve_path(p: str) -> Path:
            q = Path(p)
            return q if q.is_absolute() else base / q

        src = spec.source
        if store is None:
            from marketlab.store import Store

            store = Store(resolve_path(src.store) if src.store else None)
        return cls(resolve_path(spec.checkpoint), store, src.dataset, src.symbol, step_seconds=config.step_seconds,
                   horizon_seconds=spec.duration_s, method=spec.sampler, steps=spec.steps, start=src.split,
                   weights=spec.weights)

    def start_bounds(self, horizon: int) -> None:
        """None: a generative venue draws a fresh market from the seed instead of a start index."""
        return None

    # ------------------------------------------------------------------ Venue protocol
    def reset(self, seed: int, start: int = 0) -> None:
        """A fresh generated market seeded with ``seed`` (``start`` is ignored: generative venue)."""
        self.world = TradesMarkets(self.model, self.stats, self.tokens, start=self.start_row, n_markets=1, seed=seed,
                                   method=self.method, steps=self.steps, device=self.device)
        self._mine = {}
        self._next_id = AGENT_ID_BASE
        self._seen = 0
        self.t_end = self.world.now[0] + self.horizon_ns

    @property
    def _w(self) -> TradesMarkets:
        if self.world is None:
            raise RuntimeError("call reset(seed) first")
        return self.world

    @property
    def exhausted(self) -> bool:
        """True once the episode's market time is used up (and before the first reset)."""
        return self.world is None or self.world.now[0] >= self.t_end

    @property
    def now_ns(self) -> int:
        """Current market time, int64 ns UTC (0 before the first reset)."""
        return int(self.world.now[0]) if self.world is not None else 0

    def advance(self) -> list[AgentFill]:
        """Generate orders until ``step_seconds`` of market time have passed; the agent's fills meanwhile."""
        w = self._w
        target = w.now[0] + self.step_ns
        stuck = 0
        while w.now[0] < target and stuck < 50:
            before = w.now[0]
            w.step()
            stuck = stuck + 1 if w.now[0] == before else 0  # zero-delay orders or give-ups
        if w.now[0] < target:
            w.now[0] = target
        return self._new_fills()

    def _new_fills(self) -> list[AgentFill]:
        w = self._w
        batches = w.protected_fills[0][self._seen:]
        self._seen = len(w.protected_fills[0])
        out = []
        for f in batches:
            out.extend(self._to_agent(f))
        self._forget_done()
        return out

    def _to_agent(self, fills: np.ndarray) -> list[AgentFill]:
        out = []
        for f in fills:
            if int(f["maker_id"]) >= AGENT_ID_BASE:
                out.append(AgentFill(-int(f["aggressor"]), int(f["price"]), int(f["size"]), True))
            elif int(f["taker_id"]) >= AGENT_ID_BASE:
                out.append(AgentFill(int(f["aggressor"]), int(f["price"]), int(f["size"]), False))
        return out

    def _forget_done(self) -> None:
        ob = self._w.books[0]
        for oid in [o for o in self._mine if ob.order(o) is None]:
            del self._mine[oid]
            self._w.protected[0].discard(oid)

    def _new_id(self) -> int:
        oid = self._next_id
        self._next_id += 1
        self._w.protected[0].add(oid)
        return oid

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        """GTC limit order of the agent; its immediate fills. ``price`` must lie on the venue's grid
        (:attr:`tick`): the generator places its orders relative to the best prices, so an off-grid agent
        quote at the touch would move the whole generated market off the grid (ValueError)."""
        if price <= 0 or price % self.tick:
            raise ValueError(f"limit price {price} is not a positive multiple of the venue's tick {self.tick}")
        ob = self._w.books[0]
        oid = self._new_id()
        code = ob.submit_limit(oid, int(side), int(price), int(size), ts=self.now_ns)
        if code == 0 and ob.order(oid) is not None:
            self._mine[oid] = (int(side), int(price))
        return self._to_agent(ob.last_fills()) if code == 0 else []

    def market(self, side: int, size: int) -> list[AgentFill]:
        """Market order of the agent; its fills."""
        ob = self._w.books[0]
        code = ob.submit_market(self._new_id(), int(side), int(size), ts=self.now_ns)
        return self._to_agent(ob.last_fills()) if code == 0 else []

    def cancel_all(self) -> None:
        """Cancel every resting order of the agent."""
        ob = self._w.books[0]
        for oid in list(self._mine):
            ob.cancel(oid, ts=self.now_ns)
        self._forget_done()

    def resting(self) -> int:
        """Lots of the agent's resting orders."""
        self._forget_done()
        ob = self._w.books[0]
        return sum(info.size for info in (ob.order(o) for o in self._mine) if info is not None)

    def queue_ahead(self) -> int:
        """Lots queued ahead of the agent's oldest resting order."""
        self._forget_done()
        if not self._mine:
            return 0
        ob = self._w.books[0]
        oid = min(self._mine)
        side, price = self._mine[oid]
        ahead = 0
        for o in ob.queue(side, price):
            if o == oid:
                break
            info = ob.order(o)
            ahead += info.size if info is not None else 0
        return ahead

    def quotes(self) -> tuple[int | None, int | None]:
        """(best bid, best ask) ticks."""
        return self._w.books[0].quotes()

    def snapshot(self, depth: int) -> np.ndarray:
        """Top-``depth`` book, int64 (4 * depth,)."""
        return self._w.books[0].snapshot(depth)
