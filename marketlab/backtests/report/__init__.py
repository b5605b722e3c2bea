"""Backtest report: a tearsheet as one self-contained interactive HTML file, plus PNGs, trades and metrics.

``<out_dir>/<name>/`` receives ``report.html`` (statistics against the benchmark, cumulative return,
drawdowns, monthly and yearly returns, return distribution, rolling Sharpe and beta, exposure and
turnover, positions, trades), ``equity.png``, ``drawdown.png``, ``positions.png``, ``rolling_sharpe.png``,
``trades.csv`` (every trade) and ``metrics.json``. Modules: :mod:`.stats` (numbers), :mod:`.figures`
(plotly figures, thinned for display), :mod:`.page` (HTML), :mod:`.pngs` (matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from marketlab.backtests.report.figures import all_figures
from marketlab.backtests.report.page import render
from marketlab.backtests.report.pngs import write_pngs
from marketlab.backtests.report.stats import Tearsheet, tearsheet
from marketlab.backtests.spec import ReportSpec

if TYPE_CHECKING:
    from marketlab.backtests.engine import BacktestResult

__all__ = ["result_tearsheet", "write_report"]


def result_tearsheet(res: BacktestResult, window: int = 0) -> Tearsheet:
    """The tearsheet statistics of a backtest result (``window``: rolling window in bars, 0 = default)."""
    sec = float(np.median(np.diff(res.ts))) / 1e9 if res.ts.shape[0] > 1 else 86_400.0
    return tearsheet(ts=res.ts, value=res.value, init_cash=res.init_cash, periods_per_year=res.periods_per_year, bar_seconds=sec,
                     benchmark=res.benchmark, weights=res.weights, traded=res.traded, metrics=res.metrics, window=window)


def write_html(res: BacktestResult, t: Tearsheet, path: Path) -> None:
    """Write the interactive report page to ``path``."""
    start, end = (str(np.datetime64(int(x), "ns").astype("datetime64[s]")).replace("T00:00:00", "") for x in (res.ts[0], res.ts[-1]))
    subtitle = [
        f"{len(res.symbols)} symbol(s), {start} .. {end}, {res.value.shape[0]:,} bars, "
        f"{res.periods_per_year:,.0f} bars a year, start {res.init_cash:,.0f}, end {res.value[-1]:,.0f}",
    ]
    page = render(title=res.name, subtitle=subtitle, tear=t, figures=all_figures(t, res.weights, res.symbols), trades=res.trades)
    path.write_text(page, encoding="utf-8")


def write_report(res: BacktestResult, spec: ReportSpec, *, spec_path: Path | None = None) -> Path:
    """Write the report folder; returns the HTML path (or the folder when HTML is off)."""
    out = Path(spec.out_dir) / res.name
    out.mkdir(parents=True, exist_ok=True)
    if res.trades is not None:
        res.trades.to_csv(out / "trades.csv", index=False)
    meta = {"spec": str(spec_path) if spec_path else None, **res.to_dict(), "report": str(out / "report.html")}
    (out / "metrics.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    if not (spec.png or spec.html):
        return out
    t = result_tearsheet(res, spec.rolling_window)
    if spec.png:
        write_pngs(t, res.weights, res.symbols, out)
    if spec.html:
        path = out / "report.html"
        write_html(res, t, path)
        return path
    return out
