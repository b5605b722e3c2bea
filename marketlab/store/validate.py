"""Validation of frames before they are written: schema, names, finiteness, signs, order, uniqueness.

Every check raises a one-line :class:`DataError` naming the source (file or dataset/kind), the field, the
first offending row and its value, so a bad ingest stops before anything touches the store.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import BARS_OPTIONAL, SCHEMAS, book_levels, book_schema
from marketlab.store.types import KINDS, check_symbol

# Time key of each kind; features/signals may carry either (or neither, for features).
TS_KINDS = ("events", "book", "trades", "bars")
DATE_KINDS = ("panel",)


def schema_for(kind: str, frame: pl.DataFrame) -> dict[str, pl.DataType]:
    """The storage schema of ``frame`` as ``kind``: fixed schemas for the core kinds, book by level count,
    and the frame's own schema for features/signals (which must carry ``symbol``)."""
    if kind in SCHEMAS:
        return SCHEMAS[kind]
    if kind == "book":
        return book_schema(book_levels(frame.columns))
    if kind in ("features", "signals"):
        return dict(frame.schema)
    raise DataError(None, f"unknown frame kind '{kind}' (expected one of {', '.join(KINDS)})")


def time_key(kind: str, columns: list[str]) -> str | None:
    """``"ts"`` (partition by day), ``"date"`` (partition by year) or None (no time partition)."""
    if kind in TS_KINDS:
        return "ts"
    if kind in DATE_KINDS:
        return "date"
    if "ts" in columns:
        return "ts"
    if "date" in columns:
        return "date"
    return None


def distinct_symbols(symbol: pl.Series) -> list[Any]:
    """The distinct values of a symbol column (null included), in no particular order.

    A LOBSTER day, a streamed batch or a single-instrument file holds one symbol: ``min == max`` tells so
    in one pass without hashing (in no pass when the column is flagged sorted), where ``unique()`` hashes
    every row (~1 ms per 150k rows, and a write asked four times per frame)."""
    if symbol.len() and not symbol.null_count() and symbol.min() == symbol.max():
        return [symbol[0]]
    return symbol.unique().to_list()


def _first_bad(frame: pl.DataFrame, mask: pl.Expr, col: str) -> tuple[int, object] | None:
    idx = frame.with_row_index("_row").filter(mask).select("_row", col).head(1)
    if idx.height == 0:
        return None
    return int(idx["_row"][0]), idx[col][0]


def _fail_if(frame: pl.DataFrame, mask: pl.Expr, col: str, problem: str, source: str) -> None:
    bad = _first_bad(frame, mask, col)
    if bad is not None:
        raise DataError(source, problem, field=col, row=bad[0], value=bad[1])


_ORDER_SLICE = 1 << 16  # rows per slice of the one-symbol order check


def first_step_back(s: pl.Series, strict: bool) -> int | None:
    """Index of the first row where ``s`` decreases from the row before (``strict``: fails to increase),
    None when it never does. The difference is taken slice by slice, so no full-length temporary column
    is allocated (a streamed batch's peak memory stays near the batch)."""
    if not strict and s.is_sorted():
        return None
    for i in range(0, s.len(), _ORDER_SLICE):
        d = s.slice(max(i - 1, 0), _ORDER_SLICE + (i > 0)).diff()
        hit = (d <= 0 if strict else d < 0).arg_true()
        if hit.len():
            return max(i - 1, 0) + int(hit[0])
    return None


def _out_of_order(df: pl.DataFrame, key: str, strict: bool, one_symbol: bool) -> bool:
    """Whether ``key`` ever decreases (or, ``strict``, fails to increase) within a symbol.

    One symbol (a LOBSTER day, a single-instrument file, a streamed batch): :func:`first_step_back`, slice
    by slice; several symbols: one windowed difference over the frame."""
    if not one_symbol:
        diff = pl.col(key).diff().over("symbol")
        return bool(df.select((diff <= 0 if strict else diff < 0).any()).item())
    return first_step_back(df.get_column(key), strict) is not None


def conform_frame(kind: str, frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Cast ``frame`` to its kind's schema (column order included); missing/uncastable columns are errors."""
    if kind == "book" and book_levels(frame.columns) < 1:
        raise DataError(source, "book frame has no ask_px_1 column", field="ask_px_1")
    schema = schema_for(kind, frame)
    if kind == "bars":  # a source without taker volumes stores them null
        absent = [pl.lit(None, schema[c]).alias(c) for c in BARS_OPTIONAL if c not in frame.columns]
        frame = frame.with_columns(absent) if absent else frame
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise DataError(source, f"missing column(s) {missing} for kind '{kind}'", field=missing[0])
    if "symbol" not in schema:
        raise DataError(source, f"kind '{kind}' needs a 'symbol' column", field="symbol")
    out = []
    for c, t in schema.items():
        try:
            out.append(frame.get_column(c).cast(t, strict=True))
        except Exception as exc:  # polars raises InvalidOperationError / ComputeError
            raise DataError(source, f"cannot cast to {t} ({type(exc).__name__})", field=c, value=str(frame[c].dtype)) from None
    return pl.DataFrame(out)


def validate_frame(kind: str, frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Conform and check ``frame``; returns the conformed frame. Raises :class:`DataError` on bad data."""
    df = conform_frame(kind, frame, source)
    if df.height == 0:
        return df
    if df.get_column("symbol").null_count():
        _fail_if(df, pl.col("symbol").is_null(), "symbol", "null symbol", source)
    symbols = distinct_symbols(df.get_column("symbol"))
    for sym in symbols:
        check_symbol(sym, source=source)
    key = time_key(kind, df.columns)
    if key is not None and df.get_column(key).null_count():
        _fail_if(df, pl.col(key).is_null(), key, "null timestamp", source)

    # Finite, positive prices; non-negative sizes/volumes. All checks are evaluated in ONE select (polars
    # runs the expressions in parallel over the same columns); only when one fails is its first row
    # looked up, in the order listed here, so the reported problem is the same as checking one by one.
    checks: list[tuple[pl.Expr, str, str]] = []
    for c, t in df.schema.items():
        if t.is_float() and kind in ("bars", "panel"):
            checks.append((pl.col(c).is_nan() | pl.col(c).is_infinite(), c, "NaN or infinite value"))
    if kind == "events":
        # LOBSTER halts (type 7) carry price -1: every other event needs a positive price.
        checks.append(((pl.col("price") <= 0) & (pl.col("type") != 7), "price", "non-positive price"))
        checks.append((pl.col("size") < 0, "size", "negative size"))
        checks.append((~pl.col("type").is_between(1, 7), "type", "event type outside 1..7"))
        checks.append((~pl.col("side").is_in([1, -1]), "side", "side must be +1 or -1"))
    elif kind == "trades":
        checks.append((pl.col("price") <= 0, "price", "non-positive price"))
        checks.append((pl.col("size") <= 0, "size", "non-positive size"))
        checks.append((~pl.col("aggressor").is_in([1, -1, 0]), "aggressor", "aggressor must be +1, -1 or 0"))
    elif kind == "book":
        for c in df.columns:
            if "_px_" in c or "_sz_" in c:
                checks.append((pl.col(c) < 0, c, "negative book price/size"))
    elif kind in ("bars", "panel"):
        for c in ("open", "high", "low", "close"):
            checks.append((pl.col(c) <= 0, c, "non-positive price"))
        checks.append((pl.col("volume") < 0, "volume", "negative volume"))
    if kind == "bars" and "taker_buy_volume" in df.columns:  # taker buys are part of the bar's volume
        checks.append((pl.col("taker_buy_volume") < 0, "taker_buy_volume", "negative taker buy volume"))
        checks.append(
            (pl.col("taker_buy_volume") > pl.col("volume"), "taker_buy_volume", "taker buy volume exceeds the bar's volume")
        )
        checks.append((pl.col("taker_buy_quote_volume") < 0, "taker_buy_quote_volume", "negative taker buy quote volume"))
        # high < low is NOT rejected: real vendor files have such rows (sp500_5yr AOS 2014-05-19) and
        # known row counts must hold; parsers count them into the batch meta instead.
    if checks:
        hit = df.select([m.any().alias(f"_c{i}") for i, (m, _, _) in enumerate(checks)]).row(0)
        for failed, (m, c, problem) in zip(hit, checks, strict=True):
            if failed:
                _fail_if(df, m, c, problem, source)

    # Order: time non-decreasing per symbol (strictly increasing, i.e. unique, for bars and panels).
    if key is not None:
        strict = kind in ("bars", "panel", "signals")
        # one symbol (a LOBSTER day, a single-instrument file): a plain diff, no group-by window
        diff = pl.col(key).diff() if len(symbols) == 1 else pl.col(key).diff().over("symbol")
        if kind == "panel" or kind == "signals":
            # Panels are long frames sorted by (date, symbol) or (symbol, date): check uniqueness and
            # sort instead of requiring an input order.
            dup = df.select("symbol", key).is_duplicated()
            if dup.any():
                row = int(dup.arg_true()[0])
                raise DataError(
                    source,
                    f"duplicate ({key}, symbol) row",
                    field=key,
                    row=row,
                    value=f"{df[key][row]}, {df['symbol'][row]}",
                )
            df = df.sort([key, "symbol"])
        else:
            mask = diff <= 0 if strict else diff < 0
            if _out_of_order(df, key, strict, len(symbols) == 1):
                bad = df.with_row_index("_row").filter(mask).head(1)
                what = "timestamps not strictly increasing" if strict else "timestamps out of order"
                raise DataError(source, what, field=key, row=int(bad["_row"][0]), value=bad[key][0])
    return df
