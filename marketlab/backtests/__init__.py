"""The vectorbt backtester: specs (``specs/backtests/*.toml``), signal sources, metrics and reports.

``Backtest.from_spec(path).run()`` == ``marketlab backtest path``; :func:`run_demo` runs the demo's
momentum backtest on the synthetic daily panel of a store.
"""

from marketlab.backtests.engine import Backtest, BacktestResult, run_demo
from marketlab.backtests.spec import BacktestSpec

__all__ = ["Backtest", "BacktestResult", "BacktestSpec", "run_demo"]
