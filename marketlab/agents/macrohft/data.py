"""Minute bars for MacroHFT, read from the store, and the gaps in them.

Binance kline archives reach the agent only through the store: ``marketlab ingest ohlcv <folder>`` (or the
spec's ``archives`` folder, ingested into its ``dataset`` on first use by :func:`ensure_bars`) stores OHLCV,
``vwap``, ``trades`` and the taker buys per minute (``BARS_SCHEMA``), and :func:`read_store_bars` reads
them back. Output frame (one symbol, sorted by ``ts``): ``ts`` (bar open, int64 ns UTC), ``open, high, low,
close, volume`` (base units), ``vwap`` (quote volume / volume; null on zero-volume bars), ``trades`` and
``taker_buy_volume`` (base units bought by takers; null where the dataset has none: a plain OHLCV file, or a
bars dataset stored before the store had taker columns).

Gaps are reported, never filled: :func:`contiguous_segments` cuts a series where consecutive bars are
more than one minute apart (the 2023-03-24 Binance halt leaves 80 missing minutes), and episodes never
cross a cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_MIN, TimeLike, to_ns

#: The columns MacroHFT reads from a bars dataset, in order.
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "vwap", "trades", "taker_buy_volume")


def ensure_bars(store: Any, dataset: str, archives: str = "") -> None:
    """Ingest the kline folder ``archives`` (``marketlab ingest ohlcv``) into ``dataset`` when the store
    lacks the dataset; without ``archives`` a missing dataset is a one-line error naming it."""
    from marketlab.market.loading import ensure_dataset

    ensure_dataset(store, dataset, format="ohlcv", paths=[archives] if archives else [], key="archives")


def read_store_bars(store: Any, dataset: str, symbol: str, start: TimeLike | None = None,
                    end: TimeLike | None = None) -> pl.DataFrame:
    """One symbol's minute bars in [start, end) from ``store`` (columns :data:`BAR_COLUMNS`, sorted by ``ts``).

    Raises :class:`DataError` naming the symbol and dataset when the range holds no bar of the symbol."""
    df = store.scan_bars(dataset, symbols=symbol, start=start, end=end).select(BAR_COLUMNS).collect().sort("ts")
    if df.height == 0:
        span = ", ".join("..." if t is None else str(np.datetime64(to_ns(t), "ns")) for t in (start, end))
        raise DataError(None, f"symbol {symbol!r} has no bars in dataset {dataset!r} for [{span})")
    return df.select(pl.col("ts").cast(pl.Int64), *(pl.col(c).cast(pl.Float64) for c in BAR_COLUMNS[1:7]),
                     pl.col("trades").cast(pl.Int64), pl.col("taker_buy_volume").cast(pl.Float64))


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
