"""Limit-order-book engine (numba kernels ``*_nb`` in :mod:`.kernels`, Python boundary in :mod:`.engine`)
and book reconstruction from recorded data (:mod:`.lobster`, :mod:`.l2`); recorded events become engine
commands through one converter, :func:`events_to_commands` (:mod:`.commands`)."""

from marketlab.lob.commands import events_to_commands, seed_commands
from marketlab.lob.policy import VenuePolicy
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
    "VenuePolicy",
    "BatchResult",
    "OrderBook",
    "OrderInfo",
    "as_command_array",
    "events_to_commands",
    "make_commands",
    "seed_commands",
]
