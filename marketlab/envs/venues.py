"""Venues for the LOB environments: where an agent's orders meet other order flow.

* :class:`ReplayVenue` replays recorded events (store EVENTS_SCHEMA, integer ticks/lots) through the
  matching engine (:class:`marketlab.lob.OrderBook`) with the agent's orders inside the same book, so
  they queue behind the orders that were resting when they arrived:
  - a recorded add is sent as a GTC limit order (it rests; it trades only if it crosses the agent);
  - a recorded cancel/delete cancels that order (ids the agent's trading removed are skipped);
  - a recorded execution of resting order X (size s at price p) is re-enacted as an IOC order of the
    opposite side, limit p, size s: time priority decides whether the agent's order ahead of X fills
    first (it does when the agent joined the level before X arrived);
  - hidden executions, crosses and halts leave the visible book unchanged.
  The agent's market orders consume recorded liquidity (no further impact on later recorded flow:
  the usual replay limitation).
* :class:`AbmVenue` runs the agent-based simulator (:mod:`marketlab.simulators.abm`) with the agent
  as an :class:`~marketlab.simulators.abm.ExternalTrader`; the other agents react to its orders.

Both expose the same small API: ``reset``, ``advance`` (run the market one decision step and return
the agent's fills), ``limit``/``market``/``cancel``, ``quotes``, ``snapshot``, ``resting``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from marketlab.core.errors import DataError

AGENT_ID_BASE = 1 << 45  # agent order ids (recorded ids are far below)
TAKER_ID_BASE = 1 << 50  # synthetic ids of re-enacted recorded aggressors


@dataclass(frozen=True)
class AgentFill:
    """A fill of the agent: side +1 bought / -1 sold, price in ticks, size in lots."""

    side: int
    price: int
    size: int
    maker: bool


def events_from_frame(frame: Any, source: str = "events") -> np.ndarray:
    """A polars events frame (EVENTS_SCHEMA) of one symbol -> structured array sorted by (ts, seq)."""
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    need = ("ts", "type", "order_id", "side", "price", "size")
    for c in need:
        if c not in frame.columns:
            raise DataError(source, "missing column", field=c)
    if frame.height == 0:
        raise DataError(source, "no events in the selected period")
    if "seq" in frame.columns:
        frame = frame.sort(["ts", "seq"])
    out = np.zeros(frame.height, dtype=[(c, np.int64) for c in need])
    for c in need:
        out[c] = frame[c].cast(pl.Int64).to_numpy()
    return out


class ReplayVenue:
    """Recorded events through the matching engine, ``step_events`` events per :meth:`advance`."""

    def __init__(self, events: np.ndarray, step_events: int) -> None:
        self.events = events
        from marketlab.lob import events_to_commands

        self.commands = events_to_commands(events, mode="match", taker_id_base=TAKER_ID_BASE)
        self.step_events = int(step_events)
        self.n_events = events.shape[0]
        self.book: Any = None
        self.pos = 0
        self._next_id = AGENT_ID_BASE
        self._mine: dict[int, tuple[int, int]] = {}  # resting agent order id -> (side, price)
        self.ts = 0

    def reset(self, start_event: int) -> None:
        """Fresh book, replayed up to (excluding) event ``start_event``."""
        from marketlab.lob import OrderBook

        self.book = OrderBook(capacity=1 << 14)
        self.book.process(self.commands[:start_event])
        self.pos = start_event
        self.ts = int(self.commands[start_event - 1, 0]) if start_event else int(self.commands[0, 0])
        self._next_id = AGENT_ID_BASE
        self._mine = {}

    @property
    def exhausted(self) -> bool:
        return self.pos >= self.n_events

    def _agent_fills(self, fills: np.ndarray, taker_side: int = 0) -> list[AgentFill]:
        out = []
        for f in fills:
            if f["maker_id"] >= AGENT_ID_BASE and f["maker_id"] < TAKER_ID_BASE:
                side = -int(f["aggressor"])
                out.append(AgentFill(side, int(f["price"]), int(f["size"]), True))
            elif f["taker_id"] >= AGENT_ID_BASE and f["taker_id"] < TAKER_ID_BASE:
                out.append(AgentFill(int(f["aggressor"]), int(f["price"]), int(f["size"]), False))
        return out

    def advance(self) -> list[AgentFill]:
        hi = min(self.pos + self.step_events, self.n_events)
        res = self.book.process(self.commands[self.pos : hi])
        if hi > self.pos:
            self.ts = int(self.commands[hi - 1, 0])
        self.pos = hi
        self._forget_done()
        return self._agent_fills(res.fills)

    def _forget_done(self) -> None:
        for oid in [o for o in self._mine if self.book.order(o) is None]:
            del self._mine[oid]

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        oid = self._next_id
        self._next_id += 1
        if self.book.submit_limit(oid, side, int(price), int(size), ts=self.ts) == 0 and self.book.order(oid) is not None:
            self._mine[oid] = (side, int(price))
        return self._agent_fills(self.book.last_fills())

    def market(self, side: int, size: int) -> list[AgentFill]:
        oid = self._next_id
        self._next_id += 1
        self.book.submit_market(oid, side, int(size), ts=self.ts)
        return self._agent_fills(self.book.last_fills())

    def cancel_all(self) -> None:
        for oid in list(self._mine):
            self.book.cancel(oid, ts=self.ts)
        self._mine = {}

    def resting(self) -> int:
        """Lots of the agent's resting orders."""
        self._forget_done()
        return sum(self.book.order(o).size for o in self._mine)

    def queue_ahead(self) -> int:
        """Lots resting ahead of the agent's oldest order in its level's queue (0 without orders)."""
        self._forget_done()
        if not self._mine:
            return 0
        oid = min(self._mine)
        side, price = self._mine[oid]
        ahead = 0
        for o in self.book.queue(side, price):
            if o == oid:
                break
            info = self.book.order(o)
            ahead += info.size if info is not None else 0
        return ahead

    def quotes(self) -> tuple[int | None, int | None]:
        return self.book.best_bid, self.book.best_ask

    def snapshot(self, depth: int) -> np.ndarray:
        return self.book.snapshot(depth)


class AbmVenue:
    """The agent-based market with the agent as an ExternalTrader; ``step_seconds`` of market time per advance."""

    def __init__(self, spec_path: str | None, step_seconds: float, warmup_seconds: float) -> None:
        self.spec_path = spec_path
        self.step_ns = int(step_seconds * 1e9)
        self.warmup_ns = int(warmup_seconds * 1e9)
        self.sim: Any = None
        self.me: Any = None
        self._seen = 0
        self._mine: set[int] = set()

    def reset(self, seed: int) -> None:
        from marketlab.simulators.abm import ExternalTrader, Simulation
        from marketlab.simulators.config import SimSpec

        spec = SimSpec.from_toml(self.spec_path) if self.spec_path else SimSpec()
        self.sim = Simulation(spec, seed=seed)
        self.me = self.sim.add_experimental_agent(ExternalTrader())
        ex = self.sim.exchange
        ex.run_until(ex.t0_ns + self.warmup_ns)
        self._seen = 0
        self._mine = set()

    @property
    def exhausted(self) -> bool:
        ex = self.sim.exchange
        return ex.now >= ex.t_end_ns

    def _new_fills(self) -> list[AgentFill]:
        new = self.me.fills[self._seen :]
        self._seen = len(self.me.fills)
        return [AgentFill(int(f.side), int(f.price), int(f.size), bool(f.maker)) for f in new]

    def advance(self) -> list[AgentFill]:
        ex = self.sim.exchange
        ex.run_until(ex.now + self.step_ns)
        return self._new_fills()

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        self._mine.add(self.sim.exchange.limit(self.me, side, int(price), int(size)))
        return []  # orders reach the exchange after their latency, during the next advance

    def market(self, side: int, size: int) -> list[AgentFill]:
        ex = self.sim.exchange
        ex.market(self.me, side, int(size))
        ex.run_until(ex.now + 10_000_000)  # let it arrive (latency is micro- to milliseconds)
        return self._new_fills()

    def cancel_all(self) -> None:
        for oid in self._mine:
            self.sim.exchange.cancel(self.me, oid)
        self._mine = set()

    def resting(self) -> int:
        book = self.sim.exchange.book
        return sum(o.size for o in (book.order(i) for i in self._mine) if o is not None)

    def queue_ahead(self) -> int:
        return 0

    def quotes(self) -> tuple[int | None, int | None]:
        return self.sim.exchange.quotes()

    def snapshot(self, depth: int) -> np.ndarray:
        return self.sim.exchange.book_snapshot(depth)
