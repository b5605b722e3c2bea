"""Taker volumes in the store's bars: Binance kline columns 10/11 stored as ``taker_buy_volume`` /
``taker_buy_quote_volume``, validated, summed by coarser bars, and a bars dataset stored before the columns
existed still read (as null) and appended to when the new rows carry no taker volumes."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.core import schema
from marketlab.core.errors import DataError, MarketlabError, StoreError
from marketlab.store import IngestBatch, Instrument, Store
from marketlab.store import validate as store_validate
from marketlab.store.resample import aggregate_bars
from marketlab.store.validate import validate_frame
from tests.support.binance import KLINE_ROWS, kline_days
from tests.support.store import tree_hash

T0 = 1_640_995_200 * 10**9  # 2022-01-01T00:00:00Z
MIN = 60 * 10**9
OLD_BARS = {c: t for c, t in schema.BARS_SCHEMA.items() if c not in schema.BARS_OPTIONAL}  # before the taker columns


def _klines(tmp_path: Path, rows: list[str], name: str = "BTCUSDT-1m-2022-01-01.csv") -> Path:
    f = tmp_path / name
    f.write_text("\n".join(rows) + "\n")
    return f


def test_kline_taker_columns_are_stored_as_in_the_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.ingest("ohlcv", [_klines(tmp_path, KLINE_ROWS)], dataset="k")
    bars = store.read("bars", "k")
    assert bars.columns == list(schema.BARS_SCHEMA)
    assert bars["taker_buy_volume"].to_list() == [27.26086, 28.92522, 22.74786]  # column 10 of KLINE_ROWS
    assert bars["taker_buy_quote_volume"].to_list() == [1260270.3720627, 1339049.4959133, 1054134.6255559]


def test_a_plain_ohlcv_file_stores_null_taker_volumes(tmp_path: Path) -> None:
    f = tmp_path / "XYZ_1m.csv"
    f.write_text("datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,1,2,3\n2024-01-01 00:01:00,2,3,2,3,4\n")
    store = Store(tmp_path / "store")
    store.ingest("ohlcv", [f], dataset="plain")
    bars = store.read("bars", "plain")
    assert bars["taker_buy_volume"].null_count() == 2 and bars["taker_buy_quote_volume"].null_count() == 2


@pytest.mark.parametrize(("cell", "value", "match"), [
    (9, "41.0", "exceeds the bar.s volume"),  # 41.0 > volume 40.57574
    (9, "-1", "negative"),
    (10, "-5", "negative"),
    (9, "nan", "is NaN"),
])
def test_bad_taker_volumes_are_one_line_errors_and_leave_the_store_unchanged(tmp_path: Path, cell: int, value: str,
                                                                             match: str) -> None:
    store = Store(tmp_path / "store")
    store.ingest("ohlcv", [_klines(tmp_path, KLINE_ROWS[1:])], dataset="k")
    row = KLINE_ROWS[0].split(",")
    row[cell] = value
    bad = _klines(tmp_path, [",".join(row)], name="BTCUSDT-1m-2021-12-31.csv")
    before = tree_hash(store.path)
    with pytest.raises(DataError, match=match) as exc:
        store.ingest("ohlcv", [bad], dataset="k")
    msg = str(exc.value)
    field = "taker_buy_volume" if cell == 9 else "taker_buy_quote_volume"
    assert "\n" not in msg and bad.name in msg and "row 1" in msg and field in msg
    assert tree_hash(store.path) == before
    r = CliRunner().invoke(app, ["ingest", "ohlcv", str(bad), "--store", str(store.path), "-q"])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_the_store_refuses_taker_buys_above_the_volume_from_any_producer() -> None:
    """A bars frame built in Python (not parsed from a file) meets the same rule in ``validate_frame``."""
    frame = pl.DataFrame({"ts": [T0, T0 + MIN], "symbol": ["A", "A"], "open": [1.0, 1.0], "high": [1.0, 1.0],
                          "low": [1.0, 1.0], "close": [1.0, 1.0], "volume": [2.0, 2.0], "vwap": [1.0, 1.0],
                          "trades": [1, 1], "taker_buy_volume": [2.0, 2.5], "taker_buy_quote_volume": [2.0, 2.5]})
    with pytest.raises(DataError, match=r"row 1, field 'taker_buy_volume': taker buy volume exceeds"):
        validate_frame("bars", frame, "src")
    out = validate_frame("bars", frame.drop("taker_buy_volume", "taker_buy_quote_volume"), "src")
    assert out.columns == list(schema.BARS_SCHEMA) and out["taker_buy_volume"].null_count() == 2


def test_coarser_bars_sum_taker_volumes_and_stay_null_when_one_minute_lacks_them() -> None:
    minutes = pl.DataFrame({
        "ts": [T0 + k * MIN for k in range(6)], "symbol": ["A"] * 6, "open": [1.0] * 6, "high": [2.0] * 6,
        "low": [0.5] * 6, "close": [1.5] * 6, "volume": [4.0] * 6, "vwap": [1.2] * 6, "trades": [3] * 6,
        "taker_buy_volume": [1.0, 2.0, 3.0, 0.5, None, 1.5], "taker_buy_quote_volume": [1.1, 2.2, 3.3, 0.6, 0.7, None],
    })
    out = aggregate_bars(minutes, "3m")
    assert out.columns == list(schema.BARS_SCHEMA)
    assert out["taker_buy_volume"].to_list() == [6.0, None]  # 1 + 2 + 3; the second bucket misses a minute
    assert out["taker_buy_quote_volume"].to_list() == [pytest.approx(6.6), None]


def _write_old_dataset(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``k`` written the way the store wrote bars before the taker columns existed (9 columns on disk)."""
    with monkeypatch.context() as m:
        m.setitem(schema.SCHEMAS, "bars", OLD_BARS)
        m.setattr(store_validate, "BARS_OPTIONAL", ())
        store.ingest("ohlcv", [_klines(tmp_path, KLINE_ROWS[:2])], dataset="k")
    files = list(store.path.rglob("*.parquet"))
    assert files and all("taker_buy_volume" not in pq.read_schema(f).names for f in files)


def test_a_bars_dataset_stored_before_the_taker_columns_still_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "store")
    _write_old_dataset(store, tmp_path, monkeypatch)
    bars = store.scan_bars("k", "BTCUSDT").collect()
    assert bars.columns == list(schema.BARS_SCHEMA)
    assert bars["taker_buy_volume"].null_count() == 2 and bars["taker_buy_quote_volume"].null_count() == 2
    assert bars["close"].to_list() == [46250.0, 46312.76] and bars["trades"].to_list() == [796, 973]
    assert store.read("bars", "k", start=T0 + MIN).height == 1  # filters still apply
    assert aggregate_bars(store.scan_bars("k"), "2m")["taker_buy_volume"].to_list() == [None]


def test_appends_to_an_old_bars_dataset_without_taker_volumes_pass_with_them_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "store")
    _write_old_dataset(store, tmp_path, monkeypatch)
    with_taker = _klines(tmp_path, KLINE_ROWS[2:], name="BTCUSDT-1m-2022-01-01b.csv")
    before = tree_hash(store.path)
    with pytest.raises(StoreError, match=r"dataset 'k' was stored before bars had 'taker_buy_volume'") as exc:
        store.ingest("ohlcv", [with_taker], dataset="k")
    assert "\n" not in str(exc.value)
    assert tree_hash(store.path) == before
    plain = IngestBatch("k", {"bars": pl.DataFrame({  # no taker columns: nothing is lost by the old layout
        "ts": [T0 + 2 * MIN], "symbol": ["BTCUSDT"], "open": [46312.76], "high": [46381.69], "low": [46292.75],
        "close": [46368.73], "volume": [51.29955], "vwap": [None], "trades": [1238]})},
        [Instrument("BTCUSDT", 0.01, 1.0, "USDT")])
    store.write(plain)
    bars = store.read("bars", "k")
    assert bars["close"].to_list() == [46250.0, 46312.76, 46368.73] and bars["taker_buy_volume"].null_count() == 3


@pytest.mark.integration
def test_real_klines_taker_columns_round_trip_through_the_store(shared_data: Path, tmp_path: Path) -> None:
    """Three real days per symbol: every stored taker value equals the archive's CSV cell (csv module)."""
    days = ["2022-01-01", "2022-06-18", "2023-03-24"]
    folder = kline_days(shared_data, tmp_path / "klines", {"BTCUSDT": days, "ETHUSDT": days})
    store = Store(tmp_path / "store")
    store.ingest("ohlcv", [folder], dataset="k")
    for sym in ("BTCUSDT", "ETHUSDT"):
        raw: list[list[str]] = []
        for d in days:
            with zipfile.ZipFile(folder / f"{sym}-1m-{d}.zip") as z, z.open(z.namelist()[0]) as fh:
                raw += list(csv.reader(io.TextIOWrapper(fh)))
        bars = store.read("bars", "k", sym)
        assert bars.height == len(raw) == 3 * 1440 - 80
        np.testing.assert_array_equal(bars["ts"].to_numpy(), [int(r[0]) * 1_000_000 for r in raw])
        np.testing.assert_array_equal(bars["taker_buy_volume"].to_numpy(), [float(r[9]) for r in raw])
        np.testing.assert_array_equal(bars["taker_buy_quote_volume"].to_numpy(), [float(r[10]) for r in raw])
        assert (bars["taker_buy_volume"] <= bars["volume"]).all()


def test_store_errors_are_marketlab_errors() -> None:
    assert issubclass(StoreError, MarketlabError) and issubclass(DataError, MarketlabError)
