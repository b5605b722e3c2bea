"""[ohlcv] OHLCV CSV/Parquet -> bars (intraday) or panel (daily).

Accepted layouts (header names are matched case-insensitively):

* **Binance klines**, as published by data.binance.vision: no header, 12 columns
  ``open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_base, taker_quote,
  ignore``; ``open_time`` in ms, µs for spot files from 2025 on: the unit is detected **per row** from the
  magnitude (13 digits ms, 16 µs), so a file or folder mixing both lands at the right times.
  ``vwap = quote_volume / volume``, ``trades`` and the taker buys (``taker_base`` -> ``taker_buy_volume``,
  ``taker_quote`` -> ``taker_buy_quote_volume``) come from the file; a headed file's taker columns are read
  under the names of :data:`TAKER_NAMES`, and a file without them stores them null. The daily/monthly ``.zip`` archives
  (one CSV member each) are read directly, and a folder of them is one ingest; the symbol and the bar
  interval come from the Binance name ``ETHUSDT-1m-2024-01.csv`` / ``BTCUSDT-1m-2022-01-01.zip``.
* **A single-symbol file** with a time column (``date``/``datetime``/``timestamp``/``time``/``open_time``)
  and ``open, high, low, close, volume``; the symbol comes from the file name up to the first ``_``
  (``BTCUSDT_1m_2024-01.csv.gz`` -> ``BTCUSDT``, ``GSPC_daily.csv.gz`` -> ``GSPC``) or ``symbol=``.
* **A long panel** with a ``symbol``/``name``/``ticker``/``code`` column (``sp500_5yr``).

Daily data (every timestamp at midnight) becomes a ``panel``; anything finer becomes ``bars`` (``kind=``
overrides). Prices stay floats: instruments get ``tick_size``/``lot_size`` from the options (default 0.01/1).

Traps of the shipped datasets, handled here:

* ``binance_spot_1m_btc_eth_2024_01``: ``datetime`` is the bar OPEN time in UTC without a zone suffix;
  the range is inclusive of 2024-02-01 00:00 (44,641 bars, not 44,640). ``volume`` is base-asset volume;
  there is no quote volume, so ``vwap`` and ``trades`` are null rather than invented.
* ``sp500_5yr``: one row (AOS 2014-05-19) has high < low and close > high - a vendor error kept as
  delivered so the row count stays 619,040; such rows are counted in ``meta["ohlc_inconsistent_rows"]``.
  Ticker column is ``Name``; 11 empty ``open`` and 8 empty ``high``/``low`` cells stay null
  (they are vendor gaps, not zeros); prices are split- but not dividend-adjusted, so ``adj_factor`` is 1.0
  meaning "as delivered", and the universe is survivorship-biased (the early-2018 list).
* ``us_index_daily/GSPC_daily``: no ``high``/``low`` columns at all: they are stored null, never made up
  from open/close. Early rows (1970s) have zero volume, which is allowed.
* ``us_index_daily/SPY_daily_adjusted``: sorted NEWEST FIRST (re-sorted here); ``adjusted_close`` gives
  ``adj_factor = adjusted_close / close`` (dividends + splits); ``dividend_amount``/``split_coefficient``
  are dropped.

Gaps are reported, never filled: for bars, every step between consecutive bars of a symbol larger than
the bar interval (from the file name, else the smallest step seen) is a gap; ``meta["notes"]["gaps"]``
gives their count, the missing bars and the first few ranges, and ``zero_volume_bars`` counts flat
bars. Binance 2022-2023 trap: the 2023-03-24 spot halt is 72 zero-volume bars (11:28-12:39 UTC) then
80 missing minutes (12:40-13:59): one gap of 80 bars per symbol, rows as delivered.

Streaming: text files are read in line-aligned chunks and :func:`iter_batches` yields bars batches of at
most ``batch_rows`` rows, so memory is bounded by the batch, not the file. Daily panels (small) and
newest-first files are collected whole (a panel's duplicate check needs all of it).

Rejected with a one-line error: a wrong header (no time column or a missing price column), non-numeric
cells, a truncated file (a last row missing fields, a cut gzip stream), NaN/negative/zero prices,
timestamps out of order or repeated within a single-symbol file, and duplicate (date, symbol) rows.
"""

from __future__ import annotations

import inspect
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import BARS_SCHEMA, PANEL_SCHEMA
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S
from marketlab.store.ingest._io import dataset_from, expand, iter_chunks, read_bytes
from marketlab.store.ingest._io import progress as progress_bar
from marketlab.store.types import IngestBatch, Instrument, check_symbol

TIME_NAMES = ("date", "datetime", "timestamp", "time", "open_time")
SYMBOL_NAMES = ("symbol", "name", "ticker", "code")
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "trades", "taker_base", "taker_quote", "ignore")
KLINE_SCHEMA: dict[str, pl.DataType] = {
    c: (pl.Int64() if c in ("open_time", "close_time", "trades") else pl.Float64()) for c in KLINE_COLUMNS
}
KLINE_SCHEMA["ignore"] = pl.String()
#: Bars taker columns and the file column names they are read from (Binance kline names first).
TAKER_NAMES: dict[str, tuple[str, ...]] = {
    "taker_buy_volume": ("taker_base", "taker_buy_base", "taker_buy_base_asset_volume", "taker_buy_volume"),
    "taker_buy_quote_volume": ("taker_quote", "taker_buy_quote", "taker_buy_quote_asset_volume", "taker_buy_quote_volume"),
}
FLOAT_NAMES = ("open", "high", "low", "close", "volume", "quote_volume", "vwap", "amount", "adjusted_close",
               "adj_close", "adjclose", *(a for names in TAKER_NAMES.values() for a in names))
PATTERNS = ("*.csv", "*.csv.gz", "*.csv.xz", "*.zip", "*.parquet")
BATCH_ROWS = 1_000_000  # rows per yielded bars batch (the memory bound of a streamed ingest)
MAX_GAPS_LISTED = 5
# Binance archive names: SYMBOL-INTERVAL-YYYY-MM[-DD](.csv|.zip); INTERVAL like 1s, 1m, 15m, 1h, 1d, 1w, 1mo.
_BINANCE_NAME = re.compile(r"^(?P<sym>[A-Za-z0-9]+)-(?P<iv>\d+(?:s|m|h|d|w|mo|M))-\d{4}-\d{2}(?:-\d{2})?(?:\.|$)")
_UNDERSCORE_IV = re.compile(r"^\d+(?:s|m|h|d|w)$")
P = ParamSpec("P")
_UNIT_NS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": NS_PER_DAY, "w": 7 * NS_PER_DAY}


def symbol_from_name(name: str) -> str:
    """``ETHUSDT-1m-2024-01.csv`` / ``BTCUSDT-1m-2022-01-01.zip`` -> the Binance symbol; otherwise the name up
    to the first ``_`` or ``.`` (``BTCUSDT_1m_2024-01.csv.gz`` -> ``BTCUSDT``, ``GSPC_daily.csv.gz`` -> ``GSPC``)."""
    m = _BINANCE_NAME.match(name)
    if m:
        return m.group("sym")
    return name.split("_")[0].split(".")[0]


def interval_from_name(name: str) -> int | None:
    """Bar interval in ns named by the file (``-1m-`` or ``_1m_``); None when not named or not fixed (1mo)."""
    m = _BINANCE_NAME.match(name)
    iv = m.group("iv") if m else next((t for t in name.split(".")[0].split("_")[1:] if _UNDERSCORE_IV.match(t)), None)
    if iv is None or iv.endswith(("mo", "M")):
        return None
    return int(iv[:-1]) * _UNIT_NS[iv[-1]]


def merge_batches(batches: list[IngestBatch]) -> IngestBatch:
    """One batch from several of one dataset: frames concatenated per kind, instruments united, meta updated
    in order (the last batch carries the summary)."""
    frames: dict[str, list[pl.DataFrame]] = {}
    instruments: dict[str, Instrument] = {}
    meta: dict[str, Any] = {}
    for b in batches:
        for k, df in b.frames.items():
            frames.setdefault(k, []).append(df)
        instruments.update({i.symbol: i for i in b.instruments})
        meta.update(b.meta)
    return IngestBatch(dataset=batches[0].dataset, frames={k: pl.concat(v) for k, v in frames.items()},
                       instruments=list(instruments.values()), meta=meta)


@dataclass
class _GapState:
    """Per-symbol running state of a bars stream: last ts, interval, and the gaps found so far."""

    named_interval: dict[str, int | None] = field(default_factory=dict)
    interval: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    count: int = 0
    missing: int = 0
    first: list[dict[str, Any]] = field(default_factory=list)
    zero_volume: int = 0

    def update(self, frame: pl.DataFrame, named: int | None) -> None:
        """Account ``frame`` (bars of one or more symbols, ascending ts per symbol within a single-symbol file)."""
        self.zero_volume += int((frame["volume"] == 0).sum())
        parts = [frame] if frame["symbol"].n_unique() == 1 else frame.sort("symbol", "ts").partition_by("symbol")
        for part in parts:
            sym = str(part["symbol"][0])
            ts = part["ts"].to_numpy()
            iv = self.interval.get(sym) or named
            if iv is None:
                d = np.diff(ts)
                d = d[d > 0]
                if d.size == 0:
                    self.last[sym] = max(int(ts[-1]), self.last.get(sym, int(ts[-1])))
                    continue
                iv = int(d.min())
            self.interval[sym] = iv
            prev = self.last.get(sym)
            full = ts if prev is None or ts[0] <= prev else np.concatenate(([prev], ts))
            step = np.diff(full)
            at = np.flatnonzero(step > iv)
            for i in at:
                lo, hi = int(full[i]), int(full[i + 1])
                n = (hi - lo) // iv - 1
                self.count += 1
                self.missing += max(n, 0)
                if len(self.first) < MAX_GAPS_LISTED:
                    self.first.append({"symbol": sym, "from": _iso(lo + iv), "to": _iso(hi - iv), "missing": int(n)})
            self.last[sym] = max(int(ts[-1]), prev if prev is not None else int(ts[-1]))

    def notes(self) -> dict[str, Any]:
        """The user-facing summary (``meta["notes"]``, shown in the ingest report)."""
        return {"gaps": {"count": self.count, "missing_bars": self.missing, "first": self.first},
                "zero_volume_bars": self.zero_volume}


def _iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[s]")) + "Z"


def iter_batches(
    paths: list[Path],
    *,
    dataset: str | None = None,
    kind: str | None = None,
    symbol: str | None = None,
    tick_size: float = 0.01,
    lot_size: float = 1.0,
    currency: str = "USD",
    progress: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[IngestBatch]:
    """Stream OHLCV files as :class:`IngestBatch`es: bars batches of at most ``batch_rows`` rows as the files
    are read, then one batch with the daily ``panel`` (if any) and the summary ``meta`` (gaps, counts).

    A :class:`DataError` may be raised after earlier batches were yielded: the writer must then record
    nothing (see ``notes/store_api.md``).
    """
    if kind not in (None, "bars", "panel"):
        raise DataError(None, f"kind must be 'bars' or 'panel', got {kind!r}", field="kind")
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise DataError(None, "batch_rows must be a positive integer", field="batch_rows", value=batch_rows)
    plist = [Path(p) for p in paths]
    files = expand(plist, PATTERNS)
    name = dataset or dataset_from(plist)
    symbols: set[str] = set()
    gaps = _GapState()
    buf: list[pl.DataFrame] = []
    buffered = 0
    panels: list[pl.DataFrame] = []
    bad_ohlc = 0

    def instruments(syms: set[str]) -> list[Instrument]:
        return [Instrument(s, tick_size, lot_size, currency) for s in sorted(syms)]

    def take() -> IngestBatch:
        """The next bars batch: the first ``batch_rows`` buffered rows (the rest stays buffered)."""
        nonlocal buf, buffered
        frame = pl.concat(buf, rechunk=False)
        out, rest = frame.head(batch_rows), frame.slice(batch_rows)
        buf, buffered = ([rest] if rest.height else []), rest.height
        return IngestBatch(name, {"bars": out}, instruments(set(out["symbol"].unique().to_list())),
                           {"source": "ohlcv"})

    def flush(final: bool) -> Iterator[IngestBatch]:
        while buffered >= batch_rows or (final and buffered):
            # no local of this generator holds the batch while it is out: the writer frees it as it goes
            box = [take()]
            yield box.pop()

    # parse in 1/32 batches (at least 4,096 rows): what a chunk leaves in the allocator stays small next to
    # the batch (peak RSS over a 3 M-row file: 1/8 -> 3.7x the batch, 1/32 -> 1.8x; benchmarks/ingest_memory.py)
    chunk_rows = max(min(batch_rows, 4096), batch_rows // 32)
    units = _units(files, chunk_rows)
    for group in progress_bar(units, enabled=progress, desc="ohlcv", total=len(units)):
        named = interval_from_name(group[0].name)
        mode = kind  # None: undecided while every timestamp seen in this unit is a midnight
        held: list[pl.DataFrame] = []
        for frame in _unit_frames(group, symbol if len(files) == 1 else None, chunk_rows):
            bad_ohlc += _inconsistent(frame)
            symbols.update(frame["symbol"].unique().to_list())
            if mode is None:
                if bool((frame["ts"] % NS_PER_DAY == 0).all()):
                    held.append(frame)
                    continue
                mode = "bars"
                frames_now, held = [*held, frame], []
            else:
                frames_now = [frame]
            if mode == "panel":
                panels.extend(_to_panel(x) for x in frames_now)
                continue
            for x in frames_now:
                gaps.update(x, named)
                buf.append(_to_bars(x))
                buffered += x.height
            yield from flush(False)
        panels.extend(_to_panel(x) for x in held)
    yield from flush(True)
    frames: dict[str, pl.DataFrame] = {}
    if panels:
        panel = pl.concat(panels)
        dup = panel.select("date", "symbol").is_duplicated()
        if dup.any():
            r = int(dup.arg_true()[0])
            raise DataError(files[0] if len(files) == 1 else "ohlcv", "duplicate (date, symbol) row",
                            field="date", row=r + 1, value=f"{panel['date'][r]}, {panel['symbol'][r]}")
        frames["panel"] = panel.sort(["date", "symbol"])
    meta = {"source": "ohlcv", "files": [f.name for f in files], "ohlc_inconsistent_rows": bad_ohlc,
            "notes": gaps.notes() if gaps.interval else {}}
    psyms = set(frames["panel"]["symbol"].unique().to_list()) if frames else set()
    yield IngestBatch(name, frames, instruments(psyms if frames else symbols), meta)


def _collected(stream: Callable[P, Iterator[IngestBatch]]) -> Callable[P, IngestBatch]:
    """``stream``'s batches merged into one, with ``stream``'s signature (checked by mypy)."""

    def collected(*args: P.args, **kwargs: P.kwargs) -> IngestBatch:
        return merge_batches(list(stream(*args, **kwargs)))

    # help() and inspect.signature show stream's parameters with this return type
    collected.__signature__ = inspect.signature(stream).replace(return_annotation="IngestBatch")  # type: ignore[attr-defined]
    return collected


parse = _collected(iter_batches)
parse.__name__ = parse.__qualname__ = "parse"
parse.__doc__ = """Parse OHLCV files into one batch of ``bars`` (intraday) and/or ``panel`` (daily) frames.

The one-batch Python convenience over :func:`iter_batches` (same arguments, rows and checks); the store's
``ingest/ohlcv`` id streams :func:`iter_batches` instead, so memory stays bounded by ``batch_rows``.
``symbol`` overrides the name taken from the file (single-symbol files only).
"""


def _size_hint(path: Path) -> int:
    """Decompressed bytes of a file, cheaply: exact for ``.zip`` (central directory), a guess for gz/xz."""
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                return sum(i.file_size for i in zf.infolist())
        except (zipfile.BadZipFile, OSError):
            return 1 << 62  # read on its own; its own path reports the corruption
    return path.stat().st_size * (10 if path.suffix in (".gz", ".xz") else 1)


def _units(files: list[Path], chunk_rows: int) -> list[list[Path]]:
    """Files in order, consecutive small Binance archives of one symbol grouped (at most one chunk of bytes
    per group): a folder of 1,460 daily zips is parsed as ~a dozen chunks instead of 1,460 tiny ones, which
    is where the time went (polars' per-call overhead). Everything else is a group of one."""
    limit = _chunk_bytes(chunk_rows)
    units: list[list[Path]] = []
    size = 0
    key: str | None = None
    for f in files:
        m = _BINANCE_NAME.match(f.name)
        hint = _size_hint(f) if m and f.suffix != ".parquet" else limit
        k = m.group("sym") + "/" + m.group("iv") if m else None
        if k is not None and k == key and size + hint < limit:
            units[-1].append(f)
            size += hint
        else:
            units.append([f])
            key, size = (k, hint) if k is not None and hint < limit else (None, 0)
    return units


def _unit_frames(group: list[Path], symbol: str | None, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Validated frames of a group of files: one parse of the joined bytes when every file is headerless
    klines and the whole is clean and in order; otherwise (or on any error) file by file, which names the
    file, row and field of the first problem exactly as a lone file would."""
    if len(group) > 1:
        datas = [read_bytes(f) for f in group]
        if all(d[:1].isdigit() for d in datas):
            blob = b"".join(d if d.endswith(b"\n") else d + b"\n" for d in datas)
            del datas
            layout = _Layout(list(KLINE_COLUMNS), header=False, klines=True)
            try:
                frame = _typed(_read_chunk(group[0], blob, layout), group[0], 0, layout, None)
                _check_order(frame, group[0], None, 0)
            except DataError:
                pass
            else:
                yield frame
                return
    for f in group:
        yield from _file_frames(f, symbol, chunk_rows)


def _inconsistent(df: pl.DataFrame) -> int:
    """Rows where high/low do not bracket open/close (vendor errors kept as delivered, counted in meta)."""
    lo = pl.min_horizontal("open", "close")
    hi = pl.max_horizontal("open", "close")
    bad = (pl.col("high") < hi) | (pl.col("low") > lo) | (pl.col("high") < pl.col("low"))
    return int(df.select(bad.fill_null(False).sum()).item())


def read_file(path: Path, *, symbol: str | None = None) -> tuple[pl.DataFrame, bool]:
    """One whole file -> (frame with ``ts`` (int ns UTC), ``symbol``, OHLCV floats and extras, is_daily)."""
    frame = pl.concat(list(_file_frames(Path(path), symbol, 1 << 62)))
    return frame, bool((frame["ts"] % NS_PER_DAY == 0).all())


@dataclass
class _Layout:
    """Column names of a file (from its header, or the Binance kline layout) and whether it has a header."""

    names: list[str]
    header: bool
    klines: bool


def _layout(path: Path, first_line: bytes) -> _Layout:
    cells = [c.strip() for c in first_line.decode("utf-8", errors="replace").rstrip("\r\n").split(",")]
    if _is_number(cells[0]):  # headerless: Binance klines
        if len(cells) != len(KLINE_COLUMNS):
            raise DataError(path, f"headerless file with {len(cells)} columns; Binance klines have 12",
                            row=1, value=",".join(cells)[:80])
        return _Layout(list(KLINE_COLUMNS), header=False, klines=True)
    names = [c.lower() for c in cells]
    tcol = next((c for c in TIME_NAMES if c in names), None)
    if tcol is None:
        raise DataError(path, f"wrong header: no time column (one of {', '.join(TIME_NAMES)})",
                        value=",".join(names)[:120])
    missing = [c for c in ("open", "close", "volume") if c not in names]
    if missing:
        raise DataError(path, f"wrong header: missing column(s) {missing}", value=",".join(names)[:120])
    if len(set(names)) != len(names):
        raise DataError(path, "wrong header: a column name repeats", value=",".join(names)[:120])
    return _Layout(names, header=True, klines=False)


def _raw_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pl.DataFrame, int, _Layout]]:
    """(frame, index of its first data row, layout) per chunk; kline chunks come typed, others as strings."""
    if path.suffix == ".parquet":
        lf = pl.scan_parquet(path)
        names = [c.strip().lower() for c in lf.collect_schema().names()]
        _layout(path, ",".join(names).encode())  # same header checks as a CSV
        plain = _Layout(names, header=True, klines=False)
        total = lf.select(pl.len()).collect().item()
        for off in range(0, max(total, 1), chunk_rows):
            df = lf.slice(off, chunk_rows).collect()
            df.columns = names
            yield df.cast(pl.String), off, plain
        return
    layout: _Layout | None = None
    row0 = 0
    for data in iter_chunks(path, _chunk_bytes(chunk_rows, _line_bytes(path))):
        if layout is None:
            if not data.strip():
                continue
            data = data.lstrip(b"\r\n")
            end = data.find(b"\n")
            first = data if end < 0 else data[: end + 1]
            layout = _layout(path, first)
            if layout.header:
                data = data[len(first):]
        if not data.strip():
            continue
        df = _read_chunk(path, data, layout)
        yield df, row0, layout
        row0 += df.height
    if layout is None:
        raise DataError(path, "empty file")
    if row0 == 0:
        raise DataError(path, "no data rows")


def _chunk_bytes(chunk_rows: int, line_bytes: int = 128) -> int:
    """Bytes of a chunk of about ``chunk_rows`` lines (at least 64 KiB, at most 1 GiB)."""
    return int(min(max(chunk_rows * line_bytes, 1 << 16), 1 << 30))


def _line_bytes(path: Path) -> int:
    """Mean line length of the file's first 64 KiB (decompressed), so chunks hold ~the rows asked for."""
    first = next(iter_chunks(path, 1 << 16), b"")
    return max(16, len(first) // max(first.count(b"\n"), 1))


def _read_chunk(path: Path, data: bytes, layout: _Layout) -> pl.DataFrame:
    if layout.klines:
        try:  # typed fast path; anything odd goes through the string path, which names the bad cell
            df = pl.read_csv(data, has_header=False, schema=KLINE_SCHEMA)
            if df.select(pl.any_horizontal(pl.all().is_null()).any()).item() is False:
                return df
        except (pl.exceptions.PolarsError, ValueError):
            pass
    numeric = {c: pl.Float64 for c in layout.names if c in FLOAT_NAMES}
    if numeric:
        try:  # typed price/volume columns (no string copies); anything odd goes through the string path
            df = pl.read_csv(data, has_header=False, infer_schema=False, new_columns=layout.names,
                             schema_overrides=numeric)
            if df.width == len(layout.names):
                return df
        except (pl.exceptions.PolarsError, ValueError):
            pass
    try:
        df = pl.read_csv(data, has_header=False, infer_schema=False, new_columns=layout.names)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"malformed CSV ({first[:160]})") from None
    if df.width != len(layout.names):
        raise DataError(path, f"rows have {df.width} fields, the header {len(layout.names)}")
    return df


def _file_frames(path: Path, symbol: str | None, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Validated frames (``ts``, ``symbol``, OHLCV floats, extras) of one file, in file order chunk by chunk.

    Single-symbol files must be strictly increasing in time across chunks; a newest-first file (SPY) is
    collected whole and reversed.
    """
    last: int | None = None
    chunks = _raw_chunks(path, chunk_rows)
    for raw, row0, layout in chunks:
        frame = _typed(raw, path, row0, layout, symbol)
        single = not any(c in layout.names for c in SYMBOL_NAMES)
        if not single:
            yield frame
            continue
        ts = frame["ts"]
        if last is None and ts.len() > 1 and bool((ts.diff().drop_nulls() < 0).all()):
            rest = [frame] + [_typed(r, path, o, lay, symbol) for r, o, lay in chunks]
            whole = pl.concat(rest).reverse()  # newest-first vendor export
            _check_order(whole, path, None, 0, reversed_=True)
            yield whole
            return
        _check_order(frame, path, last, row0)
        last = int(ts[-1])
        yield frame


def _check_order(frame: pl.DataFrame, path: Path, last: int | None, row0: int, *, reversed_: bool = False) -> None:
    """Strictly increasing ``ts`` within ``frame`` and after ``last`` (the previous chunk's last ts)."""
    ts = frame["ts"]
    d = ts.diff()
    if last is not None:
        d[0] = ts[0] - last
    bad = (d <= 0).fill_null(False)
    if bad.any():
        r = int(bad.arg_true()[0])
        row = (frame.height - r if reversed_ else r + 1) + row0
        raise DataError(path, "timestamps out of order or repeated", field="time", row=row, value=str(
            pl.Series([ts[r]]).cast(pl.Datetime("ns", "UTC"))[0]))


def _typed(raw: pl.DataFrame, path: Path, row0: int, layout: _Layout, symbol: str | None) -> pl.DataFrame:
    """One chunk (strings, or typed klines) -> validated typed frame. Errors name file, row (1-based data row
    of the file), field and value."""
    cols = raw.columns
    tcol = next(c for c in TIME_NAMES if c in cols)
    required = list(KLINE_COLUMNS) if layout.klines else [tcol, "close", "volume"]
    short = raw.select(pl.any_horizontal([pl.col(c).is_null() for c in required])).to_series()
    if short.any():  # a row with fewer fields than the header is read with nulls at the end: cut short
        r = int(short.arg_true()[0])
        raise DataError(path, "truncated row (missing fields)", row=row0 + r + 1,
                        value=",".join(str(v) for v in raw.row(r) if v is not None)[:80])
    out: dict[str, Any] = {"ts": _parse_time(raw.get_column(tcol), path, tcol, row0)}
    scol = next((c for c in SYMBOL_NAMES if c in cols), None)
    if scol is not None:
        sym = raw.get_column(scol).str.strip_chars()
        if sym.is_null().any():
            raise DataError(path, "empty symbol", field=scol, row=row0 + int(sym.is_null().arg_true()[0]) + 1)
        for s in sym.unique().to_list():
            check_symbol(s, source=str(path))
        out["symbol"] = sym.alias("symbol")
    else:
        name = symbol or symbol_from_name(path.name)
        check_symbol(name, source=str(path))
        out["symbol"] = pl.repeat(name, raw.height, dtype=pl.String, eager=True).alias("symbol")
    for c in ("open", "high", "low", "close", "volume"):
        out[c] = _float(raw, c, path, row0) if c in cols else pl.Series(c, [None] * raw.height, pl.Float64)
    if "quote_volume" in cols:
        qv = _float(raw, "quote_volume", path, row0)
        out["vwap"] = (qv / out["volume"]).fill_nan(None).alias("vwap")
    if "trades" in cols:
        out["trades"] = _float(raw, "trades", path, row0).cast(pl.Int64, strict=False)
        if out["trades"].null_count() > raw.get_column("trades").null_count():
            r = int((out["trades"].is_null() & raw.get_column("trades").is_not_null()).arg_true()[0])
            raise DataError(path, "not an integer", field="trades", row=row0 + r + 1, value=raw["trades"][r])
    for name, aliases in TAKER_NAMES.items():
        src = next((a for a in aliases if a in cols), None)
        if src is not None:
            out[name] = _float(raw, src, path, row0).alias(name)
    for alias in ("adjusted_close", "adj_close", "adjclose"):
        if alias in cols:
            out["adj_close"] = _float(raw, alias, path, row0).alias("adj_close")
    for c in ("vwap", "amount"):
        if c in cols and c not in out:
            out[c] = _float(raw, c, path, row0)
    frame = pl.DataFrame(out)
    _check_values(frame, path, row0)
    return frame


def _float(df: pl.DataFrame, col: str, path: Path, row0: int) -> pl.Series:
    """Column ``col`` as Float64 (typed columns pass through); a non-numeric cell names its row and value."""
    s = df.get_column(col)
    if s.dtype != pl.String:
        return s.cast(pl.Float64)
    st = s.str.strip_chars().replace("", None)
    f = st.cast(pl.Float64, strict=False)
    bad = f.is_null() & st.is_not_null()
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "not a number", field=col, row=row0 + r + 1, value=s[r])
    return f.alias(col)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _parse_time(s: pl.Series, path: Path, col: str, row0: int = 0) -> pl.Series:
    """Strings (dates, datetimes) or epoch numbers -> int64 ns UTC. Epoch numbers take their unit per row
    from the magnitude (s < 1e11 <= ms < 1e14 <= µs < 1e17 <= ns), so ms and µs rows may mix."""
    if s.dtype == pl.String:
        s = s.str.strip_chars()
        num = s.cast(pl.Int64, strict=False)
    else:
        num = s.cast(pl.Int64)
    if num.null_count() == 0:
        a = num.abs()
        scale = pl.select(
            pl.when(a > 10**17).then(1).when(a > 10**14).then(1_000).when(a > 10**11).then(1_000_000)
            .otherwise(1_000_000_000)
        ).to_series()
        return (num * scale).alias("ts")
    parsed = s.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False, ambiguous="raise")
    bad = parsed.is_null() & s.is_not_null()
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "unparseable timestamp", field=col, row=row0 + r + 1, value=s[r])
    return parsed.dt.epoch("ns").alias("ts")


def _check_values(frame: pl.DataFrame, path: Path, row0: int = 0) -> None:
    for c in ("open", "high", "low", "close"):
        s = frame[c]
        bad = (s.is_nan() | (s <= 0)).fill_null(False)
        if bad.any():
            r = int(bad.arg_true()[0])
            raise DataError(path, "NaN, zero or negative price", field=c, row=row0 + r + 1, value=s[r])
        if s.is_infinite().any():
            r = int(s.is_infinite().fill_null(False).arg_true()[0])
            raise DataError(path, "infinite price", field=c, row=row0 + r + 1, value=s[r])
    v = frame["volume"]
    bad = (v.is_nan() | (v < 0) | v.is_infinite()).fill_null(False)
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "NaN, infinite or negative volume", field="volume", row=row0 + r + 1, value=v[r])
    for c in TAKER_NAMES:
        if c not in frame.columns:
            continue
        t = frame[c]
        rules = [(t.is_nan() | t.is_infinite(), "is NaN or infinite"), (t < 0, "is negative")]
        if c == "taker_buy_volume":  # taker buys are part of the bar's volume (Binance: on every row)
            rules.append((t > v, "exceeds the bar's volume"))
        for bad, what in rules:
            bad = bad.fill_null(False)
            if bad.any():
                r = int(bad.arg_true()[0])
                raise DataError(path, f"taker buy volume {what}", field=c, row=row0 + r + 1, value=t[r])


def _to_bars(frame: pl.DataFrame) -> pl.DataFrame:
    cols = {c: (pl.col(c) if c in frame.columns else pl.lit(None)) for c in BARS_SCHEMA}
    return frame.select([e.cast(BARS_SCHEMA[c]).alias(c) for c, e in cols.items()])


def _to_panel(frame: pl.DataFrame) -> pl.DataFrame:
    adj = (pl.col("adj_close") / pl.col("close")) if "adj_close" in frame.columns else pl.lit(1.0)
    exprs = {
        "date": pl.col("ts").cast(pl.Datetime("ns", "UTC")).dt.date(),
        "symbol": pl.col("symbol"),
        "open": pl.col("open"), "high": pl.col("high"), "low": pl.col("low"), "close": pl.col("close"),
        "volume": pl.col("volume"),
        "vwap": pl.col("vwap") if "vwap" in frame.columns else pl.lit(None),
        "amount": pl.col("amount") if "amount" in frame.columns else pl.lit(None),
        "adj_factor": adj,
        "in_universe": pl.lit(True),
        # These vendors list trading days only and carry no suspension flag (index volume is 0 in the
        # 1970s GSPC rows without any suspension), so nothing is flagged here; ashare flags its own.
        "suspended": pl.lit(False),
    }
    return frame.select([e.cast(PANEL_SCHEMA[c]).alias(c) for c, e in exprs.items()])
