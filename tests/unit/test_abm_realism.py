"""The default ABM day against documented realism bands (LOBSTER GOOG/AMZN 2012-06-21 as reference).

Reference values on the real days (``marketlab stylized`` over the LOBSTER sample): spread 5.2 / 6.1 bps,
minute-return ACF lag 1 -0.15 / +0.05, excess kurtosis 2.5 / 3.4, Hill index 3.3 / 3.2,
corr(volume, |r|) +0.31 / +0.41, inter-arrival CV 3.4 / 3.6, execute share .052 / .058, hidden execute
share .026 / .016, ~30 trades a minute. The bands below are wide enough for a 3-hour session of the
default spec (180 minute returns: the standard error of an autocorrelation is ~0.075) but each one
excludes the behaviour the default day had before calibration (spread 1.5 bps, ACF +0.17, kurtosis 12,
Hill 1.8, volume-volatility corr 0.09, CV 1.7, execute share .15, no hidden executions, 212 trades/min).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from marketlab.simulators.abm import Simulation
from marketlab.simulators.config import SimSpec
from marketlab.simulators.stylized import compute_facts

DEFAULT = Path(__file__).resolve().parents[2] / "specs" / "simulators" / "abm_default.toml"

BANDS: dict[str, tuple[float, float]] = {
    "spread_mean_bps": (2.0, 12.0),
    "ret_acf_lag1": (-0.1, 0.1),
    "ret_excess_kurtosis": (-1.0, 8.0),
    "hill_tail_index": (2.2, 6.0),
    "volume_volatility_corr": (0.15, 0.8),
    "interarrival_cv": (2.0, 8.0),
    "share_execute": (0.02, 0.12),
    "share_execute_hidden": (0.005, 0.05),
    "trades_per_minute": (10.0, 100.0),
    "ret_std_bps": (2.0, 15.0),
}


@pytest.fixture(scope="module")
def facts() -> dict[str, float]:
    spec = SimSpec.from_toml(DEFAULT)
    spec = replace(spec, market=replace(spec.market, duration_s=3 * 3600.0, book_levels=5))
    sim = Simulation(spec).run()
    fr = sim.frames()
    return compute_facts(fr["events"], fr["book"], fr["trades"], tick_size=spec.market.tick_size).scalars


@pytest.mark.parametrize("key", list(BANDS))
def test_default_day_within_realism_band(facts: dict[str, float], key: str) -> None:
    lo, hi = BANDS[key]
    assert lo <= facts[key] <= hi, f"{key} = {facts[key]:.4g} outside [{lo}, {hi}]"
