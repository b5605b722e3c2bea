"""The one-pass run kernel of trades_to_bars equals a plain polars group-by, in any input order."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.core.schema import BARS_SCHEMA
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
    return out.select([pl.col(c).cast(t) for c, t in BARS_SCHEMA.items()])


@st.composite
def trades(draw) -> pl.DataFrame:
    df = draw(trade_frames(("A", "B", "CC"), latest_start=10**4 * MIN, max_trades=60, max_gap=2 * MIN))
    order = draw(st.sampled_from(["grouped", "by_time", "shuffled"]))
    if order == "by_time":  # symbols interleaved: groups split into several runs
        df = df.sort("ts", maintain_order=True)
    elif order == "shuffled":
        df = df.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 10**6)))
    return df


@settings(max_examples=80, deadline=None)
@given(df=trades(), minutes=st.sampled_from([1, 5, 60]))
def test_trades_to_bars_equals_group_by(df: pl.DataFrame, minutes: int) -> None:
    step = minutes * MIN
    got, want = trades_to_bars(df, step), reference(df, step)
    exact = ["ts", "symbol", "open", "high", "low", "close", "volume", "trades"]
    assert got.select(exact).equals(want.select(exact))
    assert got["vwap"].to_list() == pytest.approx(want["vwap"].to_list(), rel=1e-12)


def test_run_kernel_declines_split_groups() -> None:
    df = pl.DataFrame({"ts": [0, 1, 2], "symbol": ["A", "B", "A"], "price": [1.0, 2.0, 3.0], "size": [1.0, 1.0, 1.0]})
    assert _bars_from_runs(df, MIN) is None  # A's first minute is two runs: the group-by must do it
    assert trades_to_bars(df, MIN)["open"].to_list() == [1.0, 2.0]
    grouped = df.sort("symbol", maintain_order=True)
    fast = _bars_from_runs(grouped, MIN)
    assert fast is not None and fast["close"].to_list() == [3.0, 2.0] and fast["trades"].to_list() == [2, 1]
