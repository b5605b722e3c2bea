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


_TIME_COLUMNS = ("ts", "date")


def long_signal_frame(frame: Any, *, source: str = "signals") -> pl.DataFrame:
    """A Polars or pandas frame of per-(time, symbol) values -> long Polars ``ts`` (int64 ns UTC),
    ``symbol`` (str), ``value`` (float64), sorted by time then symbol.

    Two layouts are accepted:

    * long: columns ``ts`` or ``date``, ``symbol`` and ``value``;
    * wide: a ``ts`` or ``date`` column and one numeric column per symbol (a pandas frame may carry the
      time as its index instead, e.g. a ``DatetimeIndex``).

    Times may be datetimes (naive = UTC, any unit), dates (midnight UTC), ISO strings or int64 ns.
    Missing values become NaN. Anything else is a :class:`DataError` naming ``source`` and the column.
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        frame = _from_pandas(frame, source)
    cols = frame.columns
    tcol = next((c for c in _TIME_COLUMNS if c in cols), None)
    if tcol is None:
        raise DataError(source, "no time column (expected 'ts' or 'date', or a pandas DatetimeIndex)", field="ts")
    if "symbol" in cols:
        if "value" not in cols:
            raise DataError(source, "a long frame needs a 'value' column beside 'symbol'", field="value")
        extra = sorted(set(cols) - {tcol, "symbol", "value"})
        if extra:
            raise DataError(source, "a long frame has only the columns time, 'symbol', 'value'", field=extra[0])
        long = frame.select(pl.col(tcol).alias("_t"), pl.col("symbol").cast(pl.String), pl.col("value"))
    else:
        syms = [c for c in cols if c != tcol]
        if not syms:
            raise DataError(source, "no symbol columns beside the time column", field=tcol)
        for c in syms:
            if not frame[c].dtype.is_numeric() and frame[c].dtype != pl.Boolean:
                raise DataError(source, f"symbol column is not numeric ({frame[c].dtype})", field=c)
        long = frame.select(pl.col(tcol).alias("_t"), *[pl.col(c).cast(pl.Float64) for c in syms]).unpivot(
            index="_t", variable_name="symbol", value_name="value")
    try:
        value = long["value"].cast(pl.Float64).fill_null(np.nan)
    except pl.exceptions.PolarsError:
        raise DataError(source, "values must be numeric", field="value") from None
    ts = _to_ns_column(long["_t"], source, tcol)
    out = pl.DataFrame({"ts": ts, "symbol": long["symbol"], "value": value})
    if out.select(pl.struct("ts", "symbol").is_duplicated().any()).item():
        raise DataError(source, "duplicate (time, symbol) rows", field=tcol)
    return out.sort("ts", "symbol")


def _from_pandas(frame: Any, source: str) -> pl.DataFrame:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(source, f"expected a Polars or pandas DataFrame, got {type(frame).__name__}")
    if not any(c in frame.columns for c in _TIME_COLUMNS):
        name = frame.index.name if frame.index.name in _TIME_COLUMNS else "ts"
        frame = frame.rename_axis(name).reset_index()
    frame = frame.rename(columns=str)
    return pl.from_pandas(frame)


def _to_ns_column(col: pl.Series, source: str, name: str) -> np.ndarray:
    """Any supported time dtype -> int64 ns UTC."""
    from marketlab.core.timeutil import to_ns

    dt = col.dtype
    if col.null_count():
        raise DataError(source, "missing time values", field=name)
    if dt == pl.Date:
        return col.cast(pl.Int64).to_numpy() * NS_PER_DAY
    if isinstance(dt, pl.Datetime):
        if dt.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.dt.cast_time_unit("ns").cast(pl.Int64).to_numpy()
    if dt.is_integer():
        return col.cast(pl.Int64).to_numpy()
    if dt == pl.String:
        return np.array([to_ns(v, key=name) for v in col.to_list()], dtype=np.int64)
    raise DataError(source, f"unsupported time type {dt}", field=name)


def check_symbols(frame: pl.DataFrame, market: MarketData, *, source: str = "signals") -> None:
    """Every symbol of ``frame`` must be one of the market's: :class:`DataError` naming the unknown ones."""
    unknown = sorted(set(frame["symbol"].unique().to_list()) - set(market.symbols))
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "")
        raise DataError(source, f"symbols not in the market data: {shown} (market has {', '.join(market.symbols[:10])}"
                        f"{' ...' if market.n_assets > 10 else ''})", field="symbol")


def place_on_bars(frame: pl.DataFrame, market: MarketData) -> np.ndarray:
    """(T, N) values of a long ``ts``/``symbol``/``value`` frame placed on the market's bars, NaN elsewhere.

    A row at time τ lands on the first bar with ``ts >= τ`` (the first close at or after the decision);
    when several rows of a symbol land on one bar the latest wins; rows after the last bar are dropped.
    Used for target weights, where NaN means "no order at this bar"."""
    out = np.full((market.n_steps, market.n_assets), np.nan)
    sym_index = {s: j for j, s in enumerate(market.symbols)}
    ts = frame["ts"].to_numpy()
    bar = np.searchsorted(market.ts, ts, side="left")
    col = np.array([sym_index[s] for s in frame["symbol"].to_list()], dtype=np.int64)
    val = frame["value"].to_numpy()
    keep = bar < market.n_steps
    order = np.argsort(ts[keep], kind="stable")  # later rows overwrite earlier ones
    out[bar[keep][order], col[keep][order]] = val[keep][order]
    return out
