"""Binance klines through the ohlcv parser (issue 13 item 8, issue 17 data): per-row ms/µs units, symbols
from Binance archive names, ``.zip`` archives and folders of them, gaps reported, streaming batches."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from marketlab.core.errors import DataError
from marketlab.store import Store
from marketlab.store.ingest.ohlcv import interval_from_name, iter_batches, parse, symbol_from_name
from tests.support.binance import KLINE_ROWS as ROWS

T0 = 1_640_995_200 * 10**9  # 2022-01-01T00:00:00Z in ns
MIN = 60 * 10**9


def _kline(open_ms: int, close: float = 100.0, volume: float = 1.0, *, us: bool = False) -> str:
    t = open_ms * 1000 if us else open_ms
    c = (open_ms + 59_999) * (1000 if us else 1)
    # taker buys: half the volume (Binance: taker_base <= volume, taker_quote <= quote_volume)
    return f"{t},{close},{close + 1},{close - 1},{close},{volume},{c},{close * volume},3,{volume / 2},{close * volume / 2},0"


def _zip(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.csv", "\n".join(lines) + "\n")
    return path


def test_mixed_ms_and_us_open_times_land_at_the_right_time(tmp_path: Path) -> None:
    # Binance spot switched to µs on 2025-01-01: the last bar of 2024 in ms, the first of 2025 in µs.
    ms_2024_last = 1_735_689_540_000  # 2024-12-31T23:59:00Z
    f = tmp_path / "BTCUSDT-1m-2025-01.csv"
    f.write_text("\n".join([_kline(ms_2024_last), _kline(ms_2024_last + 60_000, us=True)]) + "\n")
    bars = parse([f]).frames["bars"]
    assert bars["ts"].to_list() == [1_735_689_540 * 10**9, 1_735_689_600 * 10**9]
    assert bars["symbol"].to_list() == ["BTCUSDT", "BTCUSDT"]


@pytest.mark.parametrize(
    "name, symbol, interval",
    [
        ("ETHUSDT-1m-2024-01.csv", "ETHUSDT", MIN),
        ("BTCUSDT-1m-2022-01-01.zip", "BTCUSDT", MIN),
        ("BTCUSDT-1h-2022-01.csv.gz", "BTCUSDT", 3600 * 10**9),
        ("BTCUSDT-1mo-2022-01.csv", "BTCUSDT", None),
        ("BTCUSDT_1m_2024-01.csv.gz", "BTCUSDT", MIN),
        ("GSPC_daily.csv.gz", "GSPC", None),
    ],
)
def test_symbol_and_interval_from_file_names(name: str, symbol: str, interval: int | None) -> None:
    assert symbol_from_name(name) == symbol
    assert interval_from_name(name) == interval


def test_binance_named_csv_gets_the_symbol_through_the_store(tmp_path: Path) -> None:
    f = tmp_path / "ETHUSDT-1m-2024-01.csv"
    f.write_text("\n".join(ROWS) + "\n")
    rep = Store(tmp_path / "s").ingest("ohlcv", [f], dataset="k")
    assert rep.symbols == ["ETHUSDT"] and rep.rows == {"bars": 3}


def test_a_folder_of_daily_zips_is_one_ingest_with_gaps_reported(tmp_path: Path) -> None:
    d = tmp_path / "klines"
    day = 86_400_000
    t0 = T0 // 10**6
    _zip(d, "BTCUSDT-1m-2022-01-01", ROWS)
    # day 2: 00:00, 00:01, 00:03 (1 missing minute), 00:07 (3 missing), 00:08
    _zip(d, "BTCUSDT-1m-2022-01-02", [_kline(t0 + day + k * 60_000) for k in (0, 1, 3, 7, 8)])
    _zip(d, "ETHUSDT-1m-2022-01-01", [_kline(t0 + k * 60_000, 3700.0, 0.0 if k == 1 else 2.0) for k in range(3)])
    batch = parse([d])
    bars = batch.frames["bars"]
    assert bars.height == 11 and sorted(bars["symbol"].unique().to_list()) == ["BTCUSDT", "ETHUSDT"]
    assert bars.filter(pl.col("symbol") == "BTCUSDT")["ts"][0] == T0
    assert bars.filter(pl.col("symbol") == "BTCUSDT")["open"][0] == 46216.93
    gaps = batch.meta["notes"]["gaps"]
    # BTC: 2022-01-01 00:02 -> 2022-01-02 00:00 (1437 missing), 00:01 -> 00:03 (1), 00:03 -> 00:07 (3)
    assert gaps["count"] == 3 and gaps["missing_bars"] == 1437 + 1 + 3
    assert gaps["first"][1] == {"symbol": "BTCUSDT", "from": "2022-01-02T00:02:00Z", "to": "2022-01-02T00:02:00Z",
                                "missing": 1}
    assert gaps["first"][2] == {"symbol": "BTCUSDT", "from": "2022-01-02T00:04:00Z", "to": "2022-01-02T00:06:00Z",
                                "missing": 3}
    assert batch.meta["notes"]["zero_volume_bars"] == 1


def test_explicit_zip_files_and_bad_archives(tmp_path: Path) -> None:
    z = _zip(tmp_path, "BTCUSDT-1m-2022-01-01", ROWS)
    assert parse([z]).frames["bars"].height == 3
    two = tmp_path / "BTCUSDT-1m-2022-01-02.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", ROWS[0])
        zf.writestr("b.csv", ROWS[1])
    with pytest.raises(DataError, match="exactly one data file") as exc:
        parse([two])
    assert two.name in str(exc.value)
    cut = tmp_path / "BTCUSDT-1m-2022-01-03.zip"
    cut.write_bytes(z.read_bytes()[:60])
    with pytest.raises(DataError, match="truncated or corrupt") as exc:
        parse([cut])
    assert cut.name in str(exc.value)


def test_a_bad_cell_inside_a_grouped_folder_names_its_own_file_and_row(tmp_path: Path) -> None:
    d = tmp_path / "k"
    t0 = T0 // 10**6
    for i in range(4):
        lines = [_kline(t0 + i * 86_400_000 + k * 60_000) for k in range(3)]
        if i == 2:
            lines[1] = lines[1].replace(",100.0,", ",1x0.0,", 1)
        _zip(d, f"BTCUSDT-1m-2022-01-0{i + 1}", lines)
    with pytest.raises(DataError) as exc:
        parse([d])
    msg = str(exc.value)
    assert "BTCUSDT-1m-2022-01-03.zip" in msg and "row 2" in msg and "'open'" in msg and "1x0.0" in msg


def test_streamed_batches_are_bounded_and_equal_the_whole(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-1m-2022-01.csv"
    t0 = T0 // 10**6
    f.write_text("\n".join(_kline(t0 + k * 60_000, 100.0 + k % 7) for k in range(2_500)) + "\n")
    batches = list(iter_batches([f], batch_rows=300))
    sizes = [b.frames["bars"].height for b in batches if "bars" in b.frames]
    assert max(sizes) <= 300 and sum(sizes) == 2_500
    whole = parse([f]).frames["bars"]
    assert pl.concat([b.frames["bars"] for b in batches if "bars" in b.frames]).equals(whole)
    assert batches[-1].meta["notes"]["gaps"]["count"] == 0


def test_out_of_order_across_chunks_names_the_row(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-1m-2022-01.csv"
    t0 = T0 // 10**6
    lines = [_kline(t0 + k * 60_000) for k in range(1_000)]
    lines[700] = _kline(t0)  # repeats the first bar, in a later chunk
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="out of order or repeated") as exc:
        list(iter_batches([f], batch_rows=400))
    assert "row 701" in str(exc.value)


def test_gaps_are_in_the_ingest_report_and_its_json(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from marketlab.cli.main import app

    d = tmp_path / "klines"
    t0 = T0 // 10**6
    _zip(d, "BTCUSDT-1m-2022-01-01", [_kline(t0 + k * 60_000) for k in (0, 1, 4, 5)])  # 00:02-00:03 missing
    rep = Store(tmp_path / "s").ingest("ohlcv", [d], dataset="k")
    assert rep.rows == {"bars": 4}
    assert rep.notes["gaps"] == {"count": 1, "missing_bars": 2, "first": [
        {"symbol": "BTCUSDT", "from": "2022-01-01T00:02:00Z", "to": "2022-01-01T00:03:00Z", "missing": 2}]}
    res = CliRunner().invoke(app, ["ingest", "ohlcv", str(d), "--dataset", "k2", "--store", str(tmp_path / "s"),
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["notes"]["gaps"]["missing_bars"] == 2
