"""The only module that talks to DuckDB: the catalog file and SQL views over the store's Parquet.

Connections are short-lived (opened per call, closed at once) so several processes can read the same
store; a writer holds the file for the length of one transaction. DuckDB refuses a second process while
a read-write connection is open, so opening retries briefly on a lock conflict.

duckdb 2.0 notes: ``execute()`` results stream and hold the connection until fully read, so every query
here is materialised with ``con.sql(...).pl()`` before the connection closes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from marketlab.core.errors import StoreError

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
)


@contextmanager
def connect(path: Path, *, read_only: bool, retries: int = 50) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` for one short unit of work; retry while another process holds the write lock."""
    delay = 0.02
    for attempt in range(retries):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:  # lock held by another process
            if "lock" not in str(exc).lower() or attempt == retries - 1:
                raise StoreError(f"{path}: cannot open catalog ({str(exc).splitlines()[0]})") from exc
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
    try:
        yield con
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


META_QUERIES = (
    "SELECT name FROM datasets",
    "SELECT * FROM tables",
    "SELECT * FROM instruments",
    "SELECT DISTINCT dataset, sha256 FROM ingest_log",
)


def query(path: Path, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run one read-only query on the catalog and return it as a Polars frame."""
    with connect(path, read_only=True) as con:
        return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()


def query_many(path: Path, sqls: Sequence[str]) -> list[pl.DataFrame]:
    """Several read-only queries over ONE connection (opening the catalog costs tens of ms)."""
    with connect(path, read_only=True) as con:
        return [con.sql(q).pl() for q in sqls]


def known_hashes(path: Path, dataset: str, hashes: Sequence[str]) -> set[str]:
    """The subset of ``hashes`` already in the ingest log of ``dataset``."""
    if not hashes:
        return set()
    df = query(path, "SELECT DISTINCT sha256 FROM ingest_log WHERE dataset = ?", [dataset])
    return set(df["sha256"].to_list()) & set(hashes)


def record_ingest(
    path: Path,
    *,
    dataset: str,
    format: str,
    meta: dict[str, Any],
    tables: list[dict[str, Any]],
    instruments: list[dict[str, Any]],
    files: list[dict[str, Any]],
) -> list[pl.DataFrame]:
    """Update datasets/tables/instruments/ingest_log in ONE transaction (all or nothing).

    ``tables`` rows: dataset-kind totals AFTER this write (rows, ts range, schema, partitioning).
    Returns the :data:`META_QUERIES` results after the commit, read on the same connection, so the
    writer's catalog cache is fresh without opening the catalog again.
    """
    with connect(path, read_only=False) as con:
        con.sql("BEGIN TRANSACTION")
        try:
            con.execute(
                """INSERT INTO datasets VALUES (?, ?, now(), now(), ?)
                   ON CONFLICT (name) DO UPDATE SET updated_at = now(), format = excluded.format,
                   meta = excluded.meta""",
                [dataset, format, json.dumps(meta, default=str)],
            )
            for t in tables:
                con.execute(
                    """INSERT OR REPLACE INTO tables VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    [dataset, t["kind"], t["partitioning"], t["schema_json"], t["rows"], t["ts_min"], t["ts_max"]],
                )
            for ins in instruments:
                con.execute(
                    "INSERT OR REPLACE INTO instruments VALUES (?, ?, ?, ?, ?)",
                    [dataset, ins["symbol"], ins["tick_size"], ins["lot_size"], ins["currency"]],
                )
            for f in files:
                con.execute(
                    "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, now(), ?)",
                    [dataset, format, f["file"], f["sha256"], f["bytes"], f["rows"]],
                )
            con.sql("COMMIT")
        except Exception:
            con.sql("ROLLBACK")
            raise
        con.sql("CHECKPOINT")
        return [con.sql(q).pl() for q in META_QUERIES]


def sql_over_store(catalog: Path, views: dict[str, list[str]], sql: str) -> pl.DataFrame:
    """Run ``sql`` in an in-memory DuckDB with the catalog attached read-only and one view per table.

    ``views`` maps a view name to the Parquet files it reads (union by column name). The catalog's
    tables appear as views ``datasets``, ``instruments``, ``ingest_log``, ``tables``.
    """
    con = duckdb.connect(":memory:")
    try:
        con.sql(f"ATTACH '{_quote(str(catalog))}' AS cat (READ_ONLY)")
        for t in ("datasets", "instruments", "ingest_log", "tables"):
            con.sql(f'CREATE VIEW "{t}" AS SELECT * FROM cat.{t}')
        for name, files in views.items():
            if not files:
                continue
            listing = ", ".join(f"'{_quote(f)}'" for f in files)
            con.sql(
                f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listing}], '
                "union_by_name = true, hive_partitioning = false)"
            )
        try:
            return con.sql(sql).pl()
        except duckdb.Error as exc:
            raise StoreError(f"sql: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def _quote(s: str) -> str:
    return s.replace("'", "''")
