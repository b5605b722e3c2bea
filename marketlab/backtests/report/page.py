"""The report page: one self-contained HTML file (no network), plotly.js embedded once.

plotly.js is the vendored cartesian bundle (``vendor/``), gzip-compressed and base64-encoded into the page
and unpacked by the browser's ``DecompressionStream`` before the figures are drawn (4.8 MB for the full
bundle plotly.py embeds; 0.66 MB this way). Figure arrays travel as base64 float32 typed arrays. When the
charts are drawn the script sets ``data-rendered`` on ``<body>`` to the number of figures (the headless
browser test reads it); an error is written into the page instead of failing silently.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import math
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd

from marketlab.backtests.report.stats import Row, Tearsheet

VENDOR = files("marketlab.backtests.report").joinpath("vendor", "plotly-cartesian.min.js")  # package data
MAX_TRADE_ROWS = 100


@functools.cache
def plotly_js_gzip_b64() -> str:
    """The vendored plotly.js bundle, gzip-compressed (mtime 0: identical bytes on every run), base64."""
    return base64.b64encode(gzip.compress(VENDOR.read_bytes(), compresslevel=9, mtime=0)).decode("ascii")


def _encode(obj: Any) -> Any:
    """JSON-ready figure: numeric numpy arrays -> plotly's typed-array spec (base64 float32/float64)."""
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            a = np.ascontiguousarray(obj, dtype=np.float32 if obj.dtype == np.float32 else np.float64)
            spec = {"dtype": "f4" if a.dtype == np.float32 else "f8", "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
            if a.ndim == 2:
                spec["shape"] = f"{a.shape[0]}, {a.shape[1]}"
            return spec
        return obj.tolist()
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def fmt(v: float | None, kind: str) -> str:
    """A statistic for people: percentages with two decimals, ratios with two, counts as integers."""
    if v is None or not np.isfinite(v):
        return "–"
    if kind == "pct":
        return f"{v:.2%}"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "days":
        return f"{v:,.1f} days" if v < 10 else f"{v:,.0f} days"
    if kind == "x":
        return f"{v:.2f}×"
    return f"{v:.2f}"


def stats_table(title: str, rows: list[Row]) -> str:
    """One statistics table (strategy, and benchmark when any row has one)."""
    bench = any(r.benchmark is not None for r in rows)
    head = "<tr><th></th><th>Strategy</th>" + ("<th>Benchmark</th>" if bench else "") + "</tr>"
    body = "".join(
        f"<tr><th>{html.escape(r.name)}</th><td>{fmt(r.strategy, r.fmt)}</td>" + (f"<td>{fmt(r.benchmark, r.fmt)}</td>" if bench else "") + "</tr>"
        for r in rows
    )
    return f'<div class="card"><h3>{html.escape(title)}</h3><table class="stats">{head}{body}</table></div>'


def _date(x: Any) -> str:
    return "ongoing" if pd.isna(x) else str(pd.Timestamp(x).strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00"))


def drawdown_table(dd: pd.DataFrame) -> str:
    """The worst drawdowns: depth, peak, valley, recovery, length."""
    if dd.empty:
        return "<p>no drawdowns</p>"
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{fmt(r.depth, 'pct')}</td><td>{_date(r.peak)}</td><td>{_date(r.valley)}</td>"
        f"<td>{_date(r.recovery)}</td><td>{fmt(r.days, 'days')}</td></tr>"
        for i, r in enumerate(dd.itertuples())
    )
    return ('<table class="stats"><tr><th>#</th><th>Depth</th><th>Peak</th><th>Valley</th><th>Recovery</th><th>Length</th></tr>'
            f"{rows}</table>")


def trades_table(trades: Any) -> str:
    """The first ``MAX_TRADE_ROWS`` trades (all of them are in trades.csv)."""
    if trades is None or not len(trades):
        return "<p>no trades</p>"
    t = trades.head(MAX_TRADE_ROWS).copy()
    for c in ("entry_time", "exit_time"):
        t[c] = [_date(x) for x in t[c]]
    t["return"] = [fmt(float(x), "pct") for x in t["return"]]
    out = t.to_html(index=False, float_format=lambda x: f"{x:,.6g}", border=0, classes="stats trades")
    if len(trades) > MAX_TRADE_ROWS:
        out += f"<p>first {MAX_TRADE_ROWS} of {len(trades):,} trades; all in trades.csv</p>"
    return out


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#1f2d3d;color:#fff;padding:16px 28px}header h1{margin:0 0 4px 0;font-size:22px}
header p{margin:2px 0;color:#cfd8e3;font-size:13px}main{padding:16px 28px;max-width:1500px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:14px}
.card{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card h3{margin:4px 0 8px 0;font-size:15px}.row2{display:grid;grid-template-columns:1fr 1fr;gap:14px;margin-top:14px}
.full{margin-top:14px}table.stats{border-collapse:collapse;font-size:13px;width:100%}
table.stats th,table.stats td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
table.stats th:first-child{text-align:left}table.trades{font-size:12px}.err{color:#b00;font-weight:bold}
@media(max-width:1000px){.row2{grid-template-columns:1fr}}"""

BOOT = """(async function(){
  const figs = JSON.parse(document.getElementById('figures').textContent);
  try {
    const b64 = document.getElementById('plotlyjs').textContent;
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    const s = document.createElement('script');
    s.textContent = await new Response(stream).text();
    document.head.appendChild(s);
    let n = 0;
    for (const [id, f] of Object.entries(figs)) {
      await Plotly.newPlot(id, f.data, f.layout, {responsive: true, displaylogo: false});
      n += 1;
    }
    document.body.dataset.rendered = n;
  } catch (e) {
    document.getElementById('js-error').textContent = 'the charts could not be drawn: ' + e;
    document.body.dataset.rendered = 'error';
  }
})();"""


def _script_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render(*, title: str, subtitle: list[str], tear: Tearsheet, figures: dict[str, dict[str, Any]], trades: Any) -> str:
    """The whole page as a string."""
    fig_json = _script_json({k: _encode(v) for k, v in figures.items()})

    def div(fid: str) -> str:
        return f'<div class="card"><div id="{fid}"></div></div>' if fid in figures else ""

    tables = "".join(stats_table(name, rows) for name, rows in tear.tables.items())
    sub = "".join(f"<p>{html.escape(s)}</p>" for s in subtitle)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} backtest</title><style>{CSS}</style></head>
<body><header><h1>{html.escape(title)}</h1>{sub}</header><main>
<p id="js-error" class="err"></p>
<div class="grid">{tables}</div>
<div class="full">{div("equity")}</div>
<div class="row2">{div("drawdown")}<div class="card"><h3>Worst drawdowns</h3>{drawdown_table(tear.drawdowns)}</div></div>
<div class="row2">{div("monthly")}{div("yearly")}</div>
<div class="row2">{div("distribution")}{div("rolling")}</div>
<div class="row2">{div("exposure")}{div("positions")}</div>
<div class="full card"><h3>Trades</h3>{trades_table(trades)}</div>
</main>
<script type="application/json" id="figures">{fig_json}</script>
<script type="text/plain" id="plotlyjs">{plotly_js_gzip_b64()}</script>
<script>{BOOT}</script>
</body></html>"""
