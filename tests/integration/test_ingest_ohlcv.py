"""Known answers of the real OHLCV datasets (sp500_5yr, binance 1m klines, US index daily)."""

from __future__ import annotations

import polars as pl
import pytest

from marketlab.store import Store

pytestmark = pytest.mark.integration


def test_sp500_5yr_panel_known_answer(shared_data, tmp_path) -> None:
    store = Store(tmp_path / "s")
    rep = store.ingest("ohlcv", [shared_data / "sp500_5yr" / "all_stocks_5yr.csv.gz"])
    assert rep.dataset == "sp500_5yr" and rep.rows == {"panel": 619_040}
    counts = store.sql("select count(*) as n, count(distinct symbol) as s, count(distinct date) as d "
                       "from panel_sp500_5yr")
    assert counts.row(0) == (619_040, 505, 1_259)
    aapl = store.scan_panel("sp500_5yr", "AAPL", "2013-02-08", "2013-02-09").collect()
    assert aapl["close"].to_list() == [pytest.approx(67.8542)]  # split-adjusted (SOURCE.md)
    assert store.scan_panel("sp500_5yr").select(pl.col("open").is_null().sum()).collect().item() == 11
    again = store.ingest("ohlcv", [shared_data / "sp500_5yr" / "all_stocks_5yr.csv.gz"])
    assert again.skipped


def test_binance_klines_bars(shared_data, tmp_path) -> None:
    store = Store(tmp_path / "s")
    rep = store.ingest("ohlcv", [shared_data / "binance_spot_1m_btc_eth_2024_01"])
    assert rep.rows == {"bars": 2 * 44_641} and rep.symbols == ["BTCUSDT", "ETHUSDT"]
    btc = store.scan_bars("binance_spot_1m_btc_eth_2024_01", "BTCUSDT").collect()
    assert btc.height == 44_641 and btc["ts"].diff().drop_nulls().unique().to_list() == [60 * 10**9]
    assert btc["open"][0] == 42283.58
    # One day = 1440 bars, from the day partition alone.
    files = store.files("bars", "binance_spot_1m_btc_eth_2024_01", "ETHUSDT", "2024-01-10", "2024-01-11")
    assert len(files) == 1
    assert store.scan_bars("binance_spot_1m_btc_eth_2024_01", "ETHUSDT", "2024-01-10", "2024-01-11").collect().height == 1440


def test_us_index_daily(shared_data, tmp_path) -> None:
    store = Store(tmp_path / "s")
    store.ingest("ohlcv", [shared_data / "us_index_daily"])
    win = store.scan_panel("us_index_daily", None, "2013-02-08", "2018-02-08").collect()
    per = win.group_by("symbol").len().sort("symbol")
    assert per.rows() == [("GSPC", 1259), ("SPY", 1259)]
    g = win.filter(pl.col("symbol") == "GSPC")
    assert g["high"].null_count() == g.height  # no high/low in the file: never invented
    assert g.filter(pl.col("date") == pl.date(2018, 2, 7))["close"].item() == pytest.approx(2681.66)
    spy = win.filter(pl.col("symbol") == "SPY").sort("date")
    assert spy["date"].is_sorted() and (spy["adj_factor"] <= 1.0 + 1e-9).all()
