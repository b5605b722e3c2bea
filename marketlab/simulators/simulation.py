"""One simulated session from a :class:`~marketlab.simulators.config.SimSpec`: processes, agents,
exchange, outputs in the store schemas (:class:`Simulation`, registered as ``simulator/abm-v1``), and
:func:`simulate_day` (spec file -> store, summary dict).

RNG layout: ``child_rngs(seed, 1 + 2*n_agents)``: stream 0 drives the fundamental and the activity, agent
``i`` (in the order built by :meth:`Simulation._build_agents`) gets streams ``1+2i`` (decisions) and
``2+2i`` (latencies). Experimental agents are added after the built-in ones, so the built-in agents'
streams are identical with and without them: an A/B run with the same seed changes only what the
experiment causes.
"""

from __future__ import annotations

import logging
import time
import typing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from marketlab.core.config import Identifier
from marketlab.core.device import child_rngs
from marketlab.core.errors import SpecError
from marketlab.core.schema import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.core.timeutil import NS_PER_S, to_ns
from marketlab.lob import OrderBook
from marketlab.simulators.agents import MarketMaker, MomentumTrader, NoiseCrowd, POVTrader, ValueTrader
from marketlab.simulators.config import SimSpec
from marketlab.simulators.exchange import Agent, Exchange, snapshots_after_events
from marketlab.simulators.streams import LatencyModel
from marketlab.simulators.processes import Activity, Fundamental

if TYPE_CHECKING:
    from marketlab.store import IngestBatch, Store

log = logging.getLogger(__name__)


class Simulation:
    """One simulated session built from a :class:`SimSpec`: fundamental, agents, exchange, outputs."""

    def __init__(
        self, spec: SimSpec, *, seed: int | None = None, book: OrderBook | None = None, exchange_cls: type[Exchange] = Exchange
    ) -> None:
        """``book``/``exchange_cls``: the agents trade in this engine (one another market already fills,
        e.g. the TRADES world agent's, :mod:`marketlab.simulators.trades.mixed`) through this exchange class
        (a subclass that records what it confirms); by default a fresh book and :class:`Exchange`."""
        if seed is not None:
            spec = replace(spec, seed=int(seed))
            spec.validate(None)  # an override is checked like a spec value (key 'seed')
        self.spec = spec
        self.seed = int(self.spec.seed)
        m = self.spec.market
        self.t0_ns = to_ns(m.start, key="market.start")
        self.t_end_ns = self.t0_ns + int(m.duration_s * NS_PER_S)
        lat = self.spec.latency
        self.exchange = exchange_cls(
            self.t0_ns,
            self.t_end_ns,
            LatencyModel(int(lat.base_us * 1000), int(lat.jitter_median_us * 1000), lat.jitter_sigma),
            reference_price=m.initial_price,
            book=book,
        )
        # stream 0 of the master seed is the same whatever the number of streams spawned
        env_rng = child_rngs(self.seed, 1)[0]
        # the activity is drawn first: the fundamental's variance follows it (fundamental.activity_exponent)
        self.activity = Activity(self.spec.activity, env_rng, self.t0_ns, m.duration_s)
        self.fundamental = Fundamental(self.spec.fundamental, env_rng, self.t0_ns, m.duration_s, m.initial_price, self.activity)
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

    def add_experimental_agent(self, agent: Agent, *, latency: LatencyModel | None = None) -> Agent:
        """The experimental-agent hook: add ``agent`` with its own streams after the built-in agents.

        Its streams are ``child_rngs`` of the master seed at indices past the built-in ones, so built-in
        agents draw the same numbers with or without it (common random numbers for A/B runs). ``latency``
        overrides the spec's latency model for this agent.
        """
        idx = len(self.exchange.agents)
        rngs = child_rngs(self.seed, 3 + 2 * idx)
        return self.exchange.add_agent(agent, rngs[1 + 2 * idx], rngs[2 + 2 * idx], latency=latency)

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
        log.info(
            "simulated %s seed %d: %d messages, %d trades, %.2f s",
            self.spec.market.dataset,
            self.seed,
            ex.messages,
            ex.n_trades,
            self.wall_s,
        )
        return self

    # ------------------------------------------------------------ outputs
    def frames(self) -> dict[str, pl.DataFrame]:
        """Events, book snapshots (after every event) and trades in the store schemas.

        Drains the engine's buffers, so call it once, after :meth:`run`.
        """
        m = self.spec.market
        ev, fills = self.exchange.drain()
        n = ev.shape[0]
        sym = (
            pl.Series("symbol", [m.symbol], dtype=pl.String()).repeat_by(n).explode()
            if n
            else pl.Series("symbol", [], pl.String())
        )
        events = (
            pl.DataFrame({name: ev[name] for name in ("ts", "seq", "type", "order_id", "side", "price", "size")})
            .with_columns(symbol=sym.alias("symbol"))
            .select(list(EVENTS_SCHEMA))
            .cast(EVENTS_SCHEMA)  # type: ignore[arg-type]
        )
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
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Simulate one session from ``spec_path`` and write it to ``store`` (if given); return a summary.

    ``seed`` overrides the spec's master seed; ``dataset`` overrides ``market.dataset``; ``duration_s``
    overrides ``market.duration_s`` (a shorter session, e.g. ``marketlab warmup``'s). The summary has
    the run counts (:meth:`Simulation.summary`), ``events``, ``book_rows``, ``events_per_s`` (events per
    wall second of simulation) and, when written, the store's report fields.
    """
    spec = SimSpec.from_toml(spec_path)
    if dataset is not None:
        problem = typing.get_args(Identifier)[1].check(dataset)
        if problem:
            raise SpecError(None, "--dataset", problem)
        spec = replace(spec, market=replace(spec.market, dataset=dataset))
    if duration_s is not None:
        spec = replace(spec, market=replace(spec.market, duration_s=float(duration_s)))
        spec.validate(spec_path)
    sim = Simulation(spec, seed=seed).run(progress=progress)
    t = time.perf_counter()
    batch = sim.to_batch()
    out = sim.summary()
    out["events"] = batch.frames["events"].height
    out["book_rows"] = batch.frames["book"].height
    out["events_per_s"] = round(out["events"] / max(sim.wall_s, 1e-9), 1)
    out["output_s"] = round(time.perf_counter() - t, 3)
    if store is not None:
        # A re-run of the same spec replaces that day deliberately (issue 13): Store.replace supersedes the
        # (dataset, kind, symbol, day) partitions the batch touches; a store without it appends.
        replace_day = getattr(store, "replace", None)
        if callable(replace_day):
            report = replace_day(batch, source_files=(str(spec_path),), format="abm")
        else:
            report = store.write(batch, source_files=(str(spec_path),), format="abm")
        out["store"] = str(getattr(store, "root", getattr(store, "path", "")))
        out["written"] = _report_dict(report)
    return out


def _report_dict(report: Any) -> dict[str, Any]:
    if hasattr(report, "to_dict"):
        out: dict[str, Any] = report.to_dict()
        return out
    if hasattr(report, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(report)
    return {"report": str(report)}
