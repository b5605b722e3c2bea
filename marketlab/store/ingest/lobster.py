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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import EVENTS_SCHEMA, book_schema

NAME_RE = re.compile(
    r"^(?P<sym>[A-Za-z0-9.^_-]+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<t0>\d+)_(?P<t1>\d+)_(?P<kind>message|orderbook)_(?P<lvl>\d+)"
)
RAW_UNIT = 0.0001  # USD per LOBSTER price unit
DUMMY = 9999999999
MSG_COLS = ["time", "type", "order_id", "size", "price", "direction"]


@dataclass
class LobsterDay:
    """One LOBSTER day as arrays.

    ``msgs``: ``int64[n, 6]`` = ts (ns UTC), type, order_id, size (shares), price (ticks), direction (+1/-1).
    ``book``: ``int64[n, 4*levels]`` (ticks / shares, empty levels 0) or None when not read.
    ``grid``: price grid in ticks (order-entry increment: resting prices are multiples of it).
    """

    symbol: str
    date: dt.date
    levels: int
    tick_size: float
    grid: int
    msgs: np.ndarray
    book: np.ndarray | None
    message_path: Path
    orderbook_path: Path | None


def _name_info(path: Path) -> dict[str, str]:
    m = NAME_RE.match(path.name)
    return m.groupdict() if m else {}


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
    return (secs.to_numpy() * 1_000_000_000 + frac.to_numpy() + midnight_ns).astype(np.int64)


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

    m = _int_frame(mpath, _read_bytes(mpath), 6, MSG_COLS, str_cols=("time",))
    n = m.height
    ts = _times_ns(mpath, m.get_column("time"), midnight_ns)
    typ = m.get_column("type").to_numpy()
    oid = m.get_column("order_id").to_numpy()
    size = m.get_column("size").to_numpy()
    raw_px = m.get_column("price").to_numpy()
    direc = m.get_column("direction").to_numpy()

    def fail(mask: np.ndarray, field: str, problem: str, values: np.ndarray) -> None:
        if mask.any():
            r = int(np.flatnonzero(mask)[0])
            raise DataError(mpath, problem, field=field, row=r + 1, value=int(values[r]))

    fail(~np.isin(typ, [1, 2, 3, 4, 5, 6, 7]), "type", "unknown message type (expected 1..7)", typ)
    book_msg = typ <= 5
    fail(book_msg & (size <= 0), "size", "non-positive size", size)
    fail((typ != 7) & (direc != 1) & (direc != -1), "direction", "direction must be 1 or -1", direc)
    fail((typ <= 4) & (oid <= 0), "order_id", "non-positive order id", oid)
    fail(book_msg & (raw_px <= 0), "price", "non-positive price", raw_px)
    fail(book_msg & (raw_px % ratio != 0), "price", f"price not a multiple of tick_size {tick_size}", raw_px)
    px = np.where(typ == 7, 0, raw_px // ratio)
    fail((typ <= 4) & (px % grid != 0), "price", f"price off the tick grid ({price_grid} USD)", raw_px)
    back = np.zeros(n, dtype=bool)
    back[1:] = ts[1:] < ts[:-1]
    fail(back, "time", "timestamp earlier than the previous row", ts)
    sz = np.where(typ == 7, 0, size)
    msgs = np.stack([ts, typ, oid, sz, px, np.where(typ == 7, 0, direc)], axis=1).astype(np.int64)

    book = None
    levels = int(info.get("lvl", 0) or 0)
    bpath = Path(orderbook_path) if orderbook_path is not None else None
    if bpath is not None:
        b = _int_frame(bpath, _read_bytes(bpath), None, None)
        if b.width % 4 != 0 or b.width == 0:
            raise DataError(bpath, f"orderbook needs 4 x levels columns, found {b.width}", row=1)
        levels = b.width // 4
        if b.height != n:
            raise DataError(bpath, f"has {b.height} rows but the message file has {n}", field="rows", value=b.height)
        arr = b.to_numpy().astype(np.int64)
        pxc = arr[:, 0::2]
        szc = arr[:, 1::2]
        dummy = (np.abs(pxc) == DUMMY)
        if (szc < 0).any():
            r, c = np.argwhere(szc < 0)[0]
            raise DataError(bpath, "negative size", field=_book_col(2 * c + 1), row=int(r) + 1, value=int(szc[r, c]))
        real = ~dummy & (szc > 0)
        badpx = real & ((pxc <= 0) | (pxc % (ratio * grid) != 0))
        if badpx.any():
            r, c = np.argwhere(badpx)[0]
            raise DataError(bpath, f"price off the tick grid ({price_grid} USD)", field=_book_col(2 * c), row=int(r) + 1, value=int(pxc[r, c]))
        arr[:, 0::2] = np.where(real, pxc // ratio, 0)
        arr[:, 1::2] = np.where(real, szc, 0)
        a1, b1 = arr[0, 0], arr[0, 2]
        if a1 > 0 and b1 > 0 and b1 >= a1:
            raise DataError(bpath, "crossed initial book (best bid >= best ask)", field="bid_px_1", row=1, value=int(b1 * ratio))
        book = arr
    return LobsterDay(symbol, day, levels, tick_size, grid, msgs, book, mpath, bpath)


def _book_col(j: int) -> str:
    level = j // 4 + 1
    return ["ask_px", "ask_sz", "bid_px", "bid_sz"][j % 4] + f"_{level}"


def events_frame(day: LobsterDay) -> pl.DataFrame:
    """Events in EVENTS_SCHEMA (``seq`` = row order within the day)."""
    m = day.msgs
    df = pl.DataFrame(
        {
            "ts": m[:, 0],
            "symbol": [day.symbol] * m.shape[0],
            "seq": np.arange(m.shape[0], dtype=np.int64),
            "type": m[:, 1].astype(np.int8),
            "order_id": m[:, 2],
            "side": m[:, 5].astype(np.int8),
            "price": m[:, 4],
            "size": m[:, 3],
        }
    )
    return df.select([pl.col(c).cast(t) for c, t in EVENTS_SCHEMA.items()])


def book_frame(day: LobsterDay) -> pl.DataFrame:
    """Book snapshots in ``book_schema(levels)``; row i is the book after event ``seq`` i."""
    assert day.book is not None
    schema = book_schema(day.levels)
    cols: dict[str, Any] = {"ts": day.msgs[:, 0], "symbol": [day.symbol] * day.book.shape[0],
                            "seq": np.arange(day.book.shape[0], dtype=np.int64)}
    for j in range(4 * day.levels):
        cols[_book_col(j)] = day.book[:, j]
    return pl.DataFrame(cols).select([pl.col(c).cast(t) for c, t in schema.items()])


def pair_files(paths: list[Path]) -> list[tuple[Path, Path | None]]:
    """Pair each message file with the orderbook file of the same ticker/date/level (directories expand)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and _name_info(f)))
        else:
            files.append(p)
    msgs = [f for f in files if _name_info(f).get("kind") == "message"]
    books = {f.name.replace("_orderbook_", "_message_"): f for f in files if _name_info(f).get("kind") == "orderbook"}
    if not msgs:
        raise DataError(paths[0] if paths else None, "no LOBSTER message file (…_message_<L>.csv[.gz]) given")
    return [(m, books.get(m.name)) for m in msgs]


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
    ev, bk, instruments, meta = [], [], {}, {"levels": {}}
    for mpath, bpath in pair_files(list(paths)):
        day = read_lobster(mpath, bpath if want_book else None, **options)
        ev.append(events_frame(day))
        if day.book is not None:
            bk.append(book_frame(day))
        instruments[day.symbol] = Instrument(day.symbol, tick_size=day.tick_size, lot_size=1.0, currency="USD")
        meta["levels"][f"{day.symbol}/{day.date}"] = day.levels
    frames = {"events": pl.concat(ev)}
    if bk:
        levels = {b.width for b in bk}
        frames["book"] = pl.concat(bk) if len(levels) == 1 else pl.concat(bk, how="diagonal").fill_null(0)
    meta["source"] = "LOBSTER"
    return IngestBatch(dataset=dataset or "lobster", frames=frames, instruments=list(instruments.values()), meta=meta)
