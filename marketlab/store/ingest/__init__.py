"""Format registry: CLI format name -> parser module, imported lazily.

Every parser module exposes ``parse(paths: list[Path], *, dataset: str | None = None, **options)
-> IngestBatch`` and raises :class:`~marketlab.core.errors.DataError` on bad input; parsers are pure
(they never touch the store), so :meth:`Store.ingest` can validate and write atomically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from marketlab.core.errors import StoreError

FORMATS: dict[str, str] = {
    "lobster": "marketlab.store.ingest.lobster",  # LOBSTER message + orderbook files (LOB engine owner)
    "fi2010": "marketlab.store.ingest.fi2010",  # FI-2010 benchmark .txt/.txt.xz
    "binance-raw": "marketlab.store.ingest.binance_raw",  # Binance raw websocket capture (LOB engine owner)
    "ohlcv": "marketlab.store.ingest.ohlcv",  # Binance klines, single-symbol OHLCV, long panels
    "ashare": "marketlab.store.ingest.ashare",  # CSI300 A-share daily folder
}


def get_parser(format: str) -> Callable[..., Any]:
    """The ``parse`` function of ``format``; unknown or not-yet-installed formats are a one-line error."""
    module = FORMATS.get(format)
    if module is None:
        raise StoreError(f"unknown ingest format '{format}' (known: {', '.join(sorted(FORMATS))})")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise StoreError(f"ingest format '{format}' is not available: module {module} is missing") from None
        raise
    return mod.parse
