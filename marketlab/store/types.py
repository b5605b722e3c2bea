"""Value types of the store: instruments, ingest batches and reports, and name validation.

Dataset and symbol names become directory names (``dataset=<name>``, ``symbol=<S>``), so they are
validated before anything is written: no path separators, no ``..``, no ``=``, no leading dot.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from marketlab.core.errors import StoreError

# Kinds of frames a batch may carry. Time-keyed kinds partition by day; date-keyed kinds by year.
KINDS: tuple[str, ...] = ("events", "book", "trades", "bars", "panel", "features", "signals")

# Symbols like "BRK.B", "000001.SZ", "^GSPC", "BTC-USDT" are fine; "/", "\\", "=", spaces, ".." are not.
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9^_@+&][A-Za-z0-9._\-^+@&]{0,63}$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


def check_symbol(symbol: object, *, source: str = "symbol") -> str:
    """Return ``symbol`` if it is a safe partition name, else raise a one-line :class:`StoreError`."""
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol) or ".." in symbol:
        raise StoreError(
            f"{source}: invalid symbol name {symbol!r} (letters, digits and . _ - ^ + @ & only; "
            "no path characters, at most 64 chars)"
        )
    return symbol


def check_dataset(name: object, *, source: str = "dataset") -> str:
    """Return ``name`` if it is a safe dataset name, else raise a one-line :class:`StoreError`."""
    if not isinstance(name, str) or not _DATASET_RE.match(name):
        raise StoreError(
            f"{source}: invalid dataset name {name!r} (letters, digits, _ and - only; no path characters)"
        )
    return name


@dataclass(frozen=True)
class Instrument:
    """Static metadata of one symbol within a dataset.

    ``tick_size``: currency per price tick (integer prices are multiples of it);
    ``lot_size``: units per size lot. Bars/panels store floats and use 1.0/1.0 unless known.
    """

    symbol: str
    tick_size: float
    lot_size: float
    currency: str = "USD"

    def __post_init__(self) -> None:
        check_symbol(self.symbol, source="instrument")
        for name in ("tick_size", "lot_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
                raise StoreError(f"instrument {self.symbol}: {name} must be a positive number, got {v!r}")


@dataclass
class IngestBatch:
    """What a parser hands to :meth:`Store.write`.

    ``frames`` maps a kind (see :data:`KINDS`) to a Polars DataFrame in that kind's schema;
    ``instruments`` lists every symbol that appears in any frame; ``meta`` is free JSON-able metadata
    recorded in the catalog (e.g. book levels, source notes).
    """

    dataset: str
    frames: dict[str, pl.DataFrame]
    instruments: list[Instrument]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestReport:
    """Outcome of one write/ingest.

    ``rows``: records per kind in the input; ``added``: records newly stored; ``replaced``: stored
    records superseded (upsert: conflicting keys; replace: every record of the replaced partitions);
    ``skipped``: nothing changed (``reason`` says why); ``write_id``: the commit's id in the catalog;
    ``notes``: what the parser reports about the data (``meta["notes"]``: OHLCV gaps, zero-volume bars).
    """

    dataset: str
    format: str
    rows: dict[str, int] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    partitions: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    skipped: bool = False
    reason: str = ""
    added: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    write_id: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # the parser's user-facing summary (gaps, ...)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (used by the CLI's ``--json``)."""
        return asdict(self)
