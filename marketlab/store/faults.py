"""Fault-injection points for the crash tests (``tests/faults``): a writer kills itself at a named stage.

``MARKETLAB_FAULT=<stage>[#<n>][:<SIGNAL>]`` makes the process send itself ``SIGNAL`` (default SIGKILL)
the ``n``-th time (default 1st) it passes ``point(<stage>)``. Unset (always, outside the tests) a point
costs one dict lookup. The stages are listed in :data:`STAGES` in the order a write passes them.
"""

from __future__ import annotations

import os
import signal

STAGES: tuple[str, ...] = (
    "parsed",  # a batch came out of the parser
    "staged",  # a batch's partitions are written into the staging folder
    "merged",  # overlapping partitions merged with the stored records
    "journal",  # the journal of this write is on disk, nothing renamed yet
    "renamed",  # one staged file renamed into its final place (fires once per file)
    "catalog",  # inside the catalog transaction, before COMMIT
    "committed",  # catalog committed, before the checkpoint and the cleanup
    "obsolete",  # one replaced file deleted after the commit (fires once per file)
    "done",  # journal removed, staging folder not yet removed
)

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
