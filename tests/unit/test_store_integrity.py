"""Store integrity (issue 13): the catalog is the source of truth, records are stored once by natural
key, streaming writes are one transaction, a missing catalog is never silently recreated."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import MarketlabError, StoreError
from marketlab.store import IngestBatch, Instrument, Store
from tests.support.store import tree_hash

NS_DAY = 86_400_000_000_000
T0 = 19_724 * NS_DAY  # 2024-01-02 00:00 UTC
KLINES = "{t},100.0,101.0,99.0,100.5,10.0,{c},1000.0,5,5.0,500.0,0\n"


def klines(first_minute: int, n: int) -> str:
    """Binance spot klines (headerless, ms open_time) for minutes first..first+n-1 of 2024-01-02."""
    ms = T0 // 1_000_000
    return "".join(KLINES.format(t=ms + (first_minute + i) * 60_000, c=ms + (first_minute + i) * 60_000 + 59_999)
                   for i in range(n))


def bars(ts: list[int], close: float = 1.5, symbol: str = "AAA") -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame({"ts": ts, "symbol": [symbol] * n, "open": [1.0] * n, "high": [2.0] * n, "low": [0.5] * n,
                         "close": [close] * n, "volume": [10.0] * n, "vwap": [1.2] * n, "trades": [3] * n})


def bars_batch(df: pl.DataFrame, dataset: str = "b") -> IngestBatch:
    return IngestBatch(dataset, {"bars": df}, [Instrument(s, 0.01, 1.0) for s in df["symbol"].unique()])


MIN = 60 * 10**9


def _store_with_klines(tmp_path: Path, name: str, minutes: int) -> tuple[Store, Path]:
    """A store with dataset ``k`` ingested from ``a/<name>`` (``minutes`` klines from 0); folder ``b`` exists
    empty for the second file."""
    st = Store(tmp_path / "s")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / name
    a.write_text(klines(0, minutes))
    st.ingest("ohlcv", [a], dataset="k")
    return st, a


def test_same_records_through_another_file_are_stored_once(tmp_path: Path) -> None:
    """Finding 2: a gunzipped/gzipped copy and an overlapping file add no second copy."""
    st, a = _store_with_klines(tmp_path, "BTCUSDT.csv", 30)
    gz = tmp_path / "b" / "BTCUSDT.csv.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    rep = st.ingest("ohlcv", [gz], dataset="k")
    assert rep.skipped and rep.added == {}
    assert st.scan_bars("k").collect().height == 30
    b = tmp_path / "b" / "BTCUSDT.csv"  # minutes 20..49 overlap 20..29
    b.write_text(klines(20, 30))
    rep = st.ingest("ohlcv", [b], dataset="k")
    assert rep.added == {"bars": 20}
    got = st.scan_bars("k").collect()
    assert got.height == 50 and got["ts"].n_unique() == 50 and got["ts"].is_sorted()
    assert st.datasets()["rows"][0] == 50


def test_conflicting_value_names_the_key_and_replace_says_what_it_replaced(tmp_store: Store) -> None:
    tmp_store.write(bars_batch(bars([T0 + i * MIN for i in range(5)])))
    before = tree_hash(tmp_store.path)
    clash = bars([T0 + 3 * MIN, T0 + 9 * MIN], close=7.0)
    with pytest.raises(StoreError, match=rf"key \(symbol=AAA, ts={T0 + 3 * MIN}\): close is 1.5 in the store, 7.0") as e:
        tmp_store.write(bars_batch(clash))
    assert "\n" not in str(e.value)
    assert tree_hash(tmp_store.path) == before
    rep = tmp_store.write(bars_batch(clash), mode="upsert")
    assert rep.replaced == {"bars": 1} and rep.added == {"bars": 1}
    got = tmp_store.scan_bars("b").collect()
    assert got.height == 6 and got.filter(pl.col("ts") == T0 + 3 * MIN)["close"].to_list() == [7.0]


def test_ingest_replace_flag_overwrites_conflicts(tmp_path: Path) -> None:
    st, a = _store_with_klines(tmp_path, "ETHUSDT.csv", 10)
    b = tmp_path / "b" / "ETHUSDT.csv"
    b.write_text(klines(5, 10).replace("100.5,", "100.7,"))
    with pytest.raises(StoreError, match="conflicting value for key"):
        st.ingest("ohlcv", [b], dataset="k")
    rep = st.ingest("ohlcv", [b], dataset="k", replace=True)
    assert rep.replaced == {"bars": 5} and rep.added == {"bars": 5}
    assert st.scan_bars("k").collect()["close"].to_list() == [100.5] * 5 + [100.7] * 10
    # Records were replaced: the first file's hash no longer proves its records are stored, so ingesting
    # it again goes through the data and reports the conflict instead of a silent "already ingested".
    with pytest.raises(StoreError, match="conflicting value"):
        st.ingest("ohlcv", [a], dataset="k")


def test_replace_supersedes_the_partitions_of_a_rerun(tmp_store: Store) -> None:
    """The simulation re-run API: the same (dataset, symbol, day) is replaced, other days stay."""
    day1 = [T0 + i * MIN for i in range(10)]
    day2 = [T0 + NS_DAY + i * MIN for i in range(4)]
    tmp_store.write(bars_batch(bars(day1 + day2)))
    rep = tmp_store.replace(bars_batch(bars(day1[:3], close=9.0)))
    assert rep.replaced == {"bars": 10} and rep.added == {"bars": 3}
    got = tmp_store.scan_bars("b").collect()
    assert got.height == 3 + 4 and got["close"].to_list() == [9.0] * 3 + [1.5] * 4
    assert tmp_store.datasets()["rows"][0] == 7


def test_duplicate_key_within_one_write_is_an_error(tmp_store: Store) -> None:
    tr = pl.DataFrame({"ts": [T0, T0 + 1, T0 + 1], "symbol": ["A"] * 3, "seq": [0, 1, 1], "price": [10, 11, 11],
                       "size": [1, 2, 2], "aggressor": [1, -1, -1]})
    with pytest.raises(StoreError, match=rf"duplicate key \(symbol=A, ts={T0 + 1}, seq=1\)"):
        tmp_store.write(IngestBatch("t", {"trades": tr}, [Instrument("A", 0.01, 1.0)]))
    assert "t" not in tmp_store.datasets()["dataset"].to_list()


def _stream(n: int, fail_at: int | None = None) -> Iterator[IngestBatch]:
    for k in range(n):
        if k == fail_at:
            raise MarketlabError("bad line 1234 in big.csv")
        yield bars_batch(bars([T0 + (k * 100 + i) * MIN for i in range(100)]))


def test_streaming_write_is_one_transaction(tmp_store: Store) -> None:
    rep = tmp_store.write(_stream(5))
    assert rep.added == {"bars": 500} and rep.rows == {"bars": 500}
    got = tmp_store.scan_bars("b").collect()
    assert got.height == 500 and got["ts"].is_sorted() and got["ts"].n_unique() == 500
    before = tree_hash(tmp_store.path)
    with pytest.raises(MarketlabError, match="bad line"):
        tmp_store.write(_stream(8, fail_at=6))  # batches 5, 6.. never become visible
    assert tree_hash(tmp_store.path) == before


def test_streaming_pulls_one_batch_at_a_time(tmp_store: Store) -> None:
    """Each batch is staged before the next is pulled (memory bounded by a batch, not the file)."""
    staged_before_next: list[int] = []

    def gen() -> Iterator[IngestBatch]:
        for k in range(3):
            if k:
                staged_before_next.append(sum(1 for _ in tmp_store.path.glob(".staging-*/*.parquet")))
            yield bars_batch(bars([T0 + (k * 10 + i) * MIN for i in range(10)]))

    tmp_store.write(gen())
    assert staged_before_next == [1, 2]


def test_files_the_catalog_does_not_list_are_invisible(tmp_store: Store) -> None:
    """Finding 1's reader side: a data file a dead writer left (not committed) is never read."""
    tmp_store.write(bars_batch(bars([T0 + i * MIN for i in range(5)])))
    [f] = tmp_store.files("bars", "b")
    shutil.copy(f, Path(f).with_name("part-orphan.parquet"))
    assert tmp_store.scan_bars("b").collect().height == 5
    assert tmp_store.sql("select count(*) as n from bars_b")["n"][0] == 5


def test_missing_catalog_is_not_silently_recreated(tmp_store: Store) -> None:
    tmp_store.write(bars_batch(bars([T0])))
    tmp_store.catalog_path.unlink()
    before = tree_hash(tmp_store.path)
    with pytest.raises(StoreError, match="catalog is missing but the store holds data"):
        Store(tmp_store.path)
    assert tree_hash(tmp_store.path) == before


def test_read_only_open_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        Store(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        Store(tmp_path / "file")


@pytest.mark.parametrize("query, kind", [
    ("COPY (SELECT 1) TO '{root}/bars/evil.parquet'", "COPY"),
    ("ATTACH '{root}/evil.duckdb' AS evil", "ATTACH"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("CREATE TABLE evil AS SELECT 1", "CREATE"),
    ("INSERT INTO datasets SELECT * FROM datasets", "INSERT"),
    ("SET enable_external_access = true", "SET"),
    ("SELECT 1; COPY (SELECT 1) TO '{root}/x.csv'", "COPY"),
])
def test_sql_is_read_only(tmp_store: Store, query: str, kind: str) -> None:
    tmp_store.write(bars_batch(bars([T0 + i * MIN for i in range(5)])))
    before = tree_hash(tmp_store.path)
    with pytest.raises(StoreError, match=f"sql: {kind} statements are not allowed") as e:
        tmp_store.sql(query.format(root=tmp_store.path))
    assert "\n" not in str(e.value)
    assert tree_hash(tmp_store.path) == before


def test_sql_reads_nothing_outside_the_store(tmp_store: Store, tmp_path: Path) -> None:
    tmp_store.write(bars_batch(bars([T0 + i * MIN for i in range(5)])))
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(StoreError, match="sql: .*(Permission|disabled)"):
        tmp_store.sql(f"SELECT * FROM read_csv('{outside}')")
    assert tmp_store.sql("SELECT count(*) AS n FROM bars_b")["n"][0] == 5


def test_sql_reads_only_the_files_the_catalog_lists(tmp_store: Store) -> None:
    """A file inside the store that the catalog does not list (an orphan of a dead writer), a glob over the
    data tree and the catalog file itself cannot be named in `data sql`; the views still read."""
    tmp_store.write(bars_batch(bars([T0 + i * MIN for i in range(5)])))
    [f] = tmp_store.files("bars", "b")
    orphan = Path(f).with_name("part-orphan.parquet")
    shutil.copy(f, orphan)
    root = tmp_store.path.resolve()
    for query in (f"SELECT count(*) FROM read_parquet('{orphan.resolve()}')",
                  f"SELECT count(*) FROM read_parquet('{root}/bars/**/*.parquet')",
                  f"SELECT count(*) FROM read_parquet('{root}/bars/dataset=b/*/*/*.parquet')",
                  f"SELECT * FROM read_text('{root}/catalog.duckdb')"):
        with pytest.raises(StoreError, match="sql: .*(Permission|disabled|not allowed)") as e:
            tmp_store.sql(query)
        assert "\n" not in str(e.value)
    # a committed file named directly is what a view reads anyway
    assert tmp_store.sql(f"SELECT count(*) AS n FROM read_parquet('{Path(f).resolve()}')")["n"][0] == 5
    assert tmp_store.sql("SELECT count(*) AS n FROM bars_b")["n"][0] == 5


def _closes(v: float) -> IngestBatch:
    frame = bars([T0 + i * MIN for i in range(5)]).with_columns(
        *(pl.lit(v).alias(c) for c in ("open", "high", "low", "close", "vwap")))
    return bars_batch(frame)


def test_lazy_scan_across_a_replace_is_old_snapshot_or_error_never_a_mix(tmp_store: Store) -> None:
    """A scan lists its files when built; a replace that commits before it is collected deletes them, so
    collecting fails whole (FileNotFoundError) rather than mixing; a scan built afterwards sees the new rows."""
    tmp_store.write(_closes(1.0))
    before = tmp_store.scan_bars("b")
    collected = tmp_store.scan_bars("b").collect()
    Store(tmp_store.path).replace(_closes(2.0))  # another process's Store: only the catalog tells
    assert collected["close"].to_list() == [1.0] * 5
    with pytest.raises(FileNotFoundError):
        before.collect()
    assert tmp_store.scan_bars("b").collect()["close"].to_list() == [2.0] * 5


def test_duplicate_seq_in_events_is_an_error(tmp_store: Store) -> None:
    ev = pl.DataFrame({"ts": [T0 + i for i in range(4)], "symbol": ["A"] * 4, "seq": [0, 1, 1, 2],
                       "type": [1] * 4, "order_id": [1, 2, 3, 4], "side": [1] * 4, "price": [10] * 4, "size": [1] * 4})
    with pytest.raises(StoreError, match=r"duplicate key \(symbol=A, seq=1\)"):
        tmp_store.write(IngestBatch("e", {"events": ev}, [Instrument("A", 0.01, 1.0)]))
    tmp_store.write(IngestBatch("e", {"events": ev.with_columns(pl.Series("seq", [0, 1, 2, 3]))},
                                [Instrument("A", 0.01, 1.0)]))
    assert tmp_store.scan_events("e").collect()["seq"].to_list() == [0, 1, 2, 3]


@pytest.mark.parametrize("at", [1, 65_535, 65_536, 65_537, 131_072, 199_999])
@pytest.mark.parametrize("strict", [False, True])
def test_one_symbol_order_check_finds_a_step_back_at_every_slice_boundary(at: int, strict: bool) -> None:
    """The one-symbol check runs slice by slice (no full-length temporary): a step back (or, strict, a
    repeat) exactly at a slice edge is still found, and only there."""
    from marketlab.store.validate import _out_of_order

    ts = np.arange(200_000, dtype=np.int64) * 10
    ok = pl.DataFrame({"ts": ts, "symbol": "A"})
    assert not _out_of_order(ok, "ts", strict, True)
    bad = ts.copy()
    bad[at] = bad[at - 1] if strict else bad[at - 1] - 1
    assert _out_of_order(pl.DataFrame({"ts": bad, "symbol": "A"}), "ts", strict, True)
