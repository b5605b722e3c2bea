"""Minute klines for MacroHFT: read Binance daily kline archives or a store dataset into one frame.

Output frame (one symbol, sorted by ``ts``): ``ts`` (bar open, int64 ns UTC), ``open, high, low, close,
volume`` (base units), ``vwap`` (quote volume / volume, null on zero-volume bars), ``trades`` and
``taker_buy_volume`` (base units bought by takers; null when the source lacks it).

Gaps are reported, never filled: :func:`contiguous_segments` cuts a series where consecutive bars are
more than one minute apart (the 2023-03-24 Binance halt leaves 80 missing minutes), and episodes never
cross a cut.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_MIN

_ARCHIVE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-1m-(?P<date>\d{4}-\d{2}-\d{2})\.zip$")
_KLINE_COLS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
               "trades", "taker_base", "taker_quote", "ignore"]


def archive_days(folder: str | Path, symbol: str) -> list[tuple[str, Path]]:
    """(date, path) of every ``<symbol>-1m-<date>.zip`` in ``folder``, sorted by date."""
    d = Path(folder)
    if not d.is_dir():
        raise DataError(d, "kline folder not found")
    out = []
    for p in d.iterdir():
        m = _ARCHIVE.match(p.name)
        if m and m["symbol"] == symbol:
            out.append((m["date"], p))
    return sorted(out)


def read_kline_archives(folder: str | Path, symbol: str, start: str | None = None, end: str | None = None) -> pl.DataFrame:
    """Read the daily Binance kline zips of ``symbol`` with dates in [start, end) (ISO dates).

    Timestamps in ms (13 digits) or µs (16 digits, Binance spot from 2025) are both accepted.
    Raises :class:`DataError` naming the folder when the symbol has no archive in the range.
    """
    days = [(dt, p) for dt, p in archive_days(folder, symbol) if (start is None or dt >= start[:10]) and (end is None or dt < end[:10])]
    if not days:
        raise DataError(folder, f"no {symbol} 1m archives in [{start}, {end})", field="symbol", value=symbol)
    frames = []
    for _, p in days:
        with zipfile.ZipFile(p) as z:
            raw = z.read(z.namelist()[0])
        frames.append(pl.read_csv(io.BytesIO(raw), has_header=False, new_columns=_KLINE_COLS,
                                  schema_overrides={"open_time": pl.Int64, "trades": pl.Int64}))
    df = pl.concat(frames)
    unit = np.where(df["open_time"].to_numpy() > 10**14, 1_000, 1_000_000)  # µs -> ns, ms -> ns
    df = df.with_columns(pl.Series("ts", df["open_time"].to_numpy() * unit, dtype=pl.Int64))
    return _finish(df, taker="taker_base", quote="quote_volume")


def read_store_bars(store: Any, dataset: str, symbol: str, start: str | None = None, end: str | None = None) -> pl.DataFrame:
    """Read one symbol's minute bars from a marketlab store (``taker_buy_volume`` when the dataset has it)."""
    lf = store.scan_bars(dataset, symbols=symbol, start=start, end=end)
    df = lf.collect().sort("ts")
    if df.height == 0:
        raise DataError(None, f"symbol {symbol!r} has no bars in dataset {dataset!r} for [{start}, {end})")
    taker = next((c for c in ("taker_buy_volume", "taker_base", "taker_buy_base") if c in df.columns), None)
    if "vwap" in df.columns:
        df = df.with_columns((pl.col("vwap") * pl.col("volume")).alias("_quote"))
    return _finish(df, taker=taker, quote="_quote" if "vwap" in df.columns else None)


def _finish(df: pl.DataFrame, *, taker: str | None, quote: str | None) -> pl.DataFrame:
    vol = pl.col("volume").cast(pl.Float64)
    return df.sort("ts").select(
        pl.col("ts").cast(pl.Int64),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")),
        vol.alias("volume"),
        (pl.when(vol > 0).then(pl.col(quote).cast(pl.Float64) / vol).otherwise(None) if quote else pl.lit(None, pl.Float64)).alias("vwap"),
        (pl.col("trades").cast(pl.Int64) if "trades" in df.columns else pl.lit(None, pl.Int64)).alias("trades"),
        (pl.col(taker).cast(pl.Float64) if taker else pl.lit(None, pl.Float64)).alias("taker_buy_volume"),
    )


def contiguous_segments(ts: np.ndarray, step_ns: int = NS_PER_MIN) -> list[tuple[int, int]]:
    """[lo, hi) row ranges of ``ts`` (int64 ns, sorted) inside which bars are exactly ``step_ns`` apart."""
    if len(ts) == 0:
        return []
    cuts = np.nonzero(np.diff(ts) != step_ns)[0] + 1
    bounds = [0, *cuts.tolist(), len(ts)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def gap_report(ts: np.ndarray, step_ns: int = NS_PER_MIN) -> list[dict[str, Any]]:
    """One dict per gap: the last bar before it, the first after it and the number of missing bars."""
    out = []
    for i in np.nonzero(np.diff(ts) != step_ns)[0]:
        missing = int((ts[i + 1] - ts[i]) // step_ns) - 1
        out.append({"after": str(np.datetime64(int(ts[i]), "ns")), "resume": str(np.datetime64(int(ts[i + 1]), "ns")),
                    "missing": missing})
    return out


def require_contiguous(ts: np.ndarray, what: str, step_ns: int = NS_PER_MIN) -> None:
    """Raise a one-line :class:`DataError` when ``ts`` has a gap (an episode must not cross a halt)."""
    gaps = gap_report(ts, step_ns)
    if gaps:
        g = gaps[0]
        raise DataError(None, f"{what}: gap of {g['missing']} missing minutes after {g['after']} inside one episode "
                              "(episodes must not cross a gap; cut the series with contiguous_segments)")
