"""The one-pass run kernel of trades_to_bars equals a plain polars group-by, in any input order."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.core.schema import BARS_OPTIONAL, BARS_SCHEMA
from marketlab.store.resample import _bars_from_runs, trades_to_bars
from tests.support.store import MIN, trade_frames



def reference(df: pl.DataFrame, step: int) -> pl.DataFrame:
    out = (
        df.with_columns((pl.col("ts") - pl.col("ts").mod(step)).alias("ts"), pl.col("price").cast(pl.Float64),
                        pl.col("size").cast(pl.Float64))
        .group_by("symbol", "ts", maintain_order=True)
        .agg(pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
             pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
             pl.col("size").sum().alias("volume"), (pl.col("price") * pl.col("size")).sum().alias("_n"),
             pl.len().alias("trades"))
        .with_columns((pl.col("_n") / pl.col("volume")).alias("vwap"))
        .sort("symbol", "ts")
    )
    # trades carry no taker split here: the taker columns are null
    return out.select([(pl.lit(None) if c in BARS_OPTIONAL else pl.col(c)).cast(t).alias(c) for c, t in BARS_SCHEMA.items()])


@st.composite
def trades(draw) -> pl.DataFrame:
    df = draw(trade_frames(("A", "B", "CC"), latest_start=10**4 * MIN, max_trades=60, max_gap=2 * MIN))
    order = draw(st.sampled_from(["grouped", "by_time", "shuffled"]))
    if order == "by_time":  # symbols interleaved: groups split into several runs
        df = df.sort("ts", maintain_order=True)
    elif order == "shuffled":
        df = df.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 10**6)))
    return df


def assert_bars_equal_group_by(df: pl.DataFrame, step: int) -> None:
    """The fast path's bars equal the reference group-by's: exact columns equal, vwap to 1e-12."""
    got, want = trades_to_bars(df, step), reference(df, step)
    exact = ["ts", "symbol", "open", "high", "low", "close", "volume", "trades"]
    assert got.select(exact).equals(want.select(exact))
    assert got["vwap"].to_list() == pytest.approx(want["vwap"].to_list(), rel=1e-12)


@settings(max_examples=80, deadline=None)
@given(df=trades(), minutes=st.sampled_from([1, 5, 60]))
def test_trades_to_bars_equals_group_by(df: pl.DataFrame, minutes: int) -> None:
    assert_bars_equal_group_by(df, minutes * MIN)


def test_run_kernel_declines_split_groups() -> None:
    df = pl.DataFrame({"ts": [0, 1, 2], "symbol": ["A", "B", "A"], "price": [1.0, 2.0, 3.0], "size": [1.0, 1.0, 1.0]})
    assert _bars_from_runs(df, MIN) is None  # A's first minute is two runs: the group-by must do it
    assert trades_to_bars(df, MIN)["open"].to_list() == [1.0, 2.0]
    grouped = df.sort("symbol", maintain_order=True)
    fast = _bars_from_runs(grouped, MIN)
    assert fast is not None and fast["close"].to_list() == [3.0, 2.0] and fast["trades"].to_list() == [2, 1]


@settings(max_examples=60, deadline=None)
@given(df=trades(), minutes=st.sampled_from([1, 60]),
       names=st.sampled_from([("A", "AB", "ABC"), ("ABCDE1", "ABCDE2", "ABCDEF"), ("ABCD", "ABCDEFGH", "ABCDEFGHIJK1"),
                              ("LONGSYMBOL_1234", "LONGSYMBOL_1235", "LONGSYMBOL_123"), ("", "x", "xx")]),
       chunks=st.integers(1, 4))
def test_run_kernel_tells_symbols_apart_by_their_string_view_words(df: pl.DataFrame, minutes: int,
                                                                   names: tuple[str, str, str], chunks: int) -> None:
    """Symbols sharing a prefix, differing only past byte 4 or 8, of 12+ bytes (compared as strings), the
    empty string, and a frame in several chunks (the view words are read chunk by chunk): the bars
    equal the group-by's."""
    df = df.with_columns(pl.col("symbol").replace_strict(dict(zip(("A", "B", "CC"), names, strict=True))))
    if chunks > 1:
        cut = [df.height * i // chunks for i in range(chunks + 1)]
        df = pl.concat([df.slice(a, b - a) for a, b in zip(cut, cut[1:], strict=False)], rechunk=False)
    assert_bars_equal_group_by(df, minutes * MIN)


def test_run_kernel_bars_of_negative_times_and_near_int64_max() -> None:
    """Bars open at floor(ts / step) * step for times before 1970 and just below 2**63 (no overflow)."""
    big = 2**63 - 1
    df = pl.DataFrame({"ts": [-MIN - 1, -1, 0, big - 5, big - 1], "symbol": ["A"] * 5,
                       "price": [1.0, 2.0, 3.0, 4.0, 5.0], "size": [1.0] * 5})
    got = _bars_from_runs(df, MIN)  # the one-pass kernel, not the group-by it falls back to
    assert got is not None and got.equals(trades_to_bars(df.sample(fraction=1.0, seed=1).sort("ts"), MIN))
    assert got["ts"].to_list() == [-2 * MIN, -MIN, 0, big - big % MIN]
    assert got["trades"].to_list() == [1, 1, 1, 2] and got["close"].to_list() == [1.0, 2.0, 3.0, 5.0]


@pytest.mark.parametrize("a,b", [("ABCDE1", "ABCDE2"), ("ABCDEFGHIJK1", "ABCDEFGHIJK2"),
                                 ("LONGSYMBOL_1234", "LONGSYMBOL_1235"), ("AB", "ABC")])
def test_two_symbols_in_one_minute_are_two_bars(a: str, b: str) -> None:
    """Adjacent runs of two symbols inside one bar: only the symbol tells them apart."""
    df = pl.DataFrame({"ts": [0, 1, 2, 3], "symbol": [a, a, b, b], "price": [1.0, 2.0, 3.0, 4.0], "size": [1.0] * 4})
    got = _bars_from_runs(df, MIN)
    assert got is not None and got.select("symbol", "open", "close", "trades").rows() == \
        [(a, 1.0, 2.0, 2), (b, 3.0, 4.0, 2)]


@settings(max_examples=40, deadline=None)
@given(df=trades(), chunks=st.integers(2, 5), minutes=st.sampled_from([1, 60]))
def test_run_kernel_over_chunks_equals_group_by(df: pl.DataFrame, chunks: int, minutes: int) -> None:
    """A scan of many files collects into many chunks, which the kernel reads in place one after another
    (runs and bars carried across chunk ends): the same bars as the group-by, wherever the cuts fall."""
    df = df.with_columns(pl.col("price").cast(pl.Float64), pl.col("size").cast(pl.Float64))
    cut = sorted({df.height * i // chunks for i in range(chunks + 1)})
    parts = pl.concat([df.slice(a, b - a) for a, b in zip(cut, cut[1:], strict=False)], rechunk=False)
    assert parts.n_chunks() == len(cut) - 1
    got = _bars_from_runs(parts, minutes * MIN)
    key = df.select("symbol", (pl.col("ts") - pl.col("ts").mod(minutes * MIN)).alias("bar"))
    runs = key.select(pl.struct("symbol", "bar").rle_id().max()).item() + 1
    if runs > key.unique().height:  # a (symbol, bar) group in two runs: the group-by's job, tested above
        assert got is None
        return
    assert got is not None  # every group is one run: the kernel must not decline
    want = reference(df, minutes * MIN)
    exact = ["ts", "symbol", "open", "high", "low", "close", "volume", "trades"]
    assert got.select(exact).equals(want.select(exact))
    assert got["vwap"].to_list() == pytest.approx(want["vwap"].to_list(), rel=1e-12)
