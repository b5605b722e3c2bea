"""Fault injection for the crash tests (``tests/faults``): a process kills itself at a named point.

``MARKETLAB_FAULT=<point>[#<n>][:<SIGNAL>]`` makes the process send itself ``SIGNAL`` (default SIGKILL)
the ``n``-th time (default 1st) it passes ``point(<point>)``. Unset (always, outside the tests) a point
costs one string test. The store's write stages are listed in :mod:`marketlab.store.faults`; the atomic
file replacement (:func:`marketlab.core.files.atomic_write`, used by every checkpoint) passes
``atomic-begin`` (temporary file created, nothing written), ``atomic-written`` (temporary file complete,
not renamed) and ``atomic-replaced`` (renamed over the target); an RL or mining checkpoint folder
(:func:`marketlab.agents.sb3_state.save_checkpoint`) passes ``checkpoint-written`` (new folder complete),
``checkpoint-swapped`` (the previous folder moved aside, the new one not yet in place) and
``checkpoint-replaced`` (the new folder in place, the previous one not yet deleted).
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("MARKETLAB_FAULT", "")
_COUNTS: dict[str, int] = {}


def point(stage: str) -> None:
    """Kill this process here if ``$MARKETLAB_FAULT`` names ``stage`` (and this is its n-th pass)."""
    if not _SPEC:
        return
    target, _, sig = _SPEC.partition(":")
    name, _, nth = target.partition("#")
    if name != stage:
        return
    _COUNTS[stage] = _COUNTS.get(stage, 0) + 1
    if _COUNTS[stage] == int(nth or 1):
        os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))
