"""Resampling: trades/events -> OHLCV + vwap + trade-count bars; bars -> coarser bars; book -> samples.

Bars use integer bucketing on int64 ns timestamps: a trade at ``ts`` belongs to the bar opening at
``ts - ts mod every`` (UTC-aligned, floor for negative times). Only non-empty bars are emitted (no
forward fill), so "resample to 1m then aggregate to 5m" equals "resample to 5m" exactly for
open/high/low/close/volume/trades and up to float rounding for vwap.

Taker volumes: bars from trades or events leave ``taker_buy_volume``/``taker_buy_quote_volume`` null; coarser
bars sum them (null when any input bar's is null, so a partial sum is never shown as the whole).

Trades must be in time order within a symbol (as the store returns them within a partition); ties keep
input order, which is the exchange sequence.
"""

# numba types the kernels at compile time; annotations would only repeat the docstrings.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import re
from typing import TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit

from marketlab.core.errors import StoreError
from marketlab.core.schema import BARS_OPTIONAL, BARS_SCHEMA, EventType

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9,
          "h": 3600 * 10**9, "d": 86_400 * 10**9}

Frame = pl.DataFrame | pl.LazyFrame
_F = TypeVar("_F", pl.DataFrame, pl.LazyFrame)


def parse_every(every: str | int) -> int:
    """``"1m"``, ``"5min"``, ``"30s"``, ``"1h"``, ``"1d"``, ``"250ms"`` or int ns -> int ns (> 0)."""
    if isinstance(every, int) and not isinstance(every, bool):
        ns = every
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(ns|us|ms|s|min|m|h|d)\s*", str(every))
        if not m:
            raise StoreError(f"invalid frequency {every!r} (e.g. 1m, 5min, 30s, 1h, 1d, 250ms)")
        ns = int(m.group(1)) * _UNITS[m.group(2)]
    if ns <= 0:
        raise StoreError(f"frequency must be positive, got {every!r}")
    return ns


def _lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def trades_to_bars(trades: Frame, every: str | int, *, price_scale: float | dict[str, float] = 1.0,
                   size_scale: float | dict[str, float] = 1.0) -> pl.DataFrame:
    """Trades (``ts, symbol, price, size``) -> bars in BARS_SCHEMA, one row per non-empty (symbol, bar).

    ``price_scale``/``size_scale`` convert integer ticks/lots to currency/units (a float, or a per-symbol
    mapping from the instruments); pass 1.0 for trades that are already floats (``as_float=True``).
    ``vwap`` = sum(price*size)/sum(size); ``trades`` = number of trades; ``ts`` = bar open (ns UTC).
    """
    step = parse_every(every)
    lf = _lazy(trades).select("ts", "symbol", "price", "size")
    lf = lf.with_columns(_scaled("price", price_scale), _scaled("size", size_scale))
    df = lf.collect()
    fast = _bars_from_runs(df, step)
    if fast is not None:
        return fast
    bucket = (pl.col("ts") - pl.col("ts").mod(step)).alias("ts")
    out = (
        df.lazy().with_columns(bucket)
        .group_by("symbol", "ts")  # first/last keep input order within a group; output sorted below
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            (pl.col("price") * pl.col("size")).sum().alias("_notional"),
            pl.len().alias("trades"),
        )
        .with_columns((pl.col("_notional") / pl.col("volume")).alias("vwap"))
        .sort("symbol", "ts")
    )
    return _as_bars(out).collect()


def _as_bars(frame: _F) -> _F:
    """``frame``'s columns in BARS_SCHEMA order and types; columns it lacks (the taker volumes) are null."""
    names = frame.collect_schema().names()
    return frame.select([(pl.col(c) if c in names else pl.lit(None)).cast(t).alias(c) for c, t in BARS_SCHEMA.items()])


@njit(cache=True, nogil=True, _nrt=False, boundscheck=False)  # type: ignore[call-overload]  # _nrt: numba's private switch
def _runs_nb(sym, ts, step, start):  # pragma: no cover - compiled
    """Mark in ``start[n]`` the rows that open a new (symbol run, bar) run; returns the number of runs."""
    n = ts.shape[0]
    k = 0
    prev_b = np.int64(0)
    for i in range(n):
        b = ts[i] - ts[i] % step
        if i == 0 or sym[i] != sym[i - 1] or b != prev_b:
            start[i] = True
            k += 1
        else:
            start[i] = False
        prev_b = b
    return k


_MAX_I64 = np.iinfo(np.int64).max


@njit(cache=True, nogil=True, _nrt=False, boundscheck=False)  # type: ignore[call-overload]  # _nrt: numba's private switch
def _view_runs_nb(views, ts, off, step, start, state):  # pragma: no cover - compiled
    """:func:`_runs_nb` over one chunk of an Arrow ``string_view`` symbol column, without a string compare
    or a division per row.

    ``views``: ``int64[m, 2]`` (per row: length | 4-byte prefix, then 8 more inline bytes or buffer
    index | offset); rows ``off .. off+m`` of ``ts``/``start``. ``state`` (``int64[5]``: seen a row, its two
    view words, its bar's first and last ns) carries the previous row across chunks. A row continues
    the run when its ts lies in the current bar and its view words are those of the previous row, or its
    inline bytes (strings of <= 12 bytes) are, compared up to its length. Returns the runs opened, or
    -1 when two different views of longer strings of one length meet (the caller compares strings)."""
    k = 0
    seen, a0, a1, lo, hi = state[0], state[1], state[2], state[3], state[4]
    for i in range(views.shape[0]):
        t = ts[off + i]
        b0 = views[i, 0]
        b1 = views[i, 1]
        same = seen != 0 and t >= lo and t <= hi
        if same and (b0 != a0 or b1 != a1):
            la = a0 & 0xFFFFFFFF
            if la != (b0 & 0xFFFFFFFF):
                same = False
            elif la > 12:
                return -1
            else:
                m0 = np.int64(0xFFFFFFFF) | (((np.int64(1) << (8 * min(la, 4))) - 1) << 32)
                m1 = np.int64(-1) if la == 12 else ((np.int64(1) << (8 * max(la - 4, 0))) - 1)
                same = (a0 & m0) == (b0 & m0) and (a1 & m1) == (b1 & m1)
        if same:
            start[off + i] = False
        else:
            start[off + i] = True
            k += 1
            lo = t - t % step  # the only division: once per bar
            hi = lo + (step - 1) if lo <= _MAX_I64 - (step - 1) else _MAX_I64
        seen, a0, a1 = 1, b0, b1
    state[0], state[1], state[2], state[3], state[4] = seen, a0, a1, lo, hi
    return k


def _mark_runs(symbol: pl.Series, ts: np.ndarray, step: int, start: np.ndarray) -> int:
    """Mark the rows opening a (symbol run, bar) run in ``start``; returns the number of runs.

    A String column is read through its Arrow ``string_view`` words (zero-copy; ~1 ns a row); anything
    else, or long symbols the words cannot tell apart, takes run ids (a string compare per row, ~10x
    the time on 10 M trades)."""
    # a frame's to_arrow keeps the chunks (a Series' concatenates them: a copy of every string view)
    chunks = symbol.to_frame().to_arrow(compat_level=pl.CompatLevel.newest()).column(0).chunks
    if all(c.type == pa.string_view() and c.null_count == 0 for c in chunks):
        state = np.zeros(5, dtype=np.int64)
        off = k = 0
        for c in chunks:
            views = np.frombuffer(c.buffers()[1], dtype=np.int64).reshape(-1, 2)[c.offset: c.offset + len(c)]
            got = _view_runs_nb(views, ts, off, step, start, state)
            if got < 0:
                break
            k += got
            off += len(c)
        else:
            return int(k)
    return int(_runs_nb(symbol.rle_id().to_numpy(), ts, step, start))


@njit(cache=True, nogil=True, _nrt=False, boundscheck=False)  # type: ignore[call-overload]  # _nrt: numba's private switch
def _bars_nb(price, size, start, row0, first, o, h, lo, c, vol, notional, cnt, fs, ist):  # pragma: no cover - compiled
    """One pass over a chunk of rows (the frame's rows ``row0 ..``): OHLC, volume, notional and count of
    each run marked in ``start``. The open run's values live in locals (accumulating into the output
    arrays chains every row through a store and a reload); between chunks they wait in ``fs``
    (float64[5]: high, low, close, volume, notional) and ``ist`` (int64[2]: run index, count); the
    caller stores the last run (:func:`_close_run`)."""
    j = ist[0]
    m = ist[1]
    ho, lw, cl, v, nt = fs[0], fs[1], fs[2], fs[3], fs[4]
    for i in range(price.shape[0]):
        p = price[i]
        q = size[i]
        if start[i]:
            if j >= 0:
                h[j], lo[j], c[j], vol[j], notional[j], cnt[j] = ho, lw, cl, v, nt, m
            j += 1
            first[j] = row0 + i
            o[j] = p
            ho = lw = p
            v = nt = 0.0
            m = 0
        if p > ho:
            ho = p
        if p < lw:
            lw = p
        cl = p
        v += q
        nt += p * q
        m += 1
    ist[0], ist[1] = j, m
    fs[0], fs[1], fs[2], fs[3], fs[4] = ho, lw, cl, v, nt


def _close_run(out: tuple[np.ndarray, ...], fs: np.ndarray, ist: np.ndarray) -> None:
    """Store the last open run of :func:`_bars_nb`."""
    first, o, h, lo, c, vol, notional, cnt = out
    j = int(ist[0])
    if j >= 0:
        h[j], lo[j], c[j], vol[j], notional[j] = fs
        cnt[j] = ist[1]


def _values(a: pa.Array, dtype: type) -> np.ndarray:
    """The values buffer of a null-free primitive Arrow array as numpy (zero-copy)."""
    return np.frombuffer(a.buffers()[1], dtype=dtype)[a.offset: a.offset + len(a)]


def _arrow_chunks(frame: pl.DataFrame) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None:
    """``(ts, symbol view words int64[m, 2], price, size)`` of each Arrow record batch of ``frame`` (``ts``,
    ``symbol``, ``price``, ``size`` as Int64, String, Float64, Float64, no nulls), zero-copy; None for any
    other layout. A scan of many files collects into many chunks: ``to_numpy`` would copy each column
    whole (~250 MB for 10 M trades), which cost as much CPU as the bars themselves."""
    out = []
    for b in frame.to_arrow(compat_level=pl.CompatLevel.newest()).to_batches():
        t, s, p, q = b.columns
        if (t.type != pa.int64() or s.type != pa.string_view() or p.type != pa.float64() or q.type != pa.float64()
                or t.null_count or s.null_count or p.null_count or q.null_count):
            return None
        words = np.frombuffer(s.buffers()[1], dtype=np.int64).reshape(-1, 2)[s.offset: s.offset + len(s)]
        out.append((_values(t, np.int64), words, _values(p, np.float64), _values(q, np.float64)))
    return out


def _runs_by_chunk(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], step: int,
                   start: np.ndarray) -> int:
    """:func:`_view_runs_nb` over the chunks (the previous row carried across); -1 when it declines."""
    state = np.zeros(5, dtype=np.int64)
    off = k = 0
    for ts, words, _, _ in chunks:
        got = _view_runs_nb(words, ts, 0, step, start[off: off + len(ts)], state)
        if got < 0:
            return -1
        k += got
        off += len(ts)
    return int(k)


def _bars_from_runs(df: pl.DataFrame, step: int) -> pl.DataFrame | None:
    """Bars by one pass over contiguous runs of (symbol, bar), or None to use the group-by.

    Store scans return trades grouped by symbol and in time order, so every (symbol, bar) group is one
    contiguous run of rows and a linear pass replaces a hash group-by over strings (~10x less CPU). The
    result is only used when the run keys come out unique, i.e. when each group really was one run; then
    open/close (first/last in input order), high/low, volume, count and vwap are those of the group-by.
    The columns are read chunk by chunk in place when they allow it, else as contiguous copies.
    """
    if df.height == 0 or df.select(pl.all().null_count().sum()).row(0) != (0, 0, 0, 0):
        return None
    frame = df.select("ts", "symbol", pl.col("price").cast(pl.Float64), pl.col("size").cast(pl.Float64))
    start = np.empty(frame.height, dtype=np.bool_)
    chunks = _arrow_chunks(frame)
    k = -1 if chunks is None else _runs_by_chunk(chunks, step, start)
    if chunks is None or k < 0:
        ts = frame.get_column("ts").to_numpy()
        chunks = [(ts, np.zeros((0, 2), np.int64), frame.get_column("price").to_numpy(),
                   frame.get_column("size").to_numpy())]
        k = _mark_runs(frame.get_column("symbol"), ts, step, start)
    out = (np.empty(k, dtype=np.int64), *(np.empty(k) for _ in range(6)), np.empty(k, dtype=np.int64))
    first, o, h, lo, c, vol, notional, cnt = out
    fs, ist = np.zeros(5), np.array([-1, 0], dtype=np.int64)
    row0 = 0
    for _, _, price, size in chunks:
        _bars_nb(price, size, start[row0: row0 + len(price)], row0, first, o, h, lo, c, vol, notional, cnt, fs, ist)
        row0 += len(price)
    _close_run(out, fs, ist)
    ts_first = frame.get_column("ts").gather(first).to_numpy()
    bars = pl.DataFrame({
        "ts": ts_first - ts_first % step, "symbol": frame.get_column("symbol").gather(first), "open": o, "high": h,
        "low": lo, "close": c, "volume": vol, "_notional": notional, "trades": cnt,
    })
    if not bars.select(pl.struct("symbol", "ts").is_unique().all()).item():
        return None
    bars = bars.with_columns((pl.col("_notional") / pl.col("volume")).alias("vwap")).sort("symbol", "ts")
    return _as_bars(bars)


def events_to_trades(events: Frame) -> pl.LazyFrame:
    """Executions (LOBSTER types 4 visible, 5 hidden) -> trades; the aggressor is opposite the resting side."""
    ex = (EventType.EXECUTE, EventType.EXECUTE_HIDDEN)
    return (
        _lazy(events)
        .filter(pl.col("type").is_in([int(t) for t in ex]))
        .select("ts", "symbol", "seq", "price", "size", (-pl.col("side")).cast(pl.Int8).alias("aggressor"))
    )


def events_to_bars(events: Frame, every: str | int, **scales: float | dict[str, float]) -> pl.DataFrame:
    """LOB events -> bars of their executions (see :func:`events_to_trades`, :func:`trades_to_bars`)."""
    return trades_to_bars(events_to_trades(events), every, **scales)


def aggregate_bars(bars: Frame, every: str | int) -> pl.DataFrame:
    """Bars -> coarser bars (``every`` must be a multiple of the input spacing for exact results).

    vwap is volume-weighted (bars with zero volume or null vwap do not contribute to it).
    """
    step = parse_every(every)
    lf = _lazy(bars)
    names = lf.collect_schema().names()
    # a sum over the bucket only when every input bar has the value (null otherwise, never a partial sum)
    taker = [pl.when(pl.col(c).null_count() == 0).then(pl.col(c).sum()).alias(c) for c in BARS_OPTIONAL if c in names]
    out = (
        lf.with_columns((pl.col("ts") - pl.col("ts").mod(step)).alias("ts"))
        .sort("symbol", "ts", maintain_order=True)
        .group_by("symbol", "ts", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            (pl.col("vwap") * pl.col("volume")).sum().alias("_notional"),
            pl.col("volume").filter(pl.col("vwap").is_not_null()).sum().alias("_vv"),
            pl.col("trades").sum(),
            *taker,
        )
        .with_columns(pl.when(pl.col("_vv") > 0).then(pl.col("_notional") / pl.col("_vv")).alias("vwap"))
        .sort("symbol", "ts")
    )
    return _as_bars(out).collect()


def sample_book_by_time(book: Frame, every: str | int) -> pl.DataFrame:
    """The last snapshot within each ``every`` interval, per symbol; ``ts`` becomes the interval END
    (the time at which that state is known), so sampled rows never look ahead."""
    step = parse_every(every)
    lf = _lazy(book).with_columns((pl.col("ts") - pl.col("ts").mod(step) + step).alias("_t"))
    out = lf.group_by("symbol", "_t", maintain_order=True).last().sort("symbol", "_t")
    return out.with_columns(pl.col("_t").alias("ts")).drop("_t").collect()


def sample_book_by_volume(book: Frame, trades: Frame, volume: float) -> pl.DataFrame:
    """A snapshot each time cumulative traded size crosses a multiple of ``volume`` (per symbol).

    For each crossing trade the book row taken is the last snapshot at or before that trade (as-of join
    backward on ``ts``); the output has the book's columns plus ``cum_volume`` [size units of trades].
    """
    if volume <= 0:
        raise StoreError(f"volume bucket must be positive, got {volume}")
    tr = (
        _lazy(trades)
        .select("ts", "symbol", "size")
        .with_columns(pl.col("size").cast(pl.Float64).cum_sum().over("symbol").alias("cum_volume"))
        .with_columns((pl.col("cum_volume") // volume).alias("_bucket"))
        .with_columns(pl.col("_bucket").diff().over("symbol").fill_null(pl.col("_bucket")).alias("_step"))
        .filter(pl.col("_step") > 0)
        .select("ts", "symbol", "cum_volume")
        .sort("symbol", "ts")
    )
    bk = _lazy(book).sort("symbol", "ts")
    joined = tr.join_asof(bk, on="ts", by="symbol", strategy="backward", suffix="_book")
    return joined.collect()


def _scaled(col: str, scale: float | dict[str, float]) -> pl.Expr:
    if isinstance(scale, dict):
        return (pl.col(col).cast(pl.Float64) * pl.col("symbol").replace_strict(scale, return_dtype=pl.Float64)).alias(col)
    if float(scale) == 1.0:  # already in units (as_float scans): no multiply, no new 10 M-row column
        return pl.col(col).cast(pl.Float64)
    return (pl.col(col).cast(pl.Float64) * float(scale)).alias(col)
