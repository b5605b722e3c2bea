"""Agent-based LOB market in the spirit of ABIDES' RMSC configurations, and the day runner.

Agents (each draws from its own RNG stream, derived from one master seed):

* :class:`NoiseCrowd` — zero-intelligence limit/market/cancel flow (the bulk of the messages);
* :class:`ValueTrader` — trades toward a noisy estimate of the :class:`Fundamental` (OU + jumps);
* :class:`MomentumTrader` — follows the sign of a short-minus-long moving average of the mids it saw;
* :class:`MarketMaker` — a ladder of quotes around the mid, skewed by its inventory;
* :class:`POVTrader` — the experimental participation-of-volume agent used for market-impact A/B runs;
* :class:`ExternalTrader` — a handle through which outside code (an RL policy, a notebook) trades.

Calibration (``specs/simulators/abm_default.toml``, against the LOBSTER GOOG/AMZN 2012-06-21 days; the why of
each mechanism is in the config docstrings): one latent activity a(t) drives the crowd's and value
traders' rates *and* the fundamental's variance (volume-volatility link, kurtosis from a variance
mixture instead of rare large jumps); the crowd is self-exciting (bursty arrivals); the book is thin and
the crowd does not improve the quote, so the spread opens to ~5-6 bps; fewer, sharper value traders
keep the price on the fundamental (no positive minute-return autocorrelation) and mostly rest
non-displayed orders, which produce the type-5 hidden executions.

Modules: :mod:`.processes` (fundamental, activity), :mod:`.agents`, :mod:`.simulation` (:class:`Simulation`,
registered as ``simulator/abm-v1``; :func:`simulate_day`), :mod:`.experiments` (:func:`impact_experiment`),
on the discrete-event :mod:`.exchange`. This module is the public entry point and re-exports them.
"""

from marketlab.simulators.agents import (
    ExternalTrader,
    MarketMaker,
    MomentumTrader,
    NoiseCrowd,
    POVTrader,
    ValueTrader,
)
from marketlab.simulators.experiments import impact_experiment
from marketlab.simulators.processes import Activity, Fundamental
from marketlab.simulators.simulation import Simulation, simulate_day

__all__ = [
    "Activity",
    "ExternalTrader",
    "Fundamental",
    "MarketMaker",
    "MomentumTrader",
    "NoiseCrowd",
    "POVTrader",
    "Simulation",
    "ValueTrader",
    "impact_experiment",
    "simulate_day",
]
