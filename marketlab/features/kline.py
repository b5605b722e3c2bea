"""MacroHFT's minute features (Zong et al., KDD 2024, Appendix A Table 4), from klines and from books.

The paper's state is 36 single-state features ``s1`` plus 9 low-level context features ``s2``
(``{x}_trend_60``), all computed once per minute from a 5-level L2 book snapshot and the minute's trades.
Two builders live here; both are causal (row t reads rows <= t only) and take/return Polars frames
with one row per minute and a ``ts`` column (bar open, int64 ns UTC):

* :func:`kline_features` needs only OHLCV + taker-buy volume (what Binance kline archives hold). It keeps
  the 9 candle-shape features of ``s1`` and adds kline substitutes for the book columns that drop;
  :data:`DROPPED_WITHOUT_BOOK` lists every paper feature it cannot compute and why.
* :func:`book_features` computes the 27 book features of ``s1`` and the 9 ``s2`` trends from 5-level
  snapshot columns ``ask_px_i, ask_sz_i, bid_px_i, bid_sz_i`` (the store's book schema), e.g. the
  Binance capture or LOBSTER books resampled to the minute.

Nothing here is normalised: scaling statistics are fitted on the training split by the caller
(:mod:`marketlab.agents.macrohft.splits`), never on the rows being scaled.
"""

from __future__ import annotations

import polars as pl

TREND_WINDOW = 60  # minutes, the paper's h for s2 (section 3.2)

#: The 9 candle-shape features of s1 that klines give exactly (paper Table 4, unnormalised as in the code).
CANDLE_FEATURES: tuple[str, ...] = ("kmid", "kmid2", "klen", "kup", "kup2", "klow", "klow2", "ksft", "ksft2")

#: The paper's 36 s1 features computed from the 5-level book (27) - candle features excluded.
BOOK_FEATURES: tuple[str, ...] = (
    "volume",  # book depth sum over both sides and 5 levels, NOT trade volume
    *(f"bid{i}_size_n" for i in range(1, 6)),
    *(f"ask{i}_size_n" for i in range(1, 6)),
    "wap_1", "wap_2", "wap_balance", "buy_spread", "sell_spread", "buy_volume", "sell_volume",
    "volume_imbalance", "price_spread", "sell_vwap", "buy_vwap",
    "log_return_bid1_price", "log_return_bid2_price", "log_return_ask1_price", "log_return_ask2_price",
    "log_return_wap_1",
)

#: The paper's 9 s2 features (60-minute z-scores of book quantities).
BOOK_TREND_FEATURES: tuple[str, ...] = tuple(
    f"{x}_trend_60" for x in ("ask1_price", "bid1_price", "buy_spread", "sell_spread", "wap_1", "wap_2",
                              "buy_vwap", "sell_vwap", "volume")
)

#: Every paper feature the klines-only variant cannot compute, with the reason. 27 of s1 + all 9 of s2.
DROPPED_WITHOUT_BOOK: dict[str, str] = {
    **{name: "needs the 5-level book (sizes/prices per level), absent from klines" for name in BOOK_FEATURES},
    "volume": "paper's 'volume' is 5-level book depth, not traded volume (klines give traded volume only)",
    **{name: "60-minute z-score of a book quantity, absent from klines" for name in BOOK_TREND_FEATURES},
}

#: Kline substitutes added in place of dropped book features (not in the paper; documented as such).
KLINE_EXTRA_FEATURES: tuple[str, ...] = (
    "log_return_close",  # stands in for log_return_wap_1 / bid/ask returns
    "log_volume",  # log(1 + traded base volume)
    "taker_imbalance",  # (taker_buy - taker_sell) / volume, a trade-flow analogue of volume_imbalance
    "vwap_gap",  # (vwap - close) / close, where the minute traded relative to its close
)
KLINE_TREND_FEATURES: tuple[str, ...] = tuple(
    f"{x}_trend_60" for x in ("close", "vwap", "log_volume", "taker_imbalance", "klen")
)

#: The klines-only s1 and s2 column lists, in order.
KLINE_SINGLE: tuple[str, ...] = CANDLE_FEATURES + KLINE_EXTRA_FEATURES
KLINE_TREND: tuple[str, ...] = KLINE_TREND_FEATURES


def trend_z(expr: pl.Expr, window: int = TREND_WINDOW) -> pl.Expr:
    """(y - mean_w(y)) / std_w(y) over the trailing ``window`` rows including the current one (causal).

    NaN for the first ``window - 1`` rows; 0 where the window is flat (std 0, e.g. a halted market).
    """
    mean = expr.rolling_mean(window)
    std = expr.rolling_std(window, ddof=0)
    return pl.when(std > 0).then((expr - mean) / std).otherwise(pl.when(std.is_null()).then(None).otherwise(0.0))


def candle_features(frame: pl.DataFrame) -> pl.DataFrame:
    """The 9 candle features from ``open, high, low, close`` (one row per minute, same order).

    ``*2`` forms divide by the range h - l and are 0 where the bar has no range (flat bars).
    """
    o, h, lo, c = pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    rng = h - lo
    max_oc = pl.max_horizontal(o, c)
    min_oc = pl.min_horizontal(o, c)

    def ratio(x: pl.Expr) -> pl.Expr:
        return pl.when(rng > 0).then(x / rng).otherwise(0.0)

    return frame.select(
        (c - o).alias("kmid"), ratio(c - o).alias("kmid2"), rng.alias("klen"),
        (h - max_oc).alias("kup"), ratio(h - max_oc).alias("kup2"),
        (min_oc - lo).alias("klow"), ratio(min_oc - lo).alias("klow2"),
        (2 * c - h - lo).alias("ksft"), ratio(2 * c - h - lo).alias("ksft2"),
    )


def kline_features(frame: pl.DataFrame, *, window: int = TREND_WINDOW) -> pl.DataFrame:
    """Klines-only MacroHFT features for ONE symbol's minutes, sorted by ``ts``.

    Input columns: ``ts, open, high, low, close, volume`` and optionally ``taker_buy_volume`` (base units
    bought by takers) and ``vwap``; without them ``taker_imbalance`` is 0 and ``vwap`` falls back to
    the bar's typical price (h + l + c) / 3. Output: ``ts``, :data:`KLINE_SINGLE`, :data:`KLINE_TREND`
    (float64). The first ``window - 1`` rows of the trends and the first ``log_return_close`` are NaN.
    """
    cols = set(frame.columns)
    vol = pl.col("volume")
    taker = pl.col("taker_buy_volume") if "taker_buy_volume" in cols else None
    vwap = (pl.when(pl.col("vwap").is_not_null() & pl.col("vwap").is_finite()).then(pl.col("vwap"))
            .otherwise((pl.col("high") + pl.col("low") + pl.col("close")) / 3)) if "vwap" in cols else (
        (pl.col("high") + pl.col("low") + pl.col("close")) / 3)
    imb = pl.when(vol > 0).then((2 * taker - vol) / vol).otherwise(0.0) if taker is not None else pl.lit(0.0)
    base = frame.select(
        pl.col("ts"), pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close"),
        (pl.col("close") / pl.col("close").shift(1)).log().alias("log_return_close"),
        (vol + 1.0).log().alias("log_volume"),
        imb.alias("taker_imbalance"),
        vwap.alias("vwap"),
    ).with_columns(((pl.col("vwap") - pl.col("close")) / pl.col("close")).alias("vwap_gap"))
    candles = candle_features(base)
    base = pl.concat([base, candles], how="horizontal")
    trends = base.select(
        *(trend_z(pl.col(x), window).alias(f"{x}_trend_60") for x in ("close", "vwap", "log_volume",
                                                                        "taker_imbalance", "klen"))
    )
    out = pl.concat([base.select("ts", *KLINE_SINGLE), trends], how="horizontal")
    return out.with_columns(pl.exclude("ts").cast(pl.Float64).fill_nan(None).fill_null(float("nan")))


def book_features(book: pl.DataFrame, *, levels: int = 5, window: int = TREND_WINDOW) -> pl.DataFrame:
    """The paper's 27 book features of s1 + its 9 s2 trends from one snapshot per row.

    Input: ``ts`` and ``ask_px_i, ask_sz_i, bid_px_i, bid_sz_i`` for i = 1..``levels`` (>= 5; only the
    first 5 are read), prices in any consistent unit. Output: ``ts``, :data:`BOOK_FEATURES`,
    :data:`BOOK_TREND_FEATURES` (float64). Formulas follow Table 4 / EarnHFT ``create_feature.py``;
    ``wap_balance`` is |wap_1 - wap_2| as in the paper.
    """
    if levels < 5:
        raise ValueError(f"book_features needs 5 book levels, got {levels}")

    def px(side: str, i: int) -> pl.Expr:
        return pl.col(f"{side}_px_{i}").cast(pl.Float64)

    def sz(side: str, i: int) -> pl.Expr:
        return pl.col(f"{side}_sz_{i}").cast(pl.Float64)

    buy_vol = pl.sum_horizontal(*(sz("bid", i) for i in range(1, 6)))
    sell_vol = pl.sum_horizontal(*(sz("ask", i) for i in range(1, 6)))

    def wap(i: int) -> pl.Expr:
        return (sz("ask", i) * px("bid", i) + sz("bid", i) * px("ask", i)) / (sz("ask", i) + sz("bid", i))

    def logret(x: pl.Expr) -> pl.Expr:
        return (x / x.shift(1)).log()

    out = book.select(
        pl.col("ts"),
        (buy_vol + sell_vol).alias("volume"),
        *((sz("bid", i) / buy_vol).alias(f"bid{i}_size_n") for i in range(1, 6)),
        *((sz("ask", i) / sell_vol).alias(f"ask{i}_size_n") for i in range(1, 6)),
        wap(1).alias("wap_1"), wap(2).alias("wap_2"), (wap(1) - wap(2)).abs().alias("wap_balance"),
        (px("bid", 1) - px("bid", 5)).abs().alias("buy_spread"),
        (px("ask", 1) - px("ask", 5)).abs().alias("sell_spread"),
        buy_vol.alias("buy_volume"), sell_vol.alias("sell_volume"),
        ((buy_vol - sell_vol) / (buy_vol + sell_vol)).alias("volume_imbalance"),
        (2 * (px("ask", 1) - px("bid", 1)) / (px("ask", 1) + px("bid", 1))).alias("price_spread"),
        pl.sum_horizontal(*(sz("ask", i) / sell_vol * px("ask", i) for i in range(1, 6))).alias("sell_vwap"),
        pl.sum_horizontal(*(sz("bid", i) / buy_vol * px("bid", i) for i in range(1, 6))).alias("buy_vwap"),
        logret(px("bid", 1)).alias("log_return_bid1_price"), logret(px("bid", 2)).alias("log_return_bid2_price"),
        logret(px("ask", 1)).alias("log_return_ask1_price"), logret(px("ask", 2)).alias("log_return_ask2_price"),
        logret(wap(1)).alias("log_return_wap_1"),
        px("ask", 1).alias("_ask1"), px("bid", 1).alias("_bid1"),
    )
    trend_src = {"ask1_price": "_ask1", "bid1_price": "_bid1", "buy_spread": "buy_spread", "sell_spread": "sell_spread",
                 "wap_1": "wap_1", "wap_2": "wap_2", "buy_vwap": "buy_vwap", "sell_vwap": "sell_vwap", "volume": "volume"}
    out = out.with_columns(*(trend_z(pl.col(src), window).alias(f"{name}_trend_60") for name, src in trend_src.items()))
    out = out.select("ts", *BOOK_FEATURES, *BOOK_TREND_FEATURES)
    return out.with_columns(pl.exclude("ts").cast(pl.Float64).fill_nan(None).fill_null(float("nan")))
