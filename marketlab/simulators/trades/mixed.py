"""The mixed market: the agent-based market's agents trade in the TRADES market, against the world agent.

Per generated market, one :class:`~marketlab.simulators.simulation.Simulation` is built around the world
agent's own book (the same engine), with the agents of a :class:`MarketAgents` section (the ABM spec's
own config classes: ``[agents.noise]``, ``[agents.value]``, ``[agents.momentum]``, ``[agents.market_maker]``,
``[agents.pov]`` and the ``fundamental``/``activity``/``latency`` they use) and the ABM's RNG layout: its
built-in agents, then the POV trader through the experimental-agent hook, then the world agent's seat.
The agents wake on their own schedules in simulated time, exactly as in the ABM's exchange; the world
agent advances one order per round (:class:`~marketlab.simulators.trades.world.TradesMarkets`): it decides
at its previous order's time on the book then, and its order reaches the engine ``dt`` later (the sampled
inter-arrival), like an ABM agent's message reaches it one latency later; before that the exchange runs
every agent event up to that time, so the two kinds of flow interleave by timestamp.

**Conditioning.** :class:`ConfirmingExchange` records every order the engine *confirmed*, whoever sent it,
with the book before it: a limit order that rests (displayed) is a limit token, the part of an order that
traded a market token (its first fill price, the lots filled), a cancel a cancel token at the order's
price with the lots removed. Rejected messages, non-displayed rests and their cancels are not seen by the
world (as on a real feed); modifies are not recorded (no ABM agent sends them). The world agent's history
window is this stream, so it reacts to the other agents (the paper's world agent conditions on the
exchange-confirmed orders).

**Prices.** ABM agents quote in integer ticks, so the mixed market runs in price-grid units: the world is
built from :func:`tokens_in_ticks` (store prices / grid, grid 1: the model's features, which are measured
in grid steps, are unchanged) and events are scaled back to store units when written.

**Counts.** The world's orders the engine rejects (a cancel whose target an agent filled meanwhile, a market
order meeting an empty side) are counted in ``engine_rejected`` and by reason in ``rejected_reasons``;
every agent's rejections are in the exchange's ``rejections`` (see :func:`mixed_summary`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np

from marketlab.core.errors import DataError, SpecError
from marketlab.simulators.config import (
    ActivityConfig,
    FundamentalConfig,
    LatencyConfig,
    MarketConfig,
    MarketMakerConfig,
    MomentumConfig,
    NoiseConfig,
    POVConfig,
    SimSpec,
    ValueConfig,
)
from marketlab.simulators.exchange import OP_CANCEL, OP_LIMIT, OP_MARKET, Agent, Exchange
from marketlab.simulators.simulation import Simulation
from marketlab.simulators.streams import LatencyModel
from marketlab.simulators.trades.tokens import CANCEL, LIMIT, MARKET, OrderTokens

_AFTER_SESSION_S = 3_600.0  # the agents' processes run this long past the session end (the last order's dt)


@dataclass(frozen=True)
class MarketAgents:
    """Agents of the agent-based market that trade in a TRADES market (``[agents]`` of a TRADES session spec).

    Each section is the ABM spec's own config (same keys and defaults, :mod:`marketlab.simulators.config`),
    except that no agent trades unless its section says so: counts default to 0 here, and a section given
    without ``count`` gets the ABM's default count. ``pov`` is the experimental POV trader (``enabled``)."""

    noise: NoiseConfig = field(default_factory=lambda: NoiseConfig(count=0))
    value: ValueConfig = field(default_factory=lambda: ValueConfig(count=0))
    momentum: MomentumConfig = field(default_factory=lambda: MomentumConfig(count=0))
    market_maker: MarketMakerConfig = field(default_factory=lambda: MarketMakerConfig(count=0))
    pov: POVConfig = field(default_factory=POVConfig)
    fundamental: FundamentalConfig = field(default_factory=FundamentalConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)

    def any(self) -> bool:
        """Whether any agent trades besides the world agent."""
        return bool(self.noise.count or self.value.count or self.momentum.count or self.market_maker.count or self.pov.enabled)

    def sim_spec(self, seed: int, *, start_ns: int, duration_s: float, initial_price: int, levels: int = 10) -> SimSpec:
        """The ABM spec these agents run under: session from ``start_ns`` (floored to the microsecond) for
        ``duration_s``, fundamental and quotes around ``initial_price`` (grid ticks)."""
        start = (datetime(1970, 1, 1) + timedelta(microseconds=int(start_ns) // 1000)).isoformat()
        market = MarketConfig(
            dataset="trades_mixed",
            symbol="TRADES",
            start=start,
            duration_s=float(duration_s),
            initial_price=int(initial_price),
            book_levels=levels,
        )
        return SimSpec(
            seed=int(seed),
            market=market,
            fundamental=self.fundamental,
            activity=self.activity,
            latency=self.latency,
            noise=self.noise,
            value=self.value,
            momentum=self.momentum,
            market_maker=self.market_maker,
            pov=self.pov,
        )

    def validate(self, path: Any = None) -> None:
        """The ABM's range checks, with keys named under ``agents.``."""
        try:
            self.sim_spec(0, start_ns=0, duration_s=60.0, initial_price=10_000).validate(path)
        except SpecError as e:
            problem = str(e).split(f"key '{e.key}': ", 1)[-1] if e.key else str(e)
            raise SpecError(path, f"agents.{e.key}" if e.key else "agents", problem) from None


class Confirmed(NamedTuple):
    """One exchange-confirmed order: engine time (ns), the sending agent's index, token kind (0 limit,
    1 cancel, 2 market), side, price (grid ticks) and size (lots), the top-``levels`` book before it."""

    ts: int
    agent: int
    kind: int
    side: int
    price: int
    size: int
    book: np.ndarray


class ConfirmingExchange(Exchange):
    """An :class:`Exchange` that records what its engine confirmed (:attr:`confirmed`, see the module
    docstring) for the world agent's conditioning; ``levels`` is the depth of the recorded books."""

    levels = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirmed: list[Confirmed] = []
        self.confirmed_by_agent: Counter[int] = Counter()
        self._first_px = 0

    def _route(self, taker: int, rows: list[list[int]]) -> None:
        if rows and not self._first_px:
            self._first_px = int(rows[0][5])
        super()._route(taker, rows)

    def _count_fill(self, taker: int, maker: int, price: int, size: int) -> None:
        if not self._first_px:
            self._first_px = int(price)
        super()._count_fill(taker, maker, price, size)

    def _arrive(self, aid: int, payload: tuple[Any, ...]) -> None:
        op, oid, side, price, size, tif = payload
        book = self.book
        before = book.snapshot(self.levels)
        rejected, volume = self.agent_rejections[aid], self.volume
        info = book.order(int(oid)) if op == OP_CANCEL and isinstance(oid, (int, np.integer)) else None
        self._first_px = 0
        super()._arrive(aid, payload)
        if self.agent_rejections[aid] != rejected:
            return
        t, out = self.now, self.confirmed
        n0 = len(out)
        if op == OP_LIMIT or op == OP_MARKET:
            filled = self.volume - volume
            if filled > 0:
                out.append(Confirmed(t, aid, MARKET, int(side), self._first_px, int(filled), before))
            if op == OP_LIMIT and book.order(int(oid)) is not None:  # rests displayed (hidden ones are not in it)
                out.append(Confirmed(t, aid, LIMIT, int(side), int(price), int(size) - int(filled), before))
        elif op == OP_CANCEL and info is not None:
            left = book.order(int(oid))
            removed = info.size - (left.size if left is not None else 0)
            if removed > 0:
                out.append(Confirmed(t, aid, CANCEL, info.side, info.price, removed, before))
        self.confirmed_by_agent[aid] += len(out) - n0


class WorldSeat(Agent):
    """The world agent's seat in the exchange: it never wakes by itself (the generator drives it) and
    reads no fills (its history is the confirmed-order stream)."""

    name = "trades"
    notify_fills = False


def tokens_in_ticks(tokens: OrderTokens) -> OrderTokens:
    """``tokens`` with prices (orders and book levels) divided by the grid, grid 1 (see the module docstring);
    a price off the grid is a one-line :class:`DataError`."""
    g = int(tokens.grid)
    book = tokens.book.copy()
    px = np.concatenate([tokens.price, book[:, 0::2].ravel()])
    if (px % g).any():
        raise DataError("tokens", f"a price is not a multiple of the grid {g}: the mixed market needs grid prices")
    book[:, 0::2] //= g
    return OrderTokens(
        ts=tokens.ts,
        kind=tokens.kind,
        side=tokens.side,
        size=tokens.size,
        price=tokens.price // g,
        order_id=tokens.order_id,
        book=book,
        grid=1,
    )


def attach_agents(
    world: Any, agents: MarketAgents, *, seeds: Sequence[int], duration_s: float, pov: Sequence[bool] | None = None
) -> list[Simulation]:
    """Put ``agents`` into every market of ``world`` (a :class:`TradesMarkets` built from
    :func:`tokens_in_ticks`), market ``i`` with master seed ``seeds[i]`` and the POV trader when ``pov[i]``
    (default: ``agents.pov.enabled``); returns the per-market simulations (their ``exchange``, ``pov``)."""
    if world.grid != 1:
        raise ValueError("the mixed market runs in grid ticks: build the world from tokens_in_ticks(tokens)")
    if len(seeds) != world.m:
        raise ValueError(f"{len(seeds)} seeds for {world.m} markets")
    sims, exchanges, seats = [], [], []
    for i in range(world.m):
        with_pov = agents.pov.enabled if pov is None else bool(pov[i])
        spec = agents.sim_spec(
            int(seeds[i]),
            start_ns=world.now[i],
            duration_s=duration_s + _AFTER_SESSION_S,
            initial_price=max(int(round(float(world.last_mid[i]))), 101),
            levels=world.levels,
        )
        spec = replace(spec, pov=replace(spec.pov, enabled=with_pov))
        spec.validate(None)
        sim = Simulation(spec, book=world.books[i], exchange_cls=ConfirmingExchange)
        ex = sim.exchange
        assert isinstance(ex, ConfirmingExchange)
        ex.levels = world.levels
        seat = sim.add_experimental_agent(WorldSeat(), latency=LatencyModel(0, 0, 0.0))  # co-located
        ex.adopt_resting(seat, world.seed_events)
        ex.start()
        sims.append(sim)
        exchanges.append(ex)
        seats.append(seat)
    world.attach(exchanges, seats)
    return sims


def fill_pairs(ex: Exchange, fills: np.ndarray) -> dict[str, int]:
    """Lots traded per (taker kind -> maker kind) in ``fills`` (the engine's fill records drained from ``ex``),
    e.g. ``{"pov->trades": 120}``: the POV trader took 120 lots the world agent had posted."""
    kind = {a.agent_id: a.name for a in ex.agents}
    out: Counter[str] = Counter()
    if fills.shape[0]:
        for t, m, q in zip(
            ex.owners(fills["taker_id"]).tolist(), ex.owners(fills["maker_id"]).tolist(), fills["size"].tolist(), strict=True
        ):
            out[f"{kind.get(t, '?')}->{kind.get(m, '?')}"] += int(q)
    return dict(sorted(out.items()))


def mixed_summary(world: Any, sims: Sequence[Simulation], fills: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """Counts per agent kind over every market: agents, confirmed orders, lots traded, rejected messages
    (by kind and reason), and with ``fills`` (per market, drained) the lots traded per taker->maker kind
    pair; the world agent is kind ``trades``."""
    n: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    volume: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for sim in sims:
        ex = sim.exchange
        assert isinstance(ex, ConfirmingExchange)
        for a in ex.agents:
            n[a.name] += 1
            orders[a.name] += ex.confirmed_by_agent[a.agent_id]
            volume[a.name] += ex.agent_volume[a.agent_id]
            rejected[a.name] += ex.agent_rejections[a.agent_id]
        reasons.update(ex.rejections)
    pairs: Counter[str] = Counter()
    for sim, f in zip(sims, fills, strict=False):
        pairs.update(fill_pairs(sim.exchange, f))
    out = {
        "agents": dict(n),
        "confirmed_orders": dict(orders),
        "volume_lots": dict(volume),
        "rejected_messages": dict(rejected),
        "rejections": dict(sorted(reasons.items())),
        "pov_executed_lots": [s.pov.executed for s in sims if s.pov is not None],
    }
    if fills:
        out["lots_by_taker_maker"] = dict(sorted(pairs.items()))
    return out
