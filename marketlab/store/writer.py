"""The store's one writer: validate, stage, merge by natural key, journal, rename, commit, clean up.

A write is a transaction over one dataset (:class:`Write`):

1. each batch (one :class:`IngestBatch`, or many from a streaming parser) is validated, split into
   partitions and written as Parquet chunks into ``<store>/.staging-<write_id>/``; memory holds one
   batch at a time;
2. every touched partition is merged with its stored records by natural key (:mod:`.keys`): records
   already stored are dropped, conflicts are errors (or replace them with ``mode="upsert"``); a
   partition that gains nothing is left alone; ``mode="replace"`` supersedes whole partitions;
3. the journal names every file to add and every file superseded (:mod:`.journal`), then the new files
   are renamed into the data tree under names no other write uses;
4. ONE catalog transaction swaps the file lists (:func:`.duck.record_commit`): the commit point;
5. superseded files, the journal and the staging folder are deleted.

Readers open only files listed in the catalog, so before step 4 they see the old data and after it the
new data, whatever kills the writer; the next open finishes or undoes steps 3-5 (:func:`.journal.recover`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from marketlab.core.errors import StoreError
from marketlab.core.schema import BARS_OPTIONAL
from marketlab.core.timeutil import EPOCH_DATE, NS_PER_DAY
from marketlab.store import faults, journal, keys
from marketlab.store.types import KINDS, IngestBatch, IngestReport, Instrument, check_dataset
from marketlab.store.validate import distinct_symbols, time_key, validate_frame

if TYPE_CHECKING:
    from marketlab.store.catalog import Store

MODES = ("append", "upsert", "replace")

#: rows per Parquet row group: bounds the Arrow copy of a write (see :func:`write_parquet`); DuckDB's own
#: row groups are 122,880 rows, and scans read a group's columns in parallel either way
ROW_GROUP_ROWS = 1 << 16
_SPLIT_BYTES = 16 << 20  # partitions above this (in memory) are written as several files in parallel
_SPLIT_ROWS = 1 << 16  # ... but never in pieces of fewer rows
_SPAN_SLICE = 1 << 16  # rows per slice of the key-order check of :func:`key_span`


def _load_malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None elsewhere: musl, macOS)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _trim_malloc() -> None:
    """Return glibc's free heap pages to the OS (a few ms; numpy buffers and Python objects live there)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    """One Parquet file, written through pyarrow (~1.5x faster than polars' writer on wide integer frames),
    column statistics kept for pruning:

    * integer and date columns (ts, seq, prices in ticks, sizes, book levels): DELTA_BINARY_PACKED, no
      compression: sorted timestamps and slowly moving prices/levels pack into a few bits per value, so
      this writes ~25% less CPU than plain + LZ4 and smaller files (LOBSTER level-10 book day: 8.1 vs
      6.6 MB, events 1.7 vs 3.0 MB; 500k trades 2.7 vs 9.0 MB), and reads as fast;
    * strings: dictionary + LZ4; floats and the rest: plain + LZ4 (floats gain little from either);
    * min/max statistics on every column but book levels (``ask_px_1`` ... ``bid_sz_L``): scans prune by
      symbol, time and sequence, never by a level's price, and the 4L level statistics are ~13% of a
      level-10 book's write time;
    * row groups of at most :data:`ROW_GROUP_ROWS` rows, each converted to Arrow just before it is encoded
      and dropped after: the conversion copies strings (polars' views -> Arrow offsets + bytes) and
      materialises constant/null columns, so converting a whole streamed batch at once cost up to its
      own size again (benchmarks/ingest_memory.py); a row group bounds that copy instead.
    """
    if df.height <= ROW_GROUP_ROWS:
        table = df.to_arrow()
        pq.write_table(table, path, **parquet_options(table.schema))
        return
    schema = df.head(0).to_arrow().schema
    with pq.ParquetWriter(path, schema, **parquet_options(schema)) as out:
        for start in range(0, df.height, ROW_GROUP_ROWS):
            out.write_table(df.slice(start, ROW_GROUP_ROWS).to_arrow(), row_group_size=ROW_GROUP_ROWS)


_BOOK_LEVEL = re.compile(r"(ask|bid)_(px|sz)_\d+")


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """``pyarrow.parquet.write_table`` keyword arguments of :func:`write_parquet` for ``schema``."""
    strings = [
        f.name
        for f in schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)
    ]
    packed = [
        f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_date32(f.type) or pa.types.is_timestamp(f.type)
    ]
    stats = [f.name for f in schema if not _BOOK_LEVEL.fullmatch(f.name)]
    return {
        "use_dictionary": strings or False,
        "write_statistics": stats if len(stats) < len(schema) else True,
        "compression": {f.name: "none" if f.name in packed else "lz4" for f in schema},
        "column_encoding": {c: "DELTA_BINARY_PACKED" for c in packed} or None,
    }


def partitioning(kind: str, columns: list[str]) -> str:
    """``symbol/date`` (ts-keyed), ``year`` (date-keyed) or ``symbol`` (untimed)."""
    return {"ts": "symbol/date", "date": "year", None: "symbol"}[time_key(kind, columns)]


def split_partitions(kind: str, df: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """``df`` cut into its partitions: ``[("symbol=S/date=YYYY-MM-DD" | "year=YYYY" | "symbol=S", rows)]``.

    When every partition is one contiguous run of rows (the usual case: a parser's rows come grouped by
    symbol and in time order, panels sorted by date) the partitions are zero-copy slices of ``df``;
    otherwise a ``partition_by`` copies them out. Memory: a streamed batch is never held twice.
    """
    if df.height == 0:
        return []
    key = time_key(kind, df.columns)
    sym = df.get_column("symbol")

    def name(s: Any, unit: Any) -> str:
        if key == "ts":
            return f"symbol={s}/date={(EPOCH_DATE + dt.timedelta(days=int(unit))).isoformat()}"
        return f"year={int(unit):04d}" if key == "date" else f"symbol={s}"

    unit: np.ndarray | None = None
    if key == "ts":
        ts = df.get_column("ts")
        d0, d1 = int(ts.min()) // NS_PER_DAY, int(ts.max()) // NS_PER_DAY  # type: ignore[arg-type]
        if d0 == d1 and len(distinct_symbols(sym)) == 1:
            # one (symbol, day), e.g. a LOBSTER file: no work at all
            return [(f"symbol={sym[0]}/date={(EPOCH_DATE + dt.timedelta(days=d0)).isoformat()}", df)]
        day_runs = _day_runs(sym, ts)
        if day_runs is not None:
            return [(name(s, day), df.slice(i, j - i)) for i, j, s, day in day_runs]
        unit = (ts // NS_PER_DAY).to_numpy()
        runs = _runs(sym, unit)
    elif key == "date":
        unit = df.get_column("date").dt.year().to_numpy()
        runs = _runs(None, unit)
    else:
        runs = _runs(sym, None)
    if runs is not None:
        return [
            (name(sym[i] if key != "date" else None, unit[i] if unit is not None else None), df.slice(i, j - i)) for i, j in runs
        ]
    out: list[tuple[str, pl.DataFrame]] = []
    if key == "ts":
        keyed = df.with_columns((pl.col("ts") // NS_PER_DAY).alias("_day"))
        for (s, day), part in keyed.partition_by(["symbol", "_day"], as_dict=True, maintain_order=True).items():
            out.append((name(s, day), part.drop("_day")))
    elif key == "date":
        keyed = df.with_columns(pl.col("date").dt.year().alias("_year"))
        for (year,), part in keyed.partition_by(["_year"], as_dict=True, maintain_order=True).items():
            out.append((name(None, year), part.drop("_year")))
    else:
        for (s,), part in df.partition_by(["symbol"], as_dict=True, maintain_order=True).items():
            out.append((name(s, None), part))
    return out


_MAX_SYMBOL_RUNS = 4096  # more symbol runs (an interleaved multi-symbol frame): the vectorised path


def _day_runs(sym: pl.Series, ts: pl.Series) -> list[tuple[int, int, Any, int]] | None:
    """``[(start, end, symbol, day)]`` of a frame whose rows come as runs of one symbol in time order (a
    parser's usual output), found without any full-length temporary (streamed batches stay near their
    own size): symbol runs by run-length encoding, day boundaries by binary search. None when a run is
    not in time order, a (symbol, day) occurs in two runs, or there are very many symbol runs."""
    rle = sym.rle()
    if rle.len() > _MAX_SYMBOL_RUNS:
        return None
    out: list[tuple[int, int, Any, int]] = []
    seen: set[tuple[Any, int]] = set()
    start = 0
    for length, s in zip(rle.struct.field("len").to_list(), rle.struct.field("value").to_list(), strict=True):
        seg = ts.slice(start, length)
        if seg.null_count() or not seg.is_sorted():
            return None
        first, last = int(seg[0]) // NS_PER_DAY, int(seg[-1]) // NS_PER_DAY
        bounds = [start]
        if last > first:
            edges = pl.Series(np.arange(first + 1, last + 1, dtype=np.int64) * NS_PER_DAY)
            bounds += (seg.search_sorted(edges, side="left").to_numpy() + start).tolist()
        bounds.append(start + length)
        for k in range(len(bounds) - 1):
            if bounds[k + 1] > bounds[k]:
                if (s, first + k) in seen:
                    return None
                seen.add((s, first + k))
                out.append((bounds[k], bounds[k + 1], s, first + k))
        start += length
    return out


def _runs(sym: pl.Series | None, unit: np.ndarray | None) -> list[tuple[int, int]] | None:
    """Row ranges ``[(start, end)]`` of the runs of equal (symbol, unit), or None when some key occurs in
    two runs (a partition is not contiguous)."""
    n = len(sym) if sym is not None else len(unit)  # type: ignore[arg-type]
    change = np.zeros(max(n - 1, 0), dtype=bool)
    if sym is not None:
        change |= np.diff(sym.rle_id().to_numpy()) != 0
    if unit is not None:
        change |= np.diff(unit) != 0
    starts = np.concatenate(([0], np.flatnonzero(change) + 1))
    ends = np.append(starts[1:], n)
    keys = set()
    for i in starts.tolist():
        k = (sym[i] if sym is not None else None, unit[i] if unit is not None else None)
        if k in keys:
            return None
        keys.add(k)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def key_span(kind: str, df: pl.DataFrame) -> tuple[Any, Any] | None:
    """(first, last) key of a one-symbol partition in its stored order (events/book ``seq``, bars ``ts``:
    values; trades ``(ts, seq)``: tuples) when ``df``'s rows strictly increase in that order (so its keys are
    unique and in stored order), else None (more order columns, several symbols, or rows out of order)."""
    if df.height == 0 or partitioning(kind, df.columns) == "year":
        return None
    order = [c for c in keys.sort_columns(kind, df.columns) if c != "symbol"]
    if len(order) not in (1, 2):
        return None
    cols = [df.get_column(c) for c in order]
    if any(c.null_count() for c in cols):
        return None
    # numpy on the values: a write of many small partitions (1-minute bars of 5 symbols x 20 days: 100)
    # paid ~0.2 ms of polars calls each here; slice by slice (with one row of overlap), so a streamed
    # batch's columns, joined from many chunks, are never copied whole
    for i in range(0, df.height - 1, _SPAN_SLICE):
        a = cols[0].slice(i, _SPAN_SLICE + 1).to_numpy()
        up = a[1:] > a[:-1]
        if len(cols) == 2:  # lexicographic: a streamed capture's trades, (ts, seq) batch after batch
            b = cols[1].slice(i, _SPAN_SLICE + 1).to_numpy()
            up |= (a[1:] == a[:-1]) & (b[1:] > b[:-1])
        if not bool(up.all()):
            return None
    if len(cols) == 1:
        return cols[0][0], cols[0][-1]
    return tuple(c[0] for c in cols), tuple(c[-1] for c in cols)


def time_range(kind: str, df: pl.DataFrame) -> tuple[int | None, int | None]:
    """(min, max) of the time key in ns (dates: their midnight); (None, None) for untimed frames."""
    key = time_key(kind, df.columns)
    if key is None or df.height == 0:
        return None, None
    lo: Any = df.get_column(key).min()
    hi: Any = df.get_column(key).max()
    if key == "date":
        return (lo - EPOCH_DATE).days * NS_PER_DAY, (hi - EPOCH_DATE).days * NS_PER_DAY
    return int(lo), int(hi)


@dataclass(frozen=True, slots=True)
class _Staged:
    """One staged chunk file: its path, rows and time range (ns; None for untimed kinds). A write keeps one
    per file until it commits (a 3 M-row file of 1-minute bars: 2,190), so it is kept small: slots and the
    path as a plain string (a ``Path`` object costs ~4x its text)."""

    path: str
    rows: int
    lo: int | None
    hi: int | None


@dataclass(slots=True)
class _Part:
    """One touched partition: its staged chunks (row order) and where its stored files are."""

    kind: str
    part: str
    chunks: list[list[_Staged]] = field(default_factory=list)  # one list of files per staged batch slice
    spans: list[tuple[Any, Any] | None] = field(default_factory=list)  # per slice: see :func:`key_span`

    def in_order(self) -> bool:
        """Whether the slices' keys strictly increase from one slice to the next (a stream's batches of
        one partition): then they are disjoint and already in stored order, nothing to merge."""
        if any(s is None for s in self.spans):
            return False
        return all(a[1] < b[0] for a, b in zip(self.spans, self.spans[1:], strict=False))  # type: ignore[index]


@dataclass
class _Out:
    """A file this write adds: final path (store-relative), staged path, rows, time range."""

    rel: str
    staged: Path
    kind: str
    part: str
    rows: int
    lo: int | None
    hi: int | None


class Write:
    """One write transaction into ``store`` (see the module docstring). Call under the write lock."""

    def __init__(self, store: Store, *, format: str, mode: str, source: str) -> None:
        if mode not in MODES:
            raise StoreError(f"write: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.store = store
        self.format = format
        self.mode = mode
        self.source = source
        self.write_id = uuid.uuid4().hex
        self.stage = store.path / f"{journal.STAGING_PREFIX}{self.write_id}"
        self.dataset: str | None = None
        self.instruments: dict[str, Instrument] = {}
        self.meta: dict[str, Any] = {}
        self.schemas: dict[str, dict[str, pl.DataType]] = {}
        self.parts: dict[tuple[str, str], _Part] = {}
        self.rows: dict[str, int] = {}
        self.symbols: set[str] = set()
        self._n = 0
        self._journaled = False
        self._obsolete: list[str] = []
        self._renamed: list[str] = []
        self.committed = False

    # -------------------------------------------------------------------- 1. stage batches
    def add(self, batch: IngestBatch) -> None:
        """Validate one batch and stage its partitions (the batch can be dropped afterwards).

        Memory: when the caller hands over its only reference (``write_batches`` does), each frame is
        released as soon as it is split into partitions, and each partition as soon as its file is written,
        so the batch shrinks while it is staged instead of staying whole beside the writer's buffers."""
        dataset = check_dataset(batch.dataset)
        if self.dataset is None:
            self.dataset = dataset
        elif dataset != self.dataset:
            raise StoreError(f"{self.source}: batches of one write name two datasets ('{self.dataset}', '{dataset}')")
        self.instruments.update({i.symbol: i for i in batch.instruments})
        self.meta.update(batch.meta)
        for kind in batch.frames:
            if kind not in KINDS:
                raise StoreError(f"{self.source}: unknown frame kind '{kind}' (expected one of {', '.join(KINDS)})")
        frames = dict(batch.frames)
        del batch
        jobs: list[tuple[str, str, pl.DataFrame]] = []
        for kind in list(frames):
            where = f"{self.source} [{kind}]"
            df = validate_frame(kind, frames.pop(kind), where)
            if df.height == 0:
                continue
            syms = set(distinct_symbols(df.get_column("symbol")))
            missing = sorted(syms - set(self.instruments))
            if missing:
                raise StoreError(f"{where}: no Instrument given for symbol(s) {missing[:5]}")
            df = self._legacy_bars(kind, df, where)
            self._check_schema(kind, df, where)
            self.symbols |= syms
            self.rows[kind] = self.rows.get(kind, 0) + df.height
            parts = split_partitions(kind, df)
            del df  # the partitions (slices) hold the data now; no local may keep one past _stage
            for _, rows in parts:
                keys.check_unique(kind, rows, None, where)
            jobs.extend((kind, part, rows) for part, rows in parts)
            del parts, rows
        if not self.stage.exists():
            self.stage.mkdir()
        self._stage(jobs)
        # Arrow's allocator and glibc's malloc keep freed encode buffers and temporaries for reuse; hand them
        # back so a streamed write's peak stays near one batch (benchmarks/ingest_memory.py)
        pa.default_memory_pool().release_unused()
        _trim_malloc()
        faults.point("staged")

    def _legacy_bars(self, kind: str, df: pl.DataFrame, where: str) -> pl.DataFrame:
        """Bars for a dataset stored before the taker columns existed (``BARS_OPTIONAL``): written without
        them when they are all null (nothing is lost), refused when they hold values (its files lack them)."""
        stored = self.store._table(self.dataset or "", kind) if kind == "bars" else None
        if stored is None:
            return df
        old = json.loads(stored["schema_json"])
        absent = [c for c in BARS_OPTIONAL if c not in old]
        held = [c for c in absent if df.get_column(c).null_count() < df.height]
        if held:
            raise StoreError(
                f"{where}: dataset '{self.dataset}' was stored before bars had '{held[0]}' (its files "
                "lack the taker columns) and these bars carry it; ingest them into a new dataset"
            )
        return df.drop(absent) if absent else df

    def _check_schema(self, kind: str, df: pl.DataFrame, where: str) -> None:
        new = dict(df.schema)
        seen = self.schemas.setdefault(kind, new)
        stored = self.store._table(self.dataset or "", kind)
        old = json.loads(stored["schema_json"]) if stored is not None else {c: str(t) for c, t in seen.items()}
        if {c: str(t) for c, t in new.items()} != old:
            raise StoreError(
                f"{where}: columns differ from the stored '{self.dataset}' {kind} "
                f"({len(new)} vs {len(old)} columns); write to a new dataset"
            )

    def _stage(self, jobs: list[tuple[str, str, pl.DataFrame]]) -> None:
        """Write ``jobs`` as staged chunk files, emptying the list: each partition is dropped as soon as its
        file is written, so a batch shrinks while it is staged (when the writer holds its only reference).

        A big partition (a LOBSTER level-10 book is ~50 MB in memory) is cut into row slices written as
        consecutive chunk files (names sort in row order) and encoded in parallel (Parquet encoding runs in
        C++ without the GIL). Everything else is written one file after the other: a stream's batch of
        many small partitions (1-minute bars: a day each) gains little from threads, and every thread
        that converts and encodes keeps allocator caches of its own (measured on a 3 M-row bars file:
        +1 MB with a pool per batch, +4 MB with one kept for the process, against ~14 MB batches)."""
        workers = max(1, min(4, os.cpu_count() or 1))
        groups: deque[list[tuple[pl.DataFrame, Path]]] = deque()
        jobs.reverse()
        while jobs:
            kind, part, df = jobs.pop()
            k = int(min(workers, max(1, df.estimated_size() // _SPLIT_BYTES))) if df.height >= 2 * _SPLIT_ROWS else 1
            step = -(-df.height // k)
            files, group = [], []
            for j in range(k):
                self._n += 1
                f = self.stage / f"c{self._n:07d}.parquet"
                piece = df.slice(j * step, step) if k > 1 else df
                group.append((piece, f))
                # rows and time range noted now, from memory: adopting the file later reads nothing back
                files.append(_Staged(str(f), piece.height, *time_range(kind, piece)))
            groups.append(group)
            p = self.parts.setdefault((kind, part), _Part(kind, part))
            p.chunks.append(files)
            p.spans.append(key_span(kind, df))
            del df, piece, group  # only ``groups`` holds the partition now
        pool = ThreadPoolExecutor(max_workers=workers) if any(len(g) > 1 for g in groups) else None
        try:
            while groups:
                group = groups.popleft()
                if pool is None or len(group) == 1:
                    write_parquet(*group.pop())
                    continue
                futures = [pool.submit(write_parquet, *group.pop()) for _ in range(len(group))]
                del group
                for fut in futures:
                    fut.result()
        finally:
            if pool is not None:
                pool.shutdown()  # waits: no write may run on after an error, into the folder cleanup removes

    # -------------------------------------------------------------------- 2. merge
    def _plan(self) -> tuple[list[_Out], list[str], dict[str, int], dict[str, int]]:
        """Files to add, files superseded, rows added and rows replaced per kind."""
        assert self.dataset is not None
        stored_files: dict[tuple[str, str, str], list[tuple[str, int]]] = self.store._meta()["files"]
        outs: list[_Out] = []
        obsolete: list[str] = []
        added: dict[str, int] = {}
        replaced: dict[str, int] = {}
        for (kind, part), p in self.parts.items():
            stored = stored_files.get((self.dataset, kind, part), [])
            where = f"dataset '{self.dataset}' {kind} {part}"
            if self.mode == "replace" or not stored:
                if len(p.chunks) == 1 or p.in_order():
                    # the common cases (one batch; a stream's batches in key order): the staged files are final
                    new_rows = self._adopt(kind, part, [f for c in p.chunks for f in c])
                    outs.extend(new_rows)
                    n = sum(o.rows for o in new_rows)
                else:
                    frame = self._fold(kind, [_read(c) for c in p.chunks], where)
                    outs.extend(self._emit(kind, part, frame))
                    n = frame.height
                if stored:
                    obsolete.extend(r for r, _ in stored)
                    replaced[kind] = replaced.get(kind, 0) + sum(rows for _, rows in stored)
                added[kind] = added.get(kind, 0) + n
                continue
            old = self.store._read_files([r for r, _ in stored])
            new = (
                pl.concat([_read(c) for c in p.chunks]) if p.in_order() else self._fold(kind, [_read(c) for c in p.chunks], where)
            )
            m = keys.merge(old, new, kind, upsert=self.mode == "upsert", where=where)
            if m.frame is None:
                continue  # every record already stored with the same values
            outs.extend(self._emit(kind, part, m.frame))
            obsolete.extend(r for r, _ in stored)
            added[kind] = added.get(kind, 0) + m.added
            replaced[kind] = replaced.get(kind, 0) + m.replaced
        faults.point("merged")
        return outs, obsolete, added, replaced

    def _fold(self, kind: str, frames: list[pl.DataFrame], where: str) -> pl.DataFrame:
        """Chunks of one partition from several batches of this write, merged by key."""
        acc = frames[0]
        for f in frames[1:]:
            m = keys.merge(acc, f, kind, upsert=self.mode == "upsert", where=where)
            acc = acc if m.frame is None else m.frame
        return acc

    def _final_rel(self, kind: str, part: str) -> str:
        self._n += 1
        return f"{kind}/dataset={self.dataset}/{part}/part-{self.write_id[:16]}-{self._n:07d}.parquet"

    def _adopt(self, kind: str, part: str, files: list[_Staged]) -> list[_Out]:
        return [_Out(self._final_rel(kind, part), Path(f.path), kind, part, f.rows, f.lo, f.hi) for f in files]

    def _emit(self, kind: str, part: str, frame: pl.DataFrame) -> list[_Out]:
        self._n += 1
        f = self.stage / f"m{self._n:07d}.parquet"
        write_parquet(frame, f)
        lo, hi = time_range(kind, frame)
        return [_Out(self._final_rel(kind, part), f, kind, part, frame.height, lo, hi)]

    # -------------------------------------------------------------------- 3-5. journal, rename, commit
    def commit(self, sources: list[dict[str, Any]], t0: float) -> IngestReport:
        """Merge, journal, rename and commit; returns the report (``skipped`` when nothing changed)."""
        if self.dataset is None or not self.parts:
            raise StoreError(f"{self.source}: nothing to write (all frames empty)")
        outs, obsolete, added, replaced = self._plan()
        report = IngestReport(
            dataset=self.dataset,
            format=self.format,
            rows=dict(self.rows),
            symbols=sorted(self.symbols),
            files=[f["file"] for f in sources],
            added=added,
            replaced=replaced,
            write_id=self.write_id,
            notes=dict(self.meta.get("notes") or {}),
        )
        if not outs and not obsolete:
            report.skipped = True
            report.reason = "all records already stored (same natural keys and values)"
            report.seconds = time.perf_counter() - t0
            return report
        store = self.store
        self._obsolete = obsolete
        store._journal_begin(
            self.write_id,
            {
                "write_id": self.write_id,
                "dataset": self.dataset,
                "new": [o.rel for o in outs],
                "obsolete": obsolete,
            },
        )
        self._journaled = True
        faults.point("journal")
        bytes_written = sum(o.staged.stat().st_size for o in outs)
        for o in outs:
            store._publish(o.staged, o.rel)
            self._renamed.append(o.rel)
            faults.point("renamed")
        layouts = {}
        for kind in {o.kind for o in outs} | {k for k, _ in self.parts}:
            cols = list(self.schemas[kind])
            layouts[kind] = (partitioning(kind, cols), json.dumps({c: str(d) for c, d in self.schemas[kind].items()}))
        fresh = store._commit_catalog(
            write_id=self.write_id,
            dataset=self.dataset,
            format=self.format,
            meta=self.meta,
            layouts=layouts,
            add_files=[
                {"path": o.rel, "kind": o.kind, "part": o.part, "rows": o.rows, "ts_min": o.lo, "ts_max": o.hi} for o in outs
            ],
            drop_files=obsolete,
            instruments=[
                {"symbol": i.symbol, "tick_size": float(i.tick_size), "lot_size": float(i.lot_size), "currency": i.currency}
                for i in self.instruments.values()
            ],
            sources=[{**f, "rows": sum(self.rows.values())} for f in sources],
            added=sum(added.values()),
            replaced=sum(replaced.values()),
            forget_sources=bool(sum(replaced.values())),
        )
        self.committed = True
        store._set_cache(store._catalog_sig(), fresh)
        for rel in obsolete:
            store._remove([rel])
            faults.point("obsolete")
        store._journal_end(self.write_id)
        self._journaled = False
        faults.point("done")
        report.partitions = len({(o.kind, o.part) for o in outs})
        report.bytes_written = bytes_written
        report.seconds = time.perf_counter() - t0
        return report

    def cleanup(self) -> None:
        """After success or failure: undo an uncommitted write, remove the journal and staging folder."""
        store = self.store
        if not self.committed and self._renamed:
            store._remove(self._renamed)
        if self._journaled:
            if self.committed:  # failed while deleting superseded files: finish that first
                store._remove(self._obsolete)
            store._journal_end(self.write_id)
            self._journaled = False
        shutil.rmtree(self.stage, ignore_errors=True)


def _read(chunk: list[_Staged]) -> pl.DataFrame:
    """The rows of one staged batch slice of a partition (its chunk files, in row order)."""
    return pl.read_parquet([f.path for f in chunk])


def _stats_range(md: pq.FileMetaData, kind: str) -> tuple[int | None, int | None]:
    """Time range of a staged file from its Parquet column statistics (no data read)."""
    names = md.schema.names
    key = time_key(kind, names)
    if key is None or md.num_row_groups == 0:
        return None, None
    i = names.index(key)
    lo: Any = None
    hi: Any = None
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(i).statistics
        if st is None or not st.has_min_max:
            return None, None
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    if key == "date":
        return (lo - EPOCH_DATE).days * NS_PER_DAY, (hi - EPOCH_DATE).days * NS_PER_DAY
    return int(lo), int(hi)


def write_batches(
    store: Store,
    batches: Iterable[IngestBatch],
    *,
    format: str,
    mode: str,
    source: str,
    sources: list[dict[str, Any]],
    t0: float | None = None,
) -> IngestReport:
    """Write one or many batches of ONE dataset as one transaction (see :class:`Write`)."""
    t0 = time.perf_counter() if t0 is None else t0
    with store._write_lock():
        store._recover_locked()
        w = Write(store, format=format, mode=mode, source=source)
        try:
            it = iter(batches)
            while (box := [next(it, None)])[0] is not None:
                faults.point("parsed")
                # the writer gets the only reference (no loop variable keeps it): it frees the batch as it
                # stages it, and nothing holds it while the parser builds the next one
                w.add(cast(IngestBatch, box.pop()))
            return w.commit(sources, t0)
        except BaseException:
            store._cache = None
            raise
        finally:
            w.cleanup()
