"""Backtest report: one self-contained interactive HTML file (plotly.js inlined) plus matplotlib PNGs.

``<out_dir>/<name>/`` receives ``report.html`` (metrics table, equity vs benchmark, drawdown, positions,
rolling Sharpe, the trades table), ``equity.png``, ``drawdown.png``, ``positions.png``,
``rolling_sharpe.png``, ``trades.csv`` and ``metrics.json``. Long series are thinned to at most
``MAX_POINTS`` points for plotting (metrics always use every bar).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from marketlab.core.metrics import drawdown, returns_of, rolling_sharpe
from marketlab.backtests.spec import ReportSpec

if TYPE_CHECKING:
    from marketlab.backtests.engine import BacktestResult

MAX_POINTS = 5_000
MAX_POSITION_LINES = 10
MAX_TRADE_ROWS = 500


def _thin(n: int) -> np.ndarray:
    step = max(1, int(np.ceil(n / MAX_POINTS)))
    idx = np.arange(0, n, step)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def series_for_plots(res: BacktestResult, window: int = 0) -> dict[str, Any]:
    """The plotted series: dates, equity, benchmark, drawdown, positions (top symbols by mean |weight|
    plus gross long/short), rolling Sharpe over ``window`` bars (default: ~3 months of bars or 1/10 of
    the sample), all thinned to at most MAX_POINTS points."""
    n = res.value.shape[0]
    idx = _thin(n)
    dates = np.asarray(res.ts[idx]).astype("datetime64[ns]")
    r = returns_of(res.value, res.init_cash)
    if window <= 0:
        window = int(max(2, min(res.periods_per_year / 4, n / 10)))
    rs = rolling_sharpe(r, window, res.periods_per_year)
    w = res.weights
    top = np.argsort(-np.abs(w).mean(axis=0))[:MAX_POSITION_LINES]
    positions = {res.symbols[j]: w[idx, j] for j in top if np.abs(w[:, j]).max() > 0}
    if w.shape[1] > MAX_POSITION_LINES:
        positions = {"gross long": np.clip(w, 0, None).sum(axis=1)[idx], "gross short": np.clip(w, None, 0).sum(axis=1)[idx], **positions}
    return {
        "dates": dates,
        "equity": res.value[idx],
        "benchmark": None if res.benchmark is None else res.benchmark[idx],
        "drawdown": drawdown(res.value)[idx],
        "positions": positions,
        "rolling_sharpe": rs[idx],
        "window": window,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.4g}"
    return html.escape(str(v))


def write_html(res: BacktestResult, s: dict[str, Any], path: Path) -> None:
    """Write the interactive report page to ``path``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.4, 0.2, 0.2, 0.2],
        subplot_titles=("Equity vs benchmark", "Drawdown", "Positions (weight of net value)", f"Rolling Sharpe ({s['window']} bars)"),
    )
    fig.add_trace(go.Scatter(x=s["dates"], y=s["equity"], name="strategy", line={"width": 1.5}), row=1, col=1)
    if s["benchmark"] is not None:
        fig.add_trace(go.Scatter(x=s["dates"], y=s["benchmark"], name="benchmark", line={"width": 1, "dash": "dot"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=s["dates"], y=s["drawdown"], name="drawdown", fill="tozeroy", line={"width": 1}), row=2, col=1)
    for name, series in s["positions"].items():
        fig.add_trace(go.Scatter(x=s["dates"], y=series, name=str(name), line={"width": 1}, legendgroup="pos"), row=3, col=1)
    fig.add_trace(go.Scatter(x=s["dates"], y=s["rolling_sharpe"], name="rolling Sharpe", line={"width": 1}), row=4, col=1)
    fig.update_layout(height=1100, template="plotly_white", margin={"l": 50, "r": 20, "t": 40, "b": 30})
    plot = fig.to_html(full_html=False, include_plotlyjs=True)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in res.metrics.items())
    trades = res.trades
    trade_html = "<p>no trades</p>"
    if trades is not None and len(trades):
        trade_html = trades.head(MAX_TRADE_ROWS).to_html(index=False, float_format=lambda x: f"{x:.6g}", border=0)
        if len(trades) > MAX_TRADE_ROWS:
            trade_html += f"<p>first {MAX_TRADE_ROWS} of {len(trades)} trades; all in trades.csv</p>"
    start = np.datetime64(int(res.ts[0]), "ns")
    end = np.datetime64(int(res.ts[-1]), "ns")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(res.name)} backtest</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse;font-size:13px}}
th,td{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}} th{{text-align:left}}</style></head>
<body><h1>{html.escape(res.name)}</h1>
<p>{len(res.symbols)} symbol(s), {start} .. {end}, {res.value.shape[0]} bars</p>
<h2>Metrics</h2><table>{rows}</table>
{plot}
<h2>Trades</h2>{trade_html}
</body></html>"""
    path.write_text(page, encoding="utf-8")


def write_pngs(s: dict[str, Any], out: Path) -> list[Path]:
    """Write the static plots into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []

    def save(name: str, draw: Callable[[Any], None]) -> None:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        draw(ax)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        p = out / f"{name}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)

    def equity(ax: Any) -> None:
        ax.plot(s["dates"], s["equity"], label="strategy", lw=1.2)
        if s["benchmark"] is not None:
            ax.plot(s["dates"], s["benchmark"], label="benchmark", lw=1, ls=":")
        ax.set_title("Equity vs benchmark")
        ax.legend()

    def dd(ax: Any) -> None:
        ax.fill_between(s["dates"], s["drawdown"], 0, alpha=0.5)
        ax.set_title("Drawdown")

    def pos(ax: Any) -> None:
        for name, series in s["positions"].items():
            ax.plot(s["dates"], series, lw=0.8, label=str(name))
        ax.set_title("Positions (weight of net value)")
        if s["positions"]:
            ax.legend(fontsize=7, ncol=4)

    def sharpe(ax: Any) -> None:
        ax.plot(s["dates"], s["rolling_sharpe"], lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"Rolling Sharpe ({s['window']} bars)")

    for name, draw in (("equity", equity), ("drawdown", dd), ("positions", pos), ("rolling_sharpe", sharpe)):
        save(name, draw)
    return paths


def write_report(res: BacktestResult, spec: ReportSpec, *, spec_path: Path | None = None) -> Path:
    """Write the report folder; returns the HTML path (or the folder when HTML is off)."""
    out = Path(spec.out_dir) / res.name
    out.mkdir(parents=True, exist_ok=True)
    s = series_for_plots(res, spec.rolling_window)
    if res.trades is not None:
        res.trades.to_csv(out / "trades.csv", index=False)
    meta = {"spec": str(spec_path) if spec_path else None, **res.to_dict(), "report": str(out / "report.html")}
    (out / "metrics.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    if spec.png:
        write_pngs(s, out)
    if spec.html:
        path = out / "report.html"
        write_html(res, s, path)
        return path
    return out
