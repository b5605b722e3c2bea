"""Binance spot/futures captures: rebuild from REST snapshot + diffs, check against bookTicker."""

from __future__ import annotations

import pytest

from marketlab.core.errors import DataError
from marketlab.store.ingest.binance_raw import frames, read_capture, verify_capture

pytestmark = pytest.mark.integration
DIR = "binance_btcusdt_raw_feed_2024-08-08"


def test_spot_capture_rebuild_agrees_with_book_ticker(shared_data):
    cap = read_capture(shared_data / DIR / "spot_btcusdt_20240808.gz")
    rep = verify_capture(cap)
    assert rep["symbol"] == "BTCUSDT" and rep["market"] == "spot" and rep["snapshot_update_id"] == 50093239218
    assert rep["diffs_applied"] > 3000 and rep["crossed_books"] == 0
    # where the ticker's update id is the last id of a diff, the rebuilt best bid/ask must agree exactly
    assert rep["tickers_exact"] > 100 and rep["agreement_rate_exact"] == 1.0
    fr = frames(cap, levels=5)
    assert fr["book"].height == rep["diffs_applied"] + 1 and fr["trades"].height == 9_757
    assert fr["book"]["ts"].is_sorted()


def test_continuation_file_needs_the_snapshot_file(shared_data):
    with pytest.raises(DataError, match="no REST depth snapshot"):
        read_capture(shared_data / DIR / "spot_btcusdt_20240809.gz")


def test_store_ingest_binance(shared_data, tmp_store):
    rep = tmp_store.ingest("binance-raw", [shared_data / DIR / "spot_btcusdt_20240808.gz"], dataset="btc_spot", levels=5)
    assert rep.rows["trades"] == 9_757 and rep.rows["book"] > 3000
    inst = tmp_store.instrument("btc_spot", "BTCUSDT")
    assert inst.tick_size == 0.01
