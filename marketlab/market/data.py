"""Wide, time-aligned market arrays (:class:`MarketData`) and their conversion to and from long frames.

Everything above this layer (the single env, the batched env, the backtester, the agents) reads one
:class:`MarketData`: a time axis ``ts`` (T,) int64 ns UTC and per-symbol arrays (T, N) float64. Bars are
keyed by their open time; a decision "at step t" is taken at the *close* of bar t and may use every
column of rows <= t.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.metrics import periods_per_year
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S, to_ns

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class MarketData:
    """Wide, time-aligned market arrays.

    Attributes:
        ts: (T,) int64 ns UTC, strictly increasing (bar open time, or midnight UTC for daily panels).
        symbols: N symbol names, column order of every (T, N) array.
        open, high, low, close, volume: (T, N) float64; prices forward/back-filled where a symbol has no
            bar, so they are finite everywhere (``tradable`` says where the data was real).
        tradable: (T, N) bool, True where the symbol had a real, non-suspended bar in the universe.
        extra: name -> (T, N) float64 extra columns (signals aligned with
            :func:`marketlab.market.signals.align_signals`).
        source: where the data came from (dataset name or file), used in error messages.
    """

    ts: np.ndarray
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "memory"

    @property
    def n_steps(self) -> int:
        """T, the number of rows."""
        return int(self.ts.shape[0])

    @property
    def n_assets(self) -> int:
        """N, the number of symbols."""
        return len(self.symbols)

    def index_of(self, when: str | int | None, default: int, *, key: str | None = None) -> int:
        """First row whose ``ts`` >= ``when`` (an ISO date/datetime string or ns int); ``default`` when None."""
        if when is None:
            return default
        return int(np.searchsorted(self.ts, to_ns(when, key=key), side="left"))

    def slice_rows(self, lo: int, hi: int) -> MarketData:
        """Rows ``lo:hi`` (a view; arrays are not copied)."""
        return replace(
            self,
            ts=self.ts[lo:hi],
            open=self.open[lo:hi],
            high=self.high[lo:hi],
            low=self.low[lo:hi],
            close=self.close[lo:hi],
            volume=self.volume[lo:hi],
            tradable=self.tradable[lo:hi],
            extra={k: v[lo:hi] for k, v in self.extra.items()},
        )

    def with_extra(self, extra: dict[str, np.ndarray]) -> MarketData:
        """A copy with ``extra`` (name -> (T, N)) columns added."""
        return replace(self, extra={**self.extra, **extra})

    def bar_seconds(self) -> float:
        """Median spacing of ``ts`` in seconds (1 day for daily panels)."""
        if self.n_steps < 2:
            return 86_400.0
        return float(np.median(np.diff(self.ts))) / NS_PER_S

    def periods_per_year(self) -> float:
        """Bars per year for annualising, inferred from the calendar of ``ts``
        (:func:`marketlab.core.metrics.periods_per_year`: 252 trading days, 365 for 24/7 markets)."""
        return periods_per_year(self.ts)


def market_from_frame(frame: pl.DataFrame | pl.LazyFrame, *, source: str = "memory") -> MarketData:
    """Pivot a long bars frame (``ts``, ``symbol``, OHLCV) or panel frame (``date``, ...) to :class:`MarketData`.

    Panel frames are adjusted with ``adj_factor`` when present, and ``in_universe``/``suspended`` feed
    ``tradable``. Raises :class:`DataError` naming ``source`` for missing columns or an empty selection.
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    cols = set(frame.columns)
    if "ts" in cols:
        tcol = "ts"
    elif "date" in cols:
        tcol = "date"
    else:
        raise DataError(source, "no time column (expected 'ts' or 'date')", field="ts")
    for c in ("symbol", "close"):
        if c not in cols:
            raise DataError(source, "missing column", field=c)
    if frame.height == 0:
        raise DataError(source, "no rows in the selected period")
    exprs = [pl.col(c).cast(pl.Float64) for c in OHLCV if c in cols]
    if tcol == "date":
        tsexpr = (pl.col("date").cast(pl.Date).cast(pl.Int64) * NS_PER_DAY).alias("ts")
    else:
        tsexpr = pl.col("ts").cast(pl.Int64)
    ok = pl.lit(True)
    if "in_universe" in cols:
        ok = ok & pl.col("in_universe").fill_null(True)
    if "suspended" in cols:
        ok = ok & ~pl.col("suspended").fill_null(False)
    df = frame.select(tsexpr, pl.col("symbol").cast(pl.String), *exprs, ok.alias("_ok"))
    if "adj_factor" in cols:
        adj = frame["adj_factor"].cast(pl.Float64).fill_null(1.0)
        df = df.with_columns([(pl.col(c) * adj).alias(c) for c in ("open", "high", "low", "close") if c in cols])
    df = df.filter(pl.col("close").is_not_null() & pl.col("close").is_finite() & (pl.col("close") > 0))
    if df.height == 0:
        raise DataError(source, "no valid closes in the selected period", field="close")
    dup = df.select(pl.struct("ts", "symbol").is_duplicated().any()).item()
    if dup:
        raise DataError(source, "duplicate (time, symbol) rows", field="ts")
    ts = np.unique(df["ts"].to_numpy())
    symbols = tuple(sorted(df["symbol"].unique().to_list()))
    ti = np.searchsorted(ts, df["ts"].to_numpy())
    si = np.searchsorted(np.array(symbols, dtype=object), df["symbol"].to_numpy().astype(object))
    shape = (ts.shape[0], len(symbols))

    def wide(name: str) -> np.ndarray:
        out = np.full(shape, np.nan)
        if name in df.columns:
            out[ti, si] = df[name].fill_null(np.nan).to_numpy()
        return out

    close = _fill(wide("close"))
    opn = _fill_from(wide("open"), close)
    high = np.fmax(_fill_from(wide("high"), close), np.maximum(opn, close))
    low = np.fmin(_fill_from(wide("low"), close), np.minimum(opn, close))
    vol = wide("volume")
    vol = np.where(np.isfinite(vol), vol, 0.0)
    tradable = np.zeros(shape, dtype=bool)
    tradable[ti, si] = df["_ok"].to_numpy()
    return MarketData(ts, symbols, opn, high, low, close, vol, tradable, {}, source)


def _fill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along time, then back-fill the leading ones (a symbol before its first bar)."""
    out = a.copy()
    t = out.shape[0]
    idx = np.where(np.isfinite(out), np.arange(t)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(out, idx, axis=0)
    first = np.argmax(np.isfinite(out), axis=0)
    for j in range(out.shape[1]):  # leading gap: a symbol listed later keeps its first price
        out[: first[j], j] = out[first[j], j]
    return out


def _fill_from(a: np.ndarray, close: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, close)


def market_to_frame(market: MarketData) -> pl.DataFrame:
    """Inverse of :func:`market_from_frame` for bars: a long frame in BARS_SCHEMA column order
    (``vwap`` and ``trades`` are null: the arrays do not carry them)."""
    t, n = market.close.shape
    return pl.DataFrame(
        {
            "ts": np.repeat(market.ts, n),
            "symbol": np.tile(np.array(market.symbols, dtype=object), t).astype(str),
            **{c: getattr(market, c).reshape(-1) for c in OHLCV},
        }
    ).with_columns(pl.lit(None, dtype=pl.Float64).alias("vwap"), pl.lit(None, dtype=pl.Int64).alias("trades"))


def synthetic_market(
    n_steps: int = 1_000,
    n_assets: int = 1,
    *,
    seed: int = 0,
    bar_seconds: int = 60,
    start: str = "2024-01-01",
    vol: float = 0.001,
    drift: float = 0.0,
) -> MarketData:
    """Geometric-Brownian-motion OHLCV bars for tests and benchmarks (not a market model).

    Shapes: (n_steps, n_assets). ``vol`` and ``drift`` are per bar, log-price units.
    """
    rng = np.random.default_rng(seed)
    rets = drift + vol * rng.standard_normal((n_steps, n_assets))
    close = 100.0 * np.exp(np.cumsum(rets, axis=0))
    opn = np.vstack([np.full((1, n_assets), 100.0), close[:-1]]) * np.exp(0.2 * vol * rng.standard_normal((n_steps, n_assets)))
    wick = np.abs(vol * rng.standard_normal((2, n_steps, n_assets)))
    high = np.maximum(opn, close) * np.exp(wick[0])
    low = np.minimum(opn, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 0.5, (n_steps, n_assets))
    ts = to_ns(start) + np.arange(n_steps, dtype=np.int64) * bar_seconds * NS_PER_S
    symbols = tuple(f"S{j:03d}" for j in range(n_assets))
    return MarketData(ts, symbols, opn, high, low, close, volume, np.ones((n_steps, n_assets), bool), {}, "synthetic")
