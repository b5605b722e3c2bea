"""The market-data store: Parquet partitions on disk, a DuckDB catalog that lists them, read lazily
through Polars. :class:`Store` is the public API; the work is done by :mod:`.writer` (writes),
:mod:`.scans` (reads), :mod:`.journal` (recovery) and :mod:`.duck` (the catalog and SQL).

Layout (``<store>`` = ``Store.path``)::

    <store>/<kind>/dataset=<name>/symbol=<S>/date=<YYYY-MM-DD>/part-<id>.parquet   events, book, trades, bars,
                                                                                   ts-keyed features/signals
    <store>/<kind>/dataset=<name>/year=<YYYY>/part-<id>.parquet                     panel, date-keyed signals
    <store>/features/dataset=<name>/symbol=<S>/part-<id>.parquet                   untimed features (FI-2010)
    <store>/catalog.duckdb        datasets, tables, instruments, ingest_log, files, commits

Integrity model (data/README.md states it for users):

* the catalog's ``files`` table is the single source of truth of which files belong to a dataset;
* readers open only files the catalog lists, so they see a write entirely or not at all, whatever
  signal kills the writer and wherever; the commit point is one DuckDB transaction;
* a write journals the files it adds and supersedes before touching the data tree, and the next open
  (or write) rolls an uncommitted write back or completes a committed one, and says so on stderr.

Every kind has a natural key (:mod:`.keys`): records arriving again through any file are stored once.
A file lock serialises writers; readers never take it.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import lzma
import zlib
import inspect
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from marketlab.core.errors import DataError, StoreError
from marketlab.store import duck, journal, scans
from marketlab.store.scans import OptTime
from marketlab.store.types import KINDS, IngestBatch, IngestReport, Instrument, check_dataset, check_symbol
from marketlab.store.validate import time_key

_DATA_DIRS = KINDS  # top-level folders that hold data files
_READ_RETRIES = 5  # eager reads re-list the catalog when a concurrent write superseded their files


def default_store_path() -> Path:
    """``$MARKETLAB_STORE`` or ``data/store`` (relative to the working directory)."""
    return Path(os.environ.get("MARKETLAB_STORE") or "data/store")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def lock_timeout() -> float:
    """Seconds a writer waits for another writer before "store is busy" (``$MARKETLAB_LOCK_TIMEOUT``)."""
    try:
        return float(os.environ.get("MARKETLAB_LOCK_TIMEOUT", "600"))
    except ValueError:
        return 600.0


class Store:
    """A market-data store rooted at ``path`` (default ``$MARKETLAB_STORE`` or ``data/store``).

    ``create=False`` (read-only commands) refuses a path that holds no store instead of creating one.
    Opening recovers what a killed writer left (see the module docstring) and reports it on stderr;
    the messages are also in :attr:`recovered`.
    """

    def __new__(cls, path: str | Path | None = None, *, create: bool = True) -> Store:
        """``Store("s3://bucket/prefix")`` (or ``$MARKETLAB_STORE`` naming one) is an object-storage store
        (:class:`marketlab.store.objstore.S3Store`): the same API, files on S3."""
        if cls is Store:
            from marketlab.store.objstore import S3Store, s3_uri

            if s3_uri(path if path is not None else default_store_path()) is not None:
                return super().__new__(S3Store)
        return super().__new__(cls)

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.catalog_path = self.path / "catalog.duckdb"
        self._lock_path = self.path / ".lock"
        self._cache: tuple[Any, dict[str, Any]] | None = None
        self.recovered: list[str] = []
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: not a directory (--store must name a store folder)")
        if not self.catalog_path.exists():
            self._no_catalog(create)
        elif journal.pending(self.path):
            self._try_recover()

    def _no_catalog(self, create: bool) -> None:
        data = [d for d in _DATA_DIRS if (self.path / d).is_dir() and any((self.path / d).iterdir())]
        if data:
            raise StoreError(
                f"{self.catalog_path}: catalog is missing but the store holds data ({', '.join(data)}); "
                "refusing to start an empty catalog over it (restore catalog.duckdb, or move the data away)"
            )
        if not create:
            raise StoreError(f"{self.path}: no store here (create one with `marketlab ingest` or `data synth`)")
        self.path.mkdir(parents=True, exist_ok=True)
        with self._write_lock():
            if not self.catalog_path.exists():
                duck.create_catalog(self.catalog_path, self.path)
                self._set_cache(self._catalog_sig(), [
                    pl.DataFrame(schema={"name": pl.String}), pl.DataFrame(schema={"dataset": pl.String}),
                    _EMPTY_INSTRUMENTS, pl.DataFrame(schema={"dataset": pl.String, "sha256": pl.String}),
                    _EMPTY_FILES,
                ])

    def __repr__(self) -> str:
        return f"Store({self.label!r})"

    @property
    def label(self) -> str:
        """How messages name this store: its folder (an ``s3://`` URI for object storage)."""
        return str(self.path)

    # ------------------------------------------------------------------ where data files live
    # The writer and the scans reach data files only through these (S3Store overrides them): the local
    # store renames and deletes files under ``path``; the object-storage one uploads and deletes objects.
    def _data_root(self) -> Path | str:
        """Prefix of every committed file's store-relative path (a folder, or an ``s3://`` URI)."""
        return self.path

    def _storage_options(self) -> dict[str, str] | None:
        """Polars ``storage_options`` for reading data files (None: local files)."""
        return None

    def _read_files(self, rels: Sequence[str]) -> pl.DataFrame:
        """The rows of these committed files (store-relative paths), in order."""
        return pl.read_parquet([str(self.path / r) for r in rels])

    def _journal_begin(self, write_id: str, entry: dict[str, Any]) -> None:
        """Record the files a write will add and supersede, before the first one is published."""
        journal.write_journal(self.path, write_id, entry)

    def _journal_end(self, write_id: str) -> None:
        """Forget a finished (or rolled back) write's journal."""
        p = journal.journal_path(self.path, write_id)
        p.unlink(missing_ok=True)
        try:
            p.parent.rmdir()
        except OSError:
            pass

    def _publish(self, staged: Path, rel: str) -> None:
        """Move one staged file to its final store-relative place (still invisible: not in the catalog)."""
        final = self.path / rel
        try:
            os.replace(staged, final)
        except FileNotFoundError:
            if not staged.exists():
                raise
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)

    def _remove(self, rels: Sequence[str]) -> None:
        """Delete these store-relative files (and the folders they leave empty) if present."""
        journal.remove_files(self.path, list(rels))

    def _commit_catalog(self, **commit: Any) -> list[pl.DataFrame]:
        """THE commit point: one catalog transaction (:func:`.duck.record_commit`); returns META_QUERIES."""
        return duck.record_commit(self.catalog_path, **commit)

    # ------------------------------------------------------------------ recovery and locking
    def _try_recover(self) -> None:
        """Recover now if no writer is alive (lock free); a live writer's leftovers are its own."""
        with open(self._lock_path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                self._recover_locked()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _recover_locked(self) -> None:
        if not journal.pending(self.path):
            return
        msgs = journal.recover(self.path, self.catalog_path)
        self._cache = None
        for m in msgs:
            sys.stderr.write(f"marketlab store {self.path}: {m}\n")
        self.recovered.extend(msgs)

    @contextmanager
    def _write_lock(self, timeout: float | None = None) -> Iterator[None]:
        """The writers' lock (``<store>/.lock``, released by the kernel when its holder dies)."""
        timeout = lock_timeout() if timeout is None else timeout
        with open(self._lock_path, "a+") as fh:
            deadline = time.monotonic() + timeout
            delay = 0.02
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            f"{self.path}: store is busy: another process is writing (lock {self._lock_path}); "
                            "retry when it has finished"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 1.5, 0.25)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _migrate(self) -> None:
        """A catalog from before the ``files`` table: list the committed files once from disk."""
        import pyarrow.parquet as pq

        if not duck.missing_tables(self.catalog_path):
            return
        rows = []
        for kind in _DATA_DIRS:
            for f in sorted((self.path / kind).rglob("*.parquet")) if (self.path / kind).is_dir() else []:
                rel = f.relative_to(self.path)
                dataset = rel.parts[1].removeprefix("dataset=")
                md = pq.read_metadata(f)
                from marketlab.store.writer import _stats_range

                lo, hi = _stats_range(md, kind)
                rows.append({"path": str(rel), "dataset": dataset, "kind": kind, "part": "/".join(rel.parts[2:-1]),
                             "rows": md.num_rows, "ts_min": lo, "ts_max": hi})
        duck.migrate(self.catalog_path, rows)
        self.recovered.append(f"catalog upgraded: {len(rows)} data file(s) listed in the new files table")
        self._cache = None

    # ------------------------------------------------------------------ catalog reads
    def datasets(self) -> pl.DataFrame:
        """One row per dataset: name, format, kinds, symbols, rows, first/last ts, created/updated."""
        return duck.query(
            self.catalog_path,
            """SELECT d.name AS dataset, d.format,
                      string_agg(t.kind, ',' ORDER BY t.kind) AS kinds,
                      (SELECT count(*) FROM instruments i WHERE i.dataset = d.name) AS symbols,
                      sum(t.rows)::BIGINT AS rows, min(t.ts_min) AS ts_min, max(t.ts_max) AS ts_max,
                      d.created_at, d.updated_at, d.meta
               FROM datasets d LEFT JOIN tables t ON t.dataset = d.name
               GROUP BY d.name, d.format, d.created_at, d.updated_at, d.meta ORDER BY d.name""",
        )

    def tables(self, dataset: str | None = None) -> pl.DataFrame:
        """One row per (dataset, kind): partitioning, schema (JSON), rows, ts range (ns; days for dates)."""
        if dataset is None:
            return duck.query(self.catalog_path, "SELECT * FROM tables ORDER BY dataset, kind")
        return duck.query(self.catalog_path, "SELECT * FROM tables WHERE dataset = ? ORDER BY kind", [dataset])

    def instruments(self, dataset: str | None = None) -> pl.DataFrame:
        """Instruments (dataset, symbol, tick_size, lot_size, currency), optionally of one dataset."""
        if dataset is None:
            return duck.query(self.catalog_path, "SELECT * FROM instruments ORDER BY dataset, symbol")
        return duck.query(
            self.catalog_path, "SELECT * FROM instruments WHERE dataset = ? ORDER BY symbol", [dataset]
        )

    def instrument(self, dataset: str, symbol: str) -> Instrument:
        """The :class:`Instrument` of ``symbol`` in ``dataset``; unknown ones raise :class:`StoreError`."""
        df = duck.query(
            self.catalog_path, "SELECT * FROM instruments WHERE dataset = ? AND symbol = ?", [dataset, symbol]
        )
        if df.height == 0:
            self._require_dataset(dataset)
            raise StoreError(f"dataset '{dataset}' has no symbol '{symbol}'")
        r = df.row(0, named=True)
        return Instrument(r["symbol"], r["tick_size"], r["lot_size"], r["currency"])

    def ingest_log(self, dataset: str | None = None) -> pl.DataFrame:
        """The ingest log (one row per source file ingested, with its sha256)."""
        if dataset is None:
            return duck.query(self.catalog_path, "SELECT * FROM ingest_log ORDER BY ingested_at")
        return duck.query(
            self.catalog_path, "SELECT * FROM ingest_log WHERE dataset = ? ORDER BY ingested_at", [dataset]
        )

    def _meta(self) -> dict[str, Any]:
        """Catalog snapshot (datasets, tables, instruments, hashes, committed files) cached until the
        catalog file changes: opening DuckDB costs tens of ms, too much for every small scan."""
        sig = self._catalog_sig()
        if self._cache is None or self._cache[0] != sig:
            try:
                results = duck.query_many(self.catalog_path, duck.META_QUERIES)
            except duck.CatalogException:  # a catalog from before the files table
                with self._write_lock():
                    self._migrate()
                results = duck.query_many(self.catalog_path, duck.META_QUERIES)
                sig = self._catalog_sig()
            self._set_cache(sig, results)
        assert self._cache is not None
        return self._cache[1]

    def _catalog_sig(self) -> tuple[Any, ...]:
        wal = self.catalog_path.with_name(self.catalog_path.name + ".wal")
        out: list[tuple[int, int, int] | None] = []
        for p in (self.catalog_path, wal):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def _set_cache(self, sig: tuple[Any, ...], results: list[pl.DataFrame]) -> None:
        names, tables, ins, hashes, files = results
        known: dict[str, set[str]] = {}
        for ds, h in hashes.iter_rows():
            known.setdefault(ds, set()).add(h)
        self._cache = (sig, {
            "datasets": set(names["name"].to_list()),
            "tables": {(r["dataset"], r["kind"]): r for r in tables.iter_rows(named=True)},
            "instruments": ins,
            "hashes": known,
            "files": scans.FileIndex(files),
        })

    def _require_dataset(self, dataset: str) -> None:
        check_dataset(dataset)
        if dataset not in self._meta()["datasets"]:
            known = ", ".join(sorted(self._meta()["datasets"])) or "none"
            raise StoreError(f"{self.label}: unknown dataset '{dataset}' (known: {known})")

    def _table(self, dataset: str, kind: str) -> dict[str, Any] | None:
        table: dict[str, Any] | None = self._meta()["tables"].get((dataset, kind))
        return table

    # ------------------------------------------------------------------ writing
    def ingest(
        self,
        format: str,
        paths: Sequence[str | Path] | str | Path,
        *,
        dataset: str | None = None,
        progress: bool = False,
        replace: bool = False,
        **options: Any,
    ) -> IngestReport:
        """Parse ``paths`` with the ``format`` parser and write its batch(es) as one transaction.

        The parser may return one :class:`IngestBatch` or an iterator of them (streaming: memory holds
        one batch). Records already stored (same natural key and values) are skipped whatever file
        they come from; a stored key with other values is an error naming it, unless ``replace=True``
        (the new values win; the report's ``replaced`` counts them). A file whose sha256 is already in
        the dataset's ingest log is not parsed again (``skipped``).
        """
        from marketlab.store.ingest import get_parser

        parse = get_parser(format)
        if isinstance(paths, (str, Path)):
            paths = [paths]
        plist = [Path(p) for p in paths]
        if not plist:
            raise StoreError(f"ingest {format}: no input paths given")
        for p in plist:
            if not p.exists():
                raise StoreError(f"{p}: file not found")
        if dataset is not None:
            check_dataset(dataset)
        t0 = time.perf_counter()
        files = _hash_sources(plist)
        if dataset is not None:
            skip = self._skip_report(dataset, format, files, t0)
            if skip is not None:
                return skip
        if progress and "progress" in inspect.signature(parse).parameters:
            options["progress"] = True
        where = str(plist[0]) if len(plist) == 1 else f"{plist[0]} (+{len(plist) - 1} more)"
        with _decode_errors(where, format):
            result = parse(plist, dataset=dataset, **options)
        raw: Iterator[IngestBatch] = iter([result]) if isinstance(result, IngestBatch) else iter(result)
        batches = _decoded(raw, where, format)
        first = next(batches, None)
        if first is None:
            raise StoreError(f"{plist[0]}: the {format} parser produced no data")
        if dataset is None:  # parser chose the name: check for a re-ingest now
            skip = self._skip_report(first.dataset, format, files, t0)
            if skip is not None:
                return skip
        source = str(plist[0]) if len(plist) == 1 else first.dataset
        from marketlab.store.writer import write_batches

        chained = _chain([first], batches)
        del first, result  # the writer must hold the only reference, so a written batch can be freed
        return write_batches(self, chained, format=format, mode="upsert" if replace else "append",
                             source=source, sources=files, t0=t0)

    def _skip_report(
        self, dataset: str, format: str, files: list[dict[str, Any]], t0: float
    ) -> IngestReport | None:
        hashes = {f["sha256"] for f in files}
        if not hashes or not hashes <= self._meta()["hashes"].get(dataset, set()):
            return None
        return IngestReport(
            dataset=dataset, format=format, files=[f["file"] for f in files], skipped=True,
            reason="all files already ingested (same sha256)", seconds=time.perf_counter() - t0,
        )

    def write(
        self,
        batch: IngestBatch | Iterable[IngestBatch],
        *,
        source_files: Iterable[str | Path] = (),
        format: str = "frames",
        mode: str = "append",
    ) -> IngestReport:
        """Validate and write ``batch`` (or an iterable of batches of one dataset) as one transaction.

        ``mode``: ``"append"`` merges by natural key (records already stored are no-ops, a conflicting
        value is an error naming the key); ``"upsert"`` lets conflicting new values replace stored ones;
        ``"replace"`` supersedes every partition the write touches (all its stored records). Source
        files are hashed into the ingest log (re-ingest fast path).
        """
        from marketlab.store.writer import write_batches

        src = [Path(p) for p in source_files]
        batches = [batch] if isinstance(batch, IngestBatch) else batch
        source = str(src[0]) if len(src) == 1 else (batch.dataset if isinstance(batch, IngestBatch) else "write")
        return write_batches(self, batches, format=format, mode=mode, source=source, sources=_hash_sources(src))

    def replace(
        self, batch: IngestBatch | Iterable[IngestBatch], *, source_files: Iterable[str | Path] = (),
        format: str = "frames",
    ) -> IngestReport:
        """Deliberately replace every (kind, symbol, day) partition ``batch`` touches (a simulation re-run
        into the same dataset); the report's ``replaced`` counts the stored rows it superseded."""
        return self.write(batch, source_files=source_files, format=format, mode="replace")

    # ------------------------------------------------------------------ reading
    def _scan(self, kind: str, dataset: str, symbols: str | Sequence[str] | None, start: OptTime,
              end: OptTime, as_float: bool = False) -> pl.LazyFrame:
        self._require_dataset(dataset)
        if isinstance(symbols, str):
            symbols = [symbols]
        if symbols is not None:
            for s in symbols:
                check_symbol(s)
        t = self._table(dataset, kind)
        if t is None:
            raise StoreError(f"dataset '{dataset}' has no {kind}")
        files = self._meta()["files"].select(kind, dataset, symbols, start, end)
        lf = scans.scan(self._data_root(), t, files, symbols, start, end, storage_options=self._storage_options())
        if as_float:
            ins = self._meta()["instruments"].filter(pl.col("dataset") == dataset)
            lf = scans.float_view(lf, ins, lf.collect_schema().names())
        return lf

    def scan_events(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                    end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """LOB events (EVENTS_SCHEMA) of ``dataset`` in ``[start, end)``; ``as_float`` gives currency/units."""
        return self._scan("events", dataset, symbols, start, end, as_float)

    def scan_book(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                  end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Book snapshots (``book_schema(L)``) of ``dataset`` in ``[start, end)``."""
        return self._scan("book", dataset, symbols, start, end, as_float)

    def scan_trades(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                    end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Trades (TRADES_SCHEMA) of ``dataset`` in ``[start, end)``."""
        return self._scan("trades", dataset, symbols, start, end, as_float)

    def scan_bars(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                  end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """OHLCV bars (BARS_SCHEMA, float prices already) of ``dataset`` in ``[start, end)``."""
        return self._scan("bars", dataset, symbols, start, end, as_float)

    def scan_features(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                      end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Feature frames of ``dataset`` (their own columns; time filter when they carry ts/date)."""
        return self._scan("features", dataset, symbols, start, end, as_float)

    def scan_signals(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                     end: OptTime = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Signal frames of ``dataset`` (their own columns; time filter on ts/date)."""
        return self._scan("signals", dataset, symbols, start, end, as_float)

    def scan_panel(self, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
                   end: OptTime = None) -> pl.LazyFrame:
        """Daily panel (PANEL_SCHEMA) of ``dataset``, rows with ``start <= date < end``, sorted by (date, symbol)
        within each year partition."""
        return self._scan("panel", dataset, symbols, start, end)

    def read(self, kind: str, dataset: str, symbols: str | Sequence[str] | None = None, start: OptTime = None,
             end: OptTime = None, *, as_float: bool = False) -> pl.DataFrame:
        """Eager read of any kind (``scan_<kind>(...).collect()``)."""
        if kind not in KINDS:
            raise StoreError(f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})")
        # A write that commits between listing the files and reading them deletes the files it superseded:
        # the read then fails whole (file names are never reused, so it never mixes two snapshots) and is
        # retried on the new file list.
        for attempt in range(_READ_RETRIES):
            try:
                return self._scan(kind, dataset, symbols, start, end, as_float).collect()
            except FileNotFoundError:
                if attempt == _READ_RETRIES - 1:
                    raise
                self._cache = None
        raise AssertionError("unreachable")

    def files(self, kind: str, dataset: str, symbols: str | Sequence[str] | None = None,
              start: OptTime = None, end: OptTime = None) -> list[str]:
        """The committed Parquet files a scan with these arguments reads (after partition pruning)."""
        if isinstance(symbols, str):
            symbols = [symbols]
        return [scans.locate(self._data_root(), f) for f in self._meta()["files"].select(kind, dataset, symbols, start, end)]

    def sql(self, query: str) -> pl.DataFrame:
        """Run a read-only ``query`` in DuckDB over views of the same committed Parquet files.

        Views: ``<kind>_<dataset>`` (e.g. ``bars_sp500_5yr``; dataset names with ``-`` need double quotes)
        for every stored table, and the catalog tables ``datasets``, ``instruments``, ``ingest_log``,
        ``tables``. Only SELECT/EXPLAIN run; nothing outside the store can be read, nothing written.
        """
        root = self.path.resolve()
        index = self._meta()["files"]
        views = {f"{k}_{ds}": [str(root / f) for f in index.select(k, ds, None)] for ds, k in index.parts}
        cat = duck.query_many(self.catalog_path, [f"SELECT * FROM {t}" for t in
                                                  ("datasets", "instruments", "ingest_log", "tables")])
        catalog = dict(zip(("datasets", "instruments", "ingest_log", "tables"), cat, strict=True))
        return duck.sql_over_store(root, catalog, views, query)


_EMPTY_INSTRUMENTS = pl.DataFrame(schema={"dataset": pl.String, "symbol": pl.String, "tick_size": pl.Float64,
                                           "lot_size": pl.Float64, "currency": pl.String})
_EMPTY_FILES = pl.DataFrame(schema={"dataset": pl.String, "kind": pl.String, "part": pl.String, "path": pl.String,
                                    "rows": pl.Int64})


# Errors of the readers a parser uses on an undecodable file (corrupt Parquet, truncated compression,
# bad text encoding): a problem with the user's file, reported as one line naming it, not a crash.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (pl.exceptions.ComputeError, UnicodeDecodeError, EOFError,
                                                     zlib.error, gzip.BadGzipFile, lzma.LZMAError, pa.ArrowInvalid)


@contextmanager
def _decode_errors(where: str, format: str) -> Iterator[None]:
    try:
        yield
    except _DECODE_ERRORS as exc:
        first = " ".join(str(exc).split())[:300]
        raise DataError(where, f"cannot read as {format}: {type(exc).__name__}: {first}") from None


def _decoded(batches: Iterator[IngestBatch], where: str, format: str) -> Iterator[IngestBatch]:
    """``batches`` with decoding errors raised while a streaming parser reads turned into DataError."""
    while True:
        with _decode_errors(where, format):
            batch = next(batches, None)
        if batch is None:
            return
        box = [batch]
        del batch
        yield box.pop()


def _chain(head: list[IngestBatch], rest: Iterator[IngestBatch]) -> Iterator[IngestBatch]:
    """``head`` (popped, so this generator keeps no reference to it) then ``rest``."""
    yield head.pop()
    yield from rest


def _hash_sources(paths: Sequence[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        if p.is_dir():
            # Documentation beside the data (SOURCE.md, README.md) is not ingested, so it is not hashed.
            for f in sorted(q for q in p.rglob("*") if q.is_file() and q.suffix != ".md"):
                out.append({"file": str(f), "sha256": sha256_file(f), "bytes": f.stat().st_size})
        elif p.is_file():
            out.append({"file": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return out


__all__ = ["Store", "default_store_path", "sha256_file", "time_key"]
