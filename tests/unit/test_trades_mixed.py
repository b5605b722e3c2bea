"""The mixed market: the agent-based market's agents trade in a TRADES market against the world agent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketlab.simulators.config import MarketMakerConfig, NoiseConfig, POVConfig
from marketlab.simulators.trades.decode import Order
from marketlab.simulators.trades.mixed import ConfirmingExchange, MarketAgents, attach_agents, tokens_in_ticks
from marketlab.simulators.trades.tokens import CANCEL, MARKET, OrderTokens, order_features
from marketlab.simulators.trades.train import load_checkpoint, load_day
from marketlab.simulators.trades.world import TradesMarkets

pytestmark = pytest.mark.xdist_group("tiny_trades")  # shares the session's tiny model with test_trades_venue

AGENTS = MarketAgents(
    noise=NoiseConfig(count=1, limit_rate=3.0, market_rate=1.0, cancel_rate=0.1),
    market_maker=MarketMakerConfig(count=1, interval_s=0.5, half_spread=1),
    pov=POVConfig(enabled=True, start_s=0.5, end_s=4.0, interval_s=0.5),
)


def _world(tiny_trades, agents: MarketAgents, seed: int = 0, duration_s: float = 5.0):
    store, ck = tiny_trades
    model, stats, cfg = load_checkpoint(ck)
    tokens, day = load_day(store, "lob", "GOOG", cfg.levels, stats=stats)
    w = TradesMarkets(
        model,
        stats,
        tokens_in_ticks(tokens),
        start=max(day.splits["test"].start, cfg.window - 1),
        seed=seed,
        steps=2,
        candidates=2,
    )
    sims = attach_agents(w, agents, seeds=[seed], duration_s=duration_s)
    return w, sims[0]


def _run(w: TradesMarkets, seconds: float) -> None:
    end = w.now[0] + int(seconds * 1e9)
    for _ in range(400):
        if w.now[0] >= end:
            break
        w.step()


def test_agents_trade_against_the_generator_in_one_book(tiny_trades) -> None:
    # a crowd sending market orders (its seed book is one order a side), a market maker quoting a few lots
    # inside the spread, and a POV buyer matching all the volume since its last wake-up
    agents = MarketAgents(
        noise=NoiseConfig(count=1, max_depth=1, limit_rate=0.01, market_rate=2.0, cancel_rate=0.01, market_size_factor=0.3),
        market_maker=MarketMakerConfig(count=1, interval_s=0.5, levels=1, half_spread=1, size=5),
        pov=POVConfig(enabled=True, pov=1.0, start_s=0.5, end_s=4.0, interval_s=0.5),
    )
    w, sim = _world(tiny_trades, agents, seed=1)
    ex = sim.exchange
    assert isinstance(ex, ConfirmingExchange) and ex.book is w.books[0]
    seat = w.seats[0].agent_id
    # the book seeded from the real day belongs to the world agent: its cancels may target it
    assert (ex.owners(w.books[0].resting_orders()[:, 0]) == seat).all()
    _run(w, 4.0)
    s = w.stats_run  # every sample is accounted for (the direct order below draws none)
    assert s.samples == sum(s.accepted.values()) + sum(s.discarded.values()) + s.engine_rejected + s.unused + s.after_close
    # the world's next order (the step's own path) meets the agents' quotes at the touch
    w._submit_mixed(0, Order(MARKET, 1, 0, 3, 0))
    _, fills = ex.drain()
    kind = {a.agent_id: a.name for a in ex.agents}
    pairs = {
        (kind[int(t)], kind[int(m)]) for t, m in zip(ex.owners(fills["taker_id"]), ex.owners(fills["maker_id"]), strict=True)
    }
    # fills between the generator and ABM agents, in both roles
    assert any(t in ("noise", "pov") and m == "trades" for t, m in pairs), pairs
    assert any(t == "trades" and m in ("noise", "market_maker") for t, m in pairs), pairs
    assert sim.pov is not None and sim.pov.executed > 0
    assert sum(w.stats_run.accepted.values()) > 0 and ex.confirmed_by_agent[seat] > 0
    # every world order the engine refused is counted, with its reason
    assert s.engine_rejected == ex.agent_rejections[seat]
    r0 = s.engine_rejected
    w._submit_mixed(0, Order(CANCEL, 1, 1, 1, 0, cancel_id=10**9))  # a cancel of an order no one has
    assert s.engine_rejected == r0 + 1 == ex.agent_rejections[seat]
    assert sum(s.rejected_reasons.values()) == s.engine_rejected and "unknown_order_id" in s.rejected_reasons


def test_history_holds_the_other_agents_confirmed_orders(tiny_trades) -> None:
    w, sim = _world(tiny_trades, AGENTS, seed=2)
    ex = sim.exchange
    assert isinstance(ex, ConfirmingExchange)
    _run(w, 1.0)
    seat = w.seats[0].agent_id
    # agents act on their own; their confirmed orders wait for the world's next look at the book
    ex.run_until(ex.now + 2_000_000_000)
    got = list(ex.confirmed)
    assert len(got) >= 3 and all(c.agent != seat for c in got)  # the world places orders only in its steps
    before_ts = w.last_ts[0]
    assert w.pull_confirmed(0) == len(got)
    # known answer: the training tokenizer's features of the same orders (dt from the previous order)
    k = min(len(got), w.cond.shape[1])
    recs = got[-k:]
    prev = before_ts if k == len(got) else got[-k - 1].ts
    tok = OrderTokens(
        ts=np.array([prev] + [c.ts for c in recs], dtype=np.int64),
        kind=np.array([0] + [c.kind for c in recs], dtype=np.int8),
        side=np.array([1] + [c.side for c in recs], dtype=np.int8),
        size=np.array([1] + [c.size for c in recs], dtype=np.int64),
        price=np.array([recs[0].book[2]] + [c.price for c in recs], dtype=np.int64),
        order_id=np.arange(k + 1, dtype=np.int64),
        book=np.stack([recs[0].book] + [c.book for c in recs]),
        grid=1,
    )
    want = w.stats.encode_orders(order_features(tok)[1:], tok.kind[1:])
    np.testing.assert_allclose(w.cond[0, -k:], want, rtol=1e-6, atol=1e-6)


def test_mixed_session_is_seeded_and_goes_to_the_store(tiny_trades, tmp_path: Path) -> None:
    from marketlab.core.schema import EVENTS_SCHEMA
    from marketlab.lob import OrderBook
    from marketlab.simulators.trades.simulation import TradesSimulation, simulate_trades_day

    store, ck = tiny_trades
    spec = tmp_path / "mixed.toml"
    spec.write_text(
        f'checkpoint = "{ck}"\ndataset = "mixed"\nduration_s = 2.0\nsteps = 2\ncandidates = 2\n'
        '[source]\ndataset = "lob"\n[agents.noise]\nlimit_rate = 3.0\nmarket_rate = 1.0\n'
        "[agents.market_maker]\ninterval_s = 0.5\n[agents.momentum]\ncount = 2\n"
    )

    def events(seed: int):
        return TradesSimulation.from_spec(spec, seed=seed, store=store).run().frames()["events"]

    a = events(3)
    assert a.equals(events(3)) and not a.equals(events(4))
    out = simulate_trades_day(spec, store, seed=3)  # the store validates the events (LOBSTER schema) on write
    ev = store.scan_events("mixed", "GOOG").collect()
    bk = store.scan_book("mixed", "GOOG").collect()
    assert ev.schema == EVENTS_SCHEMA and ev.height == out["events"] == bk.height and ev.equals(a)
    assert (ev["price"] % 100 == 0).all()  # store price units on the real day's grid
    m = out["mixed"]
    assert m["agents"] == {"noise": 1, "market_maker": 1, "momentum": 2, "trades": 1}
    assert m["confirmed_orders"]["noise"] > 0 and m["confirmed_orders"]["trades"] > 0
    assert 2 * sum(m["lots_by_taker_maker"].values()) == sum(m["volume_lots"].values()) > 0  # both sides of each fill
    assert out["engine_rejected"] == m["rejected_messages"]["trades"]
    ob = OrderBook()  # the stored book after the last event equals an independent replay of the events
    for r in ev.iter_rows(named=True):
        if r["type"] == 1:
            assert ob.submit_limit(r["order_id"], r["side"], r["price"], r["size"], ts=r["ts"]) == 0
        elif r["type"] == 3:
            assert ob.cancel(r["order_id"], ts=r["ts"]) == 0
        elif r["type"] in (2, 4):
            assert ob.cancel(r["order_id"], r["size"], ts=r["ts"]) == 0
    assert list(ob.snapshot(10)) == list(bk.row(-1)[3:])


def test_agents_spec_errors_name_the_key(tmp_path: Path) -> None:
    from marketlab.core.errors import SpecError
    from marketlab.simulators.trades.simulation import TradesSimSpec

    spec = tmp_path / "s.toml"
    spec.write_text('checkpoint = "x"\n[agents.noise]\ncount = -1\n')
    with pytest.raises(SpecError, match=r"agents\.noise\.count"):
        TradesSimSpec.from_toml(spec)
    spec.write_text('checkpoint = "x"\n[agents.nosie]\ncount = 1\n')
    with pytest.raises(SpecError, match="nosie"):
        TradesSimSpec.from_toml(spec)
    assert not MarketAgents().any() and AGENTS.any()


def test_experimental_agent_hook_joins_the_mixed_market(tiny_trades) -> None:
    from marketlab.simulators.agents import POVTrader
    from marketlab.simulators.trades.simulation import SourceSpec, TradesSimSpec, TradesSimulation

    store, ck = tiny_trades
    spec = TradesSimSpec(checkpoint=str(ck), duration_s=2.0, steps=2, candidates=2, source=SourceSpec(dataset="lob"))
    sim = TradesSimulation(spec, store=store)
    pov = POVTrader(POVConfig(enabled=True, pov=1.0, start_s=0.2, end_s=2.0, interval_s=0.2), 0)
    summary = sim.run(experimental=[pov]).summary()
    assert summary["mixed"]["agents"] == {"pov": 1, "trades": 1}  # no spec agents: the hook alone makes it mixed
    assert pov.agent_id == 1 and sim.sims[0].exchange.agents[pov.agent_id] is pov
