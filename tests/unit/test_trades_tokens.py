"""TRADES order tokens: hand-computed tokens of a hand-written LOBSTER day, round trips, splits, statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import DataError
from marketlab.simulators.trades import tokens as T
from marketlab.store import Store
from tests.support.trades import goog_slice_store

E = 9999999999
# time, type, id, size, price (USD x 1e4), direction; the book row i is the book after message i.
MSG = """34200.0,1,1,50,1000100,-1
34200.5,1,2,30,999900,1
34201.0,1,3,20,999800,1
34201.25,2,1,10,1000100,-1
34202.0,4,1,15,1000100,-1
34203.0,3,3,20,999800,1
34203.5,5,0,7,1000000,1
34204.0,1,4,10,1000000,-1
"""
BOOK = f"""1000100,50,-{E},0,{E},0,-{E},0
1000100,50,999900,30,{E},0,-{E},0
1000100,50,999900,30,{E},0,999800,20
1000100,40,999900,30,{E},0,999800,20
1000100,25,999900,30,{E},0,999800,20
1000100,25,999900,30,{E},0,-{E},0
1000100,25,999900,30,{E},0,-{E},0
1000000,10,999900,30,1000100,25,-{E},0
"""
NAME = "XYZ_2012-06-21_34200000_57600000_{}_2.csv"


@pytest.fixture
def hand_store(tmp_path: Path) -> Store:
    (tmp_path / NAME.format("message")).write_text(MSG)
    (tmp_path / NAME.format("orderbook")).write_text(BOOK)
    store = Store(tmp_path / "store")
    store.ingest("lobster", [tmp_path / NAME.format("message"), tmp_path / NAME.format("orderbook")], dataset="hand")
    return store


def test_tokens_of_a_hand_written_day_match_hand_computed_values(hand_store: Store) -> None:
    tok = T.tokens_from_store(hand_store, "hand", "XYZ", levels=2)
    # message 0 has no book before it; 3 (partial cancel) and 6 (hidden execution) are dropped.
    assert tok.kind.tolist() == [T.LIMIT, T.LIMIT, T.MARKET, T.CANCEL, T.LIMIT]
    assert tok.side.tolist() == [1, 1, 1, 1, -1]  # the execution of a resting sell is a market buy
    assert tok.size.tolist() == [30, 20, 15, 20, 10]
    assert tok.price.tolist() == [999900, 999800, 1000100, 999800, 1000000]
    assert tok.grid == 100
    f = T.order_features(tok)
    assert f[:, 0].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])  # dt seconds
    # depth: m1 has no bid yet -> anchor one step below the ask (100.00): 99.99 is 1 deep; m2 1 below the
    # bid; the market buy hits the ask (0); the cancel at 99.98 is 1 below 99.99; the sell at 100.00 is
    # inside the spread, 1 step in front of the ask (-1).
    assert f[:, 4].tolist() == [1.0, 1.0, 0.0, 1.0, -1.0]
    # price relative to the mid before the order, grid steps
    assert f[:, 2].tolist() == [-2.0, -2.0, 1.0, -2.0, 0.0]
    assert tok.book[1].tolist() == [1000100, 50, 999900, 30, 0, 0, 0, 0]


def test_store_events_to_tokens_to_events_is_the_identity_on_kept_types(hand_store: Store) -> None:
    ev = hand_store.scan_events("hand", "XYZ").collect()
    tok = T.tokens_from_store(hand_store, "hand", "XYZ", levels=2)
    back = T.events_from_tokens(tok, "XYZ")
    want = ev.filter(pl.col("type").is_in([1, 3, 4]) & (pl.col("seq") > 0))
    cols = ["ts", "type", "order_id", "side", "price", "size"]
    assert back.select(cols).equals(want.select(cols))
    # and prices come back from (kind, side, depth, book before) alone
    f = T.order_features(tok)
    assert T.price_from_depth(tok.kind, tok.side, f[:, 4], tok.book, tok.grid).tolist() == tok.price.tolist()


def test_round_trip_on_real_goog(shared_data: Path, tmp_path: Path) -> None:
    store = goog_slice_store(shared_data, tmp_path, rows=3000)
    ev = store.scan_events("lob", "GOOG").collect()
    tok = T.tokens_from_store(store, "lob", "GOOG")
    back = T.events_from_tokens(tok, "GOOG")
    want = ev.filter(pl.col("type").is_in([1, 3, 4]) & (pl.col("seq") > 0))
    cols = ["ts", "type", "order_id", "side", "price", "size"]
    assert back.height > 2500 and back.select(cols).equals(want.select(cols))
    f = T.order_features(tok)
    assert np.array_equal(f[:, 4], np.rint(f[:, 4]))  # on-grid prices: integer depths
    assert np.array_equal(T.price_from_depth(tok.kind, tok.side, f[:, 4], tok.book, tok.grid), tok.price)
    # model tokens decode back to the same kinds and features
    enc = T.encode_day(tok)
    feats, kinds = enc.stats.decode_orders(enc.orders)
    assert np.array_equal(kinds, tok.kind)
    np.testing.assert_allclose(feats, f, rtol=1e-5, atol=1e-4)


def test_time_split_is_by_wall_clock() -> None:
    ts = np.array([0, 10, 20, 30, 69, 70, 79, 80, 95, 100], dtype=np.int64)
    s = T.time_split(ts)
    assert (s["train"], s["val"], s["test"]) == (slice(0, 5), slice(5, 7), slice(7, 10))


def test_statistics_come_from_the_training_split_only(shared_data: Path, tmp_path: Path) -> None:
    store = goog_slice_store(shared_data, tmp_path, rows=3000)
    tok = T.tokens_from_store(store, "lob", "GOOG")
    enc = T.encode_day(tok)
    # independent: the rows whose time is in the first 70% of the span, features recomputed by hand
    t0, t1 = tok.ts[0], tok.ts[-1]
    tr = tok.ts < t0 + 0.7 * (t1 - t0)
    sizes = np.log(tok.size[tr].astype(float))  # sizes are z-scored in log lots
    assert enc.stats.log_scale
    assert enc.stats.order_mean[1] == pytest.approx(sizes.mean())
    assert enc.stats.order_std[1] == pytest.approx(sizes.std())
    assert enc.stats.order_mean[1] != pytest.approx(np.log(tok.size.astype(float)).mean())
    bsz = tok.book[tr][:, 1::2].astype(float)
    assert enc.stats.book_sz_mean == pytest.approx(bsz.mean())
    # the test rows are normalised with train statistics, not their own
    te = enc.splits["test"]
    assert abs(enc.orders[te, 1].mean()) > 1e-3 or abs(enc.orders[te, 1].std() - 1) > 1e-3


def test_stats_json_round_trip_and_non_finite_refused() -> None:
    st = T.TokenStats((0.1, 2.0, 0.0, 3.0), (1.0, 2.0, 3.0, 4.0), 1.0, 2.0, 3.0, 4.0, 100)
    assert T.TokenStats.from_dict(st.to_dict()) == st
    old = st.to_dict()
    del old["log_scale"]  # a checkpoint written before log scales keeps the linear scale
    assert not T.TokenStats.from_dict(old).log_scale
    bad = st.to_dict()
    bad["book_px_std"] = float("nan")
    with pytest.raises(DataError, match="non-finite"):
        T.TokenStats.from_dict(bad)


def test_log_scaling_round_trips_and_matches_a_hand_z_score() -> None:
    lin = T.TokenStats((0.0, 100.0, 0.0, 0.0), (1.0, 50.0, 1.0, 1.0), 0.0, 1.0, 0.0, 1.0, 100)
    log = T.TokenStats((-6.0, 4.0, 0.0, 0.0), (2.0, 0.5, 1.0, 1.0), 0.0, 1.0, 0.0, 1.0, 100, log_scale=True)
    feats = np.array([[0.5, 200.0, 1.0, 1.0, 2.0], [0.0, 1.0, -1.5, -1.0, 0.0]])
    kind = np.array([0, 2], dtype=np.int8)
    z = log.encode_orders(feats, kind)
    assert z[0, 1] == pytest.approx((np.log(200.0) - 4.0) / 0.5, rel=1e-6)
    assert z[0, 0] == pytest.approx((np.log(0.5 + 1e-6) + 6.0) / 2.0, rel=1e-6)
    assert z[1, 0] == pytest.approx((np.log(1e-6) + 6.0) / 2.0, rel=1e-6)  # dt = 0: log of the 1 us offset
    assert lin.encode_orders(feats, kind)[0, 1] == pytest.approx((200.0 - 100.0) / 50.0)
    for st in (lin, log):
        back, k = st.decode_orders(st.encode_orders(feats, kind))
        np.testing.assert_allclose(back, feats, rtol=1e-5, atol=1e-5)
        assert np.array_equal(k, kind)


def test_a_symbol_without_book_data_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / NAME.format("message")).write_text(MSG)
    store = Store(tmp_path / "store")
    store.ingest("lobster", [tmp_path / NAME.format("message")], dataset="nobook", book=False)
    with pytest.raises(DataError, match="symbol 'XYZ'.*no book data"):
        T.tokens_from_store(store, "nobook", "XYZ")


def test_an_empty_book_row_is_a_one_line_error() -> None:
    book = np.zeros((2, 8), dtype=np.int64)
    book[0, :4] = [1000100, 5, 999900, 5]
    with pytest.raises(DataError, match="row 1.*NaN in conditioning"):
        T.book_features(book, 100)


def test_the_shipped_trades_spec_is_valid() -> None:
    from marketlab.simulators.trades.simulation import TradesSimSpec

    spec = TradesSimSpec.from_toml(Path(__file__).resolve().parents[2] / "specs" / "simulators" / "trades_goog.toml")
    assert spec.source.symbol == "GOOG" and spec.source.split == "test" and spec.sampler == "ddim"
