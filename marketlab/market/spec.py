"""The one data selection spec and the one cost spec shared by the envs, the agents and the backtester.

TOML tables ``[data]`` / ``[env.data]`` load into :class:`DataSpec`, ``[costs]`` / ``[env.costs]`` into
:class:`CostSpec`; both are :class:`marketlab.core.config.Spec` (unknown keys refused, ranges checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from marketlab.core.config import PositiveFloat, Range, Spec, SpecPath
from marketlab.core.errors import SpecError
from marketlab.core.timeutil import to_ns

#: A cost as a fraction of traded notional: 0 <= c < 1.
CostFraction = Annotated[float, Range(lo=0.0, hi=1.0, hi_open=True)]


@dataclass(frozen=True)
class IngestSpec(Spec):
    """Files to ingest with ``Store.ingest(format, paths, **options)`` in the explicit data step
    (:func:`marketlab.market.loading.prepare_data`) when the store lacks the dataset. Paths follow the spec
    path rule (relative to the spec file; ``$MARKETLAB_DATA/...`` under the raw-data root)."""

    format: str = "ohlcv"  # a registered ingest format (`marketlab ingest --help` lists them)
    paths: list[SpecPath] = field(default_factory=list)  # files to ingest (relative: to the spec file)
    options: dict[str, Any] = field(default_factory=dict)  # format options passed to Store.ingest


@dataclass(frozen=True)
class DataSpec(Spec):
    """Which bars to read: ``dataset`` of ``kind`` ("bars" -> ``Store.scan_bars``, "panel" ->
    ``Store.scan_panel``) for ``symbols`` (all when empty) in [``start``, ``end``). ``test_start``
    splits train (before) from test (from it on). ``signals`` names a stored signals dataset whose
    ``signal_columns`` (all numeric ones when empty) are aligned into ``MarketData.extra``.
    ``store``: the store folder (default store when None). ``ingest``: see :class:`IngestSpec`."""

    dataset: str = ""  # dataset name in the store
    kind: Literal["bars", "panel"] = "bars"  # bars (ts, intraday) or panel (date, daily)
    symbols: list[str] = field(default_factory=list)  # symbols to read (all when empty)
    start: str | None = None  # first time read (ISO 8601; none: from the first row)
    end: str | None = None  # end of the rows read (exclusive; none: to the last row)
    test_start: str | None = None  # first time of the test period (train is before it)
    signals: str | None = None  # a stored signals dataset aligned into the bars (backwards only)
    signal_columns: list[str] = field(default_factory=list)  # columns of the signals dataset (all numeric when empty)
    store: SpecPath | None = None  # store folder (default store when none)
    ingest: IngestSpec | None = None  # files the spec runner ingests when the store lacks the dataset

    def check_times(self, path: str | Path | None, prefix: str) -> None:
        """Every time field parses (else a one-line :class:`SpecError` naming ``<prefix><field>``)."""
        for name in ("start", "end", "test_start"):
            value = getattr(self, name)
            if value is not None:
                try:
                    to_ns(value)
                except SpecError:
                    raise SpecError(path, prefix + name, f"invalid time {value!r} (use ISO 8601, e.g. 2024-01-02)") from None


@dataclass(frozen=True)
class CostSpec(Spec):
    """Trading costs as fractions of traded notional: ``commission`` (fee), ``spread`` (full bid-ask
    spread; half is paid per trade) and ``slippage`` (extra price impact per trade); ``init_cash`` in
    the quote currency."""

    commission: CostFraction = 0.0  # fee per trade, fraction of traded notional
    spread: CostFraction = 0.0  # full bid-ask spread, fraction of price (half is paid per trade)
    slippage: CostFraction = 0.0  # extra price impact per trade, fraction of price
    init_cash: PositiveFloat = 10_000.0  # starting cash in the quote currency

    @property
    def price_slippage(self) -> float:
        """Fractional price penalty per trade: half spread + slippage (vectorbt's ``slippage``)."""
        return 0.5 * self.spread + self.slippage
