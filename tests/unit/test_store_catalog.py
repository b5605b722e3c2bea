"""Store core: write/scan round trip, partition pruning, float views, SQL, atomic rollback, names."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from marketlab.core.errors import DataError, MarketlabError, StoreError
from marketlab.store import IngestBatch, Instrument, Store
from marketlab.store import duck
from tests.support.store import tree_hash

NS_DAY = 86_400_000_000_000
T0 = 19_724 * NS_DAY  # 2024-01-02 00:00 UTC


def trades(symbols=("AAA", "BBB"), days=3, per_day=50) -> pl.DataFrame:
    rows = []
    for s in symbols:
        for d in range(days):
            for i in range(per_day):
                rows.append((T0 + d * NS_DAY + 9 * 3600 * 10**9 + i * 10**9, s, i, 1000 + i % 7, 1 + i % 3, 1 - 2 * (i % 2)))
    return pl.DataFrame(rows, schema=["ts", "symbol", "seq", "price", "size", "aggressor"], orient="row")


def batch(df: pl.DataFrame, dataset: str = "toy") -> IngestBatch:
    syms = df["symbol"].unique().to_list()
    return IngestBatch(dataset, {"trades": df}, [Instrument(s, 0.01, 100.0) for s in syms])


def test_write_scan_round_trip(tmp_store: Store) -> None:
    df = trades()
    rep = tmp_store.write(batch(df))
    assert rep.rows == {"trades": df.height} and rep.partitions == 6 and not rep.skipped
    back = tmp_store.scan_trades("toy").collect().sort(["symbol", "ts"])
    assert back.equals(df.cast(back.schema).sort(["symbol", "ts"]))
    ds = tmp_store.datasets()
    assert ds["dataset"].to_list() == ["toy"] and ds["rows"][0] == df.height and ds["symbols"][0] == 2


def test_scan_prunes_partitions_by_listing(tmp_store: Store) -> None:
    tmp_store.write(batch(trades()))
    files = tmp_store.files("trades", "toy", "AAA", "2024-01-03", "2024-01-04")
    assert len(files) == 1 and "symbol=AAA" in files[0] and "date=2024-01-03" in files[0]
    got = tmp_store.scan_trades("toy", "AAA", "2024-01-03", "2024-01-04").collect()
    assert got.height == 50 and set(got["symbol"]) == {"AAA"}
    assert got["ts"].min() >= T0 + NS_DAY and got["ts"].max() < T0 + 2 * NS_DAY
    # A range inside one day filters rows too (half-open).
    s, e = T0 + 9 * 3600 * 10**9 + 5 * 10**9, T0 + 9 * 3600 * 10**9 + 15 * 10**9
    assert tmp_store.scan_trades("toy", ["BBB"], s, e).collect().height == 10
    assert tmp_store.scan_trades("toy", "ZZZ").collect().height == 0


def test_as_float_uses_instrument_tick_and_lot(tmp_store: Store) -> None:
    df = trades(days=1)
    tmp_store.write(batch(df))
    f = tmp_store.scan_trades("toy", "AAA", as_float=True).collect().sort("ts")
    raw = df.filter(pl.col("symbol") == "AAA").sort("ts")
    assert f["price"].to_list() == pytest.approx((raw["price"] * 0.01).to_list())
    assert f["size"].to_list() == pytest.approx((raw["size"] * 100.0).to_list())
    assert tmp_store.instrument("toy", "AAA") == Instrument("AAA", 0.01, 100.0)


def test_sql_views_over_same_files(tmp_store: Store) -> None:
    df = trades()
    tmp_store.write(batch(df))
    out = tmp_store.sql("select symbol, count(*) as n, sum(size) as v from trades_toy group by symbol order by symbol")
    assert out["n"].to_list() == [150, 150]
    assert int(out["v"][0]) == int(df.filter(pl.col("symbol") == "AAA")["size"].sum())
    assert tmp_store.sql("select count(*) as n from instruments")["n"][0] == 2
    with pytest.raises(StoreError):
        tmp_store.sql("select * from no_such_view")


def test_failed_catalog_update_leaves_store_identical(tmp_store: Store, monkeypatch) -> None:
    tmp_store.write(batch(trades()))
    before = tree_hash(tmp_store.path)

    def boom(*a, **k):
        raise RuntimeError("simulated crash during catalog update")

    monkeypatch.setattr(duck, "record_commit", boom)
    with pytest.raises(RuntimeError):
        tmp_store.write(batch(trades(symbols=("CCC", "AAA"), days=5)))
    assert tree_hash(tmp_store.path) == before
    monkeypatch.undo()
    assert tmp_store.scan_trades("toy").collect().height == 300


def test_replace_mode_swaps_partitions(tmp_store: Store) -> None:
    tmp_store.write(batch(trades()))
    new = trades(symbols=("AAA",), days=1, per_day=7)
    tmp_store.write(batch(new), mode="replace")
    assert tmp_store.scan_trades("toy", "AAA", "2024-01-02", "2024-01-03").collect().height == 7
    assert tmp_store.scan_trades("toy").collect().height == 300 - 50 + 7
    assert tmp_store.datasets()["rows"][0] == 300 - 50 + 7


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.with_columns(pl.when(pl.col("seq") == 3).then(-5).otherwise(pl.col("price")).alias("price")), "price"),
        (lambda d: d.reverse(), "out of order"),
        (lambda d: d.with_columns(pl.lit("../evil").alias("symbol")), "invalid symbol"),
        (lambda d: d.with_columns(pl.lit("a/b").alias("symbol")), "invalid symbol"),
        (lambda d: d.drop("aggressor"), "missing column"),
    ],
)
def test_bad_frames_are_one_line_errors_and_store_unchanged(tmp_store: Store, mutate, match) -> None:
    tmp_store.write(batch(trades(), dataset="keep"))
    before = tree_hash(tmp_store.path)
    bad = mutate(trades(symbols=("AAA",), days=1))
    with pytest.raises(MarketlabError, match=match) as exc:
        tmp_store.write(IngestBatch("toy", {"trades": bad}, [Instrument("AAA", 0.01, 1.0)]))
    assert "\n" not in str(exc.value)
    assert tree_hash(tmp_store.path) == before


def test_dataset_and_symbol_names_checked_before_writing(tmp_store: Store) -> None:
    before = tree_hash(tmp_store.path)
    for name in ("../x", "a/b", "", ".hidden", "a=b"):
        with pytest.raises(StoreError, match="invalid dataset"):
            tmp_store.write(batch(trades(), dataset=name))
    with pytest.raises(StoreError, match="invalid symbol"):
        Instrument("x/y", 0.01, 1.0)
    assert tree_hash(tmp_store.path) == before


def test_panel_partitions_by_year_and_rejects_duplicates(tmp_store: Store) -> None:
    import datetime as dt

    dates = [dt.date(2019, 12, 30), dt.date(2019, 12, 31), dt.date(2020, 1, 2)]
    panel = pl.DataFrame(
        {
            "date": dates * 2,
            "symbol": ["X"] * 3 + ["Y"] * 3,
            "open": [1.0] * 6, "high": [2.0] * 6, "low": [0.5] * 6, "close": [1.5] * 6,
            "volume": [10.0] * 6, "vwap": [None] * 6, "amount": [None] * 6, "adj_factor": [1.0] * 6,
            "in_universe": [True] * 6, "suspended": [False] * 6,
        }
    )
    ins = [Instrument("X", 0.01, 1.0), Instrument("Y", 0.01, 1.0)]
    tmp_store.write(IngestBatch("p", {"panel": panel}, ins))
    assert sorted(p.split("/")[-2] for p in tmp_store.files("panel", "p")) == ["year=2019", "year=2020"]
    got = tmp_store.scan_panel("p", "Y", "2019-12-31", "2020-01-02").collect()
    assert got["date"].to_list() == [dt.date(2019, 12, 31)]
    before = tree_hash(tmp_store.path)
    with pytest.raises(DataError, match="duplicate"):
        tmp_store.write(IngestBatch("q", {"panel": pl.concat([panel, panel.head(1)])}, ins))
    # The same record again is a no-op (stored once); the same key with another value is a conflict
    # naming the key (issue 13 item 2: duplicate-free by the data, not by the file).
    rep = tmp_store.write(IngestBatch("p", {"panel": panel.head(1)}, ins))
    assert rep.skipped and rep.added == {}
    with pytest.raises(StoreError, match=r"conflicting value for key \(symbol=X, date=2019-12-30\): close"):
        tmp_store.write(IngestBatch("p", {"panel": panel.head(1).with_columns(pl.lit(9.0).alias("close"))}, ins))
    assert tree_hash(tmp_store.path) == before


def test_unknown_dataset_and_kind(tmp_store: Store) -> None:
    with pytest.raises(StoreError, match="unknown dataset"):
        tmp_store.scan_bars("nope")
    tmp_store.write(batch(trades()))
    with pytest.raises(StoreError, match="has no bars"):
        tmp_store.scan_bars("toy")


def test_default_path_from_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MARKETLAB_STORE", str(tmp_path / "envstore"))
    assert Store().path == tmp_path / "envstore"
    assert (tmp_path / "envstore" / "catalog.duckdb").exists()


@pytest.mark.parametrize("tick,lot", [(1.0, 100.0), (0.01, 1.0), (1.0, 1.0)])
def test_as_float_unit_tick_or_lot_skips_only_its_own_multiply(tmp_store: Store, tick: float, lot: float) -> None:
    """A tick or lot of exactly 1 leaves that column's values as they are (as floats); the other column is
    still scaled by its own size."""
    df = trades(days=1)
    tmp_store.write(IngestBatch("toy", {"trades": df}, [Instrument(s, tick, lot) for s in ("AAA", "BBB")]))
    f = tmp_store.scan_trades("toy", "AAA", as_float=True).collect().sort("ts")
    raw = df.filter(pl.col("symbol") == "AAA").sort("ts")
    assert f["price"].dtype == pl.Float64 and f["size"].dtype == pl.Float64
    assert f["price"].to_list() == pytest.approx((raw["price"] * tick).to_list())
    assert f["size"].to_list() == pytest.approx((raw["size"] * lot).to_list())
