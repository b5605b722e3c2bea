"""Fault-injection points of a store write (``tests/faults``): a writer kills itself at a named stage.

``MARKETLAB_FAULT=<stage>[#<n>][:<SIGNAL>]`` (see :mod:`marketlab.core.faults`, the one mechanism) kills
the writer the ``n``-th time it passes ``point(<stage>)``. The stages are listed in :data:`STAGES` in the
order a write passes them.
"""

from __future__ import annotations

from marketlab.core.faults import point

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

__all__ = ["STAGES", "point"]
