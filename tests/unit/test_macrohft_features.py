"""MacroHFT features: klines-only set (no look-ahead, dropped list) and book features on a real LOBSTER book."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.agents.macrohft.data import read_store_bars
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
from marketlab.store import Store
from marketlab.store.resample import sample_book_by_time
from tests.support.binance import kline_days


MIN = 60 * 10**9


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


def test_kline_features_read_the_taker_volumes_from_the_store(shared_data: Path, tmp_path: Path) -> None:
    """The 2023-03-24 halt day ingested and read back through the store: every bar's taker buys and the
    taker-flow feature equal the values of the archive's CSV parsed independently (csv module)."""
    folder = kline_days(shared_data, tmp_path / "klines", {"BTCUSDT": ["2023-03-24"]})
    store = Store(tmp_path / "store")
    store.ingest("ohlcv", [folder], dataset="k")
    df = read_store_bars(store, "k", "BTCUSDT", "2023-03-24", "2023-03-25")
    assert df.height == 1360  # the halt day: 80 minutes missing
    assert df["ts"][0] == 1679616000000 * 1_000_000
    with zipfile.ZipFile(folder / "BTCUSDT-1m-2023-03-24.zip") as z, z.open(z.namelist()[0]) as fh:
        rows = list(csv.reader(io.TextIOWrapper(fh)))
    vol = np.array([float(r[5]) for r in rows])
    taker = np.array([float(r[9]) for r in rows])  # column 10: taker_buy_base_asset_volume
    np.testing.assert_array_equal(df["taker_buy_volume"].to_numpy(), taker)
    f = kline_features(df)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(vol > 0, (2 * taker - vol) / vol, 0.0)  # 72 flat zero-volume bars before the gap
    np.testing.assert_allclose(f["taker_imbalance"].to_numpy(), want, rtol=1e-12, atol=0)
    assert np.abs(want).max() > 0.5 and (vol == 0).sum() == 72
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


def _naive_book(r: dict[str, float]) -> dict[str, float]:
    """The paper's per-snapshot book features of one row, written out by hand (Table 4)."""
    ap = [r[f"ask_px_{i}"] for i in range(1, 6)]
    asz = [r[f"ask_sz_{i}"] for i in range(1, 6)]
    bp = [r[f"bid_px_{i}"] for i in range(1, 6)]
    bsz = [r[f"bid_sz_{i}"] for i in range(1, 6)]
    wap1 = (asz[0] * bp[0] + bsz[0] * ap[0]) / (asz[0] + bsz[0])
    wap2 = (asz[1] * bp[1] + bsz[1] * ap[1]) / (asz[1] + bsz[1])
    return {
        "volume": sum(asz) + sum(bsz), "bid3_size_n": bsz[2] / sum(bsz), "ask5_size_n": asz[4] / sum(asz),
        "wap_1": wap1, "wap_2": wap2, "wap_balance": abs(wap1 - wap2), "buy_spread": abs(bp[0] - bp[4]),
        "sell_spread": abs(ap[0] - ap[4]), "volume_imbalance": (sum(bsz) - sum(asz)) / (sum(bsz) + sum(asz)),
        "price_spread": 2 * (ap[0] - bp[0]) / (ap[0] + bp[0]),
        "sell_vwap": sum(a * s for a, s in zip(ap, asz, strict=True)) / sum(asz),
        "buy_vwap": sum(b * s for b, s in zip(bp, bsz, strict=True)) / sum(bsz),
    }


def test_book_features_on_lobster_match_a_naive_loop(shared_data: Path) -> None:
    book = _lobster_book(shared_data)
    out = book_features(book, levels=10)
    assert list(out.columns) == ["ts", *BOOK_FEATURES, *BOOK_TREND_FEATURES]
    rows = book.to_dicts()
    for t in (0, 1, 77, 399):
        got = out.row(t, named=True)
        for k, v in _naive_book(rows[t]).items():
            assert got[k] == pytest.approx(v, rel=1e-12), k
        if t > 0:
            assert got["log_return_ask1_price"] == pytest.approx(np.log(rows[t]["ask_px_1"] / rows[t - 1]["ask_px_1"]), abs=1e-15)
    w = out["wap_1"].to_numpy()
    assert out["wap_1_trend_60"][399] == pytest.approx((w[399] - w[340:400].mean()) / w[340:400].std())
    assert np.isnan(out["wap_1_trend_60"][58])


@pytest.mark.slow
@pytest.mark.parametrize("source", ["binance", "lobster"])
def test_book_features_from_the_store_match_a_naive_loop(source: str, shared_data: Path, tmp_path: Path) -> None:
    """The book half of the paper's state from the store: the Binance spot capture (book rebuilt from its REST
    snapshot + diffs) and a LOBSTER day ingested, read back as floats, sampled to the last snapshot of each
    minute (stamped at the minute's end) and featurised; checked against a per-minute pick made here with
    numpy and the hand-written formulas."""
    store = Store(tmp_path / "store")
    if source == "binance":
        store.ingest("binance-raw", [shared_data / "binance_btcusdt_raw_feed_2024-08-08" / "spot_btcusdt_20240808.gz"],
                     dataset="b", levels=5)
        symbol = "BTCUSDT"
    else:
        d = shared_data / "lobster_sample_2012-06-21"
        store.ingest("lobster", [d / "AMZN_2012-06-21_34200000_57600000_message_5.csv.gz",
                                 d / "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz"], dataset="b")
        symbol = "AMZN"
    raw = store.scan_book("b", symbol, as_float=True).collect()
    minute = sample_book_by_time(raw, "1m")
    out = book_features(minute, levels=5)
    ts = raw["ts"].to_numpy()
    end = ts - ts % MIN + MIN  # the minute each snapshot belongs to, by its end
    last = np.r_[np.flatnonzero(np.diff(end)), len(ts) - 1]  # ts sorted: the last snapshot of each minute
    assert out.height == len(last) >= 6  # the capture spans 6 minutes, the LOBSTER day 390
    np.testing.assert_array_equal(out["ts"].to_numpy(), end[last])
    rows = raw.to_dicts()
    for k in (0, 1, len(last) // 2, len(last) - 1):
        got = out.row(k, named=True)
        for name, v in _naive_book(rows[last[k]]).items():
            assert got[name] == pytest.approx(v, rel=1e-12), (k, name)
