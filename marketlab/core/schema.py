"""Data contracts: Polars schemas (and NumPy dtypes for kernels) shared by every component.

Prices and sizes of events, book snapshots and trades are exact integers: ``price`` in ticks and ``size``
in lots of the instrument (the catalog records ``tick_size`` in currency per tick and ``lot_size`` in
units per lot), so arithmetic in the engine is exact; :func:`float_view` turns them into currency and
units on read. Bars and daily panels are derived or vendor-adjusted quantities and are stored as floats.

Timestamps are ``int64`` nanoseconds since the Unix epoch, UTC (``ts``). Daily panels use ``date``.
"""

from __future__ import annotations

from enum import IntEnum

import polars as pl


class EventType(IntEnum):
    """LOB message types; the values are LOBSTER's type codes 1..7."""

    ADD = 1  # new limit order
    CANCEL = 2  # partial cancellation
    DELETE = 3  # full deletion
    EXECUTE = 4  # execution of a visible order
    EXECUTE_HIDDEN = 5  # execution of a hidden order
    CROSS = 6  # auction/cross trade
    HALT = 7  # trading halt indicator


class Side(IntEnum):
    """Order side as stored in ``side`` (int8): +1 buy, -1 sell."""

    BUY = 1
    SELL = -1


EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),  # ns since epoch, UTC
    "symbol": pl.String(),
    "seq": pl.Int64(),  # order of the event within (symbol, day), starts at 0
    "type": pl.Int8(),  # EventType
    "order_id": pl.Int64(),
    "side": pl.Int8(),  # +1 buy, -1 sell
    "price": pl.Int64(),  # ticks
    "size": pl.Int64(),  # lots
}

TRADES_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),
    "symbol": pl.String(),
    "seq": pl.Int64(),
    "price": pl.Int64(),  # ticks
    "size": pl.Int64(),  # lots
    "aggressor": pl.Int8(),  # +1 buyer-initiated, -1 seller-initiated, 0 unknown
}

_SYMBOL_OHLCV: dict[str, pl.DataType] = {  # the columns bars and daily panels share, in their order
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}

BARS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),  # bar open, ns UTC
    **_SYMBOL_OHLCV,
    "vwap": pl.Float64(),
    "trades": pl.Int64(),
    "taker_buy_volume": pl.Float64(),  # base units bought by takers (aggressor = buyer); null: source lacks it
    "taker_buy_quote_volume": pl.Float64(),  # quote currency spent by taker buyers; null: source lacks it
}

#: Bars columns a producer may omit (stored null: the source does not have them, e.g. bars resampled from
#: trades or a vendor file with plain OHLCV). A bars dataset written before these columns existed keeps its
#: stored schema on disk and reads them as null (``marketlab.store.scans.scan``), so old stores stay readable.
BARS_OPTIONAL: tuple[str, ...] = ("taker_buy_volume", "taker_buy_quote_volume")

PANEL_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    **_SYMBOL_OHLCV,
    "vwap": pl.Float64(),  # null where the source has none
    "amount": pl.Float64(),  # traded value; null where unknown
    "adj_factor": pl.Float64(),  # multiply raw prices by this for adjusted prices (1.0 if already adjusted)
    "in_universe": pl.Boolean(),  # membership of the dataset's universe on that date
    "suspended": pl.Boolean(),  # no trading that day (prices carried or null)
}

def book_schema(levels: int) -> dict[str, pl.DataType]:
    """Schema of book snapshots with ``levels`` levels per side: ask_px_i, ask_sz_i, bid_px_i, bid_sz_i.

    Empty levels hold price 0 and size 0 (prices are positive ticks, so 0 is unambiguous).
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    schema: dict[str, pl.DataType] = {"ts": pl.Int64(), "symbol": pl.String(), "seq": pl.Int64()}
    for i in range(1, levels + 1):
        schema[f"ask_px_{i}"] = pl.Int64()
        schema[f"ask_sz_{i}"] = pl.Int64()
        schema[f"bid_px_{i}"] = pl.Int64()
        schema[f"bid_sz_{i}"] = pl.Int64()
    return schema


def book_levels(columns: list[str]) -> int:
    """Number of levels in a book frame from its column names."""
    return sum(1 for c in columns if c.startswith("ask_px_"))


SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "events": EVENTS_SCHEMA,
    "trades": TRADES_SCHEMA,
    "bars": BARS_SCHEMA,
    "panel": PANEL_SCHEMA,
}

def float_view(frame: pl.LazyFrame | pl.DataFrame, tick_size: float, lot_size: float) -> pl.LazyFrame | pl.DataFrame:
    """Convert integer ``price``/``size`` (and book ``*_px_*``/``*_sz_*``) columns to floats in currency/units."""
    cols = frame.collect_schema().names()
    exprs = []
    for c in cols:
        if c == "price" or "_px_" in c:
            exprs.append((pl.col(c).cast(pl.Float64) * tick_size).alias(c))
        elif c == "size" or "_sz_" in c:
            exprs.append((pl.col(c).cast(pl.Float64) * lot_size).alias(c))
    return frame.with_columns(exprs) if exprs else frame
