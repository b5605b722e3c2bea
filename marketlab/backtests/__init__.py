"""The vectorbt backtester: specs (``specs/backtests/*.toml``), signals, metrics and reports.

``Backtest.from_spec(path).run()`` == ``marketlab backtest path``; :func:`run_demo` runs the demo's
momentum backtest on the synthetic daily panel of a store.
"""

from marketlab.backtests.engine import Backtest, BacktestResult, run_demo
from marketlab.backtests.spec import BacktestSpec, load_spec

__all__ = ["Backtest", "BacktestResult", "BacktestSpec", "load_spec", "run_demo"]
