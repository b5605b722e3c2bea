"""Reads: which committed files a scan needs (partition pruning over the catalog's file list) and the
lazy Polars scan over them (time filter, symbol filter, float view).

Only files listed in the catalog are ever opened: a file on disk that the catalog does not list (a
write in progress, or one a killed writer left) is invisible. Time ranges are half-open
``start <= t < end``; ``start``/``end`` accept int ns, ISO strings, ``datetime``/``date`` (naive = UTC).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.errors import StoreError
from marketlab.core.schema import BARS_OPTIONAL, BARS_SCHEMA
from marketlab.core.timeutil import NS_PER_DAY, TimeLike, ns_to_date, to_ns
from marketlab.store.types import check_symbol

OptTime = TimeLike | None


def opt_ns(value: OptTime) -> int | None:
    """``to_ns`` that passes None through (an open end of a range)."""
    return None if value is None else to_ns(value)


def opt_date(value: OptTime) -> dt.date | None:
    """The UTC day of a time value (None passes through)."""
    ns = opt_ns(value)
    return None if ns is None else ns_to_date(ns)


class FileIndex:
    """The catalog's file list of one snapshot, grouped for pruning.

    ``parts[(dataset, kind)]``: sorted ``(part, [(path, rows), ...])``; ``by_part[(dataset, kind, part)]``:
    the files of one partition (store-relative paths, row order).
    """

    def __init__(self, files: pl.DataFrame) -> None:
        self.by_part: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
        for ds, kind, part, path, rows in files.iter_rows():
            self.by_part.setdefault((ds, kind, part), []).append((path, rows))
        self.parts: dict[tuple[str, str], list[str]] = {}
        for ds, kind, part in sorted(self.by_part):
            self.parts.setdefault((ds, kind), []).append(part)

    def get(self, key: tuple[str, str, str], default: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The files (path, rows) of one partition, or ``default``."""
        return self.by_part.get(key, default)

    def select(
        self,
        kind: str,
        dataset: str,
        symbols: Sequence[str] | None,
        start: OptTime = None,
        end: OptTime = None,
        *,
        years: Sequence[int] | None = None,
    ) -> list[str]:
        """Store-relative files of (kind, dataset) whose partitions can hold rows of the request."""
        d0, d1 = opt_date(start), opt_date(end)
        end_ns = opt_ns(end)
        # end is exclusive: a range ending exactly at midnight does not need that day's partition.
        if d1 is not None and end_ns is not None and end_ns % NS_PER_DAY == 0:
            d1 = d1 - dt.timedelta(days=1)
        lo, hi = (d0.isoformat() if d0 else None), (d1.isoformat() if d1 else None)
        wanted = None if symbols is None else {f"symbol={check_symbol(s)}" for s in symbols}
        out: list[str] = []
        for part in self.parts.get((dataset, kind), []):
            if part.startswith("year="):
                year = int(part[5:])
                if (years is not None and year not in years) or (d0 and year < d0.year) or (d1 and year > d1.year):
                    continue
            else:
                sym, _, date = part.partition("/")
                if wanted is not None and sym not in wanted:
                    continue
                if date:
                    day = date[5:]
                    if (lo and day < lo) or (hi and day > hi):
                        continue
            out.extend(p for p, _ in self.by_part[(dataset, kind, part)])
        return out


_DTYPES: dict[str, pl.DataType] = {
    "Int8": pl.Int8(), "Int16": pl.Int16(), "Int32": pl.Int32(), "Int64": pl.Int64(),
    "UInt8": pl.UInt8(), "UInt16": pl.UInt16(), "UInt32": pl.UInt32(), "UInt64": pl.UInt64(),
    "Float32": pl.Float32(), "Float64": pl.Float64(), "String": pl.String(), "Boolean": pl.Boolean(),
    "Date": pl.Date(),
}


def dtype(name: str) -> pl.DataType:
    """The Polars dtype of a stored schema entry (``str(dtype)`` as written in the catalog)."""
    if name in _DTYPES:
        return _DTYPES[name]
    if name.startswith("Datetime"):
        return pl.Datetime("ns", "UTC") if "UTC" in name else pl.Datetime("ns")
    raise StoreError(f"catalog: unsupported stored dtype {name!r}")


def locate(root: Path | str, rel: str) -> str:
    """The path (or object URI, when ``root`` is an ``s3://`` string) of a store-relative file."""
    return f"{root.rstrip('/')}/{rel}" if isinstance(root, str) else str(root / rel)


def scan(
    root: Path | str,
    table: dict[str, Any],
    files: list[str],
    symbols: Sequence[str] | None,
    start: OptTime,
    end: OptTime,
    *,
    storage_options: dict[str, str] | None = None,
) -> pl.LazyFrame:
    """Lazy frame over ``files`` (store-relative; ``root`` a folder or an ``s3://`` URI) with the half-open
    time and symbol filters applied. Only these files are opened: partition pruning is the file list."""
    schema = {c: dtype(d) for c, d in json.loads(table["schema_json"]).items()}
    if files:
        lf = pl.scan_parquet([locate(root, f) for f in files], hive_partitioning=False, schema=schema,
                             storage_options=storage_options)
    else:
        lf = pl.LazyFrame(schema=schema)
    if table.get("kind") == "bars" and any(c not in schema for c in BARS_OPTIONAL):
        # a bars dataset stored before the taker columns existed: they read as null, in BARS_SCHEMA order
        lf = lf.with_columns(pl.lit(None, BARS_SCHEMA[c]).alias(c) for c in BARS_OPTIONAL if c not in schema)
        lf = lf.select([c for c in BARS_SCHEMA if c in schema or c in BARS_OPTIONAL])
    key = "ts" if "ts" in schema else ("date" if "date" in schema else None)
    if symbols is not None and table["partitioning"] == "year":
        lf = lf.filter(pl.col("symbol").is_in(list(symbols)))
    if key == "ts":
        s_ns, e_ns = opt_ns(start), opt_ns(end)
        if s_ns is not None:
            lf = lf.filter(pl.col("ts") >= s_ns)
        if e_ns is not None:
            lf = lf.filter(pl.col("ts") < e_ns)
    elif key == "date":
        d0, d1 = opt_date(start), opt_date(end)
        e_ns = opt_ns(end)
        if d0 is not None:
            lf = lf.filter(pl.col("date") >= d0)
        if d1 is not None and e_ns is not None:
            # half-open on instants: a date D is in range when its midnight is before `end`.
            lf = lf.filter(pl.col("date") < d1 if e_ns % NS_PER_DAY == 0 else pl.col("date") <= d1)
    return lf


def float_view(lf: pl.LazyFrame, instruments: pl.DataFrame, schema: Sequence[str]) -> pl.LazyFrame:
    """Integer ticks/lots -> currency/units with each symbol's tick and lot size (``instruments`` of
    one dataset)."""
    cols = [c for c in schema if c in ("price", "size") or "_px_" in c or "_sz_" in c]
    if not cols:
        return lf
    if instruments["tick_size"].n_unique() == 1 and instruments["lot_size"].n_unique() == 1:
        # One tick/lot for the whole dataset: a scalar multiply (a per-row string lookup over 10M
        # rows costs seconds).
        tick_e: pl.Expr = pl.lit(float(instruments["tick_size"][0]))
        lot_e: pl.Expr = pl.lit(float(instruments["lot_size"][0]))
        extra = None
    else:
        lf = lf.join(
            instruments.lazy().select("symbol", pl.col("tick_size").alias("_tick"), pl.col("lot_size").alias("_lot")),
            on="symbol", how="left", maintain_order="left",
        )
        tick_e, lot_e, extra = pl.col("_tick"), pl.col("_lot"), ["_tick", "_lot"]
    exprs = []
    for c in cols:
        mult = tick_e if (c == "price" or "_px_" in c) else lot_e
        if extra is None and float(instruments["tick_size" if mult is tick_e else "lot_size"][0]) == 1.0:
            exprs.append(pl.col(c).cast(pl.Float64))  # x * 1.0 == x: skip a pass over every row
        else:
            exprs.append((pl.col(c).cast(pl.Float64) * mult).alias(c))
    if extra:
        return lf.with_columns(exprs).drop(extra)
    return lf.with_columns(exprs)
