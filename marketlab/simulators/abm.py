"""Agent-based LOB market in the spirit of ABIDES' RMSC configurations, and the day runner.

Agents (each draws from its own RNG stream, derived from one master seed):

* :class:`NoiseCrowd` — zero-intelligence limit/market/cancel flow (the bulk of the messages);
* :class:`ValueTrader` — trades toward a noisy estimate of the :class:`Fundamental` (OU + jumps);
* :class:`MomentumTrader` — follows the sign of a short-minus-long moving average of the mids it saw;
* :class:`MarketMaker` — a ladder of quotes around the mid, skewed by its inventory;
* :class:`POVTrader` — the experimental participation-of-volume agent used for market-impact A/B runs;
* :class:`ExternalTrader` — a handle through which outside code (an RL policy, a notebook) trades.

RNG layout: ``child_rngs(seed, 1 + 2*n_agents)``: stream 0 drives the fundamental and the activity, agent ``i`` (in the
order built by :meth:`Simulation.build`) gets streams ``1+2i`` (decisions) and ``2+2i`` (latencies).
Experimental agents are added after the built-in ones, so the built-in agents' streams are identical
with and without them: an A/B run with the same seed changes only what the experiment causes.

Calibration (``specs/simulators/abm_default.toml``, against the LOBSTER GOOG/AMZN 2012-06-21 days; the why of
each mechanism is in the config docstrings): one latent activity a(t) drives the crowd's and value
traders' rates *and* the fundamental's variance (volume-volatility link, kurtosis from a variance
mixture instead of rare large jumps); the crowd is self-exciting (bursty arrivals); the book is thin and
the crowd does not improve the quote, so the spread opens to ~5-6 bps; fewer, sharper value traders
keep the price on the fundamental (no positive minute-return autocorrelation) and mostly rest
non-displayed orders, which produce the type-5 hidden executions.

Entry points: :meth:`Simulation.from_spec`, :func:`simulate_day` (spec file -> store, summary dict) and
:func:`impact_experiment` (same seed with/without a POV trader -> mid-price difference path).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from marketlab.core.device import child_rngs
from marketlab.core.schema import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.simulators.config import (
    ActivityConfig,
    FundamentalConfig,
    MarketMakerConfig,
    MomentumConfig,
    NoiseConfig,
    POVConfig,
    SimSpec,
    ValueConfig,
)
from marketlab.simulators.exchange import (
    NS_PER_S,
    Agent,
    Exchange,
    Fill,
    LatencyModel,
    Reject,
    snapshots_after_events,
)

if TYPE_CHECKING:
    from marketlab.store import IngestBatch, Store

log = logging.getLogger(__name__)

# wake tags of the noise crowd's three Poisson processes; + _CHILD: a self-excited message of that kind
_LIMIT, _MARKET, _CANCEL = 0, 1, 2
_CHILD = 3


class Fundamental:
    """Fundamental value path in ticks on a ``step_s`` grid over the session (ABIDES "oracle").

    Exact OU transition between grid points, x_{k+1} = a x_k + s_k eps_k with a = exp(-kappa dt) and
    s_k = sigma sqrt((1 - a^2) / (2 kappa)) * act_k^(activity_exponent/2) (``act_k`` the activity
    multiplier at grid point k, when ``activity`` is given), plus compound-Poisson jumps of random sign;
    r = r_bar + x. ``value(t_ns)`` returns the grid value at or before ``t_ns`` (float ticks).
    """

    def __init__(
        self,
        cfg: FundamentalConfig,
        rng: np.random.Generator,
        t0_ns: int,
        duration_s: float,
        r_bar: float,
        activity: Activity | None = None,
    ) -> None:
        from scipy.signal import lfilter

        n = int(np.ceil(duration_s / cfg.step_s)) + 2
        dt = cfg.step_s
        a = float(np.exp(-cfg.kappa * dt))
        s = cfg.sigma * (np.sqrt((1 - a * a) / (2 * cfg.kappa)) if cfg.kappa > 0 else np.sqrt(dt))
        shocks = s * rng.standard_normal(n)
        if activity is not None and cfg.activity_exponent > 0:
            grid_ns = t0_ns + np.arange(n, dtype=np.int64) * int(cfg.step_s * NS_PER_S)
            shocks *= activity.values(grid_ns) ** (cfg.activity_exponent / 2.0)
        jumps = rng.poisson(cfg.jump_rate * dt, n)
        sizes = np.abs(rng.normal(cfg.jump_mean, cfg.jump_std, n)) * rng.choice([-1.0, 1.0], n)
        shocks += jumps * sizes
        shocks[0] = 0.0
        self.path = r_bar + lfilter([1.0], [1.0, -a], shocks)
        self.r_bar = float(r_bar)
        self.t0_ns = int(t0_ns)
        self.step_ns = int(cfg.step_s * NS_PER_S)
        self.n_jumps = int(jumps.sum())

    def value(self, t_ns: int) -> float:
        k = (t_ns - self.t0_ns) // self.step_ns
        return float(self.path[min(max(k, 0), self.path.size - 1)])


class Activity:
    """Trading-activity multiplier a(t) = exp(x_t - sigma^2/2) on a ``step_s`` grid (see ActivityConfig).

    x is a stationary OU process (exact AR(1) transition), started from its stationary law.
    ``value(t_ns)`` is the multiplier at or before ``t_ns`` (mean 1).
    """

    def __init__(self, cfg: ActivityConfig, rng: np.random.Generator, t0_ns: int, duration_s: float) -> None:
        from scipy.signal import lfilter

        n = int(np.ceil(duration_s / cfg.step_s)) + 2
        a = float(np.exp(-cfg.step_s / cfg.tau_s))
        eps = rng.standard_normal(n) * cfg.sigma * np.sqrt(1 - a * a)
        eps[0] = rng.standard_normal() * cfg.sigma
        x = lfilter([1.0], [1.0, -a], eps)
        self.path = np.exp(x - cfg.sigma**2 / 2).tolist()
        self.t0_ns = int(t0_ns)
        self.step_ns = int(cfg.step_s * NS_PER_S)

    def value(self, t_ns: int) -> float:
        k = (t_ns - self.t0_ns) // self.step_ns
        return self.path[min(max(k, 0), len(self.path) - 1)]

    def values(self, t_ns: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`value` over an int64 array of times (ns); float64, same shape."""
        k = np.clip((np.asarray(t_ns, dtype=np.int64) - self.t0_ns) // self.step_ns, 0, len(self.path) - 1)
        return np.asarray(self.path)[k]


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
        self._chunk: dict[str, list] = {}
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
        # stagger market makers so several do not requote in the same nanosecond
        ex.wake_at(self, ex.now + int(self.rng.uniform() * self.cfg.interval_s * NS_PER_S))  # type: ignore[union-attr]

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
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
        ex.wake_at(self, self.t_start)

    def on_wakeup(self, ex: Exchange, tag: int) -> None:
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
        self.fills.append(fill)
        self.position += fill.side * fill.size

    def on_reject(self, ex: Exchange, reject: Reject) -> None:
        self.rejects.append(reject)


def _parse_start(start: str) -> int:
    dt = datetime.fromisoformat(start)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * NS_PER_S + dt.microsecond * 1000


class Simulation:
    """One simulated session built from a :class:`SimSpec`: fundamental, agents, exchange, outputs."""

    def __init__(self, spec: SimSpec, *, seed: int | None = None) -> None:
        self.spec = spec if seed is None else replace(spec, seed=int(seed))
        self.seed = int(self.spec.seed)
        m = self.spec.market
        self.t0_ns = _parse_start(m.start)
        self.t_end_ns = self.t0_ns + int(m.duration_s * NS_PER_S)
        lat = self.spec.latency
        self.exchange = Exchange(
            self.t0_ns,
            self.t_end_ns,
            LatencyModel(int(lat.base_us * 1000), int(lat.jitter_median_us * 1000), lat.jitter_sigma),
            reference_price=m.initial_price,
        )
        # stream 0 of the master seed is the same whatever the number of streams spawned
        env_rng = child_rngs(self.seed, 1)[0]
        # the activity is drawn first: the fundamental's variance follows it (fundamental.activity_exponent)
        self.activity = Activity(self.spec.activity, env_rng, self.t0_ns, m.duration_s)
        self.fundamental = Fundamental(
            self.spec.fundamental, env_rng, self.t0_ns, m.duration_s, m.initial_price, self.activity
        )
        self.builtin = self._build_agents()
        rngs = child_rngs(self.seed, 1 + 2 * len(self.builtin))
        for i, agent in enumerate(self.builtin):
            self.exchange.add_agent(agent, rngs[1 + 2 * i], rngs[2 + 2 * i])
        self.pov: POVTrader | None = None
        if self.spec.pov.enabled:
            self.pov = self.add_experimental_agent(POVTrader(self.spec.pov, self.t0_ns))  # type: ignore[assignment]
        self.wall_s = 0.0

    @classmethod
    def from_spec(cls, path: str | Path, *, seed: int | None = None) -> Simulation:
        """Build from a TOML spec (validated; unknown keys rejected)."""
        return cls(SimSpec.from_toml(path), seed=seed)

    def _build_agents(self) -> list[Agent]:
        s = self.spec
        agents: list[Agent] = []
        agents += [NoiseCrowd(s.noise, s.market.initial_price, self.activity) for _ in range(s.noise.count)]
        agents += [ValueTrader(s.value, self.fundamental, self.activity) for _ in range(s.value.count)]
        agents += [MomentumTrader(s.momentum, self.activity) for _ in range(s.momentum.count)]
        agents += [MarketMaker(s.market_maker) for _ in range(s.market_maker.count)]
        return agents

    def add_experimental_agent(self, agent: Agent) -> Agent:
        """The experimental-agent hook: add ``agent`` with its own streams after the built-in agents.

        Its streams are ``child_rngs`` of the master seed at indices past the built-in ones, so built-in
        agents draw the same numbers with or without it (common random numbers for A/B runs).
        """
        idx = len(self.exchange.agents)
        rngs = child_rngs(self.seed, 3 + 2 * idx)
        return self.exchange.add_agent(agent, rngs[1 + 2 * idx], rngs[2 + 2 * idx])

    # ------------------------------------------------------------ running
    def run(self, *, progress: bool = False) -> Simulation:
        """Run the whole session (optionally with a tqdm bar over simulated seconds)."""
        t = time.perf_counter()
        ex = self.exchange
        if progress:
            from tqdm import tqdm

            total = int(self.spec.market.duration_s)
            with tqdm(total=total, unit="sim-s", desc=f"simulate {self.spec.market.dataset}") as bar:

                def tick(now: int) -> None:
                    bar.update(max(0, (now - ex.t0_ns) // NS_PER_S - bar.n))

                ex.run_until(None, tick)
                bar.update(total - bar.n)
        else:
            ex.run_until(None)
        self.wall_s = time.perf_counter() - t
        log.info("simulated %s seed %d: %d messages, %d trades, %.2f s", self.spec.market.dataset, self.seed,
                 ex.messages, ex.n_trades, self.wall_s)
        return self

    # ------------------------------------------------------------ outputs
    def frames(self) -> dict[str, pl.DataFrame]:
        """Events, book snapshots (after every event) and trades in the store schemas.

        Drains the engine's buffers, so call it once, after :meth:`run`.
        """
        m = self.spec.market
        ev, fills = self.exchange.drain()
        n = ev.shape[0]
        sym = pl.Series("symbol", [m.symbol], dtype=pl.String()).repeat_by(n).explode() if n else pl.Series("symbol", [], pl.String())
        events = pl.DataFrame(
            {name: ev[name] for name in ("ts", "seq", "type", "order_id", "side", "price", "size")}
        ).with_columns(symbol=sym.alias("symbol")).select(list(EVENTS_SCHEMA)).cast(EVENTS_SCHEMA)  # type: ignore[arg-type]
        snaps = snapshots_after_events(ev, m.book_levels)
        bs = book_schema(m.book_levels)
        cols: dict[str, Any] = {"ts": ev["ts"], "symbol": sym, "seq": ev["seq"]}
        for j, name in enumerate(list(bs)[3:]):
            cols[name] = snaps[:, j]
        book = pl.DataFrame(cols).cast(bs)  # type: ignore[arg-type]
        trades = pl.DataFrame(
            {
                "ts": fills["ts"],
                "symbol": pl.Series([m.symbol] * fills.shape[0], dtype=pl.String()),
                "seq": fills["seq"],
                "price": fills["price"],
                "size": fills["size"],
                "aggressor": fills["aggressor"],
            }
        ).cast(TRADES_SCHEMA)  # type: ignore[arg-type]
        out = {"events": events, "book": book}
        if self.spec.output.write_trades:
            out["trades"] = trades
        return out

    def summary(self) -> dict[str, Any]:
        """Counts and settings of the run (JSON-friendly)."""
        ex = self.exchange
        m = self.spec.market
        by_kind: dict[str, int] = {}
        for a in ex.agents:
            by_kind[a.name] = by_kind.get(a.name, 0) + 1
        mm = [a for a in ex.agents if isinstance(a, MarketMaker)]
        out: dict[str, Any] = {
            "dataset": m.dataset,
            "symbol": m.symbol,
            "seed": self.seed,
            "start": m.start,
            "duration_s": m.duration_s,
            "agents": by_kind,
            "messages": ex.messages,
            "trades": ex.n_trades,
            "volume_lots": ex.volume,
            "last_price_ticks": ex.last_price,
            "fundamental_jumps": self.fundamental.n_jumps,
            "hidden_volume_lots": ex.hidden_volume,
            "rejections": dict(sorted(ex.rejections.items())),
            "rejected_total": int(sum(ex.rejections.values())),
            "market_maker_inventory": [a.inventory for a in mm],
            "wall_s": round(self.wall_s, 3),
        }
        if self.pov is not None:
            out["pov_executed_lots"] = self.pov.executed
        return out

    def to_batch(self) -> IngestBatch:
        """An :class:`IngestBatch` for ``store.write`` (same schemas as real LOB data)."""
        from marketlab.store import IngestBatch, Instrument

        m = self.spec.market
        frames = self.frames()
        meta = {
            "source": "marketlab.simulators.abm",
            "book_levels": m.book_levels,
            "seed": self.seed,
            "synthetic": True,
            "summary": self.summary(),
        }
        return IngestBatch(
            dataset=m.dataset,
            frames=frames,
            instruments=[Instrument(m.symbol, m.tick_size, m.lot_size, m.currency)],
            meta=meta,
        )


def simulate_day(
    spec_path: str | Path,
    store: Store | None = None,
    seed: int | None = None,
    *,
    progress: bool = False,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Simulate one session from ``spec_path`` and write it to ``store`` (if given); return a summary.

    ``seed`` overrides the spec's master seed; ``dataset`` overrides ``market.dataset``. The summary has
    the run counts (:meth:`Simulation.summary`), ``events``, ``book_rows``, ``events_per_s`` (events per
    wall second of simulation) and, when written, the store's report fields.
    """
    spec = SimSpec.from_toml(spec_path)
    if dataset is not None:
        spec = replace(spec, market=replace(spec.market, dataset=dataset))
    sim = Simulation(spec, seed=seed).run(progress=progress)
    t = time.perf_counter()
    batch = sim.to_batch()
    out = sim.summary()
    out["events"] = batch.frames["events"].height
    out["book_rows"] = batch.frames["book"].height
    out["events_per_s"] = round(out["events"] / max(sim.wall_s, 1e-9), 1)
    out["output_s"] = round(time.perf_counter() - t, 3)
    if store is not None:
        report = store.write(batch, source_files=(str(spec_path),), format="abm")
        out["store"] = str(getattr(store, "root", getattr(store, "path", "")))
        out["written"] = _report_dict(report)
    return out


def _report_dict(report: Any) -> dict[str, Any]:
    if hasattr(report, "to_dict"):
        return report.to_dict()
    if hasattr(report, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(report)
    return {"report": str(report)}


def impact_experiment(
    spec: SimSpec,
    seed: int,
    *,
    grid_s: float = 5.0,
) -> dict[str, Any]:
    """A/B market-impact run: the same seed without and with the POV trader of ``spec.pov``.

    The mids are sampled every ``grid_s`` seconds. The grid must be finer than the POV trader's
    ``interval_s``: it trades at the start of each interval, so a grid equal to the interval samples the
    mid just *before* each of its orders arrives, when the temporary impact of the previous one has
    decayed the longest (value traders pull the price back to the fundamental within seconds).

    Returns ``times_s`` (grid after the open), ``mid_base``/``mid_pov`` (ticks, mid at each grid point),
    ``diff`` (pov - base, ticks), ``executed`` (lots the POV trader filled), the mean difference
    ``impact_during``/``impact_after`` over the POV window and after it (ticks) and ``impact_bps``.
    """
    base = replace(spec, pov=replace(spec.pov, enabled=False))
    treat = replace(spec, pov=replace(spec.pov, enabled=True))
    grid = np.arange(grid_s, spec.market.duration_s + 1e-9, grid_s)
    paths = []
    executed = 0
    for s in (base, treat):
        sim = Simulation(s, seed=seed)
        ex = sim.exchange
        mids = np.empty(grid.size)
        for j, g in enumerate(grid):
            ex.run_until(sim.t0_ns + int(g * NS_PER_S))
            mids[j] = ex.mid()
        if sim.pov is not None:
            executed = sim.pov.executed
        paths.append(mids)
    diff = paths[1] - paths[0]
    p = spec.pov
    during = (grid > p.start_s) & (grid <= p.end_s)
    after = grid > p.end_s
    impact_during = float(diff[during].mean()) if during.any() else float("nan")
    impact_after = float(diff[after].mean()) if after.any() else float("nan")
    return {
        "times_s": grid,
        "mid_base": paths[0],
        "mid_pov": paths[1],
        "diff": diff,
        "executed": executed,
        "impact_during": impact_during,
        "impact_after": impact_after,
        "impact_bps": impact_during / spec.market.initial_price * 1e4,
    }
