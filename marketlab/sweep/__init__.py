"""Grids and fleets of any runnable spec, in this process, on a local process pool or on a Ray cluster.

``marketlab.sweep.run(spec, grid, backend="local"|"ray"|"sequential")`` runs every variant of a grid of
spec overrides (``costs.commission=0,0.001``) and writes one results table to
``<store>/sweeps/<name>/results.parquet``; ``marketlab sweep`` is the same on the command line. Runnable
kinds are registry ids ``runner/<name>`` (:mod:`marketlab.sweep.runners`); :mod:`.fleet` runs simulated
days as tasks that each write their own day to the store.
"""

from __future__ import annotations

from marketlab.sweep.api import SweepResult, plan, run, runner_kinds
from marketlab.sweep.grid import expand, known_keys, parse_grid

__all__ = ["SweepResult", "expand", "known_keys", "parse_grid", "plan", "run", "runner_kinds"]
