"""LOBSTER message + orderbook files -> events and book snapshots (store schemas).

Format (LOBSTER_SampleFiles_ReadMe.txt): ``TICKER_YYYY-MM-DD_<start ms>_<end ms>_message_<L>.csv`` has
N x 6 columns ``time`` (seconds after midnight, New York local time, up to ns decimals), ``type``
(1 add, 2 partial cancel, 3 delete, 4 visible execution, 5 hidden execution, 6 cross, 7 halt),
``order_id``, ``size`` (shares), ``price`` (USD x 10,000), ``direction`` (+1 buy / -1 sell limit order;
executions carry the *resting* order's side). ``..._orderbook_<L>.csv`` has N x 4L columns
``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ...`` and row i is the book **after** message i. Empty
levels are +-9999999999 with size 0. No header rows.

Traps handled here:
* Prices: the store keeps LOBSTER's own unit by default (``tick_size`` 0.0001 USD), because hidden
  executions (type 5) at the midpoint of a one-cent spread have half-cent prices (50 rows in GOOG,
  63 in AMZN on 2012-06-21); every other price must lie on the ``price_grid`` (0.01 USD, NASDAQ's
  order-entry increment) and an off-grid one is a DataError.
* Time: seconds after *local* midnight -> int64 ns UTC using the date in the file name (or ``date=``)
  and the America/New_York offset of that day; parsed from the decimal string, so it is exact.
* Dummy empty-level prices become 0 (store convention), their sizes 0.
* Halts (type 7) carry price -1/0/1 and size 0; they are kept as events with price 0, size 0.

Options: ``symbol``, ``date`` (YYYY-MM-DD), ``tick_size`` (default 0.0001), ``price_grid`` (0.01),
``book`` (True: also return book snapshots), ``batch_rows`` (:func:`iter_batches` only, default 250,000).

Streaming: both files are decompressed and parsed in ~1 MiB pieces of text, straight into the batch's
arrays (:class:`~marketlab.store.ingest._fastcsv.IntRows`); the store's ``ingest/lobster`` is
:func:`iter_batches`, so an ingest holds one batch of rows, never a file or a day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import EVENTS_SCHEMA, book_schema  # noqa: F401 - documented contracts
from marketlab.store.ingest._fastcsv import (
    CHUNK_BYTES,
    EMPTY_PRICE,
    BookPairs,
    Generic,
    IntRows,
    count_columns,
    count_rows,
)

NAME_RE = re.compile(
    r"^(?P<sym>[A-Za-z0-9.^_-]+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<t0>\d+)_(?P<t1>\d+)_(?P<kind>message|orderbook)_(?P<lvl>\d+)"
)
RAW_UNIT = 0.0001  # USD per LOBSTER price unit
DUMMY = EMPTY_PRICE  # an empty level's price (+ asks, - bids)
MSG_COLS = ["time", "type", "order_id", "size", "price", "direction"]


@dataclass
class LobsterDay:
    """One LOBSTER day as arrays.

    ``msg_cols``: ``int64[6, n]`` rows ts (ns UTC), type, order_id, size (shares), price (ticks), direction
    (+1/-1): column-major, so each field is contiguous and frames are built without copies.
    ``book_cols``: ``int64[4*levels, n]`` (ticks / shares, empty levels 0) or None when not read.
    ``msgs`` / ``book`` are the row-major ``int64[n, 6]`` / ``int64[n, 4*levels]`` views the engine and
    verifier take (built on first use).
    ``grid``: price grid in ticks (order-entry increment: resting prices are multiples of it).
    """

    symbol: str
    date: dt.date
    levels: int
    tick_size: float
    grid: int
    msg_cols: np.ndarray
    book_cols: np.ndarray | None
    message_path: Path
    orderbook_path: Path | None

    @cached_property
    def msgs(self) -> np.ndarray:
        """Row-major ``int64[n, 6]`` messages (the engine's layout)."""
        return np.ascontiguousarray(self.msg_cols.T)

    @cached_property
    def book(self) -> np.ndarray | None:
        """Row-major ``int64[n, 4*levels]`` book, or None when not read."""
        return None if self.book_cols is None else np.ascontiguousarray(self.book_cols.T)


def _name_info(path: Path) -> dict[str, str]:
    m = NAME_RE.match(path.name)
    return m.groupdict() if m else {}


def _pair_key(info: dict[str, str]) -> tuple[str, str, int, int, int]:
    """What a message file and its orderbook file share: ticker, date, window (ms) and level."""
    return info["sym"], info["date"], int(info["t0"]), int(info["t1"]), int(info["lvl"])


def _read_bytes(path: Path) -> bytes:
    from marketlab.store.ingest._io import read_bytes

    data = read_bytes(Path(path))
    if not data.strip():
        raise DataError(path, "empty file")
    return data


def _int_frame(
    path: Path, data: bytes, ncols: int | None, names: list[str] | None, str_cols: tuple[str, ...] = (), row0: int = 0
) -> pl.DataFrame:
    """Read a headerless CSV as strings and cast to Int64, naming the first bad cell on failure (rows
    numbered from ``row0``, the index of the text's first line in its file)."""
    try:
        df = pl.read_csv(data, has_header=False, infer_schema=False, new_columns=names)
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(path, f"malformed CSV ({first[:160]})") from None
    if ncols is not None and df.width != ncols:
        raise DataError(path, f"expected {ncols} columns, found {df.width}", row=row0 + 1)
    out = []
    for c in df.columns:
        if c in str_cols:
            out.append(pl.col(c))
            continue
        out.append(pl.col(c).str.strip_chars().cast(pl.Int64, strict=False))
    typed = df.select(out)
    for c in df.columns:
        if c in str_cols:
            continue
        bad = typed.get_column(c).is_null()
        if bad.any():
            r = int(bad.arg_true()[0])
            raise DataError(path, "not an integer", field=c, row=row0 + r + 1, value=df.get_column(c)[r])
    return typed


def _times_ns(path: Path, col: pl.Series, midnight_ns: int, row0: int = 0) -> np.ndarray:
    """Exact ns since epoch from 'seconds.fraction' strings."""
    s = col.str.strip_chars()
    parts = s.str.split_exact(".", 1).struct.unnest()
    secs = parts["field_0"].cast(pl.Int64, strict=False)
    frac = parts["field_1"].fill_null("").str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64, strict=False)
    bad = secs.is_null() | frac.is_null() | (secs < 0)
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "not a time in seconds after midnight", field="time", row=row0 + r + 1, value=col[r])
    out: np.ndarray = (secs.to_numpy() * 1_000_000_000 + frac.to_numpy() + midnight_ns).astype(np.int64)
    return out


def _message_rows(mpath: Path) -> Generic:
    """The generic (error-naming) parser of message lines the fast path declines: ``int64[6, r]`` with
    ``time`` in ns after midnight, like the kernel's output."""

    def parse(text: bytes, row0: int) -> np.ndarray:
        m = _int_frame(mpath, text, 6, MSG_COLS, str_cols=("time",), row0=row0)
        out = np.empty((6, m.height), dtype=np.int64)
        out[0] = _times_ns(mpath, m.get_column("time"), 0, row0)
        for j, c in enumerate(MSG_COLS[1:], start=1):
            out[j] = m.get_column(c).to_numpy()
        return out

    return parse


def _book_rows(bpath: Path, width: int) -> Generic:
    """The generic parser of orderbook lines the fast path declines: ``int64[width, r]`` raw cells."""

    def parse(text: bytes, row0: int) -> np.ndarray:
        b = _int_frame(bpath, text, width, None, row0=row0)
        return np.ascontiguousarray(b.to_numpy().astype(np.int64).T)

    return parse


@dataclass(frozen=True)
class _DayFormat:
    """What one LOBSTER day's rows are checked and converted with."""

    symbol: str
    day: dt.date
    midnight_ns: int
    tick_size: float
    ratio: int  # LOBSTER price units per tick
    grid: int  # ticks per order-entry increment
    price_grid: float


def _day_format(
    mpath: Path, bpath: Path | None, symbol: str | None, date: str | dt.date | None, tick_size: float, price_grid: float
) -> _DayFormat:
    info = _name_info(mpath)
    symbol = symbol or info.get("sym")
    if not symbol:
        raise DataError(mpath, "cannot infer the symbol from the file name; pass symbol=")
    if date is None:
        if "date" not in info:
            raise DataError(mpath, "cannot infer the date from the file name; pass date=")
        date = info["date"]
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("America/New_York"))
    ratio = tick_size / RAW_UNIT
    if tick_size <= 0 or abs(ratio - round(ratio)) > 1e-9:
        raise DataError(mpath, "tick_size must be a positive multiple of 0.0001 USD", field="tick_size", value=tick_size)
    grid = price_grid / tick_size
    if abs(grid - round(grid)) > 1e-9 or grid < 1:
        raise DataError(mpath, "price_grid must be a multiple of tick_size", field="price_grid", value=price_grid)
    if bpath is not None and _name_info(bpath) and info and _pair_key(_name_info(bpath)) != _pair_key(info):
        raise DataError(
            bpath, f"orderbook file does not belong to message file {mpath.name} (ticker, date, window or level differs)"
        )
    return _DayFormat(
        symbol, day, int(midnight.timestamp()) * 1_000_000_000, tick_size, int(round(ratio)), int(round(grid)), price_grid
    )


def _check_messages(mpath: Path, cols: np.ndarray, row0: int, prev_ts: int | None, f: _DayFormat) -> None:
    """Validate message rows ``cols`` (``int64[6, k]``: ns after midnight, type, order_id, size, raw price,
    direction; file rows ``row0 ..``) and convert them in place: ts to ns UTC, price to ticks, halts'
    price/size/direction to 0. ``prev_ts``: the previous batch's last ts (UTC), for the order check."""
    ts, typ, oid, size, raw_px, direc = cols
    ts += f.midnight_ns

    def fail(mask: np.ndarray, field: str, problem: str, values: np.ndarray) -> None:
        if mask.any():
            r = int(np.flatnonzero(mask)[0])
            raise DataError(mpath, problem, field=field, row=row0 + r + 1, value=int(values[r]))

    fail((typ < 1) | (typ > 7), "type", "unknown message type (expected 1..7)", typ)
    book_msg = typ <= 5
    fail(book_msg & (size <= 0), "size", "non-positive size", size)
    fail((typ != 7) & (direc != 1) & (direc != -1), "direction", "direction must be 1 or -1", direc)
    fail((typ <= 4) & (oid <= 0), "order_id", "non-positive order id", oid)
    fail(book_msg & (raw_px <= 0), "price", "non-positive price", raw_px)
    if f.ratio != 1:
        fail(book_msg & (raw_px % f.ratio != 0), "price", f"price not a multiple of tick_size {f.tick_size}", raw_px)
    halt = typ == 7
    px = np.where(halt, 0, raw_px // f.ratio) if f.ratio != 1 else np.where(halt, 0, raw_px)
    fail((typ <= 4) & (px % f.grid != 0), "price", f"price off the tick grid ({f.price_grid} USD)", raw_px)
    n = ts.shape[0]
    if n and ((n > 1 and (ts[1:] < ts[:-1]).any()) or (prev_ts is not None and ts[0] < prev_ts)):
        back = np.zeros(n, dtype=bool)
        back[1:] = ts[1:] < ts[:-1]
        back[0] = prev_ts is not None and ts[0] < prev_ts
        fail(back, "time", "timestamp earlier than the previous row", ts)
    cols[3] = np.where(halt, 0, size)
    cols[4] = px
    cols[5] = np.where(halt, 0, direc)


class _DayReader:
    """One LOBSTER day (message file + optional orderbook file) read in bounded batches of rows.

    :meth:`next_batch` returns validated, converted ``int64[6, k]`` message columns (ts ns UTC, type,
    order_id, size, price ticks, direction) and ``int64[4L, k]`` book columns (ticks/shares, empty levels
    0) of the next ``k`` rows; the orderbook rows are decompressed and parsed in a worker thread while the
    message rows are (zlib and the kernels release the GIL). Memory: the batch plus ~1 MiB of text per file.
    """

    def __init__(self, mpath: Path, bpath: Path | None, f: _DayFormat, msg_chunks: Iterator[bytes] | None = None) -> None:
        from marketlab.store.ingest._io import Prefetch, iter_chunks

        self.mpath, self.bpath, self.f = mpath, bpath, f
        chunks = msg_chunks if msg_chunks is not None else iter_chunks(mpath, CHUNK_BYTES)
        self.msgs = IntRows(chunks, 6, 0, _message_rows(mpath))
        self.book: IntRows | None = None
        self.levels = int(_name_info(mpath).get("lvl", 0) or 0)
        self.served = 0  # rows returned so far
        self.prev_ts: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._prefetch: Prefetch | None = None
        if bpath is not None:
            # the orderbook (~85% of a day's text) is inflated in a third thread while the book worker parses
            self._prefetch = book_chunks = Prefetch(iter_chunks(bpath, CHUNK_BYTES))
            try:
                first = next(book_chunks, b"")
                if not first.strip():
                    raise DataError(bpath, "empty file")
                width = count_columns(first)
                if width % 4 != 0 or width == 0:
                    raise DataError(bpath, f"orderbook needs 4 x levels columns, found {width}", row=1)
                self.levels = width // 4
                named = _name_info(bpath).get("lvl")
                if named is not None and int(named) != self.levels:
                    raise DataError(
                        bpath,
                        f"file name says level {int(named)} but rows have {width} columns ({self.levels} levels)",
                        field="columns",
                        value=width,
                    )
                # checked and converted level by level as the parser reads them (no pass over the batch after it)
                pairs = BookPairs(
                    f.ratio * f.grid,
                    f.ratio,
                    lambda cols, file_row: _book_error(bpath, cols, file_row, f.ratio * f.grid, f.price_grid),
                )
                self.book = IntRows(itertools.chain([first], book_chunks), width, -1, _book_rows(bpath, width), book=pairs)
                self._pool = ThreadPoolExecutor(max_workers=1)
            except BaseException:
                self.close()  # stop the prefetch thread: the caller never gets this reader to close
                raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._prefetch is not None:
            self._prefetch.close()
            self._prefetch = None

    def _mismatch(self, book_rows: int, msg_rows: int) -> DataError:
        assert self.bpath is not None
        return DataError(self.bpath, f"has {book_rows} rows but the message file has {msg_rows}", field="rows", value=book_rows)

    def next_batch(self, rows: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The next ``<= rows`` rows as (message columns, book columns or None); None after the last."""
        book_out = fut = None
        if self.book is not None:
            assert self._pool is not None
            book_out = np.empty((self.book.ncols, rows), dtype=np.int64)
            fut = self._pool.submit(self.book.read_into, book_out, 0, rows)
        try:
            msg_out = np.empty((6, rows), dtype=np.int64)
            k = self.msgs.read_into(msg_out, 0, rows)
            if k == 0 and self.served == 0:
                raise DataError(self.mpath, "empty file")
            msg = msg_out[:, :k]
            _check_messages(self.mpath, msg, self.served, self.prev_ts, self.f)
        except BaseException:
            if fut is not None:
                fut.cancel()
                try:
                    fut.result()
                except BaseException:  # the message file's problem is reported first
                    pass
            raise
        book = None
        if fut is not None:
            assert self.book is not None and book_out is not None
            kb = fut.result()
            if kb < k:
                raise self._mismatch(self.served + kb, self.served + k + self.msgs.count_rest())
            if k < rows and (extra := kb - k + self.book.count_rest()):  # the message file ended first
                raise self._mismatch(self.served + k + extra, self.served + k)
            book = book_out[:, :k]
            if self.served == 0 and k:
                a1, b1 = book[0, 0], book[2, 0]
                if a1 > 0 and b1 > 0 and b1 >= a1:
                    raise DataError(
                        self.bpath,
                        "crossed initial book (best bid >= best ask)",
                        field="bid_px_1",
                        row=1,
                        value=int(b1 * self.f.ratio),
                    )
        if k == 0:
            return None
        self.served += k
        self.prev_ts = int(msg[0, k - 1])
        return msg, book


def read_lobster(
    message_path: str | Path,
    orderbook_path: str | Path | None = None,
    *,
    symbol: str | None = None,
    date: str | dt.date | None = None,
    tick_size: float = RAW_UNIT,
    price_grid: float = 0.01,
) -> LobsterDay:
    """Parse and validate one LOBSTER day (message file and optionally its orderbook file).

    Raises :class:`DataError` naming file, 1-based row, field and value for: wrong column counts, non
    integers, unknown types, non-positive sizes (types 1-5), prices off the tick grid, directions other
    than +-1, timestamps going backwards, a message/orderbook row-count mismatch, negative book sizes, and
    a crossed first book row.
    """
    mpath = Path(message_path)
    bpath = Path(orderbook_path) if orderbook_path is not None else None
    f = _day_format(mpath, bpath, symbol, date, tick_size, price_grid)
    # The message file (the small one) is decompressed whole: its row count sizes the book's arrays
    # exactly, so the day is one batch with no copy; the orderbook file streams in ~1 MiB pieces.
    data = _read_bytes(mpath)
    reader = _DayReader(mpath, bpath, f, iter([data]))
    try:
        got = reader.next_batch(max(count_rows(data), 1))
        assert got is not None
        if reader.next_batch(1) is not None:  # more rows than lines counted: cannot happen, but never drop any
            raise DataError(mpath, "row count changed while reading")
    finally:
        reader.close()
    msg_cols, book_cols = got
    return LobsterDay(f.symbol, f.day, reader.levels, f.tick_size, f.grid, msg_cols, book_cols, mpath, bpath)


def _book_error(bpath: Path, cols: np.ndarray, row0: int, unit: int, price_grid: float) -> None:
    """Raise the error of orderbook rows ``cols`` (``int64[4L, k]``, file rows ``row0 ..``; sizes and real
    levels' prices as read) that hold a bad level (see :class:`~marketlab.store.ingest._fastcsv.BookPairs`):
    the first negative size in file order, else the first real level whose price is not a positive
    multiple of ``unit`` (LOBSTER units per grid step)."""
    arr = cols.T  # row-major order: the first bad cell reported is the first in file order
    pxc, szc = arr[:, 0::2], arr[:, 1::2]
    if (szc < 0).any():
        r, c = np.argwhere(szc < 0)[0]
        raise DataError(bpath, "negative size", field=_book_col(2 * c + 1), row=row0 + int(r) + 1, value=int(szc[r, c]))
    real = (np.abs(pxc) != DUMMY) & (szc > 0)
    r, c = np.argwhere(real & ((pxc <= 0) | (pxc % unit != 0)))[0]
    raise DataError(
        bpath, f"price off the tick grid ({price_grid} USD)", field=_book_col(2 * c), row=row0 + int(r) + 1, value=int(pxc[r, c])
    )


def _book_col(j: int) -> str:
    level = j // 4 + 1
    return ["ask_px", "ask_sz", "bid_px", "bid_sz"][j % 4] + f"_{level}"


def events_frame(day: LobsterDay) -> pl.DataFrame:
    """Events in EVENTS_SCHEMA (``seq`` = row order within the day)."""
    return _events(day.symbol, day.msg_cols, 0)


def book_frame(day: LobsterDay) -> pl.DataFrame:
    """Book snapshots in ``book_schema(levels)``; row i is the book after event ``seq`` i."""
    assert day.book_cols is not None
    return _book(day.symbol, day.msg_cols[0], day.book_cols, 0)


def _events(symbol: str, msg_cols: np.ndarray, seq0: int) -> pl.DataFrame:
    """Events of converted message rows ``int64[6, k]`` whose first row is row ``seq0`` of its day."""
    ts, typ, oid, size, px, side = msg_cols
    n = ts.shape[0]
    return pl.DataFrame(
        [
            pl.Series("ts", ts),
            pl.repeat(symbol, n, dtype=pl.String, eager=True).alias("symbol"),
            pl.Series("seq", np.arange(seq0, seq0 + n, dtype=np.int64)),
            pl.Series("type", typ.astype(np.int8)),
            pl.Series("order_id", oid),
            pl.Series("side", side.astype(np.int8)),
            pl.Series("price", px),
            pl.Series("size", size),
        ]
    )


def _book(symbol: str, ts: np.ndarray, book_cols: np.ndarray, seq0: int) -> pl.DataFrame:
    """Book snapshots of converted orderbook rows ``int64[4L, k]`` (first row: row ``seq0`` of its day)."""
    n = book_cols.shape[1]
    cols = [
        pl.Series("ts", ts),
        pl.repeat(symbol, n, dtype=pl.String, eager=True).alias("symbol"),
        pl.Series("seq", np.arange(seq0, seq0 + n, dtype=np.int64)),
    ]
    cols += [pl.Series(_book_col(j), book_cols[j]) for j in range(book_cols.shape[0])]
    return pl.DataFrame(cols)


def pair_files(paths: list[Path], *, need_book: bool = True) -> list[tuple[Path, Path | None]]:
    """Pair each message file with the orderbook file of the same ticker, date, time window and level.

    Directories expand to the LOBSTER-named files in them (other files, e.g. a ReadMe, are skipped); a file
    named explicitly must have a LOBSTER name. Every orderbook file must have its message file, and with
    ``need_book`` every message file its orderbook file: an unpaired file (message of GOOG + orderbook of
    AMZN, another date or level, a missing partner) is a one-line :class:`DataError` naming it, raised
    before any file is parsed, so nothing is ever silently dropped or recorded.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and _name_info(f)))
        elif not _name_info(p):
            raise DataError(
                p,
                "not a LOBSTER file name (expected TICKER_YYYY-MM-DD_<start ms>_<end ms>_"
                "message_<L>.csv or ..._orderbook_<L>.csv, optionally .gz/.xz)",
            )
        else:
            files.append(p)
    msgs: dict[tuple[str, str, int, int, int], Path] = {}
    books: dict[tuple[str, str, int, int, int], Path] = {}
    for f in files:
        info = _name_info(f)
        key = _pair_key(info)
        table = msgs if info["kind"] == "message" else books
        if key in table and table[key] != f:
            raise DataError(f, f"two {info['kind']} files for {key[0]} {key[1]} level {key[4]} (the other is {table[key].name})")
        table[key] = f
    if not msgs:
        raise DataError(paths[0] if paths else None, "no LOBSTER message file (…_message_<L>.csv[.gz]) given")
    for key, b in books.items():
        if key not in msgs:
            raise DataError(
                b, f"orderbook file has no message file of the same ticker, date, window and level{_nearest(key, msgs)}"
            )
    if need_book:
        for key, m in msgs.items():
            if key not in books:
                raise DataError(
                    m,
                    "message file has no orderbook file of the same ticker, date, window and "
                    f"level{_nearest(key, books)} (pass book=False to ingest messages only)",
                )
    return [(m, books.get(key)) for key, m in msgs.items()]


def _nearest(key: tuple[str, str, int, int, int], others: dict[tuple[str, str, int, int, int], Path]) -> str:
    """' (given: <name>)' for the partner candidate of the same ticker, or any, to show what differs."""
    same = [p for k, p in others.items() if k[0] == key[0]] or list(others.values())
    return f" (given: {same[0].name})" if same else ""


_OPTIONS = {"symbol", "date", "tick_size", "price_grid"}


def _options(options: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(want book, the reader's options); unknown options are a one-line error."""
    want_book = bool(options.pop("book", True))
    unknown = set(options) - _OPTIONS
    if unknown:
        raise DataError(None, f"unknown lobster option(s) {sorted(unknown)} (known: {sorted(_OPTIONS | {'book'})})")
    return want_book, options


def parse(paths: list[Path], *, dataset: str | None = None, **options: Any) -> Any:
    """Pure parser: LOBSTER files -> one :class:`~marketlab.store.IngestBatch` with ``events`` and ``book``.

    ``dataset`` defaults to ``lobster``. Options: see the module docstring. The store's ``ingest/lobster``
    streams :func:`iter_batches` instead (same rows, memory bounded by ``batch_rows``).
    """
    from marketlab.store import IngestBatch, Instrument

    want_book, options = _options(dict(options))
    ev: list[pl.DataFrame] = []
    bk: list[pl.DataFrame] = []
    instruments: dict[str, Instrument] = {}
    meta: dict[str, Any] = {"levels": {}}
    for mpath, bpath in pair_files(list(paths), need_book=want_book):
        day = read_lobster(mpath, bpath if want_book else None, **options)
        ev.append(events_frame(day))
        if day.book_cols is not None:
            bk.append(book_frame(day))
        instruments[day.symbol] = Instrument(day.symbol, tick_size=day.tick_size, lot_size=1.0, currency="USD")
        meta["levels"][f"{day.symbol}/{day.date}"] = day.levels
    frames = {"events": pl.concat(ev)}
    if bk:
        levels = {b.width for b in bk}
        frames["book"] = pl.concat(bk) if len(levels) == 1 else pl.concat(bk, how="diagonal").fill_null(0)
    meta["source"] = "LOBSTER"
    return IngestBatch(dataset=dataset or "lobster", frames=frames, instruments=list(instruments.values()), meta=meta)


BATCH_ROWS = 250_000  # rows per streamed batch: a level-10 day's batch is ~86 MB (events + book)


def iter_batches(paths: list[Path], *, dataset: str | None = None, batch_rows: int = BATCH_ROWS, **options: Any) -> Iterator[Any]:
    """Stream LOBSTER files as :class:`~marketlab.store.IngestBatch`es of at most ``batch_rows`` rows of one
    day (``events`` and, with its orderbook file, ``book``): the same rows, values and checks as
    :func:`parse`, but memory holds one batch (plus ~1 MiB of text per file), not a day or a file.

    A :class:`DataError` may be raised after earlier batches were yielded (the store then records nothing:
    all batches of an ingest commit as one transaction).
    """
    from marketlab.store import IngestBatch, Instrument

    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise DataError(None, "batch_rows must be a positive integer", field="batch_rows", value=batch_rows)
    want_book, options = _options(dict(options))
    pairs = pair_files(list(paths), need_book=want_book)
    name = dataset or "lobster"
    levels: dict[str, int] = {}
    for mpath, bpath in pairs:
        bpath = bpath if want_book else None
        f = _day_format(
            mpath,
            bpath,
            options.get("symbol"),
            options.get("date"),
            options.get("tick_size", RAW_UNIT),
            options.get("price_grid", 0.01),
        )
        instrument = Instrument(f.symbol, tick_size=f.tick_size, lot_size=1.0, currency="USD")
        reader = _DayReader(mpath, bpath, f)
        try:
            levels[f"{f.symbol}/{f.day}"] = reader.levels
            while True:
                seq0 = reader.served
                got = reader.next_batch(batch_rows)
                if got is None:
                    break
                frames = {"events": _events(f.symbol, got[0], seq0)}
                if got[1] is not None:
                    frames["book"] = _book(f.symbol, got[0][0], got[1], seq0)
                del got
                box = [IngestBatch(
                    dataset=name, frames=frames, instruments=[instrument], meta={"levels": dict(levels), "source": "LOBSTER"}
                )]
                del frames
                yield box.pop()  # no local keeps the batch while it is out: the writer frees it as it goes
        finally:
            reader.close()
