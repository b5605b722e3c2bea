"""The report's plotly figures, built from a :class:`~marketlab.backtests.report.stats.Tearsheet`.

Data are reduced for display only (statistics use every bar): time series to at most ``MAX_POINTS``
points (every k-th bar, plus each series' extreme so the deepest drawdown stays visible), the position
heatmap to ``MAX_HEAT_COLUMNS`` time buckets x ``MAX_HEAT_ROWS`` symbols (mean weight per bucket), and the
return distribution to ``N_BINS`` histogram bins; values are stored as float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from marketlab.backtests.report.stats import Tearsheet

MAX_POINTS = 1_500
MAX_HEAT_COLUMNS = 200
MAX_HEAT_ROWS = 25
N_BINS = 60
PCT = ".2%"
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 65, "t": 45, "b": 70}, "height": 340,
          "legend": {"orientation": "h", "y": -0.12, "yanchor": "top", "x": 0}, "hovermode": "x unified"}
DIVERGING = [[0.0, "#2166ac"], [0.5, "#ffffff"], [1.0, "#b2182b"]]  # blue short, white flat, red long
RED_GREEN = [[0.0, "#d73027"], [0.5, "#ffffff"], [1.0, "#1a9850"]]  # losses red, gains green
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def thin_index(n: int, keep: tuple[int, ...] = (), max_points: int = MAX_POINTS) -> np.ndarray:
    """Row positions to draw out of ``n``: every k-th row, the last row and the rows in ``keep``."""
    step = max(1, int(np.ceil(n / max_points)))
    idx = np.arange(0, n, step)
    return np.unique(np.concatenate([idx, [n - 1], np.asarray(keep, dtype=np.int64)])) if n else idx


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _ms(index: pd.DatetimeIndex) -> list[str]:
    """Dates as ISO strings (second resolution; plotly reads them on date axes)."""
    return list(np.datetime_as_string(index.to_numpy().astype("datetime64[s]")))


def _fig(traces: list[dict[str, Any]], title: str, **layout: Any) -> dict[str, Any]:
    return {"data": traces, "layout": {**LAYOUT, "title": {"text": title, "font": {"size": 15}, "x": 0.01, "xanchor": "left"}, **layout}}


def equity(t: Tearsheet) -> dict[str, Any]:
    """Cumulative return of the strategy and the benchmark."""
    cum = (1 + t.returns).cumprod() - 1
    keep = (int(np.argmin(cum.to_numpy())), int(np.argmax(cum.to_numpy())))
    idx = thin_index(len(cum), keep)
    x = _ms(cum.index[idx])
    traces = [{"type": "scatter", "x": x, "y": _f32(cum.to_numpy()[idx]), "name": "strategy", "line": {"width": 1.6}}]
    if t.bench_returns is not None:
        cb = (1 + t.bench_returns).cumprod() - 1
        traces.append({"type": "scatter", "x": x, "y": _f32(cb.to_numpy()[idx]), "name": "benchmark",
                       "line": {"width": 1.2, "dash": "dot", "color": "#888"}})
    return _fig(traces, "Cumulative return", yaxis={"tickformat": ".1%"}, height=380)


def underwater(t: Tearsheet) -> dict[str, Any]:
    """Drawdown from the running peak, with the worst drawdowns shaded."""
    cum = (1 + t.returns).cumprod().to_numpy()
    dd = cum / np.maximum.accumulate(np.maximum(cum, 1.0)) - 1
    idx = thin_index(len(dd), (int(np.argmin(dd)),))
    shapes = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": str(row.peak), "x1": str(row.recovery if pd.notna(row.recovery) else t.returns.index[-1]),
         "y0": 0, "y1": 1, "fillcolor": "rgba(214,39,40,0.08)", "line": {"width": 0}}
        for row in t.drawdowns.itertuples()
    ]
    trace = {"type": "scatter", "x": _ms(t.returns.index[idx]), "y": _f32(dd[idx]), "name": "drawdown", "fill": "tozeroy",
             "line": {"width": 1, "color": "#d62728"}}
    return _fig([trace], "Drawdown (worst periods shaded)", yaxis={"tickformat": ".1%"}, shapes=shapes, showlegend=False)


def monthly_heatmap(t: Tearsheet) -> dict[str, Any]:
    """Monthly returns, years x months, red-white-green centred on zero."""
    m = t.monthly
    z = m.to_numpy(dtype=float)
    text = [["" if not np.isfinite(v) else f"{v:.1%}" for v in rowv] for rowv in z]
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    trace = {"type": "heatmap", "z": [[None if not np.isfinite(v) else round(float(v), 6) for v in rowv] for rowv in z],
             "x": list(MONTHS), "y": [str(y) for y in m.index], "text": text, "texttemplate": "%{text}",
             "colorscale": RED_GREEN, "zmid": 0, "zmin": -lim, "zmax": lim, "showscale": False,
             "hovertemplate": "%{y} %{x}: %{z:.2%}<extra></extra>"}
    return _fig([trace], "Monthly returns", height=max(220, 60 + 28 * len(m)), yaxis={"autorange": "reversed", "type": "category"},
                hovermode="closest")


def yearly_bars(t: Tearsheet) -> dict[str, Any]:
    """Calendar-year returns of the strategy and the benchmark."""
    x = [str(y) for y in t.yearly.index]
    traces = [{"type": "bar", "x": x, "y": _f32(t.yearly[c]), "name": c, **({"marker": {"color": "#888"}} if c == "benchmark" else {})}
              for c in t.yearly.columns]
    return _fig(traces, "Yearly returns", yaxis={"tickformat": ".1%"}, barmode="group", hovermode="closest")


def distribution(t: Tearsheet) -> dict[str, Any]:
    """Histogram of the distribution returns (bins computed here), VaR marked."""
    series = [("strategy", t.dist_returns)] + ([("benchmark", t.dist_bench)] if t.dist_bench is not None else [])
    allv = np.concatenate([s.to_numpy() for _, s in series])
    allv = allv[np.isfinite(allv)]
    edges = np.histogram_bin_edges(allv, bins=N_BINS) if allv.size else np.linspace(-0.01, 0.01, N_BINS + 1)
    mid = (edges[:-1] + edges[1:]) / 2
    traces = []
    for name, s in series:
        cnt, _ = np.histogram(s.to_numpy(), bins=edges)
        traces.append({"type": "bar", "x": _f32(mid), "y": (cnt / max(cnt.sum(), 1)).astype(np.float32), "name": name, "opacity": 0.65,
                       **({"marker": {"color": "#888"}} if name == "benchmark" else {})})
    var = float(np.nanpercentile(t.dist_returns, 5)) if len(t.dist_returns) else 0.0
    shapes = [{"type": "line", "x0": var, "x1": var, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dash", "color": "#d62728"}}]
    return _fig(traces, f"Distribution of {'daily' if t.period == 'day' else 'bar'} returns (dashed: VaR 95%)", barmode="overlay", bargap=0,
                xaxis={"tickformat": ".1%"}, yaxis={"tickformat": ".0%"}, shapes=shapes, hovermode="closest")


def rolling(t: Tearsheet) -> dict[str, Any]:
    """Rolling Sharpe (left axis) and rolling beta (right axis) over ``t.window`` bars."""
    idx = thin_index(len(t.rolling))
    x = _ms(t.rolling.index[idx])
    traces = [{"type": "scatter", "x": x, "y": _f32(t.rolling["sharpe"].to_numpy()[idx]), "name": "Sharpe", "line": {"width": 1.2}}]
    layout: dict[str, Any] = {}
    if "beta" in t.rolling:
        traces.append({"type": "scatter", "x": x, "y": _f32(t.rolling["beta"].to_numpy()[idx]), "name": "beta (right)",
                       "yaxis": "y2", "line": {"width": 1.2, "color": "#9467bd"}})
        layout["yaxis2"] = {"overlaying": "y", "side": "right", "showgrid": False, "title": {"text": "beta"}}
    return _fig(traces, f"Rolling Sharpe and beta ({t.window} bars)", yaxis={"title": {"text": "Sharpe"}}, **layout)


def exposure(t: Tearsheet) -> dict[str, Any]:
    """Gross and net exposure (fraction of net value) and monthly turnover (bars, right axis)."""
    idx = thin_index(len(t.exposure))
    x = _ms(t.exposure.index[idx])
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "x": x, "y": _f32(t.exposure["gross"].to_numpy()[idx]), "name": "gross", "line": {"width": 1.2}},
        {"type": "scatter", "x": x, "y": _f32(t.exposure["net"].to_numpy()[idx]), "name": "net", "line": {"width": 1.2}},
        {"type": "bar", "x": _ms(t.turnover.index), "y": _f32(t.turnover), "name": f"turnover per {t.turnover_period} (right)",
         "yaxis": "y2", "opacity": 0.35, "marker": {"color": "#2ca02c"}},
    ]
    return _fig(traces, "Exposure and turnover", yaxis={"tickformat": ".0%"},
                yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "tickformat": ".0%", "type": "linear", "rangemode": "tozero"})


def positions(weights: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex) -> dict[str, Any]:
    """Positions as weight of net value: a heatmap of the ``MAX_HEAT_ROWS`` largest holdings (mean |weight|)
    over time buckets for several symbols, a filled area for one."""
    n, k = weights.shape
    if k == 1:
        idx = thin_index(n)
        trace = {"type": "scatter", "x": _ms(index[idx]), "y": _f32(weights[idx, 0]), "name": symbols[0], "fill": "tozeroy",
                 "line": {"width": 1, "shape": "hv"}}
        return _fig([trace], f"Position in {symbols[0]} (weight of net value)", yaxis={"tickformat": ".0%"}, showlegend=False)
    top = np.argsort(-np.abs(weights).mean(axis=0), kind="stable")[:MAX_HEAT_ROWS]
    top = top[np.abs(weights[:, top]).max(axis=0) > 0]
    edges = np.linspace(0, n, min(n, MAX_HEAT_COLUMNS) + 1).astype(np.int64)
    sums = np.add.reduceat(weights[:, top], edges[:-1], axis=0) if top.size else np.zeros((len(edges) - 1, 0))
    mean = sums / np.diff(edges)[:, None]
    lim = max(float(np.abs(mean).max()) if mean.size else 1.0, 1e-9)
    heat: dict[str, Any] = {"type": "heatmap", "z": _f32(mean.T), "x": _ms(index[edges[:-1]]), "y": [symbols[j] for j in top],
             "colorscale": DIVERGING, "zmid": 0, "zmin": -lim, "zmax": lim, "colorbar": {"tickformat": ".0%", "thickness": 12},
             "hovertemplate": "%{y} %{x}: %{z:.2%}<extra></extra>"}
    return _fig([heat], f"Positions: top {top.size} of {k} symbols (mean weight per period)",
                height=max(300, 90 + 18 * top.size), yaxis={"autorange": "reversed", "type": "category"}, hovermode="closest")


def all_figures(t: Tearsheet, weights: np.ndarray, symbols: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Section id -> figure (plotly JSON-ready dict), in page order."""
    out = {"equity": equity(t), "drawdown": underwater(t), "monthly": monthly_heatmap(t), "yearly": yearly_bars(t),
           "distribution": distribution(t), "rolling": rolling(t), "exposure": exposure(t)}
    out["positions"] = positions(weights, symbols, t.returns.index)
    return out
