"""vectorbt's Portfolio annualised like marketlab's metrics.

vectorbt annualises with one global ``settings.returns["year_freq"]`` (365 days); marketlab infers the
year from the data's calendar (:func:`marketlab.core.metrics.periods_per_year`). The subclass here
carries the backtest's year (``year_freq`` = bar spacing x periods per year) so that ``pf.stats()``,
``pf.returns_acc``, ``pf.returns_stats()`` and ``pf.qs`` give the Sharpe, Sortino and Calmar of
``BacktestResult.metrics``, without touching vectorbt's global settings.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def portfolio_class() -> Any:
    """The ``vectorbt.Portfolio`` subclass (built on first use: vectorbt imports in seconds)."""
    import vectorbt as vbt

    class Portfolio(vbt.Portfolio):
        """``vbt.Portfolio`` with a per-instance ``year_freq`` (copied by vectorbt's ``replace``/indexing)."""

        _year_freq: Any = None

        @property
        def writeable_attrs(self) -> set[str]:
            return {*super().writeable_attrs, "_year_freq"}

        @property
        def stats_defaults(self) -> dict[str, Any]:
            out: dict[str, Any] = super().stats_defaults
            if self._year_freq is not None:
                out["settings"] = {**out.get("settings", {}), "year_freq": self._year_freq}
            return out

        def get_returns_acc(self, *args: Any, year_freq: Any = None, **kwargs: Any) -> Any:
            return super().get_returns_acc(*args, year_freq=self._year_freq if year_freq is None else year_freq, **kwargs)

    return Portfolio


def annualised(pf: Any, bar_seconds: float, periods_per_year: float) -> Any:
    """Set ``pf``'s year to ``periods_per_year`` bars of ``bar_seconds`` each; returns ``pf``."""
    import pandas as pd

    pf._year_freq = pd.Timedelta(seconds=bar_seconds * periods_per_year)
    return pf
