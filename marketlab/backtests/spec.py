"""Backtest specs: TOML files in ``backtests/`` validated into frozen dataclasses (unknown keys rejected).

A spec has the tables ``[data]`` (selection + train/test split), ``[signal]`` (where positions come from),
``[strategy]`` (how signals become orders), ``[costs]``, ``[benchmark]`` and ``[report]``; see
``specs/backtests/*.toml`` for complete examples. ``Backtest.from_spec(path).run()`` runs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketlab.core.config import from_dict, load_toml
from marketlab.core.errors import SpecError

SIGNAL_KINDS = ("ma_cross", "momentum", "mean_reversion", "predictions", "alpha", "rl", "weights")
STRATEGY_KINDS = ("signals", "topk", "weights")


@dataclass(frozen=True)
class IngestSpec:
    """Optional: ingest these files with ``Store.ingest(format, paths)`` when the dataset is missing.
    Relative paths are resolved against the spec file's folder, then the current directory."""

    format: str = "ohlcv"
    paths: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSpec:
    """What to trade: ``dataset`` of ``kind`` ("bars" or "panel") for ``symbols`` (all when empty) in
    [start, end). ``period`` = "test" backtests rows from ``test_start`` on (indicators still see the
    history before it); "all" backtests every row."""

    dataset: str
    kind: str = "bars"
    symbols: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    test_start: str | None = None
    period: str = "all"
    store: str | None = None
    ingest: IngestSpec | None = None
    periods_per_year: float | None = None


@dataclass(frozen=True)
class SignalSpec:
    """Where positions come from.

    kinds: ``ma_cross`` (fast/slow simple moving averages of close), ``momentum`` (close / close
    ``lookback`` bars ago - 1), ``mean_reversion`` (z-score of close vs its ``lookback`` mean; enter at
    -``z_entry``, exit at -``z_exit``), ``predictions`` (stored predictor output: ``columns`` =
    [p_down, p_flat, p_up] -> argmax position, or one score column), ``alpha`` (stored alpha values,
    ``columns`` = [value]), ``rl`` (a trained policy in ``run``, rolled out on the period).
    """

    kind: str
    fast: int = 10
    slow: int = 50
    lookback: int = 20
    skip: int = 0
    z_entry: float = 1.0
    z_exit: float = 0.0
    threshold: float = 0.0
    dataset: str | None = None
    columns: list[str] = field(default_factory=list)
    run: str | None = None


@dataclass(frozen=True)
class StrategySpec:
    """How signals become orders.

    ``signals``: entries/exits through ``Portfolio.from_signals`` (``direction`` "long" or "both");
    ``topk``: at every ``rebalance``-th bar hold the ``top_k`` best scores equally weighted (long, or
    ``long_short`` with the ``top_k`` worst shorted), replacing at most ``n_drop`` names per rebalance
    when ``n_drop`` > 0 (qlib's TopkDropout), through ``from_orders`` with target percents;
    ``weights``: target weights straight from the signal (RL policies, predictions).
    ``delay``: bars between the decision and the trade (0 = trade at the close that was observed).
    """

    kind: str = "signals"
    direction: str = "long"
    top_k: int = 10
    long_short: bool = False
    rebalance: int = 1
    n_drop: int = 0
    delay: int = 0
    size: float = 1.0


@dataclass(frozen=True)
class CostSpec:
    """Fractions of traded notional: ``commission`` (fees), ``spread`` (full spread, half paid per trade)
    and ``slippage``; ``init_cash`` in currency."""

    commission: float = 0.0
    spread: float = 0.0
    slippage: float = 0.0
    init_cash: float = 10_000.0


@dataclass(frozen=True)
class BenchmarkSpec:
    """``equal_weight`` buy-and-hold of the traded symbols, ``symbol`` (buy-and-hold of one symbol, from
    ``dataset`` when given, else from the traded data), ``file`` (the ``close`` of ``symbol`` in a CSV
    file ``path`` with columns ``date``, ``code`` or ``symbol``, ``close``, e.g. an index file; relative
    paths resolve against the spec's folder, then the current directory) or ``none``."""

    kind: str = "equal_weight"
    symbol: str | None = None
    dataset: str | None = None
    data_kind: str = "panel"
    path: str | None = None


@dataclass(frozen=True)
class ReportSpec:
    """Where and what to write: ``out_dir``/<name>/report.html (+ PNGs, trades.csv, metrics.json)."""

    out_dir: str = "reports"
    html: bool = True
    png: bool = True
    rolling_window: int = 0


@dataclass(frozen=True)
class BacktestSpec:
    name: str
    data: DataSpec
    signal: SignalSpec
    strategy: StrategySpec = field(default_factory=StrategySpec)
    costs: CostSpec = field(default_factory=CostSpec)
    benchmark: BenchmarkSpec = field(default_factory=BenchmarkSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    description: str = ""


def _choice(path: Any, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(path, key, f"must be one of {list(allowed)}, got {value!r}")


def validate(spec: BacktestSpec, path: str | Path | None = None) -> BacktestSpec:
    """Checks beyond types: choices, positive windows, signal/strategy compatibility."""
    _choice(path, "data.kind", spec.data.kind, ("bars", "panel"))
    _choice(path, "data.period", spec.data.period, ("all", "test"))
    _choice(path, "signal.kind", spec.signal.kind, SIGNAL_KINDS)
    _choice(path, "strategy.kind", spec.strategy.kind, STRATEGY_KINDS)
    _choice(path, "strategy.direction", spec.strategy.direction, ("long", "both"))
    _choice(path, "benchmark.kind", spec.benchmark.kind, ("equal_weight", "symbol", "file", "none"))
    if spec.data.period == "test" and not spec.data.test_start:
        raise SpecError(path, "data.test_start", "period = 'test' needs test_start")
    for key, v in (("signal.fast", spec.signal.fast), ("signal.slow", spec.signal.slow), ("signal.lookback", spec.signal.lookback),
                   ("strategy.top_k", spec.strategy.top_k), ("strategy.rebalance", spec.strategy.rebalance)):
        if v < 1:
            raise SpecError(path, key, f"must be >= 1, got {v}")
    for key, v in (("strategy.delay", spec.strategy.delay), ("strategy.n_drop", spec.strategy.n_drop), ("signal.skip", spec.signal.skip)):
        if v < 0:
            raise SpecError(path, key, f"must be >= 0, got {v}")
    if spec.signal.kind == "ma_cross" and spec.signal.fast >= spec.signal.slow:
        raise SpecError(path, "signal.fast", f"must be < signal.slow ({spec.signal.fast} >= {spec.signal.slow})")
    if spec.signal.kind in ("predictions", "alpha") and not spec.signal.dataset:
        raise SpecError(path, "signal.dataset", f"signal kind '{spec.signal.kind}' needs a stored signals dataset")
    if spec.signal.kind == "rl" and not spec.signal.run:
        raise SpecError(path, "signal.run", "signal kind 'rl' needs the run directory of a trained agent")
    if spec.strategy.kind == "signals" and spec.signal.kind in ("rl", "weights"):
        raise SpecError(path, "strategy.kind", f"signal kind '{spec.signal.kind}' gives weights: use strategy.kind = 'weights'")
    if spec.benchmark.kind in ("symbol", "file") and not spec.benchmark.symbol:
        raise SpecError(path, "benchmark.symbol", f"benchmark kind '{spec.benchmark.kind}' needs a symbol")
    if spec.benchmark.kind == "file" and not spec.benchmark.path:
        raise SpecError(path, "benchmark.path", "benchmark kind 'file' needs a path (CSV with date, code, close)")
    for key, v in (("costs.commission", spec.costs.commission), ("costs.spread", spec.costs.spread), ("costs.slippage", spec.costs.slippage)):
        if not 0 <= v < 1:
            raise SpecError(path, key, f"must be in [0, 1), got {v}")
    if spec.costs.init_cash <= 0:
        raise SpecError(path, "costs.init_cash", f"must be > 0, got {spec.costs.init_cash}")
    return spec


def load_spec(path: str | Path) -> BacktestSpec:
    """Read and validate a backtest spec; every problem is a one-line :class:`SpecError` naming file and key."""
    data = load_toml(path)
    return validate(from_dict(BacktestSpec, data, path=path), path)


def spec_from_dict(data: dict[str, Any], path: str | Path | None = None) -> BacktestSpec:
    return validate(from_dict(BacktestSpec, data, path=path), path)
