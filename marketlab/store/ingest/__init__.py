"""Ingest formats: the registry ids ``ingest/<format>`` -> pure parser functions.

The formats are lines of :mod:`marketlab.core.builtin_ids` (``"ingest/lobster"``, ``"ingest/fi2010"``,
``"ingest/binance-raw"``, ``"ingest/ohlcv"``, ``"ingest/ashare"``); a user adds one with
``marketlab.core.registry.register("ingest/<name>", parse)``. Every parser has the signature
``parse(paths: list[Path], *, dataset: str | None = None, **options) -> IngestBatch`` and raises
:class:`~marketlab.core.errors.DataError` on bad input; parsers are pure (they never touch the store), so
:meth:`Store.ingest` can validate and write atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketlab.core import registry
from marketlab.core.errors import SpecError, StoreError


def formats() -> list[str]:
    """The known ingest format names (``["ashare", "binance-raw", ...]``), sorted."""
    return registry.names("ingest")


def get_parser(format: str) -> Callable[..., Any]:
    """The parser registered as ``ingest/<format>``; an unknown format is a one-line error listing the known."""
    try:
        parser: Callable[..., Any] = registry.resolve(format, kind="ingest")
    except SpecError:
        raise StoreError(f"unknown ingest format '{format}' (known: {', '.join(formats())})") from None
    return parser
