"""Natural keys of each kind and the merge of new records into a stored partition.

The store is duplicate-free by the data, not by the file: every kind has a natural key, and a record is
stored once whatever file (or simulation, or resample) it arrives through.

=========  =====================================  =============================================
kind       natural key                            order inside a partition
=========  =====================================  =============================================
events     (symbol, day, seq)                     seq
book       (symbol, day, seq)                     seq
trades     (symbol, ts, seq)                      ts, seq
bars       (symbol, ts)                           ts
panel      (symbol, date)                         date, symbol
signals    (symbol, ts | date)                    ts | date, symbol
features   (symbol, ts | date | day, sample)      the same columns
=========  =====================================  =============================================

The day of events/book is the partition's day, so inside one partition the key is (symbol, seq).
Merging new records into a partition: a key not stored yet is added; a key stored with the same values
is a no-op; a key stored with other values is a conflict, an error naming the key, unless the write
asked to ``upsert`` (the CLI's ``--replace``), in which case the new record replaces the stored one and
the report counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from marketlab.core.errors import StoreError
from marketlab.store.validate import distinct_symbols, first_step_back


def natural_key(kind: str, columns: list[str]) -> list[str] | None:
    """Columns that identify a record of ``kind`` inside one partition (None: no natural key)."""
    if kind in ("events", "book"):
        return ["symbol", "seq"]
    if kind == "trades":
        return ["symbol", "ts", "seq"]
    if kind == "bars":
        return ["symbol", "ts"]
    if kind == "panel":
        return ["symbol", "date"]
    key = ["symbol"] + [c for c in ("ts", "date") if c in columns][:1]
    if kind == "features":
        key += [c for c in ("day", "sample") if c in columns]
    return key if len(key) > 1 else None


def sort_columns(kind: str, columns: list[str]) -> list[str]:
    """Row order of a stored partition (the order scans return within one partition)."""
    if kind in ("events", "book"):
        return ["seq"]
    if kind == "trades":
        return ["ts", "seq"]
    key = natural_key(kind, columns) or []
    rest = [c for c in key if c != "symbol"]
    return rest + ["symbol"] if rest else key


def describe_key(row: dict[str, object]) -> str:
    """``symbol=AAA, ts=1704186000000000000`` for an error message."""
    return ", ".join(f"{k}={v}" for k, v in row.items())


def first_duplicate(df: pl.DataFrame, key: list[str]) -> dict[str, object] | None:
    """The first key that occurs twice in ``df`` (None when the key is unique)."""
    if df.height < 2:
        return None
    dup = df.select(key).is_duplicated()
    if not dup.any():
        return None
    return df.select(key).row(int(dup.arg_true()[0]), named=True)


@dataclass
class Merge:
    """Outcome of merging new records into a partition.

    ``frame`` is the partition after the merge (None when nothing changes); ``added`` counts new keys,
    ``replaced`` stored records whose values the write replaced (upsert only), ``same`` records that were
    already stored with the same values.
    """

    frame: pl.DataFrame | None
    added: int
    replaced: int
    same: int


def merge(old: pl.DataFrame, new: pl.DataFrame, kind: str, *, upsert: bool, where: str) -> Merge:
    """Merge ``new`` (unique on the natural key) into ``old`` (the stored partition, unique too).

    Raises :class:`StoreError` naming the first conflicting key, its column and both values, unless
    ``upsert``. ``where`` names the dataset/kind/partition for that message. Values are compared by a
    64-bit hash of each row (one join on the key plus the hash, however wide the rows), then exactly
    for the rows whose hashes differ.
    """
    key = natural_key(kind, new.columns)
    order = sort_columns(kind, new.columns)
    if key is None:  # no natural key: records are appended as they come
        return Merge(pl.concat([old, new]), new.height, 0, 0)
    if old.height == 0:
        return Merge(new.sort(order, maintain_order=True), new.height, 0, 0)
    if old.height == new.height and old.equals(new):  # the same partition again (a re-ingested file)
        return Merge(None, 0, 0, new.height)
    left = new.select(key).with_columns(new.hash_rows(seed=7).alias("_h"), pl.int_range(pl.len()).alias("_i"))
    right = old.select(key).with_columns(old.hash_rows(seed=7).alias("_ho"))
    j = left.join(right, on=key, how="left", nulls_equal=True)
    fresh_i = j.filter(pl.col("_ho").is_null())["_i"]
    changed_i = j.filter(pl.col("_ho").is_not_null() & (pl.col("_h") != pl.col("_ho")))["_i"]
    fresh, changed = new[fresh_i], new[changed_i]
    if changed.height and not upsert:
        row = changed.row(0, named=True)
        stored = old.join(changed.head(1).select(key), on=key, how="semi", nulls_equal=True).row(0, named=True)
        col = next((c for c in new.columns if c not in key and row[c] != stored[c]), new.columns[-1])
        raise StoreError(
            f"{where}: conflicting value for key ({describe_key({k: row[k] for k in key})}): {col} is "
            f"{stored[col]!r} in the store, {row[col]!r} in the new data; use --replace (mode='upsert') to "
            "overwrite"
        )
    same = new.height - fresh.height - changed.height
    if fresh.height == 0 and changed.height == 0:
        return Merge(None, 0, 0, same)
    kept = old.join(changed.select(key), on=key, how="anti", nulls_equal=True) if changed.height else old
    out = pl.concat([kept, changed, fresh]).sort(order, maintain_order=True)
    return Merge(out, fresh.height, changed.height, same)


def check_unique(kind: str, df: pl.DataFrame, part_day_col: str | None, source: str) -> None:
    """One batch must not carry a natural key twice (events/book: per symbol and day).

    Bars and panels are already checked by validation (strictly increasing time per symbol, unique
    (date, symbol)); events and book of one partition (one symbol and day) with ascending ``seq`` need
    only a neighbour comparison.
    """
    key = natural_key(kind, df.columns)
    if key is None or df.height < 2 or kind in ("bars", "panel"):
        return
    if kind in ("events", "book") and part_day_col is None and len(distinct_symbols(df.get_column("symbol"))) == 1:
        seq = df.get_column("seq")
        if seq.is_sorted():
            hit = first_step_back(seq, strict=True)  # sorted: a step that is not up repeats a key
            if hit is None:
                return
            row = df.select(key).row(hit, named=True)
            raise StoreError(f"{source} [{kind}]: duplicate key ({describe_key(row)}) within one write")
    cols = key + ([part_day_col] if part_day_col else [])
    dup = first_duplicate(df.select(cols), cols)
    if dup is not None:
        shown = {k: v for k, v in dup.items() if k != part_day_col}
        raise StoreError(f"{source} [{kind}]: duplicate key ({describe_key(shown)}) within one write")
