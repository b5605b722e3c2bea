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
from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.exchange import Agent, Exchange, LatencyModel, snapshots_after_events

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "specs" / "simulators" / "abm_default.toml"
POV = REPO / "specs" / "simulators" / "abm_pov_impact.toml"


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
    # visible adds/cancels/deletes/executions plus executions against hidden value orders (type 5)
    assert set(ev["type"].unique().to_list()) <= {1, 2, 3, 4, 5} and 5 in ev["type"].to_list()
    assert (ev["size"] > 0).all() and (ev["price"] > 0).all()
    # one snapshot after every event, never crossed, and the last equals the live engine's book
    assert book.height == ev.height and book["seq"].equals(ev["seq"])
    two = book.filter((pl.col("ask_px_1") > 0) & (pl.col("bid_px_1") > 0))
    assert (two["ask_px_1"] > two["bid_px_1"]).all()
    np.testing.assert_array_equal(book.row(-1)[3:], sim.exchange.book_snapshot(5))
    # every trade is one execution event (visible or hidden); volume adds up
    ex = ev.filter(pl.col("type").is_in([4, 5]))
    assert ex.height == trades.height and int(trades["size"].sum()) == sim.exchange.volume
    assert trades["seq"].equals(ex["seq"]) and trades["price"].equals(ex["price"])
    hidden = ev.filter(pl.col("type") == 5)
    assert int(hidden["size"].sum()) == sim.exchange.hidden_volume > 0
    # a hidden execution leaves the displayed book as it was
    rows = book.with_row_index("i").filter(pl.col("seq").is_in(hidden["seq"].implode()))["i"].to_list()
    arr = book.drop("ts", "symbol", "seq").to_numpy()
    for i in rows[:50]:
        np.testing.assert_array_equal(arr[i], arr[i - 1])


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
    bad.write_text(text.replace("cancel_rate = 0.15", "cancel_rate = -1.0"))
    with pytest.raises(SpecError, match=r"key 'noise.cancel_rate': must be > 0"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace("excite_ratio = 0.7", "excite_ratio = 1.0"))
    with pytest.raises(SpecError, match=r"key 'noise.excite_ratio': must be in \[0, 1\)"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace("hidden_prob = 0.8", "hidden_prob = 1.5"))
    with pytest.raises(SpecError, match="value.hidden_prob"):
        SimSpec.from_toml(bad)
    bad.write_text(text.replace("short_window = 10", "short_window = 80"))
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
        assert r["executed"] > 300  # 25% of the others' volume (~30-50 trades a minute, as on LOBSTER days)
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


def test_hidden_orders_trade_inside_the_spread_as_type_5_and_stay_invisible() -> None:
    ex = _bare_exchange()
    mm, hider, taker = _add(ex, 1), _add(ex, 2), _add(ex, 3)
    ex.start()
    ex.limit(mm, 1, 995, 10)
    ex.limit(mm, -1, 1005, 10)
    hid_ask = ex.limit(hider, -1, 1002, 6, hidden=True)
    hid_bid = ex.limit(hider, 1, 997, 5, hidden=True)
    ex.run_until(NS_PER_S)
    assert ex.book_snapshot(1).tolist() == [1005, 10, 995, 10]  # hidden orders do not show
    assert ex.hidden_orders() == [(hid_ask, -1, 1002, 6), (hid_bid, 1, 997, 5)]
    ex.market(taker, 1, 8)  # 6 lots at the hidden 1002 (inside the spread) first, then 2 at 1005
    ex.limit(taker, -1, 998, 2)  # rests displayed: the hidden bid at 997 is below its limit
    ex.limit(taker, -1, 996, 3)  # crosses the hidden bid at 997 (better than the displayed 995)
    ex.run_until(2 * NS_PER_S)
    ex.cancel(hider, hid_bid)  # the rest of the hidden bid: invisible cancel
    ex.run_until(3 * NS_PER_S)
    ev, fills = ex.drain()
    assert ev["seq"].tolist() == list(range(ev.shape[0]))
    kinds = [(int(t), int(o), int(sd), int(p), int(z)) for t, o, sd, p, z in
             zip(ev["type"], ev["order_id"], ev["side"], ev["price"], ev["size"], strict=True)]
    hidden = [k for k in kinds if k[0] == 5]
    assert hidden == [(5, hid_ask, -1, 1002, 6), (5, hid_bid, 1, 997, 3)]
    assert [k[0] for k in kinds].count(3) == 0  # no visible delete for the hidden cancel
    assert taker.position == 8 - 3 and hider.position == -6 + 3 and ex.hidden_volume == 9
    assert int(fills["size"].sum()) == ex.volume == 6 + 2 + 3
    assert ex.hidden_orders() == [] and ex.book_snapshot(1).tolist() == [998, 2, 995, 10]
    np.testing.assert_array_equal(snapshots_after_events(ev, 1)[-1], ex.book_snapshot(1))


def test_hidden_order_takes_liquidity_it_crosses_and_cannot_be_modified() -> None:
    ex = _bare_exchange()
    mm, hider = _add(ex, 1), _add(ex, 2)
    ex.start()
    ex.limit(mm, -1, 1001, 4)
    ex.limit(mm, 1, 990, 4)
    h = ex.limit(hider, 1, 1003, 10, hidden=True)  # marketable: takes the 4 displayed, rests 6 hidden
    ex.run_until(NS_PER_S)
    assert hider.position == 4 and ex.volume == 4 and ex.hidden_orders() == [(h, 1, 1003, 6)]
    ex.limit(mm, -1, 1004, 3)  # rests above the hidden bid: no trade
    ex.modify(hider, h, 2)
    ex.limit(hider, 1, 1000, 0, hidden=True)  # bad size: rejected like a displayed order
    ex.run_until(2 * NS_PER_S)
    assert ex.rejections == {"hidden_modify_unsupported": 1, "non_positive_size": 1}
    ex.limit(mm, -1, 1002, 5)  # a displayed sell through the hidden bid at 1003 trades with it at 1003
    ex.run_until(3 * NS_PER_S)
    assert hider.position == 4 + 5 and ex.hidden_orders() == [(h, 1, 1003, 1)]
    assert ex.best_ask == 1004 and not ex.book.is_crossed()
