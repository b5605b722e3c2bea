"""The replay venue (``venue/replay-v1``): recorded LOB events as the other order flow of an agent.

:class:`ReplayVenue` replays recorded events (store EVENTS_SCHEMA, integer ticks/lots) through the
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

It implements :class:`marketlab.core.protocols.Venue`. A venue class is built by the LOB envs with
``cls.from_config(config, events=..., store=...)`` (``config``: the env's config, whose venue fields it
reads), and tells the env where an episode may start with ``start_bounds(horizon)`` (None for a
generative venue, which takes a seed instead).

Recorded events become engine commands with :func:`marketlab.lob.events_to_commands` in ``mode="match"``:
adds are real limit orders and executions are re-enacted as IOC orders, so an agent's order inside the
same book meets them by priority.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.errors import DataError, SpecError
from marketlab.core.protocols import AgentFill

AGENT_ID_BASE = 1 << 45  # agent order ids (recorded ids are far below)
TAKER_ID_BASE = 1 << 50  # synthetic ids of re-enacted recorded aggressors


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


def load_events(
    store: Any, dataset: str, *, symbol: str | None = None, start: str | None = None, end: str | None = None,
    key: str = "env.symbol",
) -> np.ndarray:
    """One symbol's events of ``dataset`` in [start, end) from the store, as :func:`events_from_frame`
    returns them; a dataset with several symbols needs ``symbol`` (a :class:`SpecError` naming ``key``)."""
    lf = store.scan_events(dataset, symbols=[symbol] if symbol else None, start=start, end=end)
    frame = lf.collect()
    if symbol is None and frame.height and frame["symbol"].n_unique() > 1:
        raise SpecError(None, key, f"dataset '{dataset}' has several symbols: name one")
    return events_from_frame(frame, source=f"dataset '{dataset}'")


class ReplayVenue:
    """Recorded events through the matching engine, ``step_events`` events per :meth:`advance`; episodes
    start after ``warmup_events`` events (see :meth:`start_bounds`)."""

    def __init__(self, events: np.ndarray, step_events: int, warmup_events: int = 0) -> None:
        self.events = events
        from marketlab.lob import events_to_commands

        self.commands = events_to_commands(events, mode="match", taker_id_base=TAKER_ID_BASE)
        self.step_events = int(step_events)
        self.warmup_events = int(warmup_events)
        self.n_events = events.shape[0]
        self.book: Any = None
        self.pos = 0
        self._next_id = AGENT_ID_BASE
        self._mine: dict[int, tuple[int, int]] = {}  # resting agent order id -> (side, price)
        self.ts = 0

    @classmethod
    def from_config(cls, config: Any, *, events: Any = None, store: Any = None) -> ReplayVenue:
        """From an env config's ``dataset``/``symbol``/``start``/``end``/``store``, ``step_events`` and
        ``warmup_events``; ``events`` (a structured array or a polars events frame) skips the store."""
        if events is None:
            from marketlab.market.forkshare import fork_shared, store_key
            from marketlab.market.loading import open_store

            start, end = getattr(config, "start", None), getattr(config, "end", None)

            def read() -> np.ndarray:
                st = store if store is not None else open_store(config.store)
                return load_events(st, config.dataset, symbol=config.symbol, start=start, end=end)

            # A forked vector-env worker takes its parent's read (Polars is not fork-safe: see market.forkshare).
            where = store_key(store) if store is not None else f"spec-store:{Path(config.store).resolve() if config.store else None}"
            key = ("events", where, config.dataset, config.symbol, start, end)
            events = fork_shared(key, read, what=f"events of dataset '{config.dataset}'")
        elif not isinstance(events, np.ndarray):
            from marketlab.market.forkshare import check_polars_usable

            check_polars_usable("events given as a Polars frame")
            events = events_from_frame(events)
        return cls(events, config.step_events, config.warmup_events)

    def start_bounds(self, horizon: int) -> tuple[int, int]:
        """(first, last) event index an episode of ``horizon`` steps may start at; last < first when
        the recording is too short."""
        return self.warmup_events, self.n_events - horizon * self.step_events

    @property
    def now_ns(self) -> int:
        """Time of the last replayed event, int64 ns UTC."""
        return self.ts

    def reset(self, seed: int = 0, start: int = 0) -> None:
        """Fresh book, replayed up to (excluding) event ``start`` (``seed`` is unused: a replay is fixed)."""
        start_event = min(int(start), self.n_events)
        from marketlab.lob import OrderBook

        self.book = OrderBook(capacity=1 << 14)
        self.book.process(self.commands[:start_event])
        self.pos = start_event
        self.ts = int(self.commands[start_event - 1, 0]) if start_event else int(self.commands[0, 0])
        self._next_id = AGENT_ID_BASE
        self._mine = {}

    @property
    def exhausted(self) -> bool:
        """True once the venue has no more events or market time to give."""
        return bool(self.pos >= self.n_events)

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
        """Run the market one decision step; returns the agent's fills during it."""
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
        """Submit a GTC limit order (``side`` +1/-1, ``price`` ticks, ``size`` lots); returns its immediate fills."""
        oid = self._next_id
        self._next_id += 1
        if self.book.submit_limit(oid, side, int(price), int(size), ts=self.ts) == 0 and self.book.order(oid) is not None:
            self._mine[oid] = (side, int(price))
        return self._agent_fills(self.book.last_fills())

    def market(self, side: int, size: int) -> list[AgentFill]:
        """Submit a market order of ``size`` lots; returns its fills."""
        oid = self._next_id
        self._next_id += 1
        self.book.submit_market(oid, side, int(size), ts=self.ts)
        return self._agent_fills(self.book.last_fills())

    def cancel_all(self) -> None:
        """Cancel every resting order of the agent."""
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
        """(best bid, best ask) in ticks; None for an empty side."""
        return self.book.best_bid, self.book.best_ask

    def snapshot(self, depth: int) -> np.ndarray:
        """Top-``depth`` book, int64 (4 * depth,): ask_px, ask_sz, bid_px, bid_sz per level."""
        return np.asarray(self.book.snapshot(depth))
