"""The one way the ingest kernels are compiled (typed, so strict mypy sees a typed decorator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def kernel() -> Callable[[Callable[..., Any]], Any]:
    """``njit(cache=True, nogil=True, _nrt=False, boundscheck=False)``: cached, releases the GIL (the LOBSTER
    reader parses the orderbook in a worker thread), no reference counting (the kernels allocate nothing)."""
    decorator: Callable[[Callable[..., Any]], Any] = njit(  # type: ignore[call-overload]
        cache=True, nogil=True, _nrt=False, boundscheck=False
    )
    return decorator
