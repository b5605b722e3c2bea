"""The real Binance 1-minute kline archives, 2022-2023, BTCUSDT + ETHUSDT (1,460 daily zips): known answers
from the dataset's SOURCE.md, including the 2023-03-24 halt (72 flat zero-volume bars, then 80 missing minutes)."""

from __future__ import annotations

import polars as pl
import pytest

from marketlab.store.ingest.ohlcv import iter_batches

pytestmark = pytest.mark.integration
DIR = "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"


def test_two_years_of_daily_zips_parse_with_the_halt_reported(shared_data) -> None:
    folder = shared_data / DIR
    if not folder.is_dir():
        pytest.skip(f"{DIR} not staged")
    batches = list(iter_batches([folder], batch_rows=400_000))
    bars = pl.concat([b.frames["bars"] for b in batches if "bars" in b.frames])
    assert max(b.frames["bars"].height for b in batches if "bars" in b.frames) <= 400_000
    counts = dict(bars.group_by("symbol").len().iter_rows())
    assert counts == {"BTCUSDT": 1_051_120, "ETHUSDT": 1_051_120}  # 730 x 1440 - 80
    btc = bars.filter(pl.col("symbol") == "BTCUSDT")
    assert btc["ts"][0] == 1_640_995_200 * 10**9 and btc["open"][0] == 46216.93  # 2022-01-01 00:00 UTC
    assert btc["ts"][-1] == (1_704_067_140) * 10**9  # 2023-12-31 23:59 UTC
    assert btc["open"].min() > 15_000 and btc["close"].max() < 48_200  # SOURCE.md: 15,476.00 - 48,189.84
    # taker buys on every bar (SOURCE.md: taker_buy_base <= volume on all rows; the ingest refuses otherwise)
    assert bars["taker_buy_volume"].null_count() == 0 and bars["taker_buy_quote_volume"].null_count() == 0
    assert btc["taker_buy_volume"][0] == 27.26086 and btc["taker_buy_quote_volume"][0] == 1260270.3720627
    notes = batches[-1].meta["notes"]
    halt = {"from": "2023-03-24T12:40:00Z", "to": "2023-03-24T13:59:00Z", "missing": 80}
    assert notes["gaps"]["count"] == 2 and notes["gaps"]["missing_bars"] == 160
    assert notes["gaps"]["first"] == [{"symbol": "BTCUSDT", **halt}, {"symbol": "ETHUSDT", **halt}]
    assert notes["zero_volume_bars"] == 2 * 72
