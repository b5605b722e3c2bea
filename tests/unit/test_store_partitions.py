"""split_partitions: zero-copy slices when partitions are contiguous runs, a copy otherwise; the same
partitions either way, checked against a naive per-row grouping."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from marketlab.core.timeutil import NS_PER_DAY
from marketlab.store.writer import split_partitions

DAY0 = (dt.date(2024, 1, 2) - dt.date(1970, 1, 1)).days * NS_PER_DAY


def _naive(df: pl.DataFrame) -> dict[str, list[int]]:
    """Partition name -> row indices, one Python loop over the rows."""
    out: dict[str, list[int]] = {}
    for i, (ts, sym) in enumerate(zip(df["ts"].to_list(), df["symbol"].to_list(), strict=True)):
        day = dt.date(1970, 1, 1) + dt.timedelta(days=ts // NS_PER_DAY)
        out.setdefault(f"symbol={sym}/date={day.isoformat()}", []).append(i)
    return out


def _trades(order: str) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for sym in ("AAA", "BBB"):
        for d in range(3):
            for k in range(5):
                rows.append((DAY0 + d * NS_PER_DAY + k * 60 * 10**9, sym, int(rng.integers(1, 100))))
    df = pl.DataFrame(rows, schema={"ts": pl.Int64, "symbol": pl.String, "size": pl.Int64}, orient="row")
    if order == "interleaved":  # symbols alternate row by row: partitions are not contiguous
        df = df.sort("ts", "symbol")
    return df.with_row_index("row")


def test_partitions_match_a_naive_grouping_contiguous_and_interleaved() -> None:
    for order in ("grouped", "interleaved"):
        df = _trades(order)
        parts = split_partitions("trades", df)
        names = [n for n, _ in parts]
        assert len(names) == len(set(names)) == 6, (order, names)
        want = _naive(df)
        got = {n: p["row"].to_list() for n, p in parts}
        assert got == {n: [df["row"][i] for i in rows] for n, rows in want.items()}, order


def test_contiguous_partitions_are_slices_of_the_batch() -> None:
    df = _trades("grouped")
    parts = split_partitions("trades", df)
    # zero-copy: each partition's ts buffer lies inside the batch's buffer
    base = df["ts"].to_numpy()
    for _, p in parts:
        assert np.shares_memory(p["ts"].to_numpy(), base)


def test_year_partitions_of_a_panel() -> None:
    dates = [dt.date(2019, 12, 30), dt.date(2019, 12, 31), dt.date(2020, 1, 2), dt.date(2020, 1, 3)]
    df = pl.DataFrame({"date": dates * 2, "symbol": ["A"] * 4 + ["B"] * 4, "close": np.arange(8.0)})
    for frame in (df, df.sort("date", "symbol")):
        parts = dict(split_partitions("panel", frame))
        assert sorted(parts) == ["year=2019", "year=2020"]
        assert sorted(parts["year=2019"]["close"].to_list()) == [0.0, 1.0, 4.0, 5.0]
        assert sorted(parts["year=2020"]["close"].to_list()) == [2.0, 3.0, 6.0, 7.0]


def _runs_frame(days: list[tuple[str, list[int]]]) -> pl.DataFrame:
    """Runs of (symbol, minute offsets from DAY0), in the given order."""
    rows = [(DAY0 + m * 60 * 10**9, sym, i) for sym, minutes in days for i, m in enumerate(minutes)]
    return pl.DataFrame(rows, schema={"ts": pl.Int64, "symbol": pl.String, "size": pl.Int64},
                        orient="row").with_row_index("row")


def test_symbol_runs_in_time_order_split_by_day_like_the_naive_grouping() -> None:
    """The run + binary-search path (multi-chunk batches of a stream, days with no rows, a day that starts
    exactly at midnight) gives the naive grouping; a run out of time order, or a (symbol, day) met twice,
    takes the vectorised path or a copy and still gives it."""
    day = 24 * 60
    cases = {
        "runs": [("AAA", [0, 5, day - 1, day, day + 3, 3 * day + 1]), ("BBB", [2, 2 * day]), ("CCC", [7])],
        "unsorted run": [("AAA", [5, 0, day + 1]), ("BBB", [1])],
        "symbol twice": [("AAA", [0, 1]), ("BBB", [0]), ("AAA", [2, day])],
    }
    for what, runs in cases.items():
        df = _runs_frame(runs)
        chunked = pl.concat([df.slice(0, 3), df.slice(3)], rechunk=False)
        for frame in (df, chunked):
            parts = split_partitions("trades", frame)
            names = [n for n, _ in parts]
            assert len(names) == len(set(names)), (what, names)
            want = _naive(df)
            assert {n: p["row"].to_list() for n, p in parts} == want, what


def test_parquet_statistics_kept_for_pruning_columns_not_for_book_levels(tmp_path) -> None:
    """Time, symbol and seq keep min/max statistics (file-level pruning and the catalog's migration read
    them); book levels (never a scan filter) skip them."""
    import pyarrow.parquet as pq

    from marketlab.store.writer import _stats_range, write_parquet

    df = pl.DataFrame({"ts": [5, 9], "symbol": ["A", "A"], "seq": [0, 1], "ask_px_1": [10, 11], "ask_sz_1": [1, 2],
                       "bid_px_10": [8, 7], "bid_sz_10": [3, 4], "mid": [1.5, 2.5]})
    write_parquet(df, tmp_path / "b.parquet")
    md = pq.read_metadata(tmp_path / "b.parquet")
    col = {md.schema.names[i]: md.row_group(0).column(i).statistics for i in range(md.num_columns)}
    assert all(col[c] is not None and col[c].has_min_max for c in ("ts", "symbol", "seq", "mid"))
    assert all(col[c] is None or not col[c].has_min_max for c in ("ask_px_1", "ask_sz_1", "bid_px_10", "bid_sz_10"))
    assert _stats_range(md, "book") == (5, 9)


def test_key_span_only_for_strictly_increasing_keys() -> None:
    """A partition's (first, last) key is only claimed when its order column strictly increases (then a
    stream's batches are adopted without a merge); equal neighbours, a step back or a null refuse it, also
    for a slice in the middle of a batch."""
    from marketlab.store.writer import key_span

    bars = pl.DataFrame({"ts": [1, 5, 9, 12], "symbol": ["A"] * 4, "close": [1.0, 2.0, 3.0, 4.0]})
    assert key_span("bars", bars) == (1, 12)
    assert key_span("bars", bars.slice(1, 2)) == (5, 9)
    assert key_span("bars", bars.with_columns(pl.Series("ts", [1, 5, 5, 12]))) is None
    assert key_span("bars", bars.with_columns(pl.Series("ts", [1, 9, 5, 12]))) is None
    assert key_span("bars", bars.with_columns(pl.Series("ts", [1, None, 5, 12]))) is None
    ev = pl.DataFrame({"ts": [3, 3, 3], "symbol": ["A"] * 3, "seq": [7, 8, 9]})
    assert key_span("events", ev) == (7, 9) and key_span("events", ev.slice(2)) == (9, 9)
    # trades are ordered by (ts, seq): lexicographic, so equal timestamps with rising seq still qualify
    tr = pl.DataFrame({"ts": [1, 1, 2, 5], "symbol": ["A"] * 4, "seq": [0, 1, 2, 3]})
    assert key_span("trades", tr) == ((1, 0), (5, 3)) and key_span("trades", tr.slice(1, 2)) == ((1, 1), (2, 2))
    assert key_span("trades", tr.with_columns(pl.Series("seq", [1, 0, 2, 3]))) is None  # same ts, seq back
    assert key_span("trades", tr.with_columns(pl.Series("seq", [0, 0, 2, 3]))) is None  # a key twice
    assert key_span("trades", tr.with_columns(pl.Series("ts", [1, 1, 0, 5]))) is None  # ts steps back
