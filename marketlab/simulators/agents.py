"""The trading agents of the agent-based market (ABIDES RMSC style); each draws from its own RNG stream.

* :class:`NoiseCrowd` — zero-intelligence limit/market/cancel flow (the bulk of the messages);
* :class:`ValueTrader` — trades toward a noisy estimate of the :class:`~marketlab.simulators.processes.Fundamental`;
* :class:`MomentumTrader` — follows the sign of a short-minus-long moving average of the mids it saw;
* :class:`MarketMaker` — a ladder of quotes around the mid, skewed by its inventory;
* :class:`POVTrader` — the experimental participation-of-volume agent used for market-impact A/B runs;
* :class:`ExternalTrader` — a handle through which outside code (an RL policy, a notebook) trades.

Agents act only through the :class:`~marketlab.simulators.exchange.Exchange` (see
:class:`~marketlab.simulators.exchange.Agent`); the mechanisms' reasons are in the config docstrings.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.config import (
    MarketMakerConfig,
    MomentumConfig,
    NoiseConfig,
    POVConfig,
    ValueConfig,
)
from marketlab.simulators.exchange import Agent, Exchange, Fill, Reject
from marketlab.simulators.processes import Activity, Fundamental

# wake tags of the noise crowd's three Poisson processes; + _CHILD: a self-excited message of that kind
_LIMIT, _MARKET, _CANCEL = 0, 1, 2
_CHILD = 3


class NoiseCrowd(Agent):
    """Zero-intelligence order flow of many small traders, one agent with one RNG stream (see NoiseConfig).

    Three Poisson processes modulated by the activity a(t): limit orders (rate ``limit_rate``), market
    orders (``market_rate``) and cancellations (``cancel_rate`` per resting crowd order), each message
    possibly followed by a self-excited one of the same kind (``excite_ratio``; the spontaneous rates
    are scaled by 1 - excite_ratio so the totals stay as configured). Random draws are made in
    vectorised chunks, so a message costs a few list lookups.
    """

    name = "noise"

    def __init__(self, cfg: NoiseConfig, initial_price: int, activity: Activity) -> None:
        super().__init__()
        self.cfg = cfg
        self.initial_price = initial_price
        self.activity = activity
        d = np.arange(1, cfg.max_depth + 1, dtype=np.float64)  # (offset behind the best) + 1
        p = d ** (-cfg.depth_alpha)
        self._depth_cdf = np.cumsum(p / p.sum())
        self._ids: list[int] = []  # resting (believed) crowd orders, for O(1) random cancels
        self._pos: dict[int, int] = {}
        self._left: dict[int, int] = {}
        self._side: dict[int, int] = {}
        self._chunk: dict[str, list[Any]] = {}
        self._k = 1 << 30

    def _refill(self) -> None:
        """Pre-draw 4096 decisions of every kind from the crowd's stream."""
        g = self.rng.rng  # type: ignore[union-attr]
        c, n = self.cfg, 4096
        size = np.exp(np.log(c.size_median) + c.size_sigma * g.standard_normal(n))
        rounded = np.maximum(1, np.round(size / c.size_round)) * c.size_round
        size = np.where(g.random(n) < c.round_prob, rounded, np.maximum(1, np.round(size)))
        size = np.minimum(size, c.max_size)
        self._chunk = {
            "side": np.where(g.random(n) < 0.5, 1, -1).tolist(),
            "depth": np.searchsorted(self._depth_cdf, g.random(n), side="right").tolist(),
            "size": size.astype(np.int64).tolist(),
            "msize": np.maximum(1, np.round(size * c.market_size_factor)).astype(np.int64).tolist(),
            "exp": g.standard_exponential(n).tolist(),
            "u": g.random(n).tolist(),
            "v": g.random(n).tolist(),
            # self-excitation: offspring or not, and its delay (s)
            "kid": (g.random(n) < c.excite_ratio).tolist(),
            "delay": (g.standard_exponential(n) * c.excite_delay_s).tolist(),
        }
        self._k = 0

    def _draw(self) -> int:
        if self._k >= 4096:
            self._refill()
        k = self._k
        self._k += 1
        return k

    def _add(self, oid: int, size: int, side: int) -> None:
        self._pos[oid] = len(self._ids)
        self._ids.append(oid)
        self._left[oid] = size
        self._side[oid] = side

    def _forget(self, oid: int) -> None:
        i = self._pos.pop(oid, None)
        if i is None:
            return
        last = self._ids.pop()
        if last != oid:
            self._ids[i] = last
            self._pos[last] = i
        self._left.pop(oid, None)
        self._side.pop(oid, None)

    def on_start(self, ex: Exchange) -> None:
        """Schedule the first wake-up."""
        # Seed the book: one order per tick for max_depth ticks on each side of the initial price.
        c = self.cfg
        for d in range(1, c.max_depth + 1):
            for side in (1, -1):
                k = self._draw()
                size = self._chunk["size"][k]
                self._add(ex.limit(self, side, self.initial_price - side * d, size), size, side)
        self._spont = 1.0 - c.excite_ratio  # spontaneous share of each rate
        for tag, rate in ((_LIMIT, c.limit_rate), (_MARKET, c.market_rate), (_CANCEL, c.cancel_rate * len(self._ids))):
            ex.wake_at(self, ex.now + int(self._chunk["exp"][self._draw()] / (rate * self._spont) * NS_PER_S), tag)

    def _place(self, ex: Exchange, k: int, side: int) -> None:
        ch = self._chunk
        bid, ask = ex.quotes()
        if ch["v"][k] < self.cfg.inside_prob and ask - bid > 1:
            price = bid + 1 if side > 0 else ask - 1  # improve the quote by one tick
        else:  # d ticks behind the same-side best (d = 0 joins it)
            price = bid - ch["depth"][k] if side > 0 else ask + ch["depth"][k]
        if price >= 1:
            size = ch["size"][k]
            self._add(ex.limit(self, side, price, size), size, side)

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """Act on the live book (see the class docstring)."""
        c = self.cfg
        k = self._draw()
        ch = self._chunk
        kind = tag % _CHILD
        if kind == _LIMIT:
            self._place(ex, k, ch["side"][k])
            rate = c.limit_rate
        elif kind == _MARKET:
            ex.market(self, ch["side"][k], ch["msize"][k])
            rate = c.market_rate
        else:
            if self._ids:
                oid = self._ids[int(ch["u"][k] * len(self._ids))]
                side = self._side[oid]
                self._forget(oid)
                ex.cancel(self, oid)
                if ch["v"][k] < c.replace_prob:
                    self._place(ex, self._draw(), side)
            rate = c.cancel_rate * max(len(self._ids), 1)
        if ch["kid"][k]:  # a self-excited follow-up message of the same kind
            ex.wake_at(self, ex.now + int(ch["delay"][k] * NS_PER_S) + 1, kind + _CHILD)
        if tag < _CHILD:  # the spontaneous chain of this kind continues; offspring do not reschedule it
            ex.wake_at(self, ex.now + int(ch["exp"][k] / (rate * self._spont * self.activity.value(ex.now)) * NS_PER_S) + 1, tag)

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        if fill.maker and fill.order_id in self._left:
            left = self._left[fill.order_id] - fill.size
            if left <= 0:
                self._forget(fill.order_id)
            else:
                self._left[fill.order_id] = left


class _ActivityPaced(Agent):
    """An agent that wakes as a Poisson process of rate ``cfg.wake_rate x a(t)`` (the shared activity).

    Subclasses set ``cfg`` (with ``wake_rate``, per second) and ``activity``, and call :meth:`_next`
    at the end of each wake-up to schedule the following one.
    """

    cfg: Any
    activity: Activity

    def _next(self, ex: Exchange) -> None:
        rate = self.cfg.wake_rate * self.activity.value(ex.now)
        ex.wake_at(self, ex.now + int(self.rng.exponential() / rate * NS_PER_S) + 1)  # type: ignore[union-attr]

    def on_start(self, ex: Exchange) -> None:
        """Schedule the first wake-up."""
        self._next(ex)


class ValueTrader(_ActivityPaced):
    """ABIDES-style value agent: trades toward a shrunk, noisy observation of the fundamental."""

    name = "value"

    def __init__(self, cfg: ValueConfig, fundamental: Fundamental, activity: Activity) -> None:
        super().__init__()
        self.cfg = cfg
        self.fundamental = fundamental
        self.activity = activity
        self.open_order = 0
        self.open_left = 0
        self.position = 0

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """Act on the live book (see the class docstring)."""
        c, rb = self.cfg, self.rng
        assert rb is not None
        if self.open_order:
            ex.cancel(self, self.open_order)
            self.open_order = 0
        obs = self.fundamental.value(ex.now) + c.obs_noise * rb.normal()
        est = (1.0 - c.prior_weight) * obs + c.prior_weight * self.fundamental.r_bar
        bid, ask = ex.quotes()
        mid = (bid + ask) / 2.0
        size = rb.integer(c.size_min, c.size_max)
        u = rb.uniform()
        # ABIDES rule: buy at min(estimate, ask) - marketable when the estimate is beyond the ask,
        # else a passive order at the estimate; with probability aggressive_prob cross regardless.
        # A passive order is non-displayed with probability hidden_prob (u is uniform on [0, 1) and the
        # aggressive branch uses u < aggressive_prob, so a second uniform keeps the two independent).
        if est > mid:
            take = u < c.aggressive_prob or est >= ask
            price = ask if take else max(1, int(est))
            hide = not take and rb.uniform() < c.hidden_prob
            self.open_order, self.open_left = ex.limit(self, 1, price, size, hidden=hide), size
        elif est < mid:
            take = u < c.aggressive_prob or est <= bid
            price = bid if take else int(math.ceil(est))
            hide = not take and rb.uniform() < c.hidden_prob
            self.open_order, self.open_left = ex.limit(self, -1, price, size, hidden=hide), size
        self._next(ex)

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        self.position += fill.side * fill.size
        if fill.order_id == self.open_order:
            self.open_left -= fill.size
            if self.open_left <= 0:
                self.open_order = 0


class MomentumTrader(_ActivityPaced):
    """Trend follower: market order in the direction of (short mean - long mean) of observed mids."""

    name = "momentum"

    def __init__(self, cfg: MomentumConfig, activity: Activity) -> None:
        super().__init__()
        self.cfg = cfg
        self.activity = activity
        self.mids: deque[float] = deque(maxlen=cfg.long_window)
        self.position = 0

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """Act on the live book (see the class docstring)."""
        c, rb = self.cfg, self.rng
        assert rb is not None
        self.mids.append(ex.mid())
        size = rb.integer(c.size_min, c.size_max)
        if len(self.mids) == c.long_window:
            m = list(self.mids)
            signal = sum(m[-c.short_window :]) / c.short_window - sum(m) / c.long_window
            if signal > c.threshold_ticks:
                ex.market(self, 1, size)
            elif signal < -c.threshold_ticks:
                ex.market(self, -1, size)
        self._next(ex)

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        self.position += fill.side * fill.size


class MarketMaker(Agent):
    """Ladder market maker with inventory skew (a simplified ABIDES AdaptiveMarketMaker)."""

    name = "market_maker"

    def __init__(self, cfg: MarketMakerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inventory = 0
        self.cash = 0  # ticks x lots
        self.resting: dict[int, int] = {}  # order id -> lots believed resting
        self._where: dict[int, tuple[int, int]] = {}  # order id -> (side, price)

    def on_start(self, ex: Exchange) -> None:
        """Schedule the first wake-up."""
        # stagger market makers so several do not requote in the same nanosecond
        ex.wake_at(self, ex.now + int(self.rng.uniform() * self.cfg.interval_s * NS_PER_S))  # type: ignore[union-attr]

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """Act on the live book (see the class docstring)."""
        c = self.cfg
        centre = ex.mid() - c.skew_ticks * self.inventory / c.max_inventory
        room = 1.0 - abs(self.inventory) / c.max_inventory
        bid_size = c.size if self.inventory <= 0 else int(c.size * max(room, 0.0))
        ask_size = c.size if self.inventory >= 0 else int(c.size * max(room, 0.0))
        wanted: dict[tuple[int, int], int] = {}
        for k in range(c.levels):
            off = c.half_spread + k * c.level_spacing
            bp, ap = int(np.floor(centre - off)), int(np.ceil(centre + off))
            if bid_size > 0 and bp >= 1:
                wanted[(1, bp)] = bid_size
            if ask_size > 0:
                wanted[(-1, ap)] = ask_size
        # keep quotes at wanted prices (queue priority), cancel the rest, post the missing prices
        for oid in list(self.resting):
            where = self._where[oid]
            if wanted.pop(where, None) is None:
                ex.cancel(self, oid)
                del self.resting[oid]
                del self._where[oid]
        for (side, price), size in wanted.items():
            oid = ex.limit(self, side, price, size)
            self.resting[oid] = size
            self._where[oid] = (side, price)
        ex.wake_at(self, ex.now + int(c.interval_s * NS_PER_S))

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        self.inventory += fill.side * fill.size
        self.cash -= fill.side * fill.size * fill.price
        left = self.resting.get(fill.order_id)
        if left is not None:  # forget fully filled quotes so the next requote does not cancel them
            if left <= fill.size:
                del self.resting[fill.order_id]
                del self._where[fill.order_id]
            else:
                self.resting[fill.order_id] = left - fill.size


class POVTrader(Agent):
    """Experimental agent: trade ``pov`` x (others' volume since the last wake) every ``interval_s``.

    Uses only the public hook (``ex.volume``, ``ex.market``, fills), like any outside strategy would.
    ``executed`` counts filled lots, ``fills`` keeps every fill for analysis.
    """

    name = "pov"

    def __init__(self, cfg: POVConfig, t0_ns: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.t_start = t0_ns + int(cfg.start_s * NS_PER_S)
        self.t_end = t0_ns + int(cfg.end_s * NS_PER_S)
        self.executed = 0
        self.sent = 0
        self.fills: list[Fill] = []
        self._last_market_volume = 0

    def on_start(self, ex: Exchange) -> None:
        """Schedule the first wake-up."""
        ex.wake_at(self, self.t_start)

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
        """Act on the live book (see the class docstring)."""
        c = self.cfg
        others = ex.volume - ex.agent_volume[self.agent_id]
        if ex.now > self.t_start:
            qty = min(int(round(c.pov * (others - self._last_market_volume))), c.quantity - self.sent)
            if qty > 0:
                ex.market(self, c.side, qty)
                self.sent += qty
        self._last_market_volume = others
        nxt = ex.now + int(c.interval_s * NS_PER_S)
        if nxt <= self.t_end and self.sent < c.quantity:
            ex.wake_at(self, nxt)

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        self.executed += fill.size
        self.fills.append(fill)


class ExternalTrader(Agent):
    """A handle for outside code: it never wakes by itself; its fills and rejections are collected.

    Typical use (RL environment / notebook)::

        sim = Simulation.from_spec("specs/simulators/abm_default.toml", seed=1)
        me = sim.add_experimental_agent(ExternalTrader())
        sim.exchange.run_until(sim.exchange.t0_ns + 600 * NS_PER_S)
        sim.exchange.limit(me, +1, sim.exchange.best_bid, 100)
        sim.exchange.run_until(sim.exchange.now + 60 * NS_PER_S)
        me.fills, me.position
    """

    name = "external"

    def __init__(self) -> None:
        super().__init__()
        self.fills: list[Fill] = []
        self.rejects: list[Reject] = []
        self.position = 0

    def on_fill(self, ex: Exchange, fill: Fill) -> None:
        """Book-keeping of a fill of one of this agent's orders."""
        self.fills.append(fill)
        self.position += fill.side * fill.size

    def on_reject(self, ex: Exchange, reject: Reject) -> None:
        """Collect the rejection."""
        self.rejects.append(reject)
