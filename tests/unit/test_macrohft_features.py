"""MacroHFT features: klines-only set (no look-ahead, dropped list) and book features on a real LOBSTER book."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.agents.macrohft.data import read_kline_archives
from marketlab.features.kline import (
    BOOK_FEATURES,
    BOOK_TREND_FEATURES,
    CANDLE_FEATURES,
    DROPPED_WITHOUT_BOOK,
    KLINE_SINGLE,
    KLINE_TREND,
    book_features,
    kline_features,
)

KLINES = "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"


def _bars(n: int = 300, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    vol = rng.uniform(1, 10, n)
    return pl.DataFrame({"ts": np.arange(n, dtype=np.int64) * 60_000_000_000, "open": open_, "high": high, "low": low,
                         "close": close, "volume": vol, "taker_buy_volume": vol * rng.uniform(0, 1, n),
                         "vwap": (high + low) / 2})


def test_paper_feature_accounting() -> None:
    """36 + 9 paper features: 9 candles kept, the other 27 s1 and all 9 s2 documented as dropped."""
    assert len(CANDLE_FEATURES) + len(BOOK_FEATURES) == 36 and len(BOOK_TREND_FEATURES) == 9
    assert set(DROPPED_WITHOUT_BOOK) == set(BOOK_FEATURES) | set(BOOK_TREND_FEATURES)
    assert not set(DROPPED_WITHOUT_BOOK) & set(KLINE_SINGLE)


def test_kline_candles_by_hand() -> None:
    f = pl.DataFrame({"ts": [0, 60_000_000_000], "open": [10.0, 10.0], "high": [12.0, 10.0], "low": [9.0, 10.0],
                      "close": [11.0, 10.0], "volume": [4.0, 0.0], "taker_buy_volume": [3.0, 0.0]})
    out = kline_features(f)
    row = out.row(0, named=True)
    assert (row["kmid"], row["klen"], row["kup"], row["klow"], row["ksft"]) == (1.0, 3.0, 1.0, 1.0, 1.0)
    assert row["kmid2"] == pytest.approx(1 / 3) and row["taker_imbalance"] == pytest.approx(0.5)
    flat = out.row(1, named=True)  # a halted bar: no range, no volume -> zeros, not NaN
    assert flat["kmid2"] == 0.0 and flat["taker_imbalance"] == 0.0
    assert list(out.columns) == ["ts", *KLINE_SINGLE, *KLINE_TREND]


def test_kline_features_read_only_the_past() -> None:
    """Perturbing rows >= 200 leaves every feature of rows < 200 bit-identical."""
    a = _bars()
    rng = np.random.default_rng(9)
    b = a.with_columns(pl.when(pl.int_range(pl.len()) >= 200).then(pl.col(c) * pl.lit(rng.uniform(0.5, 2, a.height)))
                       .otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close", "volume", "vwap"))
    fa, fb = kline_features(a).to_numpy(), kline_features(b).to_numpy()
    np.testing.assert_array_equal(fa[:200], fb[:200])
    assert not np.allclose(fa[200:, 1:], fb[200:, 1:], equal_nan=True)
    trend = kline_features(a).select(KLINE_TREND).to_numpy()
    assert np.isnan(trend[:59]).all() and np.isfinite(trend[59:]).all()


def test_kline_features_on_real_binance_archives(shared_data: Path) -> None:
    df = read_kline_archives(shared_data / KLINES, "BTCUSDT", "2023-03-24", "2023-03-25")
    assert df.height == 1360  # the halt day: 80 minutes missing
    assert df["ts"][0] == 1679616000000 * 1_000_000
    f = kline_features(df)
    assert np.isfinite(f.select(KLINE_SINGLE).to_numpy()[1:]).all()


def _lobster_book(shared_data: Path, rows: int = 400) -> pl.DataFrame:
    path = shared_data / "lobster_sample_2012-06-21" / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"
    with gzip.open(path, "rt") as fh:
        lines = [next(fh) for _ in range(rows)]
    raw = np.array([[float(x) for x in ln.split(",")] for ln in lines])
    cols = {"ts": np.arange(rows, dtype=np.int64)}
    for i in range(10):  # LOBSTER: ask px, ask size, bid px, bid size per level
        cols[f"ask_px_{i + 1}"], cols[f"ask_sz_{i + 1}"] = raw[:, 4 * i] / 1e4, raw[:, 4 * i + 1]
        cols[f"bid_px_{i + 1}"], cols[f"bid_sz_{i + 1}"] = raw[:, 4 * i + 2] / 1e4, raw[:, 4 * i + 3]
    return pl.DataFrame(cols)


def test_book_features_on_lobster_match_a_naive_loop(shared_data: Path) -> None:
    book = _lobster_book(shared_data)
    out = book_features(book, levels=10)
    assert list(out.columns) == ["ts", *BOOK_FEATURES, *BOOK_TREND_FEATURES]
    rows = book.to_dicts()
    for t in (0, 1, 77, 399):
        r = rows[t]
        ap = [r[f"ask_px_{i}"] for i in range(1, 6)]
        asz = [r[f"ask_sz_{i}"] for i in range(1, 6)]
        bp = [r[f"bid_px_{i}"] for i in range(1, 6)]
        bsz = [r[f"bid_sz_{i}"] for i in range(1, 6)]
        wap1 = (asz[0] * bp[0] + bsz[0] * ap[0]) / (asz[0] + bsz[0])
        wap2 = (asz[1] * bp[1] + bsz[1] * ap[1]) / (asz[1] + bsz[1])
        got = out.row(t, named=True)
        want = {
            "volume": sum(asz) + sum(bsz), "bid3_size_n": bsz[2] / sum(bsz), "ask5_size_n": asz[4] / sum(asz),
            "wap_1": wap1, "wap_2": wap2, "wap_balance": abs(wap1 - wap2), "buy_spread": abs(bp[0] - bp[4]),
            "sell_spread": abs(ap[0] - ap[4]), "volume_imbalance": (sum(bsz) - sum(asz)) / (sum(bsz) + sum(asz)),
            "price_spread": 2 * (ap[0] - bp[0]) / (ap[0] + bp[0]),
            "sell_vwap": sum(a * s for a, s in zip(ap, asz, strict=True)) / sum(asz),
            "buy_vwap": sum(b * s for b, s in zip(bp, bsz, strict=True)) / sum(bsz),
        }
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-12), k
        if t > 0:
            assert got["log_return_ask1_price"] == pytest.approx(np.log(ap[0] / rows[t - 1]["ask_px_1"]), abs=1e-15)
    w = out["wap_1"].to_numpy()
    assert out["wap_1_trend_60"][399] == pytest.approx((w[399] - w[340:400].mean()) / w[340:400].std())
    assert np.isnan(out["wap_1_trend_60"][58])
