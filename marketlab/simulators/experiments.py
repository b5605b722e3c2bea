"""Experiments on the agent-based market: :func:`impact_experiment` (the same seed with and without a
participation-of-volume trader -> mid-price difference path, TRADES paper section 7.1)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.config import SimSpec
from marketlab.simulators.simulation import Simulation


def impact_experiment(
    spec: SimSpec,
    seed: int,
    *,
    grid_s: float = 5.0,
) -> dict[str, Any]:
    """A/B market-impact run: the same seed without and with the POV trader of ``spec.pov``.

    The mids are sampled every ``grid_s`` seconds. The grid must be finer than the POV trader's
    ``interval_s``: it trades at the start of each interval, so a grid equal to the interval samples the
    mid just *before* each of its orders arrives, when the temporary impact of the previous one has
    decayed the longest (value traders pull the price back to the fundamental within seconds).

    Returns ``times_s`` (grid after the open), ``mid_base``/``mid_pov`` (ticks, mid at each grid point),
    ``diff`` (pov - base, ticks), ``executed`` (lots the POV trader filled), the mean difference
    ``impact_during``/``impact_after`` over the POV window and after it (ticks) and ``impact_bps``.
    """
    base = replace(spec, pov=replace(spec.pov, enabled=False))
    treat = replace(spec, pov=replace(spec.pov, enabled=True))
    grid = np.arange(grid_s, spec.market.duration_s + 1e-9, grid_s)
    paths = []
    executed = 0
    for s in (base, treat):
        sim = Simulation(s, seed=seed)
        ex = sim.exchange
        mids = np.empty(grid.size)
        for j, g in enumerate(grid):
            ex.run_until(sim.t0_ns + int(g * NS_PER_S))
            mids[j] = ex.mid()
        if sim.pov is not None:
            executed = sim.pov.executed
        paths.append(mids)
    diff = paths[1] - paths[0]
    p = spec.pov
    during = (grid > p.start_s) & (grid <= p.end_s)
    after = grid > p.end_s
    impact_during = float(diff[during].mean()) if during.any() else float("nan")
    impact_after = float(diff[after].mean()) if after.any() else float("nan")
    return {
        "times_s": grid,
        "mid_base": paths[0],
        "mid_pov": paths[1],
        "diff": diff,
        "executed": executed,
        "impact_during": impact_during,
        "impact_after": impact_after,
        "impact_bps": impact_during / spec.market.initial_price * 1e4,
    }
