"""The market-data store: Parquet partitions on disk plus a DuckDB catalog, read lazily through Polars.

Layout (``<store>`` = ``Store.path``)::

    <store>/<kind>/dataset=<name>/symbol=<S>/date=<YYYY-MM-DD>/part-<id>.parquet   events, book, trades, bars,
                                                                                   ts-keyed features/signals
    <store>/<kind>/dataset=<name>/year=<YYYY>/part-<id>.parquet                     panel, date-keyed signals
    <store>/features/dataset=<name>/symbol=<S>/part-<id>.parquet                   untimed features (FI-2010)
    <store>/catalog.duckdb        datasets, tables (per dataset/kind), instruments, ingest_log (sha256)

Daily panels partition by year only: one day of a panel is a few hundred small rows, so per-symbol/per-day
files would be tiny and a cross-sectional read (all symbols, one date range) would open thousands of files.

Writes are atomic: every file is written into a staging directory inside the store, the whole batch is
validated, then files are renamed into place and the catalog is updated in one transaction. Any failure
moves the files back out and restores the catalog file byte for byte, so the store is exactly as before.
A file lock serialises writers; readers never block on it.

Time ranges are half-open: ``start <= t < end``. ``start``/``end`` accept int ns, ISO strings,
``datetime``/``date`` (naive means UTC).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from marketlab.core.errors import StoreError
from marketlab.store import duck
from marketlab.store.types import KINDS, IngestBatch, IngestReport, Instrument, check_dataset, check_symbol
from marketlab.store.validate import schema_for, time_key, validate_frame

NS_PER_DAY = 86_400_000_000_000
_EPOCH = dt.date(1970, 1, 1)

TimeLike = int | str | dt.datetime | dt.date | None


def default_store_path() -> Path:
    """``$MARKETLAB_STORE`` or ``data/store`` (relative to the working directory)."""
    return Path(os.environ.get("MARKETLAB_STORE") or "data/store")


def to_ns(value: TimeLike) -> int | None:
    """Convert a time-like value to int64 ns since the epoch, UTC (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise StoreError(f"invalid time {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise StoreError(f"invalid time {value!r} (use ISO 8601, e.g. 2024-01-02 or 2024-01-02T09:30)") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - _EPOCH).days * NS_PER_DAY
    raise StoreError(f"invalid time {value!r}")


def _to_date(value: TimeLike) -> dt.date | None:
    ns = to_ns(value)
    return None if ns is None else _EPOCH + dt.timedelta(days=ns // NS_PER_DAY)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class Store:
    """A market-data store rooted at ``path`` (default ``$MARKETLAB_STORE`` or ``data/store``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.mkdir(parents=True, exist_ok=True)
        self.catalog_path = self.path / "catalog.duckdb"
        self._lock_path = self.path / ".lock"
        self._cache: tuple[Any, dict[str, Any]] | None = None
        with self._write_lock():
            if not self.catalog_path.exists():
                duck.create_catalog(self.catalog_path, self.path)
                # a new catalog is empty: seed the cache instead of opening it to find that out
                self._set_cache(self._catalog_sig(), [
                    pl.DataFrame(schema={"name": pl.String}), pl.DataFrame(schema={"dataset": pl.String}),
                    _EMPTY_INSTRUMENTS, pl.DataFrame(schema={"dataset": pl.String, "sha256": pl.String}),
                ])

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

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
        """Catalog snapshot (dataset names, tables, instruments) cached until the catalog file changes:
        opening DuckDB costs tens of ms, too much for every small scan."""
        sig = self._catalog_sig()
        if self._cache is None or self._cache[0] != sig:
            self._set_cache(sig, duck.query_many(self.catalog_path, duck.META_QUERIES))
        return self._cache[1]  # type: ignore[index]

    def _catalog_sig(self) -> tuple[Any, ...]:
        wal = self.catalog_path.with_name(self.catalog_path.name + ".wal")
        out = []
        for p in (self.catalog_path, wal):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def _set_cache(self, sig: tuple[Any, ...], results: list[pl.DataFrame]) -> None:
        names, tables, ins, hashes = results
        known: dict[str, set[str]] = {}
        for ds, h in hashes.iter_rows():
            known.setdefault(ds, set()).add(h)
        self._cache = (sig, {
            "datasets": set(names["name"].to_list()),
            "tables": {(r["dataset"], r["kind"]): r for r in tables.iter_rows(named=True)},
            "instruments": ins,
            "hashes": known,
        })

    def _require_dataset(self, dataset: str) -> None:
        check_dataset(dataset)
        if dataset not in self._meta()["datasets"]:
            known = ", ".join(self.datasets()["dataset"].to_list()) or "none"
            raise StoreError(f"{self.path}: unknown dataset '{dataset}' (known: {known})")

    def _table(self, dataset: str, kind: str) -> dict[str, Any] | None:
        return self._meta()["tables"].get((dataset, kind))

    # ------------------------------------------------------------------ writing
    def ingest(
        self,
        format: str,
        paths: Sequence[str | Path] | str | Path,
        *,
        dataset: str | None = None,
        progress: bool = False,
        **options: Any,
    ) -> IngestReport:
        """Parse ``paths`` with ``marketlab.store.ingest.<format>`` and :meth:`write` the batch.

        Files already ingested into the target dataset (same sha256) are skipped: if all are known the
        call is a no-op reported as ``skipped``; a mix of known and new files is an error.
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
        if progress and _accepts(parse, "progress"):
            options["progress"] = True
        batch = parse(plist, dataset=dataset, **options)
        if dataset is None:  # parser chose the name: check for a re-ingest now
            skip = self._skip_report(batch.dataset, format, files, t0)
            if skip is not None:
                return skip
        report = self.write(batch, source_files=plist, format=format, _hashed=files)
        report.seconds = time.perf_counter() - t0
        return report

    def _skip_report(
        self, dataset: str, format: str, files: list[dict[str, Any]], t0: float
    ) -> IngestReport | None:
        known = self._meta()["hashes"].get(dataset, set()) & {f["sha256"] for f in files}
        if not known:
            return None
        names = [f["file"] for f in files]
        if len(known) == len({f["sha256"] for f in files}):
            return IngestReport(
                dataset=dataset, format=format, files=names, skipped=True,
                reason="all files already ingested (same sha256)", seconds=time.perf_counter() - t0,
            )
        dup = [f["file"] for f in files if f["sha256"] in known]
        raise StoreError(f"{dup[0]}: already ingested into '{dataset}'; ingest only the new files")

    def write(
        self,
        batch: IngestBatch,
        *,
        source_files: Iterable[str | Path] = (),
        format: str = "frames",
        mode: str = "append",
        _hashed: list[dict[str, Any]] | None = None,
    ) -> IngestReport:
        """Validate ``batch`` fully, then write it atomically and record it in the catalog.

        ``mode="append"`` adds part files next to existing ones (a panel/signal write that repeats an
        existing (date, symbol) is an error); ``mode="replace"`` replaces every partition the batch
        touches. Source files are hashed into the ingest log (re-ingest detection).
        """
        t0 = time.perf_counter()
        if mode not in ("append", "replace"):
            raise StoreError(f"write: mode must be 'append' or 'replace', got {mode!r}")
        dataset = check_dataset(batch.dataset)
        src = [Path(p) for p in source_files]
        source = str(src[0]) if len(src) == 1 else dataset
        instruments = {i.symbol: i for i in batch.instruments}
        for kind in batch.frames:
            if kind not in KINDS:
                raise StoreError(f"{source}: unknown frame kind '{kind}' (expected one of {', '.join(KINDS)})")
        # 1. Validate everything in memory before touching the disk.
        frames: dict[str, pl.DataFrame] = {}
        for kind, frame in batch.frames.items():
            df = validate_frame(kind, frame, f"{source} [{kind}]")
            missing = sorted(set(df["symbol"].unique().to_list()) - set(instruments))
            if missing:
                raise StoreError(f"{source} [{kind}]: no Instrument given for symbol(s) {missing[:5]}")
            frames[kind] = df
        if not frames or all(f.height == 0 for f in frames.values()):
            raise StoreError(f"{source}: nothing to write (all frames empty)")
        files = _hashed if _hashed is not None else _hash_sources(src)

        with self._write_lock():
            # Existing tables must agree on schema/partitioning (book levels, feature columns).
            for kind, df in frames.items():
                self._check_compatible(dataset, kind, df, mode, source)
            stage = self.path / f".staging-{uuid.uuid4().hex}"
            stage.mkdir()
            moved: list[tuple[Path, Path]] = []  # (final, staged) renamed into place
            displaced: list[tuple[Path, Path]] = []  # (final, backup) partitions replaced
            created: list[Path] = []
            catalog_backup = stage / "catalog.backup"
            try:
                # 2. Write every partition into staging.
                staged = self._stage(dataset, frames, stage)
                nbytes = sum(p.stat().st_size for _, p in staged)
                # 3. Totals after the write (computed before anything moves).
                tables = [self._table_totals(dataset, kind, df, mode, staged) for kind, df in frames.items()]
                shutil.copy2(self.catalog_path, catalog_backup)
                # 4. Rename into place.
                if mode == "replace":
                    for part_dir in sorted({final.parent for final, _ in staged}):
                        if part_dir.exists():
                            backup = stage / "displaced" / part_dir.relative_to(self.path)
                            backup.parent.mkdir(parents=True, exist_ok=True)
                            os.replace(part_dir, backup)
                            displaced.append((part_dir, backup))
                for final, staged_file in staged:
                    created.extend(_makedirs(final.parent))
                    os.replace(staged_file, final)
                    moved.append((final, staged_file))
                # 5. Catalog in one transaction.
                fresh = duck.record_ingest(
                    self.catalog_path,
                    dataset=dataset,
                    format=format,
                    meta=batch.meta,
                    tables=tables,
                    instruments=[
                        {"symbol": i.symbol, "tick_size": float(i.tick_size), "lot_size": float(i.lot_size),
                         "currency": i.currency}
                        for i in instruments.values()
                    ],
                    files=[{**f, "rows": sum(df.height for df in frames.values())} for f in files],
                )
            except BaseException:
                self._cache = None
                self._rollback(moved, displaced, created, catalog_backup)
                shutil.rmtree(stage, ignore_errors=True)
                raise
            # Still under the write lock: nobody else can have changed the catalog since our commit.
            self._set_cache(self._catalog_sig(), fresh)
            shutil.rmtree(stage, ignore_errors=True)
        symbols = sorted(set().union(*(set(df["symbol"].unique().to_list()) for df in frames.values())))
        return IngestReport(
            dataset=dataset,
            format=format,
            rows={k: df.height for k, df in frames.items()},
            symbols=symbols,
            files=[f["file"] for f in files],
            partitions=len(moved),
            bytes_written=nbytes,
            seconds=time.perf_counter() - t0,
        )

    def _rollback(
        self,
        moved: list[tuple[Path, Path]],
        displaced: list[tuple[Path, Path]],
        created: list[Path],
        catalog_backup: Path,
    ) -> None:
        for final, staged_file in reversed(moved):
            if final.exists():
                os.replace(final, staged_file)
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
        for final, backup in reversed(displaced):
            if not final.exists():
                os.replace(backup, final)
        if catalog_backup.exists():
            wal = self.catalog_path.with_name(self.catalog_path.name + ".wal")
            if wal.exists():
                wal.unlink()
            shutil.copy2(catalog_backup, self.catalog_path)

    def _check_compatible(self, dataset: str, kind: str, df: pl.DataFrame, mode: str, source: str) -> None:
        t = self._table(dataset, kind)
        if t is None:
            return
        old = json.loads(t["schema_json"])
        new = {c: str(d) for c, d in df.schema.items()}
        if old != new:
            raise StoreError(
                f"{source} [{kind}]: columns differ from the stored '{dataset}' {kind} "
                f"({len(new)} vs {len(old)} columns); write to a new dataset"
            )
        if kind in ("panel", "signals") and mode == "append" and time_key(kind, df.columns) == "date":
            years = df["date"].dt.year().unique().to_list()
            files = self._files(kind, dataset, None, years=years)
            if files:
                old_keys = pl.scan_parquet(files).select("date", "symbol").collect()
                clash = df.select("date", "symbol").join(old_keys, on=["date", "symbol"], how="inner")
                if clash.height:
                    raise StoreError(
                        f"{source} [{kind}]: ({clash['date'][0]}, {clash['symbol'][0]}) already in dataset "
                        f"'{dataset}'; use mode='replace' or a new dataset"
                    )

    def _stage(self, dataset: str, frames: dict[str, pl.DataFrame], stage: Path) -> list[tuple[Path, Path]]:
        """Write every partition of every frame under ``stage``; return (final path, staged path) pairs."""
        jobs: list[tuple[pl.DataFrame, Path]] = []
        for kind, df in frames.items():
            if df.height == 0:
                continue
            key = time_key(kind, df.columns)
            base = Path(kind) / f"dataset={dataset}"
            if key == "ts":
                ts = df.get_column("ts")
                d0, d1 = int(ts.min()) // NS_PER_DAY, int(ts.max()) // NS_PER_DAY  # type: ignore[arg-type]
                sym = df.get_column("symbol")
                if d0 == d1 and sym.n_unique() == 1:
                    # one (symbol, day), e.g. a LOBSTER file: no partition_by copy of the whole frame
                    d = _EPOCH + dt.timedelta(days=d0)
                    jobs.append((df, base / f"symbol={sym[0]}" / f"date={d.isoformat()}"))
                    continue
                keyed = df.with_columns((pl.col("ts") // NS_PER_DAY).alias("_day"))
                groups = keyed.partition_by(["symbol", "_day"], as_dict=True, maintain_order=True)
                for (sym_, day), part in groups.items():
                    d = _EPOCH + dt.timedelta(days=int(day))
                    jobs.append((part.drop("_day"), base / f"symbol={sym_}" / f"date={d.isoformat()}"))
            elif key == "date":
                keyed = df.with_columns(pl.col("date").dt.year().alias("_year"))
                for (year,), part in keyed.partition_by(["_year"], as_dict=True, maintain_order=True).items():
                    jobs.append((part.drop("_year"), base / f"year={int(year):04d}"))
            else:
                for (sym_,), part in df.partition_by(["symbol"], as_dict=True, maintain_order=True).items():
                    jobs.append((part, base / f"symbol={sym_}"))
        # A big partition (a LOBSTER level-10 book is ~50 MB in memory) is cut into row slices written as
        # consecutive files "part-<id>-000", "-001", ... (names sort in row order), so they can be
        # encoded in parallel like the parts of a multi-partition write.
        workers = max(1, min(4, os.cpu_count() or 1))
        pieces: list[tuple[pl.DataFrame, Path, str]] = []
        for part, rel in jobs:
            uid = uuid.uuid4().hex[:16]
            k = min(workers, max(1, part.estimated_size() // _SPLIT_BYTES)) if part.height >= 2 * _SPLIT_ROWS else 1
            if k == 1:
                pieces.append((part, rel, f"part-{uid}.parquet"))
                continue
            step = -(-part.height // k)
            for j in range(k):
                pieces.append((part.slice(j * step, step), rel, f"part-{uid}-{j:03d}.parquet"))
        if len(pieces) <= 1 or workers == 1:
            return [self._write_part(part, rel, name, stage) for part, rel, name in pieces]
        # Parquet encoding/compression runs in C++ without the GIL: write the pieces in parallel.
        with ThreadPoolExecutor(max_workers=min(workers, len(pieces))) as pool:
            return list(pool.map(lambda job: self._write_part(job[0], job[1], job[2], stage), pieces))

    def _write_part(self, part: pl.DataFrame, rel: Path, name: str, stage: Path) -> tuple[Path, Path]:
        # Staged flat (no directory tree): directory creation/removal dominates small writes here.
        staged = stage / name
        write_parquet(part, staged)
        return self.path / rel / name, staged

    def _table_totals(
        self, dataset: str, kind: str, df: pl.DataFrame, mode: str, staged: list[tuple[Path, Path]]
    ) -> dict[str, Any]:
        key = time_key(kind, df.columns)
        if key == "ts":
            lo, hi = int(df["ts"].min()), int(df["ts"].max())
        elif key == "date":
            lo = int((df["date"].min() - _EPOCH).days) * NS_PER_DAY
            hi = int((df["date"].max() - _EPOCH).days) * NS_PER_DAY
        else:
            lo = hi = None
        rows = df.height
        t = self._table(dataset, kind)
        if t is not None:
            if mode == "replace":
                # Rows that stay are those outside the partitions being replaced.
                replaced = {f.parent for f, _ in staged if f.relative_to(self.path).parts[0] == kind}
                kept = [f for f in self._files(kind, dataset, None) if Path(f).parent not in replaced]
                rows += pl.scan_parquet(kept).select(pl.len()).collect().item() if kept else 0
            else:
                rows += int(t["rows"])
            lo = None if lo is None else min(lo, t["ts_min"]) if t["ts_min"] is not None else lo
            hi = None if hi is None else max(hi, t["ts_max"]) if t["ts_max"] is not None else hi
        partitioning = {"ts": "symbol/date", "date": "year", None: "symbol"}[key]
        schema_json = json.dumps({c: str(d) for c, d in df.schema.items()})
        return {"kind": kind, "partitioning": partitioning, "schema_json": schema_json, "rows": rows,
                "ts_min": lo, "ts_max": hi}

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with open(self._lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading
    def _files(
        self,
        kind: str,
        dataset: str,
        symbols: Sequence[str] | None,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        years: Sequence[int] | None = None,
    ) -> list[str]:
        """Parquet files of (kind, dataset) restricted by listing only the needed partition directories."""
        root = self.path / kind / f"dataset={dataset}"
        if not root.is_dir():
            return []
        d0, d1 = _to_date(start), _to_date(end)
        end_ns = to_ns(end)
        # end is exclusive: a range ending exactly at midnight does not need that day's partition.
        if d1 is not None and end_ns is not None and end_ns % NS_PER_DAY == 0:
            d1 = d1 - dt.timedelta(days=1)
        out: list[str] = []
        entries = sorted(os.listdir(root))
        if entries and entries[0].startswith("year="):
            for y in entries:
                year = int(y[5:])
                if years is not None and year not in years:
                    continue
                if (d0 and year < d0.year) or (d1 and year > d1.year):
                    continue
                out.extend(_parts(root / y))
            return out
        if symbols is None:
            sym_dirs = [e for e in entries if e.startswith("symbol=")]
        else:
            sym_dirs = [f"symbol={check_symbol(s)}" for s in symbols if (root / f"symbol={s}").is_dir()]
        for sd in sym_dirs:
            sub = root / sd
            names = sorted(os.listdir(sub))
            if names and names[0].startswith("date="):
                lo, hi = (d0.isoformat() if d0 else None), (d1.isoformat() if d1 else None)
                for dd in names:
                    day = dd[5:]
                    if (lo and day < lo) or (hi and day > hi):
                        continue
                    out.extend(_parts(sub / dd))
            else:
                out.extend(_parts(sub))
        return out

    def _scan(
        self,
        kind: str,
        dataset: str,
        symbols: str | Sequence[str] | None,
        start: TimeLike,
        end: TimeLike,
        as_float: bool = False,
    ) -> pl.LazyFrame:
        self._require_dataset(dataset)
        if isinstance(symbols, str):
            symbols = [symbols]
        if symbols is not None:
            for s in symbols:
                check_symbol(s)
        t = self._table(dataset, kind)
        if t is None:
            raise StoreError(f"dataset '{dataset}' has no {kind}")
        schema = {c: _dtype(d) for c, d in json.loads(t["schema_json"]).items()}
        files = self._files(kind, dataset, symbols, start, end)
        if files:
            lf = pl.scan_parquet(files, hive_partitioning=False, schema=schema)
        else:
            lf = pl.LazyFrame(schema=schema)
        key = "ts" if "ts" in schema else ("date" if "date" in schema else None)
        if symbols is not None and t["partitioning"] == "year":
            lf = lf.filter(pl.col("symbol").is_in(list(symbols)))
        if key == "ts":
            s_ns, e_ns = to_ns(start), to_ns(end)
            if s_ns is not None:
                lf = lf.filter(pl.col("ts") >= s_ns)
            if e_ns is not None:
                lf = lf.filter(pl.col("ts") < e_ns)
        elif key == "date":
            d0, d1 = _to_date(start), _to_date(end)
            e_ns = to_ns(end)
            if d0 is not None:
                lf = lf.filter(pl.col("date") >= d0)
            if d1 is not None:
                # half-open on instants: a date D is in range when its midnight is before `end`.
                lf = lf.filter(pl.col("date") < d1 if e_ns % NS_PER_DAY == 0 else pl.col("date") <= d1)
        if as_float:
            lf = self._float_view(lf, dataset, schema)
        return lf

    def _float_view(self, lf: pl.LazyFrame, dataset: str, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
        cols = [c for c in schema if c in ("price", "size") or "_px_" in c or "_sz_" in c]
        if not cols:
            return lf
        ins = self._meta()["instruments"].filter(pl.col("dataset") == dataset)
        if ins["tick_size"].n_unique() == 1 and ins["lot_size"].n_unique() == 1:
            # One tick/lot for the whole dataset: a scalar multiply (a per-row string lookup over 10M
            # rows costs seconds).
            tick_e: pl.Expr = pl.lit(float(ins["tick_size"][0]))
            lot_e: pl.Expr = pl.lit(float(ins["lot_size"][0]))
            extra = None
        else:
            lf = lf.join(
                ins.lazy().select("symbol", pl.col("tick_size").alias("_tick"), pl.col("lot_size").alias("_lot")),
                on="symbol", how="left", maintain_order="left",
            )
            tick_e, lot_e, extra = pl.col("_tick"), pl.col("_lot"), ["_tick", "_lot"]
        exprs = []
        for c in cols:
            mult = tick_e if (c == "price" or "_px_" in c) else lot_e
            exprs.append((pl.col(c).cast(pl.Float64) * mult).alias(c))
        if extra:
            return lf.with_columns(exprs).drop(extra)
        return lf.with_columns(exprs)

    def scan_events(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                    end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """LOB events (EVENTS_SCHEMA) of ``dataset`` in ``[start, end)``; ``as_float`` gives currency/units."""
        return self._scan("events", dataset, symbols, start, end, as_float)

    def scan_book(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                  end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Book snapshots (``book_schema(L)``) of ``dataset`` in ``[start, end)``."""
        return self._scan("book", dataset, symbols, start, end, as_float)

    def scan_trades(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                    end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Trades (TRADES_SCHEMA) of ``dataset`` in ``[start, end)``."""
        return self._scan("trades", dataset, symbols, start, end, as_float)

    def scan_bars(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                  end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """OHLCV bars (BARS_SCHEMA, float prices already) of ``dataset`` in ``[start, end)``."""
        return self._scan("bars", dataset, symbols, start, end, as_float)

    def scan_features(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                      end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Feature frames of ``dataset`` (their own columns; time filter when they carry ts/date)."""
        return self._scan("features", dataset, symbols, start, end, as_float)

    def scan_signals(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                     end: TimeLike = None, *, as_float: bool = False) -> pl.LazyFrame:
        """Signal frames of ``dataset`` (their own columns; time filter on ts/date)."""
        return self._scan("signals", dataset, symbols, start, end, as_float)

    def scan_panel(self, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
                   end: TimeLike = None) -> pl.LazyFrame:
        """Daily panel (PANEL_SCHEMA) of ``dataset``, rows with ``start <= date < end``, sorted by (date, symbol)
        within each year partition."""
        return self._scan("panel", dataset, symbols, start, end)

    def read(self, kind: str, dataset: str, symbols: str | Sequence[str] | None = None, start: TimeLike = None,
             end: TimeLike = None, *, as_float: bool = False) -> pl.DataFrame:
        """Eager read of any kind (``scan_<kind>(...).collect()``)."""
        if kind not in KINDS:
            raise StoreError(f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})")
        return self._scan(kind, dataset, symbols, start, end, as_float).collect()

    def files(self, kind: str, dataset: str, symbols: str | Sequence[str] | None = None,
              start: TimeLike = None, end: TimeLike = None) -> list[str]:
        """The Parquet files a scan with these arguments reads (after partition pruning)."""
        if isinstance(symbols, str):
            symbols = [symbols]
        return self._files(kind, dataset, symbols, start, end)

    def sql(self, query: str) -> pl.DataFrame:
        """Run ``query`` in DuckDB over views of the same Parquet files.

        Views: ``<kind>_<dataset>`` (e.g. ``bars_sp500_5yr``; dataset names with ``-`` need double quotes)
        for every stored table, and the catalog tables ``datasets``, ``instruments``, ``ingest_log``,
        ``tables``.
        """
        views: dict[str, list[str]] = {}
        for r in self.tables().iter_rows(named=True):
            views[f"{r['kind']}_{r['dataset']}"] = self._files(r["kind"], r["dataset"], None)
        return duck.sql_over_store(self.catalog_path, views, query)


_SPLIT_BYTES = 16 << 20  # partitions above this (in memory) are written as several files in parallel
_SPLIT_ROWS = 1 << 16  # ... but never in pieces of fewer rows
_EMPTY_INSTRUMENTS = pl.DataFrame(schema={"dataset": pl.String, "symbol": pl.String, "tick_size": pl.Float64,
                                           "lot_size": pl.Float64, "currency": pl.String})


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    """One Parquet file: LZ4, dictionary encoding only for string columns (integer book and price
    columns gain little from dictionaries and cost ~40% more time), column statistics kept for pruning.
    Written through pyarrow: ~1.5x faster than polars' writer on wide integer frames. LZ4 over zstd-1:
    ~30% less CPU to write and faster to read, for files ~2x larger (5 vs 2.3 MB for a LOBSTER
    level-10 book day)."""
    table = df.to_arrow()
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
               or pa.types.is_string_view(f.type)]
    pq.write_table(table, path, compression="lz4", use_dictionary=strings or False, write_statistics=True)


def _accepts(fn: Any, name: str) -> bool:
    import inspect

    # Only an explicit parameter counts: parsers with **options may reject unknown keys.
    return name in inspect.signature(fn).parameters


def _parts(d: Path) -> list[str]:
    return [str(d / n) for n in sorted(os.listdir(d)) if n.endswith(".parquet")]


def _makedirs(d: Path) -> list[Path]:
    """mkdir -p returning the directories actually created (outermost first), for rollback."""
    missing: list[Path] = []
    p = d
    while not p.exists():
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        m.mkdir()
    return list(reversed(missing))


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


_DTYPES: dict[str, pl.DataType] = {
    "Int8": pl.Int8(), "Int16": pl.Int16(), "Int32": pl.Int32(), "Int64": pl.Int64(),
    "UInt8": pl.UInt8(), "UInt16": pl.UInt16(), "UInt32": pl.UInt32(), "UInt64": pl.UInt64(),
    "Float32": pl.Float32(), "Float64": pl.Float64(), "String": pl.String(), "Boolean": pl.Boolean(),
    "Date": pl.Date(),
}


def _dtype(name: str) -> pl.DataType:
    if name in _DTYPES:
        return _DTYPES[name]
    if name.startswith("Datetime"):
        return pl.Datetime("ns", "UTC") if "UTC" in name else pl.Datetime("ns")
    raise StoreError(f"catalog: unsupported stored dtype {name!r}")
