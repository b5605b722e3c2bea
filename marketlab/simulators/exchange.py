"""Agents <-> matching engine: a discrete-event exchange with a latency model.

Time is an ``int`` of nanoseconds (UTC). Everything that happens is a timed message on one heap:

* ``WAKE``   — an agent's own timer fires (``Agent.on_wakeup``);
* ``ARRIVE`` — an order/cancel an agent sent reaches the engine after its one-way latency;
* ``NOTIFY`` — a fill or a rejection reaches the agent after the latency back.

Agents decide on the **live** book at their wake time (what they would see on a direct feed) and their
messages reach the engine ``latency`` later, so orders race: a cancel can arrive after the order it
targets was filled, a marketable order can find the book moved. Messages of one agent stay in order
(FIFO per agent). Ties in time are broken by insertion order, so a run is a pure function of the
agents' RNG streams.

The engine is :class:`marketlab.lob.engine.OrderBook` (one call per order). Bad orders — non-positive
or fractional sizes, prices off the tick grid, unknown cancels — are **rejected and counted**
(:attr:`Exchange.rejections`, per agent in :attr:`Exchange.agent_rejections`, logged at DEBUG); the
book is never touched by them. After the session, the engine's event stream is replayed in one batch
call through a second book to get the top-L snapshot after **every** event, as in LOBSTER's orderbook
file (:func:`snapshots_after_events`).

**Non-displayed (hidden) orders.** Real feeds carry executions against liquidity nobody could see
(LOBSTER type 5: 1.6-2.6 % of the messages and about a third of the trades on the 2012 GOOG/AMZN sample
days). The engine only knows displayed orders, so hidden orders live here, in the exchange layer:
``ex.limit(agent, side, price, size, hidden=True)`` rests a GTC order that never shows in the book or
in the add/cancel stream. Matching follows price priority with displayed-first at equal prices
(Nasdaq's rule for non-displayed orders), simplified to what the agents need:

* an incoming order first trades with opposite hidden orders priced **strictly better** than the
  displayed opposite best (inside the spread, e.g. a hidden sell at 100.03 when the displayed ask is
  100.05), best price then oldest first, while its limit allows; each such fill is a type-5 event on the
  hidden order's id, side and price; the rest goes to the engine as usual;
* a hidden order that is marketable against the displayed book on arrival takes that liquidity (an IOC
  through the engine, type-4 executions) and rests hidden with what is left;
* if a displayed order comes to rest at or through a hidden order's price (the hidden order sat behind
  a displayed level that was swept), the hidden order immediately takes it, as the exchange would have
  matched it on arrival; hidden orders at or behind the displayed best otherwise wait;
* cancels of hidden orders are invisible (no event); modifying a hidden order is rejected
  (``hidden_modify_unsupported``): cancel and re-send instead.

:meth:`Exchange.drain` merges the type-5 events and their fills into the engine's stream in arrival
order and renumbers ``seq`` so it stays 0..n-1; :func:`snapshots_after_events` keeps the book row
unchanged after a type-5 event, as LOBSTER's orderbook file does.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from marketlab.lob import kernels as K
from marketlab.lob import REASONS as _REASONS
from marketlab.lob import OrderBook, events_to_commands
from marketlab.simulators.hidden import HiddenOrders
from marketlab.simulators.streams import LatencyModel, LatencyStream, RandomBuffer

log = logging.getLogger(__name__)

WAKE, ARRIVE, NOTIFY = 0, 1, 2
OP_LIMIT, OP_MARKET, OP_CANCEL, OP_MODIFY = 1, 2, 3, 4
_HIDDEN = "HIDDEN"  # tif tag of a non-displayed GTC order in the message payload
_BIG = 1 << 62


class Fill(NamedTuple):
    """A fill as the owning agent sees it: ``ts`` (engine time, ns), own ``order_id``, own ``side``,
    ``price`` (ticks), ``size`` (lots) and ``maker`` (True when the agent's resting order was hit)."""

    ts: int
    order_id: int
    side: int
    price: int
    size: int
    maker: bool


class Reject(NamedTuple):
    """A rejected message: engine time, the order id it was about, and the reason string."""

    ts: int
    order_id: int
    reason: str


class Agent:
    """Base class of everything that trades in the simulation (and the experimental-agent hook).

    Subclasses override the ``on_*`` callbacks; inside them they act through the exchange:
    ``ex.limit / ex.market / ex.cancel / ex.modify`` (each returns the order id immediately; the message
    reaches the engine after the latency), ``ex.wake_at(self, t)``, and read ``ex.now``, ``ex.best_bid``,
    ``ex.best_ask``, ``ex.mid()``, ``ex.book(depth)``, ``ex.volume`` (lots traded so far), ``ex.last_price``.
    ``rng`` is the agent's own :class:`RandomBuffer` (set by :meth:`Exchange.add_agent`).
    ``notify_fills``: whether fills/rejections are delivered to ``on_fill``/``on_reject``.
    """

    name: str = "agent"
    notify_fills: bool = True

    def __init__(self) -> None:
        self.agent_id = -1
        self.rng: RandomBuffer | None = None

    def on_start(self, ex: Exchange) -> None:
        """Called once at the session open (schedule the first wake-up here)."""

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """A timer set with ``ex.wake_at(self, t, tag)`` fired."""

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """One of the agent's orders traded (delivered one latency after the trade)."""

    def on_reject(self, ex: Exchange, reject: Reject) -> None:
        """A message of the agent was rejected by the engine (delivered one latency later)."""


class Exchange:
    """The discrete-event market: agents, a latency model, the engine and the event heap.

    ``t0_ns``/``t_end_ns``: session open/close (messages after the close are dropped);
    ``latency``: the :class:`LatencyModel`; ``book``: the engine (a fresh :class:`OrderBook` by default);
    ``reference_price``: ticks used as the mid while one side of the book is empty and nothing traded.
    """

    def __init__(
        self,
        t0_ns: int,
        t_end_ns: int,
        latency: LatencyModel,
        *,
        reference_price: int,
        book: OrderBook | None = None,
    ) -> None:
        if t_end_ns <= t0_ns:
            raise ValueError("t_end_ns must be after t0_ns")
        self.t0_ns = int(t0_ns)
        self.t_end_ns = int(t_end_ns)
        self.latency = latency
        self.book = book or OrderBook(capacity=1 << 15, event_capacity=None)  # drained once per session
        self.now = self.t0_ns
        self.reference_price = int(reference_price)
        self.last_price = int(reference_price)
        self.volume = 0  # lots traded in the session
        self.n_trades = 0
        self.agents: list[Agent] = []
        self.agent_volume: list[int] = []
        self.agent_rejections: list[int] = []
        self.rejections: dict[str, int] = {}
        self.messages = 0
        self._lat: list[LatencyStream] = []
        self._last_arrival: list[int] = []
        self._owner: list[int] = [-1]  # order id -> agent index (ids start at 1)
        self._heap: list[tuple[Any, ...]] = []
        self._seq = 0
        self._started = False
        self._hidden = HiddenOrders()  # non-displayed orders (see the module docstring)

    # ------------------------------------------------------------ setup
    def add_agent(
        self, agent: Agent, rng: np.random.Generator, latency_rng: np.random.Generator, *, latency: LatencyModel | None = None
    ) -> Agent:
        """Register ``agent`` with its decision stream ``rng`` and latency stream ``latency_rng``.

        Agents may be added before :meth:`start` or while the session runs (their ``on_start`` is then
        called at once). ``latency`` overrides the exchange's latency model for this agent (a co-located
        participant such as the TRADES world agent: ``LatencyModel(0, 0, 0)``).
        """
        agent.agent_id = len(self.agents)
        agent.rng = RandomBuffer(rng)
        self.agents.append(agent)
        self.agent_volume.append(0)
        self.agent_rejections.append(0)
        self._lat.append((latency or self.latency).stream(latency_rng))
        self._last_arrival.append(self.t0_ns)
        if self._started:
            agent.on_start(self)
        return agent

    def start(self) -> None:
        """Open the session: every agent's ``on_start`` runs at ``t0``, in registration order."""
        if not self._started:
            self._started = True
            for a in list(self.agents):
                a.on_start(self)

    def adopt_resting(self, agent: Agent, n: int) -> range:
        """Make ``agent`` the owner of the next ``n`` order ids, orders already resting in the engine before
        any message was sent (a book seeded from real data by ``agent``): it may then cancel them, and their
        fills reach it like its own. Returns the ids."""
        first = len(self._owner)
        self._owner.extend([agent.agent_id] * int(n))
        return range(first, first + int(n))

    def owners(self, order_ids: np.ndarray) -> np.ndarray:
        """Index of the agent that sent each order id (int64, same shape; -1 for an id never issued)."""
        own = self._owner
        n = len(own)
        return np.fromiter(
            (own[i] if 0 < i < n else -1 for i in np.asarray(order_ids, dtype=np.int64).tolist()),
            dtype=np.int64,
            count=int(np.asarray(order_ids).size),
        )

    # ------------------------------------------------------------ market data for agents
    @property
    def best_bid(self) -> int | None:
        """Best displayed bid (ticks) or None."""
        return self.book.best_bid

    @property
    def best_ask(self) -> int | None:
        """Best displayed ask (ticks) or None."""
        return self.book.best_ask

    def quotes(self) -> tuple[int, int]:
        """(bid, ask) in ticks with a one-sided or empty book filled in around the last/ref price."""
        sc = self.book.scalars  # read-only peek at the engine scalars: ~10x cheaper than two properties
        b = int(sc[K.S_BID])
        a = int(sc[K.S_ASK])
        if b > 0 and a > 0:
            return b, a
        if b > 0:
            return b, max(b + 1, self.last_price + 1)
        if a > 0:
            return max(1, min(a - 1, self.last_price - 1)), a
        return max(1, self.last_price - 1), self.last_price + 1

    def mid(self) -> float:
        """Mid price in ticks (see :meth:`quotes` for one-sided books)."""
        b, a = self.quotes()
        return (a + b) / 2.0

    def book_snapshot(self, depth: int = 10) -> np.ndarray:
        """Top ``depth`` levels, ``int64[4*depth]`` = ask_px_i, ask_sz_i, bid_px_i, bid_sz_i (0 = empty)."""
        return self.book.snapshot(depth)

    # ------------------------------------------------------------ actions (agent -> exchange)
    def _send(self, agent: Agent, payload: tuple[Any, ...]) -> None:
        aid = agent.agent_id
        t = self.now + self._lat[aid].next()
        if t < self._last_arrival[aid]:  # FIFO per agent
            t = self._last_arrival[aid]
        self._last_arrival[aid] = t
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, ARRIVE, aid, payload))
        self.messages += 1

    def _new_id(self, agent: Agent) -> int:
        self._owner.append(agent.agent_id)
        return len(self._owner) - 1

    def limit(
        self, agent: Agent, side: int, price: int | float, size: int | float, tif: str = "GTC", *, hidden: bool = False
    ) -> int:
        """Send a limit order (``tif`` GTC/IOC/FOK); returns its order id.

        ``hidden=True`` makes a GTC order non-displayed (see the module docstring); it is ignored for
        IOC/FOK, which never rest anyway.
        """
        oid = self._new_id(agent)
        self._send(agent, (OP_LIMIT, oid, side, price, size, _HIDDEN if hidden and tif == "GTC" else tif))
        return oid

    def hidden_orders(self) -> list[tuple[int, int, int, int]]:
        """Resting non-displayed orders as ``(order_id, side, price, size)``, oldest first."""
        return self._hidden.listing()

    @property
    def hidden_volume(self) -> int:
        """Lots traded against hidden orders so far."""
        return self._hidden.volume

    def market(self, agent: Agent, side: int, size: int | float) -> int:
        """Send a market order (trades up to ``size`` at any price, the rest is cancelled); returns its id."""
        oid = self._new_id(agent)
        self._send(agent, (OP_MARKET, oid, side, 0, size, ""))
        return oid

    def cancel(self, agent: Agent, order_id: int, size: int = 0) -> None:
        """Send a cancel of ``size`` lots (0 = all) of ``order_id``."""
        self._send(agent, (OP_CANCEL, order_id, 0, 0, size, ""))

    def modify(self, agent: Agent, order_id: int, size: int, price: int | None = None) -> None:
        """Send a modify (engine priority rules: a price change or size increase loses priority)."""
        self._send(agent, (OP_MODIFY, order_id, 0, price, size, ""))

    def wake_at(self, agent: Agent, t_ns: int, tag: int = 0) -> None:
        """Schedule ``agent.on_wakeup(ex, tag)`` at ``t_ns`` (clamped to now; dropped after the close)."""
        t = max(int(t_ns), self.now)
        if t > self.t_end_ns:
            return
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, WAKE, agent.agent_id, tag))

    # ------------------------------------------------------------ engine boundary
    def _reject(self, aid: int, oid: int, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.agent_rejections[aid] += 1
        log.debug("t=%d agent %d order %d rejected: %s", self.now, aid, oid, reason)
        agent = self.agents[aid]
        if agent.notify_fills:
            self._notify(aid, Reject(self.now, oid, reason))

    def _notify(self, aid: int, msg: Fill | Reject) -> None:
        t = self.now + self._lat[aid].next()
        if t <= self.t_end_ns:
            self._seq += 1
            heapq.heappush(self._heap, (t, self._seq, NOTIFY, aid, msg))

    def _arrive(self, aid: int, payload: tuple[Any, ...]) -> None:
        op, oid, side, price, size, tif = payload
        book = self.book
        # Sizes must be whole lots: the engine would truncate 1.5 to 1, so reject it here.
        if type(size) is not int and not isinstance(size, np.integer):
            if not (isinstance(size, float) and size.is_integer()):
                self._reject(aid, oid, "size_not_whole_lots")
                return
            size = int(size)
        t = self.now
        if op == OP_LIMIT or op == OP_MARKET:
            hidden = self._hidden
            if (hidden.best_bid or hidden.best_ask or tif == _HIDDEN) and size > 0 and (side == 1 or side == -1):
                limit = _BIG * side if op == OP_MARKET else _tick_or_none(price)
                if limit is None or limit <= 0:
                    if tif == _HIDDEN:
                        self._reject(aid, oid, "non_positive_price" if limit is not None else "price_off_tick_grid")
                        return
                else:
                    size = self._take_hidden(aid, oid, side, limit, size)
                    if tif == _HIDDEN:
                        self._arrive_hidden(aid, oid, side, limit, size)
                        return
                    if size == 0:
                        return
            elif tif == _HIDDEN:
                self._reject(aid, oid, "non_positive_size" if size <= 0 else "bad_side")
                return
            if op == OP_LIMIT:
                code = book.submit_limit(oid, side, price, size, ts=t, tif=tif)
            else:
                code = book.submit_market(oid, side, size, ts=t)
        else:
            # Unknown ids, and ids of other agents' orders: one agent never cancels another's order.
            if not (isinstance(oid, (int, np.integer)) and 0 < oid < len(self._owner)) or self._owner[oid] != aid:
                self._reject(aid, oid, "unknown_order_id")
                return
            oid = int(oid)
            h = self._hidden.orders.get(oid)
            if h is not None:
                if op == OP_MODIFY:
                    self._reject(aid, oid, "hidden_modify_unsupported")
                elif size <= 0 or size >= h[2]:
                    self._hidden.drop(oid)
                else:
                    h[2] -= size
                return
            if op == OP_CANCEL:
                code = book.cancel(oid, size, ts=t)
            else:
                code = book.modify(oid, size=size, price=price, ts=t)
        if code:
            reason = _REASONS.get(code, f"code_{code}")
            if code != K.R_FOK:
                self._reject(aid, oid, reason)
            return
        # Only fetch fills when the engine's fill counter moved (peek at its scalars: most orders rest
        # without trading, and last_fills() costs a copy).
        if op != OP_CANCEL and book.scalars[K.S_NFILL] != book.fill_mark:
            self._route(aid, book.last_fills().tolist())
        if self._hidden.best_bid or self._hidden.best_ask:
            self._uncross_hidden()

    # ------------------------------------------------------------ non-displayed orders
    def _take_hidden(self, aid: int, oid: int, side: int, limit: int, size: int) -> int:
        """Trade an incoming order (``side``, price ``limit``) with opposite hidden orders priced strictly
        inside the displayed opposite best; returns the size left for the engine."""
        sc = self.book.scalars
        hidden = self._hidden
        while size > 0:
            if side > 0:
                hp = hidden.best_ask
                if not hp or hp > limit or (sc[K.S_ASK] > 0 and hp >= sc[K.S_ASK]):
                    break
            else:
                hp = hidden.best_bid
                if not hp or hp < limit or (sc[K.S_BID] > 0 and hp <= sc[K.S_BID]):
                    break
            best_oid = hidden.oldest_at(-side, hp)
            h = hidden.orders[best_oid]
            q = size if size < h[2] else h[2]
            size -= q
            h[2] -= q
            maker_aid = h[3]
            hidden.record(int(sc[K.S_SEQ]), self.now, best_oid, -side, hp, q, oid, side)
            if h[2] == 0:
                hidden.drop(best_oid)
            self._count_fill(aid, maker_aid, hp, q)
            if self.agents[maker_aid].notify_fills:
                self._notify(maker_aid, Fill(self.now, best_oid, -side, hp, q, True))
            if self.agents[aid].notify_fills:
                self._notify(aid, Fill(self.now, oid, side, hp, q, False))
        return size

    def _arrive_hidden(self, aid: int, oid: int, side: int, price: int, size: int) -> None:
        """A non-displayed order (after any hidden match): take displayed liquidity it crosses, rest the rest."""
        book = self.book
        sc = book.scalars
        if size > 0 and ((side > 0 and 0 < sc[K.S_ASK] <= price) or (side < 0 and sc[K.S_BID] >= price > 0)):
            book.submit_limit(oid, side, price, size, ts=self.now, tif="IOC")
            if sc[K.S_NFILL] != book.fill_mark:
                rows = book.last_fills().tolist()
                size -= sum(r[6] for r in rows)
                self._route(aid, rows)
        if size > 0:
            self._hidden.rest(oid, side, price, size, aid)
        if self._hidden.best_bid or self._hidden.best_ask:
            self._uncross_hidden()

    def _uncross_hidden(self) -> None:
        """Hidden orders at or through the displayed opposite best take that liquidity at once."""
        sc = self.book.scalars
        hidden = self._hidden
        for _ in range(64):  # each pass fills or removes at least one order; bounded for safety
            if hidden.best_bid and 0 < sc[K.S_ASK] <= hidden.best_bid:
                side = 1
            elif hidden.best_ask and sc[K.S_BID] >= hidden.best_ask:
                side = -1
            else:
                return
            px = hidden.best_bid if side > 0 else hidden.best_ask
            oid = hidden.oldest_at(side, px)
            h = hidden.orders[oid]
            book = self.book
            book.submit_limit(oid, side, px, h[2], ts=self.now, tif="IOC")
            if sc[K.S_NFILL] != book.fill_mark:
                rows = book.last_fills().tolist()
                h[2] -= sum(r[6] for r in rows)
                self._route(h[3], rows)
            if h[2] <= 0 or (side > 0 and 0 < sc[K.S_ASK] <= px) or (side < 0 and sc[K.S_BID] >= px):
                # filled, or (cannot happen with an IOC at px) still crossing: drop rather than loop
                hidden.drop(oid)

    def _count_fill(self, taker: int, maker: int, price: int, size: int) -> None:
        self.volume += size
        self.n_trades += 1
        self.last_price = price
        self.agent_volume[taker] += size
        self.agent_volume[maker] += size

    def _route(self, taker: int, rows: list[list[int]]) -> None:
        agents = self.agents
        owner = self._owner
        for ts, _seq, taker_id, maker_id, aggressor, price, size in rows:
            self.volume += size
            self.n_trades += 1
            self.last_price = price
            maker = owner[maker_id]
            self.agent_volume[taker] += size
            self.agent_volume[maker] += size
            if agents[maker].notify_fills:
                self._notify(maker, Fill(ts, maker_id, -aggressor, price, size, True))
            if agents[taker].notify_fills:
                self._notify(taker, Fill(ts, taker_id, aggressor, price, size, False))

    # ------------------------------------------------------------ the event loop
    def run_until(self, t_ns: int | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Process every message with time <= ``t_ns`` (default: the close); returns messages processed.

        Afterwards ``now == min(t_ns, close)``, so external code (an RL environment, a notebook) can
        inspect the book, act through an agent and call ``run_until`` again: this is the
        experimental-agent hook for stepping the live market. ``progress(now)`` is called every 8192
        messages.
        """
        self.start()
        end = self.t_end_ns if t_ns is None else min(int(t_ns), self.t_end_ns)
        heap = self._heap
        agents = self.agents
        pop = heapq.heappop
        n = 0
        while heap and heap[0][0] <= end:
            t, _s, kind, aid, payload = pop(heap)
            self.now = t
            if kind == ARRIVE:
                self._arrive(aid, payload)
            elif kind == WAKE:
                agents[aid].on_wakeup(self, payload)
            elif type(payload) is Fill:
                agents[aid].on_fill(self, payload)
            else:
                agents[aid].on_reject(self, payload)
            n += 1
            if progress is not None and not n & 8191:
                progress(t)
        self.now = max(self.now, end)
        return n

    # ------------------------------------------------------------ outputs
    def drain(self) -> tuple[np.ndarray, np.ndarray]:
        """(events, fills) since the last drain, as structured arrays (engine dtypes), in arrival order.

        Type-5 executions against hidden orders are merged in before the engine event that followed them,
        and ``seq`` is renumbered so the stream counts 0, 1, 2, ... over the session; fills carry the
        ``seq`` of their execution event.
        """
        return self._hidden.merge(self.book.drain_events(), self.book.drain_fills())


def _tick_or_none(price: object) -> int | None:
    """``price`` as an int number of ticks, or None when it is not a whole number."""
    if type(price) is int or isinstance(price, np.integer):
        return int(price)
    if isinstance(price, float) and price.is_integer():
        return int(price)
    return None


def snapshots_after_events(events: np.ndarray, depth: int) -> np.ndarray:
    """Top-``depth`` book after every event: replay ``events`` (engine event dtype) through a fresh book.

    Adds become ``apply_add``; partial cancels, deletes and executions become ``apply_reduce`` of the
    order's id, hidden executions (type 5) no-ops (strict mode: the stream must be self-consistent,
    which the engine guarantees). Returns ``int64[n, 4*depth]`` rows ``ask_px_i, ask_sz_i, bid_px_i, bid_sz_i``. Raises ``RuntimeError`` if the
    replay rejects any event (an engine/recording bug, not user input).
    """
    if events.shape[0] == 0:
        return np.zeros((0, 4 * depth), dtype=np.int64)
    cmds = events_to_commands(events, mode="apply")
    lo, hi = int(events["price"].min()), int(events["price"].max())
    replay = OrderBook(capacity=1 << 15, price_band=(max(1, lo - 64), hi + 64))
    res = replay.process(cmds, depth=depth)
    bad = np.flatnonzero(res.status)
    if bad.size:
        raise RuntimeError(f"snapshot replay rejected {bad.size} events, first at index {bad[0]}: {replay.rejections}")
    return res.snaps
