"""The numba fast path reads the real Binance captures exactly as the generic json path does."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.store.ingest.binance_raw import read_capture

pytestmark = pytest.mark.integration
DIR = "binance_btcusdt_raw_feed_2024-08-08"


@pytest.mark.parametrize("names", [["usdm_btcusdt_20240808.gz"], ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]])
def test_fast_equals_generic_on_real_captures(shared_data, names: list[str]) -> None:
    files = [shared_data / DIR / n for n in names]
    if not all(f.exists() for f in files):
        pytest.skip("capture not staged")
    fast, slow = read_capture(files), read_capture(files, fast=False)
    for k in ("updates", "group_ts", "group_u", "trades", "tickers"):
        assert np.array_equal(getattr(fast, k), getattr(slow, k)), k
    for k in ("symbol", "market", "tick_size", "lot_size", "last_update_id", "skipped_diffs"):
        assert getattr(fast, k) == getattr(slow, k), k
    if names[0].startswith("usdm"):  # SOURCE.md: 21,313 trades, 66,089 bookTickers; hftbacktest: 491,973 rows
        assert fast.trades.shape[0] == 21_313 and fast.tickers.shape[0] == 66_089
        assert fast.last_update_id == 5_123_107_852_948
