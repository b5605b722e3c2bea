"""Stored signals (predictor probabilities, alpha values) aligned to a market's time grid, backwards only."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_DAY
from marketlab.market.data import MarketData


def _time_ns(col: pl.Series) -> np.ndarray:
    """A ``ts`` (int ns / datetime) or ``date`` column -> int64 ns UTC."""
    if col.dtype == pl.Date:
        return (col.cast(pl.Int64) * NS_PER_DAY).to_numpy()
    return col.cast(pl.Int64).to_numpy()


def align_signals(
    market: MarketData,
    signals: pl.DataFrame | pl.LazyFrame,
    columns: list[str] | None = None,
    *,
    source: str = "signals",
    prefix: str = "",
) -> dict[str, np.ndarray]:
    """Align a long signals frame (``ts``/``date``, ``symbol``, value columns) to the market grid.

    Each bar t gets, per symbol, the latest signal row with time <= ``ts[t]`` (backward as-of join),
    so a signal can never reach a bar before its time. A row that names the bar it trades
    (``bar_ts``) but was computed after it (``ts > bar_ts``) is look-ahead: :class:`DataError` naming
    the source, row and field. Returns name -> (T, N) float64 (NaN before a symbol's first signal).
    """
    if isinstance(signals, pl.LazyFrame):
        signals = signals.collect()
    cols = signals.columns
    tcol = "ts" if "ts" in cols else ("date" if "date" in cols else None)
    if tcol is None:
        raise DataError(source, "no time column (expected 'ts' or 'date')", field="ts")
    if "symbol" not in cols:
        raise DataError(source, "missing column", field="symbol")
    tsig = _time_ns(signals[tcol].cast(pl.Date) if tcol == "date" else signals[tcol])
    if "bar_ts" in cols:
        bar_ns = _time_ns(signals["bar_ts"])
        bad = np.nonzero(tsig > bar_ns)[0]
        if bad.size:
            r = int(bad[0])
            raise DataError(
                source,
                f"look-ahead: signal computed at ts={tsig[r]} after the bar it trades (bar_ts={bar_ns[r]})",
                row=r,
                field="ts",
            )
    skip = {tcol, "symbol", "bar_ts"}
    if columns is None or len(columns) == 0:
        columns = [c for c in cols if c not in skip and signals[c].dtype.is_numeric()]
    for c in columns:
        if c not in cols:
            raise DataError(source, "missing signal column", field=c)
    sym_index = {s: j for j, s in enumerate(market.symbols)}
    out = {prefix + c: np.full((market.n_steps, market.n_assets), np.nan) for c in columns}
    syms = signals["symbol"].to_numpy()
    order = np.lexsort((tsig, syms))
    for sym in np.unique(syms):
        j = sym_index.get(sym)
        if j is None:
            continue
        rows = order[syms[order] == sym]
        t_rows = tsig[rows]
        # For each bar: index of the last signal with time <= bar time (-1 = none yet).
        pos = np.searchsorted(t_rows, market.ts, side="right") - 1
        have = pos >= 0
        for c in columns:
            vals = signals[c].cast(pl.Float64).fill_null(np.nan).to_numpy()[rows]
            out[prefix + c][have, j] = vals[pos[have]]
    return out


def clip_signals(frame: Any, market: MarketData) -> Any:
    """Drop signal rows the backward as-of alignment can never use: rows after the last bar, and all but
    the latest row per symbol before the first bar. Exact (same aligned values), and it keeps the
    per-symbol alignment cost proportional to the market's period rather than the whole history."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    cols = frame.columns
    if "symbol" not in cols or ("ts" not in cols and "date" not in cols) or "bar_ts" in cols or frame.height == 0:
        return frame  # align_signals reports what is missing; look-ahead checks see every row
    t = pl.col("date").cast(pl.Date).cast(pl.Int64) * NS_PER_DAY if "ts" not in cols else pl.col("ts").cast(pl.Int64)
    lo, hi = int(market.ts[0]), int(market.ts[-1])
    tagged = frame.with_columns(t.alias("_t")).filter(pl.col("_t") <= hi)
    inside = tagged.filter(pl.col("_t") >= lo)
    before = tagged.filter(pl.col("_t") < lo).sort("_t").unique(subset="symbol", keep="last", maintain_order=True)
    return pl.concat([before, inside]).drop("_t")
