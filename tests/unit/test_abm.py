"""Agent-based market: determinism, consistent output, rejections, latency FIFO, specs, A/B impact, store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import SpecError
from marketlab.core.schema import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.simulators.abm import ExternalTrader, Simulation, impact_experiment, simulate_day
from marketlab.simulators.config import SimSpec
from marketlab.simulators.exchange import NS_PER_S, Agent, Exchange, LatencyModel

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "simulators" / "abm_default.toml"
POV = REPO / "simulators" / "abm_pov_impact.toml"


def short(spec: SimSpec, seconds: float = 300.0, levels: int = 5) -> SimSpec:
    return replace(spec, market=replace(spec.market, duration_s=seconds, book_levels=levels))


@pytest.fixture(scope="module")
def spec() -> SimSpec:
    return short(SimSpec.from_toml(DEFAULT))


@pytest.fixture(scope="module")
def day(spec: SimSpec) -> tuple[Simulation, dict[str, pl.DataFrame]]:
    sim = Simulation(spec, seed=7).run()
    return sim, sim.frames()


def test_same_seed_same_day_and_other_seed_differs(spec: SimSpec, day) -> None:
    _, frames = day
    again = Simulation(spec, seed=7).run().frames()
    for kind in ("events", "book", "trades"):
        assert frames[kind].equals(again[kind]), kind
    other = Simulation(spec, seed=8).run().frames()
    assert not frames["events"].equals(other["events"])


def test_output_schemas_and_consistency(spec: SimSpec, day) -> None:
    sim, frames = day
    ev, book, trades = frames["events"], frames["book"], frames["trades"]
    assert ev.schema == pl.Schema(EVENTS_SCHEMA)
    assert book.schema == pl.Schema(book_schema(5))
    assert trades.schema == pl.Schema(TRADES_SCHEMA)
    assert ev.height > 3000 and trades.height > 50
    assert ev["seq"].to_list() == list(range(ev.height))
    assert (ev["ts"].diff().drop_nulls() >= 0).all()
    assert ev["ts"].min() >= sim.t0_ns and ev["ts"].max() <= sim.t_end_ns
    assert set(ev["type"].unique().to_list()) <= {1, 2, 3, 4}
    assert (ev["size"] > 0).all() and (ev["price"] > 0).all()
    # one snapshot after every event, never crossed, and the last equals the live engine's book
    assert book.height == ev.height and book["seq"].equals(ev["seq"])
    two = book.filter((pl.col("ask_px_1") > 0) & (pl.col("bid_px_1") > 0))
    assert (two["ask_px_1"] > two["bid_px_1"]).all()
    np.testing.assert_array_equal(book.row(-1)[3:], sim.exchange.book_snapshot(5))
    # every trade is one execution event; volume adds up
    ex = ev.filter(pl.col("type") == 4)
    assert ex.height == trades.height and int(trades["size"].sum()) == sim.exchange.volume
    assert trades["seq"].equals(ex["seq"])


def test_builtin_streams_do_not_depend_on_experimental_agents(spec: SimSpec) -> None:
    a = Simulation(spec, seed=3)
    b = Simulation(replace(spec, pov=replace(spec.pov, enabled=True, start_s=10.0, end_s=200.0)), seed=3)
    np.testing.assert_array_equal(a.fundamental.path, b.fundamental.path)
    assert len(b.exchange.agents) == len(a.exchange.agents) + 1
    # the first agents draw the same numbers
    assert a.exchange.agents[1].rng.rng.random() == b.exchange.agents[1].rng.rng.random()


def _bare_exchange(sigma: float = 0.0) -> Exchange:
    return Exchange(0, 3_600 * NS_PER_S, LatencyModel(10_000, 50_000 if sigma else 0, sigma), reference_price=1000)


def _add(ex: Exchange, seed: int = 0) -> ExternalTrader:
    rng = np.random.default_rng(seed)
    return ex.add_agent(ExternalTrader(), rng, np.random.default_rng(seed + 100))  # type: ignore[return-value]


def test_bad_orders_are_rejected_counted_and_leave_the_book_alone() -> None:
    ex = _bare_exchange()
    me, other = _add(ex, 1), _add(ex, 2)
    ex.start()
    ex.limit(me, 1, 999, 10)
    ex.limit(me, -1, 1001, 10)
    theirs = ex.limit(other, 1, 998, 5)
    ex.run_until(NS_PER_S)
    before = ex.book_snapshot(3).copy()
    ex.limit(me, 1, 999, 0)  # non-positive size
    ex.limit(me, 1, 999, -4)
    ex.limit(me, 1, 999, 1.5)  # fractional lots
    ex.limit(me, 1, 999.5, 3)  # off the tick grid
    ex.limit(me, 1, 0, 3)  # non-positive price
    ex.cancel(me, 987_654)  # unknown id
    ex.cancel(me, theirs)  # someone else's order
    ex.limit(me, 0, 999, 3)  # no side
    ex.run_until(2 * NS_PER_S)
    np.testing.assert_array_equal(ex.book_snapshot(3), before)
    assert ex.rejections == {
        "non_positive_size": 2,
        "size_not_whole_lots": 1,
        "price_off_tick_grid": 1,
        "non_positive_price": 1,
        "unknown_order_id": 2,
        "bad_side": 1,
    }
    assert ex.agent_rejections[me.agent_id] == 8 and ex.agent_rejections[other.agent_id] == 0
    ex.run_until(3 * NS_PER_S)  # rejections reach the agent one latency later
    assert len(me.rejects) == 8
    assert not ex.book.is_crossed()


def test_fills_reach_both_sides_after_latency() -> None:
    ex = _bare_exchange()
    maker, taker = _add(ex, 1), _add(ex, 2)
    ex.start()
    ex.limit(maker, -1, 1001, 10)
    ex.run_until(NS_PER_S)
    ex.market(taker, 1, 4)
    ex.run_until(NS_PER_S + 15_000)  # order arrived at +10us, fills not yet delivered (+10us more)
    assert ex.volume == 4 and taker.fills == []
    ex.run_until(2 * NS_PER_S)
    assert taker.position == 4 and maker.position == -4
    assert taker.fills[0].price == 1001 and not taker.fills[0].maker and maker.fills[0].maker


def test_messages_of_one_agent_stay_in_order_under_jitter() -> None:
    ex = _bare_exchange(sigma=2.0)  # heavy jitter: without FIFO many cancels would overtake their orders
    me = _add(ex)
    ex.start()
    for i in range(200):
        oid = ex.limit(me, 1, 900 + i % 50, 1)
        ex.cancel(me, oid)
    ex.run_until(NS_PER_S)
    assert ex.rejections == {} and ex.book.n_orders == 0


def test_spec_validation_names_file_and_key(tmp_path: Path) -> None:
    text = DEFAULT.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[noise]\n", "[noise]\nlimit_rat = 3.0\n"))
    with pytest.raises(SpecError, match=r"bad.toml: key 'noise.limit_rat': unknown key"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace("cancel_rate = 0.2", "cancel_rate = -1.0"))
    with pytest.raises(SpecError, match=r"key 'noise.cancel_rate': must be > 0"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace("short_window = 20", "short_window = 80"))
    with pytest.raises(SpecError, match="momentum.short_window"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace('start = "2024-01-02T14:30:00"', 'start = "yesterday"'))
    with pytest.raises(SpecError, match="market.start"):
        SimSpec.from_toml(bad)
    assert SimSpec.from_toml(POV).pov.enabled


@pytest.mark.slow
def test_pov_buyer_has_positive_price_impact() -> None:
    """A/B with common random numbers: a buyer at 25% of volume lifts the mid during its window."""
    spec = short(SimSpec.from_toml(POV), 1200.0)
    spec = replace(spec, pov=replace(spec.pov, pov=0.25, start_s=300.0, end_s=1000.0))
    results = [impact_experiment(spec, seed) for seed in (1, 2)]
    for r in results:
        assert r["executed"] > 5_000
        np.testing.assert_array_equal(r["diff"][r["times_s"] <= 300.0], 0.0)  # identical before it starts
    assert np.mean([r["impact_during"] for r in results]) > 0.2


def test_simulate_day_writes_store_readable_like_real_data(tmp_path: Path, tmp_store) -> None:
    text = DEFAULT.read_text().replace("duration_s = 23400.0", "duration_s = 240.0")
    spec_path = tmp_path / "tiny.toml"
    spec_path.write_text(text)
    out = simulate_day(spec_path, tmp_store, seed=5, dataset="abm_tiny")
    assert out["events"] == out["book_rows"] > 1000
    ev = tmp_store.scan_events("abm_tiny").collect()
    assert ev.height == out["events"] and ev.schema == pl.Schema(EVENTS_SCHEMA)
    assert tmp_store.scan_book("abm_tiny").collect().height == out["events"]
    assert tmp_store.instrument("abm_tiny", "ABM").tick_size == pytest.approx(0.01)
    from marketlab.simulators.stylized import facts_for_dataset

    facts = facts_for_dataset(tmp_store, "abm_tiny")
    assert facts[0].label == "abm_tiny:ABM" and facts[0].scalars["n_events"] == out["events"]


def test_external_trader_can_step_the_live_market(spec: SimSpec) -> None:
    sim = Simulation(spec, seed=11)
    me = sim.exchange.add_agent(ExternalTrader(), np.random.default_rng(0), np.random.default_rng(1))
    ex = sim.exchange
    ex.run_until(sim.t0_ns + 60 * NS_PER_S)
    assert ex.now == sim.t0_ns + 60 * NS_PER_S
    ex.market(me, 1, 50)
    ex.run_until(ex.now + NS_PER_S)
    assert me.position == 50 and sum(f.size for f in me.fills) == 50
    assert isinstance(me, Agent)
