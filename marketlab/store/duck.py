"""The only module that talks to DuckDB: the catalog file and sandboxed SQL over the store's Parquet.

The catalog is the single source of truth of the store: its ``files`` table lists every committed data
file, and readers open only those. A write becomes visible in exactly one DuckDB transaction
(:func:`record_commit`), which also records the write's id in ``commits`` so that recovery can tell a
committed write from an interrupted one.

Catalog access is short-lived (attached per call, detached at once) so several processes can read the
same store; a writer holds the file for the length of one transaction. DuckDB refuses a second process
while a read-write attachment is open, so opening retries briefly, then says the store is busy.

One in-memory DuckDB instance per process (:func:`_engine`) ATTACHes the catalog file for each unit of
work and DETACHes it after (which checkpoints and releases the file lock): starting a DuckDB instance
and its first Arrow registration cost ~40 ms of CPU per ``duckdb.connect``, an ATTACH ~2 ms, which made
the catalog commit the largest fixed cost of a small ingest (benchmarks/store.py).

duckdb 2.0 notes: ``execute()`` results stream and hold the connection until fully read, so every query
here is materialised with ``con.sql(...).pl()`` before the connection closes.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from marketlab.core.errors import StoreError
from marketlab.store import faults

CATALOG_DDL = (
    """CREATE TABLE IF NOT EXISTS datasets (
        name VARCHAR PRIMARY KEY, format VARCHAR, created_at TIMESTAMP, updated_at TIMESTAMP,
        meta VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS tables (
        dataset VARCHAR, kind VARCHAR, partitioning VARCHAR, schema_json VARCHAR, rows BIGINT,
        ts_min BIGINT, ts_max BIGINT, PRIMARY KEY (dataset, kind))""",
    """CREATE TABLE IF NOT EXISTS instruments (
        dataset VARCHAR, symbol VARCHAR, tick_size DOUBLE, lot_size DOUBLE, currency VARCHAR,
        PRIMARY KEY (dataset, symbol))""",
    """CREATE TABLE IF NOT EXISTS ingest_log (
        dataset VARCHAR, format VARCHAR, file VARCHAR, sha256 VARCHAR, bytes BIGINT,
        ingested_at TIMESTAMP, rows BIGINT)""",
    # Every committed data file (path relative to the store); readers open exactly these.
    """CREATE TABLE IF NOT EXISTS files (
        path VARCHAR PRIMARY KEY, dataset VARCHAR, kind VARCHAR, part VARCHAR, rows BIGINT,
        ts_min BIGINT, ts_max BIGINT, write_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS commits (
        write_id VARCHAR PRIMARY KEY, dataset VARCHAR, format VARCHAR, committed_at TIMESTAMP, added BIGINT,
        replaced BIGINT)""",
)

CATALOG_TABLES = ("datasets", "tables", "instruments", "ingest_log", "files", "commits")

CatalogException = duckdb.CatalogException

_BUSY_HINT = "store is busy: another process is writing the catalog; retry when it has finished"


def _lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    # another process holds the file ("Could not set lock ... Conflicting lock"), or another thread of
    # this one has it attached ("Unique file handle conflict")
    return "lock" in text or "conflict" in text


_ENGINE: duckdb.DuckDBPyConnection | None = None
_ENGINE_PID = -1
_ENGINE_LOCK = threading.RLock()
_ALIASES = itertools.count()


def _engine() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB instance (made anew in a forked child: an instance's threads and
    file handles do not survive a fork)."""
    global _ENGINE, _ENGINE_PID
    if _ENGINE is None or _ENGINE_PID != os.getpid():
        _ENGINE = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        _ENGINE_PID = os.getpid()
    return _ENGINE


def _sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@contextmanager
def connect(path: Path, *, read_only: bool, retries: int = 60) -> Iterator[duckdb.DuckDBPyConnection]:
    """Attach the catalog ``path`` for one short unit of work: yields a cursor whose default database
    is the catalog (unqualified table names are the catalog's); retries while another process (or
    thread) holds it, then says the store is busy. Detached (checkpointed, lock released) on exit."""
    delay = 0.02
    alias = f"catalog_{next(_ALIASES)}"
    attach = f"ATTACH {_sql_string(str(path))} AS {alias}" + (" (READ_ONLY)" if read_only else "")
    for attempt in range(retries):
        with _ENGINE_LOCK:
            con = _engine().cursor()
        try:
            con.execute(attach)
            break
        except duckdb.Error as exc:
            con.close()
            if not _lock_conflict(exc):
                raise StoreError(f"{path}: cannot open catalog ({str(exc).splitlines()[0]})") from None
            if attempt == retries - 1:
                raise StoreError(f"{path.parent}: {_BUSY_HINT}") from None
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
    try:
        con.execute(f"USE {alias}")
        yield con
    finally:
        try:
            con.execute("USE memory")
            con.execute(f"DETACH {alias}")
        finally:
            con.close()


def init_catalog(path: Path) -> None:
    """Create the catalog file and its tables if missing."""
    with connect(path, read_only=False) as con:
        for ddl in CATALOG_DDL:
            con.sql(ddl)
        con.sql("CHECKPOINT")


_EMPTY_CATALOG: bytes | None = None


def create_catalog(path: Path, scratch: Path) -> None:
    """Create a new, empty catalog at ``path`` (which must not exist).

    The empty, checkpointed catalog file is built once per process (in ``scratch``) and then copied:
    opening DuckDB and running the DDL costs ~50-150 ms, a file copy well under 1 ms. The file is
    written beside ``path`` and renamed, so a crash never leaves half a catalog.
    """
    global _EMPTY_CATALOG
    if _EMPTY_CATALOG is None:
        tmp = scratch / f".catalog-template-{os.getpid()}.duckdb"
        try:
            init_catalog(tmp)
            _EMPTY_CATALOG = tmp.read_bytes()
        finally:
            for f in (tmp, tmp.with_name(tmp.name + ".wal")):
                if f.exists():
                    f.unlink()
    part = path.with_name(path.name + f".tmp-{os.getpid()}")
    part.write_bytes(_EMPTY_CATALOG)
    os.replace(part, path)


def missing_tables(path: Path) -> list[str]:
    """Catalog tables a catalog written by an older marketlab lacks (``files``, ``commits``)."""
    with connect(path, read_only=True) as con:
        have = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
    return [t for t in CATALOG_TABLES if t not in have]


def migrate(path: Path, files: list[dict[str, Any]]) -> None:
    """Add the tables an older catalog lacks; ``files`` (listed from disk by the caller) fill ``files``."""
    with connect(path, read_only=False) as con:
        con.sql("BEGIN TRANSACTION")
        for ddl in CATALOG_DDL:
            con.sql(ddl)
        if files:
            con.executemany(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, 'migrated')",
                [[f["path"], f["dataset"], f["kind"], f["part"], f["rows"], f["ts_min"], f["ts_max"]] for f in files],
            )
        con.sql("COMMIT")
        con.sql("CHECKPOINT")


META_QUERIES = (
    "SELECT name FROM datasets",
    "SELECT * FROM tables",
    "SELECT * FROM instruments",
    "SELECT DISTINCT dataset, sha256 FROM ingest_log",
    "SELECT dataset, kind, part, path, rows FROM files ORDER BY dataset, kind, part, path",
)


def query(path: Path, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run one read-only query on the catalog and return it as a Polars frame."""
    with connect(path, read_only=True) as con:
        out: pl.DataFrame = con.sql(sql, params=params).pl() if params else con.sql(sql).pl()
        return out


def query_many(path: Path, sqls: Sequence[str]) -> list[pl.DataFrame]:
    """Several read-only queries over ONE connection (opening the catalog costs tens of ms)."""
    with connect(path, read_only=True) as con:
        return [con.sql(q).pl() for q in sqls]


def is_committed(path: Path, write_id: str) -> bool:
    """Whether the write ``write_id`` reached its catalog commit."""
    df = query(path, "SELECT count(*) AS n FROM commits WHERE write_id = ?", [write_id])
    return bool(df["n"][0])


def checkpoint(path: Path) -> None:
    """Fold a leftover write-ahead log into the catalog file (after a writer died past its commit)."""
    with connect(path, read_only=False) as con:
        con.sql("CHECKPOINT")


def record_commit(
    path: Path,
    *,
    write_id: str,
    dataset: str,
    format: str,
    meta: dict[str, Any],
    layouts: dict[str, tuple[str, str]],
    add_files: list[dict[str, Any]],
    drop_files: list[str],
    instruments: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    added: int,
    replaced: int,
    forget_sources: bool,
) -> list[pl.DataFrame]:
    """Make one write visible in ONE transaction (all or nothing): the commit point of the store.

    ``layouts``: kind -> (partitioning, schema JSON); ``add_files``/``drop_files``: the data files this
    write adds and the ones it supersedes; per-table totals are recomputed from ``files``.
    ``forget_sources`` drops the dataset's ingest log first (stored records were replaced, so a file's
    hash no longer proves its records are stored as in the file). Returns the :data:`META_QUERIES`
    results after the commit, read on the same connection.
    """
    # Every value goes in as a registered Arrow table and the whole write is ONE multi-statement script:
    # DuckDB costs ~5-10 ms per statement round trip (parse, plan, Python), which dominated small writes.
    # NOTE: the table names below are private to this connection.
    s = pa.string()
    tables: dict[str, pa.Table] = {
        "_ds": pa.table(
            {
                "name": pa.array([dataset], s),
                "format": pa.array([format], s),
                "meta": pa.array([json.dumps(meta, default=str)], s),
            }
        ),
        "_drop": pa.table({"path": pa.array(drop_files, s)}),
        "_add": pa.table(
            {
                "path": pa.array([f["path"] for f in add_files], s),
                "dataset": pa.array([dataset] * len(add_files), s),
                "kind": pa.array([f["kind"] for f in add_files], s),
                "part": pa.array([f["part"] for f in add_files], s),
                "rows": pa.array([f["rows"] for f in add_files], pa.int64()),
                "ts_min": pa.array([f["ts_min"] for f in add_files], pa.int64()),
                "ts_max": pa.array([f["ts_max"] for f in add_files], pa.int64()),
                "write_id": pa.array([write_id] * len(add_files), s),
            }
        ),
        "_lay": pa.table(
            {
                "kind": pa.array(list(layouts), s),
                "partitioning": pa.array([v[0] for v in layouts.values()], s),
                "schema_json": pa.array([v[1] for v in layouts.values()], s),
            }
        ),
        "_ins": pa.table(
            {
                "symbol": pa.array([i["symbol"] for i in instruments], s),
                "tick_size": pa.array([i["tick_size"] for i in instruments], pa.float64()),
                "lot_size": pa.array([i["lot_size"] for i in instruments], pa.float64()),
                "currency": pa.array([i["currency"] for i in instruments], s),
            }
        ),
        "_src": pa.table(
            {
                "file": pa.array([f["file"] for f in sources], s),
                "sha256": pa.array([f["sha256"] for f in sources], s),
                "bytes": pa.array([f["bytes"] for f in sources], pa.int64()),
                "rows": pa.array([f["rows"] for f in sources], pa.int64()),
            }
        ),
        "_cm": pa.table(
            {
                "write_id": pa.array([write_id], s),
                "added": pa.array([added], pa.int64()),
                "replaced": pa.array([replaced], pa.int64()),
            }
        ),
    }
    script = [
        """INSERT INTO datasets SELECT name, format, now(), now(), meta FROM _ds
           ON CONFLICT (name) DO UPDATE SET updated_at = now(), format = excluded.format, meta = excluded.meta""",
        "DELETE FROM files WHERE path IN (SELECT path FROM _drop)" if drop_files else "",
        "INSERT INTO files SELECT * FROM _add" if add_files else "",
        # one join + group-by (three correlated subqueries per kind cost ~2x the planning and execution)
        """INSERT OR REPLACE INTO tables
           SELECT _ds.name, l.kind, l.partitioning, l.schema_json, coalesce(sum(f.rows), 0)::BIGINT, min(f.ts_min),
                  max(f.ts_max)
           FROM _lay l CROSS JOIN _ds LEFT JOIN files f ON f.dataset = _ds.name AND f.kind = l.kind
           GROUP BY ALL"""
        if layouts
        else "",
        "INSERT OR REPLACE INTO instruments SELECT _ds.name, i.* FROM _ins i, _ds" if instruments else "",
        "DELETE FROM ingest_log WHERE dataset = (SELECT name FROM _ds)" if forget_sources else "",
        """INSERT INTO ingest_log SELECT _ds.name, _ds.format, s.file, s.sha256, s.bytes, now(), s.rows
           FROM _src s, _ds"""
        if sources
        else "",
        "INSERT INTO commits SELECT c.write_id, _ds.name, _ds.format, now(), c.added, c.replaced FROM _cm c, _ds",
    ]
    with connect(path, read_only=False) as con:
        for name, table in tables.items():
            con.register(name, table)
        con.sql("BEGIN TRANSACTION")
        try:
            con.execute(";\n".join(q for q in script if q))
            faults.point("catalog")
            con.sql("COMMIT")
        except BaseException:
            con.sql("ROLLBACK")
            raise
        faults.point("committed")
        con.sql("CHECKPOINT")
        return [con.sql(q).pl() for q in META_QUERIES]


# Statement types `data sql` runs; everything else (COPY, ATTACH, INSTALL/LOAD, CREATE, INSERT, SET, ...)
# is refused before it runs.
_READ_STATEMENTS = ("SELECT", "EXPLAIN")


def sql_over_store(root: Path, catalog: dict[str, pl.DataFrame], views: dict[str, list[str]], sql: str) -> pl.DataFrame:
    """Run a read-only ``sql`` in a sandboxed in-memory DuckDB over the store's committed files.

    ``catalog`` maps a catalog table name to its rows (copied in as in-memory tables, so the catalog
    file is never opened here); ``views`` maps a view name to the Parquet files it reads. Only SELECT and
    EXPLAIN statements run; external access is limited to the committed files the views read (not even
    other files under ``root``) and the configuration is locked, so a query reads what the catalog lists
    and nothing else, and writes nothing.
    """
    con = duckdb.connect(":memory:")
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise StoreError(f"sql: {str(exc).splitlines()[0]}") from None
        if not statements:
            raise StoreError("sql: empty query")
        for st in statements:
            kind = str(st.type).rsplit(".", 1)[-1]
            if kind not in _READ_STATEMENTS:
                raise StoreError(f"sql: {kind} statements are not allowed; `data sql` is read-only (SELECT only)")
        for name, frame in catalog.items():
            con.register("_src", frame.to_arrow())
            con.sql(f'CREATE TABLE "{name}" AS SELECT * FROM _src')
            con.unregister("_src")
        for name, files in views.items():
            if not files:
                continue
            listing = ", ".join(f"'{_quote(f)}'" for f in files)
            con.sql(
                f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listing}], '
                "union_by_name = true, hive_partitioning = false)"
            )
        # Only the committed files the views read: a file in the store that the catalog does not list (a
        # write in progress, a dead writer's leftover) or the catalog itself cannot be named in a query.
        allowed = ", ".join(f"'{_quote(f)}'" for files in views.values() for f in files)
        con.sql(f"SET allowed_paths = [{allowed}]")
        con.sql("SET enable_external_access = false")
        con.sql("SET autoinstall_known_extensions = false")
        con.sql("SET autoload_known_extensions = false")
        con.sql("SET lock_configuration = true")
        try:
            result: pl.DataFrame = con.sql(sql).pl()
            return result
        except duckdb.Error as exc:
            raise StoreError(f"sql: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _quote(s: str) -> str:
    return s.replace("'", "''")
