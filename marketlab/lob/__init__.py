"""Limit-order-book engine (numba kernels ``*_nb`` in :mod:`.kernels`, Python boundary in :mod:`.engine`)
and book reconstruction from recorded data (:mod:`.lobster`, :mod:`.l2`)."""

from marketlab.lob.engine import (
    COMMAND_DTYPE,
    ENGINE_EVENT_DTYPE,
    FILL_DTYPE,
    KIND,
    REASONS,
    TIF,
    BatchResult,
    OrderBook,
    OrderInfo,
    as_command_array,
    make_commands,
)

__all__ = [
    "COMMAND_DTYPE",
    "ENGINE_EVENT_DTYPE",
    "FILL_DTYPE",
    "KIND",
    "REASONS",
    "TIF",
    "BatchResult",
    "OrderBook",
    "OrderInfo",
    "as_command_array",
    "make_commands",
]
