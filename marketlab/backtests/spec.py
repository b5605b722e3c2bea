"""Backtest specs: TOML files in ``specs/backtests/`` validated into frozen dataclasses (unknown keys rejected).

A spec has the tables ``[data]`` (selection + train/test split), ``[signal]`` (where positions come from:
a registry id of kind ``signal``), ``[strategy]`` (how signals become orders), ``[costs]``,
``[benchmark]`` and ``[report]``; see ``specs/backtests/*.toml`` for complete examples.
``BacktestSpec.from_toml(path)`` loads one; ``Backtest.from_spec(path).run()`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from marketlab.core.config import FiniteFloat, Identifier, NonNegativeInt, PositiveFloat, PositiveInt, Spec, SpecPath
from marketlab.core.errors import SpecError
from marketlab.core.registry import resolve
from marketlab.market.spec import CostSpec, DataSpec


@dataclass(frozen=True)
class BacktestDataSpec(DataSpec):
    """:class:`~marketlab.market.spec.DataSpec` plus: ``period`` = "test" backtests rows from
    ``test_start`` on (indicators still see the history before it), "all" every row;
    ``periods_per_year`` overrides the annualisation inferred from the bar spacing."""

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    period: Literal["all", "test"] = "all"
    periods_per_year: PositiveFloat | None = None


@dataclass(frozen=True)
class SignalSpec(Spec):
    """Where positions come from: ``kind`` is a registry id of kind ``signal`` (see
    :mod:`marketlab.backtests.sources`): ``ma-cross-v1`` (``fast``/``slow`` SMAs), ``momentum-v1``
    (``lookback``, ``skip``), ``mean-reversion-v1`` (``lookback``, ``z_entry``, ``z_exit``),
    ``predictions-v1`` / ``alpha-v1`` (stored ``dataset`` ``columns``), ``rl-v1`` (a trained policy in
    ``run``), ``macrohft-v1`` (a trained MacroHFT run in ``run``; ``params.policy``), ``weights-v1`` (weights passed from Python). ``threshold``: scores -> entries cut-off.
    ``params``: settings of a user's registered source."""

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    kind: str
    fast: PositiveInt = 10
    slow: PositiveInt = 50
    lookback: PositiveInt = 20
    skip: NonNegativeInt = 0
    z_entry: FiniteFloat = 1.0
    z_exit: FiniteFloat = 0.0
    threshold: FiniteFloat = 0.0
    dataset: str | None = None
    columns: list[str] = field(default_factory=list)
    run: SpecPath | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategySpec(Spec):
    """How signals become orders.

    ``signals``: entries/exits through ``Portfolio.from_signals`` (``direction`` "long" or "both");
    ``topk``: at every ``rebalance``-th bar hold the ``top_k`` best scores equally weighted (long, or
    ``long_short`` with the ``top_k`` worst shorted), replacing at most ``n_drop`` names per rebalance
    when ``n_drop`` > 0 (qlib's TopkDropout), through ``from_orders`` with target percents;
    ``weights``: target weights straight from the signal (RL policies, predictions).
    ``delay``: bars between the decision and the trade (0 = trade at the close that was observed).
    ``size``: fraction of value invested (per side and book).
    """

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    kind: Literal["signals", "topk", "weights"] = "signals"
    direction: Literal["long", "both"] = "long"
    top_k: PositiveInt = 10
    long_short: bool = False
    rebalance: PositiveInt = 1
    n_drop: NonNegativeInt = 0
    delay: NonNegativeInt = 0
    size: PositiveFloat = 1.0


@dataclass(frozen=True)
class BenchmarkSpec(Spec):
    """``equal_weight`` buy-and-hold of the traded symbols, ``symbol`` (buy-and-hold of one symbol, from
    ``dataset`` when given, else from the traded data), ``file`` (a CSV file ``path``, plain or gzipped,
    e.g. an index file) or ``none``. A benchmark file has a time column (``date``, ``timestamp``,
    ``datetime`` or ``ts``: ISO dates or datetimes, any order) and a price column (``adjusted_close``,
    ``adj_close`` or ``close``, first found); with a ``code`` or ``symbol`` column it holds several series
    and ``symbol`` picks one, without one (the shipped ``us_index_daily`` files) it is one series and
    ``symbol`` is optional."""

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    kind: Literal["equal_weight", "symbol", "file", "none"] = "equal_weight"
    symbol: str | None = None
    dataset: str | None = None
    data_kind: Literal["bars", "panel"] = "panel"
    path: SpecPath | None = None


@dataclass(frozen=True)
class ReportSpec(Spec):
    """Where and what to write: ``out_dir``/<name>/report.html (+ PNGs, trades.csv, metrics.json)."""

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    out_dir: SpecPath = "reports"
    html: bool = True
    png: bool = True
    rolling_window: NonNegativeInt = 0


@dataclass(frozen=True)
class BacktestSpec(Spec):
    """A whole backtest. ``name`` is an identifier: the report goes to ``report.out_dir/<name>/``."""

    check_on_init: ClassVar[bool] = True  # built in Python: checked like a TOML table

    name: Identifier
    data: BacktestDataSpec
    signal: SignalSpec
    strategy: StrategySpec = field(default_factory=StrategySpec)
    costs: CostSpec = field(default_factory=CostSpec)
    benchmark: BenchmarkSpec = field(default_factory=BenchmarkSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    description: str = ""

    def validate(self, path: str | Path | None = None) -> None:
        """Rules across tables: the signal id is registered and fits the strategy; the test split exists."""
        if not self.data.dataset:
            raise SpecError(path, "data.dataset", "missing required key")
        self.data.check_times(path, "data.")
        if self.data.period == "test" and not self.data.test_start:
            raise SpecError(path, "data.test_start", "period = 'test' needs test_start")
        source = resolve(self.signal.kind, kind="signal", path=path, key="signal.kind")
        check = getattr(source, "check", None)
        if check is not None:
            check(self.signal, path)
        if self.strategy.kind == "signals" and getattr(source, "gives", None) == "weights":
            raise SpecError(path, "strategy.kind", f"signal kind '{self.signal.kind}' gives weights: use strategy.kind = 'weights'")
        b = self.benchmark
        if b.kind == "symbol" and not b.symbol:
            raise SpecError(path, "benchmark.symbol", f"benchmark kind '{b.kind}' needs a symbol")
        if b.kind == "file" and not b.path:
            raise SpecError(path, "benchmark.path", "benchmark kind 'file' needs a path (CSV with a date and a close column)")
