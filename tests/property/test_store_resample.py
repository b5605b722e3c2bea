"""Properties of resampling: 1m -> 5m aggregation equals direct 5m; bars conserve volume and counts."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.store.resample import aggregate_bars, sample_book_by_time, trades_to_bars
from tests.support.store import trade_frames



@settings(max_examples=60, deadline=None)
@given(df=trade_frames(), k=st.sampled_from([2, 5, 15]))
def test_resample_then_aggregate_equals_direct(df: pl.DataFrame, k: int) -> None:
    one = trades_to_bars(df, "1m", price_scale=0.01)
    direct = trades_to_bars(df, f"{k}m", price_scale=0.01)
    agg = aggregate_bars(one, f"{k}m")
    exact = ["ts", "symbol", "open", "high", "low", "close", "volume", "trades"]
    assert agg.select(exact).equals(direct.select(exact))
    assert agg["vwap"].to_list() == pytest.approx(direct["vwap"].to_list(), rel=1e-12)
    assert direct["volume"].sum() == df["size"].sum() and direct["trades"].sum() == df.height
    assert (direct["low"] <= direct["vwap"] + 1e-9).all() and (direct["vwap"] <= direct["high"] + 1e-9).all()


@settings(max_examples=30, deadline=None)
@given(df=trade_frames())
def test_book_time_sampling_never_looks_ahead(df: pl.DataFrame) -> None:
    book = df.rename({"price": "bid_px_1", "size": "bid_sz_1"}).with_row_index("seq")
    s = sample_book_by_time(book, "1m")
    # each sample is the last snapshot strictly before its (interval-end) timestamp
    for sym in s["symbol"].unique().to_list():
        b = book.filter(pl.col("symbol") == sym)
        for t, seq in s.filter(pl.col("symbol") == sym).select("ts", "seq").rows():
            assert b.filter(pl.col("ts") < t)["seq"].max() == seq
