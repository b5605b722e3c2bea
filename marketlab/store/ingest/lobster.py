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
``book`` (True: also return book snapshots).
"""

from __future__ import annotations

import datetime as dt
import re
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
from marketlab.store.ingest._fastcsv import count_columns, parse_int_csv
from marketlab.store.ingest._jit import kernel

NAME_RE = re.compile(
    r"^(?P<sym>[A-Za-z0-9.^_-]+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<t0>\d+)_(?P<t1>\d+)_(?P<kind>message|orderbook)_(?P<lvl>\d+)"
)
RAW_UNIT = 0.0001  # USD per LOBSTER price unit
DUMMY = 9999999999
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


def _int_frame(path: Path, data: bytes, ncols: int | None, names: list[str] | None, str_cols: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read a headerless CSV as strings and cast to Int64, naming the first bad cell on failure."""
    try:
        df = pl.read_csv(data, has_header=False, infer_schema=False, new_columns=names)
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(path, f"malformed CSV ({first[:160]})") from None
    if ncols is not None and df.width != ncols:
        raise DataError(path, f"expected {ncols} columns, found {df.width}", row=1)
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
            raise DataError(path, "not an integer", field=c, row=r + 1, value=df.get_column(c)[r])
    return typed


def _times_ns(path: Path, col: pl.Series, midnight_ns: int) -> np.ndarray:
    """Exact ns since epoch from 'seconds.fraction' strings."""
    s = col.str.strip_chars()
    parts = s.str.split_exact(".", 1).struct.unnest()
    secs = parts["field_0"].cast(pl.Int64, strict=False)
    frac = parts["field_1"].fill_null("").str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64, strict=False)
    bad = secs.is_null() | frac.is_null() | (secs < 0)
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "not a time in seconds after midnight", field="time", row=r + 1, value=col[r])
    out: np.ndarray = (secs.to_numpy() * 1_000_000_000 + frac.to_numpy() + midnight_ns).astype(np.int64)
    return out


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
    midnight_ns = int(midnight.timestamp()) * 1_000_000_000

    ratio = tick_size / RAW_UNIT
    if tick_size <= 0 or abs(ratio - round(ratio)) > 1e-9:
        raise DataError(mpath, "tick_size must be a positive multiple of 0.0001 USD", field="tick_size", value=tick_size)
    ratio = int(round(ratio))
    grid = price_grid / tick_size
    if abs(grid - round(grid)) > 1e-9 or grid < 1:
        raise DataError(mpath, "price_grid must be a multiple of tick_size", field="price_grid", value=price_grid)
    grid = int(round(grid))

    bpath = Path(orderbook_path) if orderbook_path is not None else None
    if bpath is not None and _name_info(bpath) and info and _pair_key(_name_info(bpath)) != _pair_key(info):
        raise DataError(bpath, f"orderbook file does not belong to message file {mpath.name} "
                               "(ticker, date, window or level differs)")
    # The orderbook file (the bulk of the bytes) is decompressed and parsed in a worker thread while the
    # message file is handled here: zlib and the numba parser release the GIL. Its errors surface only
    # after the message file validated, so the first reported problem is the same as read serially.
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(_load_book, bpath) if bpath is not None else None
        try:
            cols = _message_columns(mpath, midnight_ns)
            n = cols.shape[1]
            ts, typ, oid, size, raw_px, direc = cols

            def fail(mask: np.ndarray, field: str, problem: str, values: np.ndarray) -> None:
                if mask.any():
                    r = int(np.flatnonzero(mask)[0])
                    raise DataError(mpath, problem, field=field, row=r + 1, value=int(values[r]))

            fail((typ < 1) | (typ > 7), "type", "unknown message type (expected 1..7)", typ)
            book_msg = typ <= 5
            fail(book_msg & (size <= 0), "size", "non-positive size", size)
            fail((typ != 7) & (direc != 1) & (direc != -1), "direction", "direction must be 1 or -1", direc)
            fail((typ <= 4) & (oid <= 0), "order_id", "non-positive order id", oid)
            fail(book_msg & (raw_px <= 0), "price", "non-positive price", raw_px)
            if ratio != 1:
                fail(book_msg & (raw_px % ratio != 0), "price", f"price not a multiple of tick_size {tick_size}", raw_px)
            halt = typ == 7
            px = np.where(halt, 0, raw_px // ratio) if ratio != 1 else np.where(halt, 0, raw_px)
            fail((typ <= 4) & (px % grid != 0), "price", f"price off the tick grid ({price_grid} USD)", raw_px)
            if n > 1 and (ts[1:] < ts[:-1]).any():
                back = np.zeros(n, dtype=bool)
                back[1:] = ts[1:] < ts[:-1]
                fail(back, "time", "timestamp earlier than the previous row", ts)
            msg_cols = cols  # rows: ts, type, order_id, size, price, direction (reused in place)
            msg_cols[3] = np.where(halt, 0, size)
            msg_cols[4] = px
            msg_cols[5] = np.where(halt, 0, direc)
        except BaseException:
            if fut is not None:
                fut.cancel()
            raise
        book_cols = None
        levels = int(info.get("lvl", 0) or 0)
        if fut is not None:
            assert bpath is not None
            raw = fut.result()
            width = raw.shape[0]
            levels = width // 4
            named = _name_info(bpath).get("lvl")
            if named is not None and int(named) != levels:
                raise DataError(bpath, f"file name says level {int(named)} but rows have {width} columns "
                                       f"({levels} levels)", field="columns", value=width)
            if raw.shape[1] != n:
                raise DataError(bpath, f"has {raw.shape[1]} rows but the message file has {n}", field="rows",
                                value=raw.shape[1])
            book_cols = _normalise_book(bpath, raw, ratio, grid, price_grid)
    return LobsterDay(symbol, day, levels, tick_size, grid, msg_cols, book_cols, mpath, bpath)


def _message_columns(mpath: Path, midnight_ns: int) -> np.ndarray:
    """``int64[6, n]`` (ts ns UTC, type, order_id, size, raw price, direction) of a message file: the
    numba fast path, or the generic string path (which names the first bad cell) when that fails."""
    data = _read_bytes(mpath)
    cols = parse_int_csv(data, 6, dec_col=0) if count_columns(data) == 6 else None
    if cols is not None:
        cols[0] += midnight_ns
        return cols
    m = _int_frame(mpath, data, 6, MSG_COLS, str_cols=("time",))
    out = np.empty((6, m.height), dtype=np.int64)
    out[0] = _times_ns(mpath, m.get_column("time"), midnight_ns)
    for j, c in enumerate(MSG_COLS[1:], start=1):
        out[j] = m.get_column(c).to_numpy()
    return out


def _load_book(bpath: Path) -> np.ndarray:
    """``int64[4L, n]`` raw orderbook cells (LOBSTER units), fast path or generic path."""
    data = _read_bytes(bpath)
    width = count_columns(data)
    cols = parse_int_csv(data, width) if width > 0 and width % 4 == 0 else None
    if cols is not None:
        return cols
    b = _int_frame(bpath, data, None, None)
    if b.width % 4 != 0 or b.width == 0:
        raise DataError(bpath, f"orderbook needs 4 x levels columns, found {b.width}", row=1)
    return np.ascontiguousarray(b.to_numpy().astype(np.int64).T)


@kernel()
def _book_ok_nb(cols: np.ndarray, unit: int) -> bool:  # pragma: no cover - compiled
    """True when no size is negative and every real (non-dummy, size > 0) price is a positive multiple of
    ``unit`` (LOBSTER units per grid step)."""
    for j in range(0, cols.shape[0], 2):
        for i in range(cols.shape[1]):
            pxv = cols[j, i]
            szv = cols[j + 1, i]
            if szv < 0:
                return False
            if szv > 0 and pxv != DUMMY and pxv != -DUMMY and (pxv <= 0 or pxv % unit != 0):
                return False
    return True


@kernel()
def _book_to_ticks_nb(cols: np.ndarray, ratio: int) -> None:  # pragma: no cover - compiled
    """In place: real levels -> (price // ratio, size); dummy or empty levels -> (0, 0)."""
    for j in range(0, cols.shape[0], 2):
        for i in range(cols.shape[1]):
            pxv = cols[j, i]
            szv = cols[j + 1, i]
            if szv > 0 and pxv != DUMMY and pxv != -DUMMY:
                cols[j, i] = pxv // ratio
            else:
                cols[j, i] = 0
                cols[j + 1, i] = 0


def _normalise_book(bpath: Path, cols: np.ndarray, ratio: int, grid: int, price_grid: float) -> np.ndarray:
    """Validate and convert raw orderbook columns in place (see :func:`_book_to_ticks_nb`)."""
    if not _book_ok_nb(cols, ratio * grid):
        arr = cols.T  # row-major order: the first bad cell reported is the first in file order
        pxc, szc = arr[:, 0::2], arr[:, 1::2]
        if (szc < 0).any():
            r, c = np.argwhere(szc < 0)[0]
            raise DataError(bpath, "negative size", field=_book_col(2 * c + 1), row=int(r) + 1, value=int(szc[r, c]))
        real = (np.abs(pxc) != DUMMY) & (szc > 0)
        r, c = np.argwhere(real & ((pxc <= 0) | (pxc % (ratio * grid) != 0)))[0]
        raise DataError(bpath, f"price off the tick grid ({price_grid} USD)", field=_book_col(2 * c), row=int(r) + 1,
                        value=int(pxc[r, c]))
    _book_to_ticks_nb(cols, ratio)
    a1, b1 = cols[0, 0], cols[2, 0]
    if a1 > 0 and b1 > 0 and b1 >= a1:
        raise DataError(bpath, "crossed initial book (best bid >= best ask)", field="bid_px_1", row=1, value=int(b1 * ratio))
    return cols


def _book_col(j: int) -> str:
    level = j // 4 + 1
    return ["ask_px", "ask_sz", "bid_px", "bid_sz"][j % 4] + f"_{level}"


def events_frame(day: LobsterDay) -> pl.DataFrame:
    """Events in EVENTS_SCHEMA (``seq`` = row order within the day)."""
    ts, typ, oid, size, px, side = day.msg_cols
    n = ts.shape[0]
    return pl.DataFrame(
        [
            pl.Series("ts", ts),
            pl.repeat(day.symbol, n, dtype=pl.String, eager=True).alias("symbol"),
            pl.Series("seq", np.arange(n, dtype=np.int64)),
            pl.Series("type", typ.astype(np.int8)),
            pl.Series("order_id", oid),
            pl.Series("side", side.astype(np.int8)),
            pl.Series("price", px),
            pl.Series("size", size),
        ]
    )


def book_frame(day: LobsterDay) -> pl.DataFrame:
    """Book snapshots in ``book_schema(levels)``; row i is the book after event ``seq`` i."""
    assert day.book_cols is not None
    n = day.book_cols.shape[1]
    cols = [pl.Series("ts", day.msg_cols[0]), pl.repeat(day.symbol, n, dtype=pl.String, eager=True).alias("symbol"),
            pl.Series("seq", np.arange(n, dtype=np.int64))]
    cols += [pl.Series(_book_col(j), day.book_cols[j]) for j in range(4 * day.levels)]
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
            raise DataError(p, "not a LOBSTER file name (expected TICKER_YYYY-MM-DD_<start ms>_<end ms>_"
                               "message_<L>.csv or ..._orderbook_<L>.csv, optionally .gz/.xz)")
        else:
            files.append(p)
    msgs: dict[tuple[str, str, int, int, int], Path] = {}
    books: dict[tuple[str, str, int, int, int], Path] = {}
    for f in files:
        info = _name_info(f)
        key = _pair_key(info)
        table = msgs if info["kind"] == "message" else books
        if key in table and table[key] != f:
            raise DataError(f, f"two {info['kind']} files for {key[0]} {key[1]} level {key[4]} "
                               f"(the other is {table[key].name})")
        table[key] = f
    if not msgs:
        raise DataError(paths[0] if paths else None, "no LOBSTER message file (…_message_<L>.csv[.gz]) given")
    for key, b in books.items():
        if key not in msgs:
            raise DataError(b, "orderbook file has no message file of the same ticker, date, window and level"
                               f"{_nearest(key, msgs)}")
    if need_book:
        for key, m in msgs.items():
            if key not in books:
                raise DataError(m, "message file has no orderbook file of the same ticker, date, window and "
                                   f"level{_nearest(key, books)} (pass book=False to ingest messages only)")
    return [(m, books.get(key)) for key, m in msgs.items()]


def _nearest(key: tuple[str, str, int, int, int], others: dict[tuple[str, str, int, int, int], Path]) -> str:
    """' (given: <name>)' for the partner candidate of the same ticker, or any, to show what differs."""
    same = [p for k, p in others.items() if k[0] == key[0]] or list(others.values())
    return f" (given: {same[0].name})" if same else ""


def parse(paths: list[Path], *, dataset: str | None = None, **options: Any) -> Any:
    """Pure parser: LOBSTER files -> :class:`~marketlab.store.IngestBatch` with ``events`` and ``book``.

    ``dataset`` defaults to ``lobster``. Options: see the module docstring.
    """
    from marketlab.store import IngestBatch, Instrument

    want_book = bool(options.pop("book", True))
    known = {"symbol", "date", "tick_size", "price_grid"}
    unknown = set(options) - known
    if unknown:
        raise DataError(None, f"unknown lobster option(s) {sorted(unknown)} (known: {sorted(known | {'book'})})")
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
