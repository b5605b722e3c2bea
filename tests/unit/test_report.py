"""Tearsheet report: statistics against closed forms / plain numpy on small known series, the page's
contents and size, and the vendored plotly.js."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketlab.backtests import Backtest
from marketlab.backtests.report.page import VENDOR, fmt
from marketlab.backtests.report.stats import rolling_beta, rolling_sharpe, tail_ratio, tearsheet
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.metrics import summary
from marketlab.market import synthetic_market

DAY = 86_400


def _weekdays(start: str, n: int) -> np.ndarray:
    d = pd.bdate_range(start, periods=n)
    return d.to_numpy().astype("datetime64[ns]").astype(np.int64)


def _rows(t):
    return {r.name: r for rows in t.tables.values() for r in rows}


def test_statistics_against_numpy():
    rng = np.random.default_rng(5)
    n, ppy = 120, 252.0
    b = rng.normal(0.0005, 0.01, n)
    r = 0.0002 + 1.3 * b + rng.normal(0, 0.004, n)
    value = 1000 * np.cumprod(1 + r)
    bench = 50 * np.cumprod(1 + b)  # any scale: only its returns count
    bench_r = np.concatenate([[0.0], b[1:]])  # the benchmark's first return is 0 (it starts the test there)
    t = tearsheet(ts=_weekdays("2024-01-01", n), value=value, init_cash=1000.0, periods_per_year=ppy, bar_seconds=DAY, benchmark=bench)
    s = _rows(t)
    beta = np.sum((r - r.mean()) * (bench_r - bench_r.mean())) / np.sum((bench_r - bench_r.mean()) ** 2)
    active = r - bench_r
    assert s["Beta"].strategy == pytest.approx(beta, rel=1e-9)
    assert s["Alpha (ann.)"].strategy == pytest.approx((1 + np.mean(r - beta * bench_r)) ** ppy - 1, rel=1e-9)
    assert s["Tracking error (ann.)"].strategy == pytest.approx(active.std(ddof=1) * np.sqrt(ppy), rel=1e-9)
    assert s["Information ratio (ann.)"].strategy == pytest.approx(active.mean() / active.std(ddof=1) * np.sqrt(ppy), rel=1e-9)
    def ann(x):
        return np.prod(1 + x) ** (ppy / len(x)) - 1

    up, down = bench_r > 0, bench_r < 0
    assert s["Up capture (bar)"].strategy == pytest.approx(ann(r[up]) / ann(bench_r[up]), rel=1e-9)
    assert s["Down capture (bar)"].strategy == pytest.approx(ann(r[down]) / ann(bench_r[down]), rel=1e-9)
    assert s["Correlation"].strategy == pytest.approx(np.corrcoef(r, bench_r)[0, 1], rel=1e-9)
    # distribution: VaR by sorting and interpolating, CVaR the mean at or below it, unbiased skew / excess kurtosis
    x = np.sort(r)
    pos = 0.05 * (n - 1)
    var = x[int(pos)] + (pos - int(pos)) * (x[int(pos) + 1] - x[int(pos)])
    assert s["VaR 95%"].strategy == pytest.approx(var, rel=1e-12)
    assert s["CVaR 95%"].strategy == pytest.approx(r[r <= var].mean(), rel=1e-12)

    def pct(q: float) -> float:  # linear interpolation between order statistics
        pos = q * (n - 1)
        return x[int(pos)] + (pos - int(pos)) * (x[int(pos) + 1] - x[int(pos)])

    assert s["Tail ratio"].strategy == pytest.approx(abs(pct(0.95)) / abs(pct(0.05)), rel=1e-12)
    z = (r - r.mean()) / r.std(ddof=1)
    assert s["Skew"].strategy == pytest.approx(n / ((n - 1) * (n - 2)) * np.sum(z**3), rel=1e-9)
    kurt = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3)) * np.sum(z**4) - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
    assert s["Excess kurtosis"].strategy == pytest.approx(kurt, rel=1e-9)
    # the headline ratios are those of core.metrics.summary (and so of vectorbt's pf.stats(), test_metrics.py)
    m = summary(value, init_cash=1000.0, periods_per_year=ppy)
    for name, key in (("Sharpe", "sharpe"), ("Sortino", "sortino"), ("Calmar", "calmar"), ("CAGR", "cagr"),
                      ("Volatility (ann.)", "volatility"), ("Max drawdown", "max_drawdown"), ("Total return", "total_return")):
        assert s[name].strategy == pytest.approx(m[key], rel=1e-9), name
    assert s["Sharpe"].strategy == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(ppy), rel=1e-9)


def test_tail_ratio_edges():
    # NaNs are dropped; 5th percentile 0 -> inf (as vectorbt's tail_ratio); nothing -> NaN
    r = np.array([np.nan, -0.02, -0.01, 0.0, 0.01, 0.03, np.nan])
    x = np.sort(r[~np.isnan(r)])  # 5 values: the 95th percentile is 80% of the way from x[3] to x[4]
    assert tail_ratio(r) == pytest.approx((x[3] + 0.8 * (x[4] - x[3])) / abs(x[0] + 0.2 * (x[1] - x[0])), rel=1e-12)
    assert tail_ratio(np.array([0.0] * 10 + [0.01])) == np.inf
    assert np.isnan(tail_ratio(np.array([np.nan])))


def test_calendar_returns_and_drawdowns_known_path():
    """Initial cash 80, then a value constant within each month: Dec 2023 100, Jan 110, Feb 99, Mar 108.9, Apr 120, May 90, Jun 125,
    Jul 115 -> monthly returns 25%, 10%, -10%, 10%, ...; drawdowns -25% (peak the last April bar, valley the first May bar, recovery the first June bar),
    -10% (Jan peak, Feb valley, Mar 120 recovery in Apr) and -8% still open."""
    months = {"2023-12": 100.0, "2024-01": 110.0, "2024-02": 99.0, "2024-03": 108.9, "2024-04": 120.0, "2024-05": 90.0,
              "2024-06": 125.0, "2024-07": 115.0}
    ts = _weekdays("2023-12-01", 170)
    key = pd.DatetimeIndex(ts).strftime("%Y-%m")
    ts, key = ts[np.isin(key, list(months))], key[np.isin(key, list(months))]
    value = np.array([months[k] for k in key])
    t = tearsheet(ts=ts, value=value, init_cash=80.0, periods_per_year=252.0, bar_seconds=DAY)
    expect = {(2024, 1): 0.1, (2024, 2): -0.1, (2024, 3): 0.1, (2024, 4): 120 / 108.9 - 1, (2024, 5): -0.25, (2024, 6): 125 / 90 - 1,
              (2024, 7): -0.08, (2023, 12): 0.25}  # the first month starts from the initial cash
    for (y, mo), v in expect.items():
        assert t.monthly.loc[y, mo] == pytest.approx(v, abs=1e-12)
    assert np.isnan(t.monthly.loc[2023, 1])
    assert t.yearly.loc[2023, "strategy"] == pytest.approx(0.25) and t.yearly.loc[2024, "strategy"] == pytest.approx(0.15)
    dd = t.drawdowns
    first = lambda m: pd.Timestamp(ts[key == m][0])  # noqa: E731
    last = lambda m: pd.Timestamp(ts[key == m][-1])  # noqa: E731  (the peak is the last bar at the high)
    assert dd["depth"].tolist() == pytest.approx([-0.25, -0.1, -0.08])
    assert dd["peak"].iloc[0] == last("2024-04") and dd["valley"].iloc[0] == first("2024-05")
    assert dd["recovery"].iloc[0] == first("2024-06")
    assert dd["peak"].iloc[1] == last("2024-01") and dd["recovery"].iloc[1] == first("2024-04")
    assert pd.isna(dd["recovery"].iloc[2])  # still under water
    s = _rows(t)
    assert s["Best month"].strategy == pytest.approx(125 / 90 - 1) and s["Worst month"].strategy == pytest.approx(-0.25)
    assert s["Positive months"].strategy == pytest.approx(5 / 8)


def test_rolling_windows_against_naive_loops():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.01, 300)
    r[100:180] = 0.0  # flat: no position for 80 bars
    b = rng.normal(0, 0.01, 300)
    b[200:260] = 0.0005  # a constant benchmark: no beta
    idx = pd.date_range("2024-01-01", periods=300, freq="min")
    rs = rolling_sharpe(pd.Series(r, idx), 30, 365 * 1440).to_numpy()
    rb = rolling_beta(pd.Series(r, idx), pd.Series(b, idx), 30).to_numpy()
    for i in range(29, 300):
        w, wb = r[i - 29 : i + 1], b[i - 29 : i + 1]
        sd = w.std(ddof=1)
        want = w.mean() / sd * np.sqrt(365 * 1440) if sd > 0 else np.nan
        np.testing.assert_allclose(rs[i], want, rtol=1e-7, atol=1e-7, equal_nan=True, err_msg=f"sharpe row {i}")
        vb = wb.var(ddof=1)
        want_b = np.cov(w, wb, ddof=1)[0, 1] / vb if vb > 1e-20 else np.nan
        np.testing.assert_allclose(rb[i], want_b, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=f"beta row {i}")
    assert np.isnan(rs[:29]).all() and np.isnan(rs[179])  # the window 150..179 is all zeros
    assert np.isnan(rb[259])  # benchmark constant over 230..259


def test_intraday_distribution_is_daily():
    m = synthetic_market(4 * 1440, 2, seed=1, vol=0.001)
    value = 100 * m.close[:, 0] / m.close[0, 0]
    t = tearsheet(ts=m.ts, value=value, init_cash=100.0, periods_per_year=365 * 1440, bar_seconds=60, benchmark=m.close[:, 1])
    assert t.period == "day" and len(t.dist_returns) == 4
    ends = [1439, 2879, 4319, 5759]
    daily = value[ends] / np.concatenate([[100.0], value[ends[:-1]]]) - 1
    np.testing.assert_allclose(t.dist_returns.to_numpy(), daily, rtol=1e-12)
    bench = m.close[:, 1]
    bd = bench[ends] / np.concatenate([[bench[0]], bench[ends[:-1]]]) - 1
    up = bd > 0
    ann = lambda x: np.prod(1 + x) ** (365 / len(x)) - 1  # noqa: E731  (minute bars -> 365 days a year)
    assert _rows(t)["Up capture (daily)"].strategy == pytest.approx(ann(daily[up]) / ann(bd[up]), rel=1e-9)


def test_percentages_are_formatted():
    assert fmt(0.123456, "pct") == "12.35%" and fmt(-0.5, "pct") == "-50.00%"
    assert fmt(1.23456, "ratio") == "1.23" and fmt(1305.0, "int") == "1,305" and fmt(float("nan"), "pct") == "–"


def _page(tmp_path: Path, market, strategy: dict, name: str) -> tuple[Path, str]:
    spec = {"name": name, "data": {"dataset": "mem"}, "signal": {"kind": "momentum-v1", "lookback": 20}, "strategy": strategy,
            "costs": {"commission": 0.0005}, "report": {"out_dir": str(tmp_path), "png": False}}
    res = Backtest(BacktestSpec.from_dict(spec), market=market).run()
    return Path(res.report_path), Path(res.report_path).read_text(encoding="utf-8")


def test_report_page_sections_and_size(tmp_path):
    """Many symbols and bars: one file <= 1.5 MB with plotly.js once, every section, percentages formatted."""
    m = synthetic_market(2_500, 120, seed=4, vol=0.015, bar_seconds=DAY)
    path, page = _page(tmp_path, m, {"kind": "topk", "top_k": 10, "rebalance": 5}, "big")
    assert path.stat().st_size <= 1_500_000, path.stat().st_size
    assert page.count('id="plotlyjs"') == 1 and "<script src=" not in page
    for fid in ("equity", "drawdown", "monthly", "yearly", "distribution", "rolling", "exposure", "positions"):
        assert f'<div id="{fid}"></div>' in page, fid
    for label in ("Alpha (ann.)", "Beta", "Information ratio (ann.)", "Tracking error (ann.)", "VaR 95%", "CVaR 95%", "Skew",
                  "Excess kurtosis", "Worst drawdowns", "Turnover", "Exposure"):
        assert label in page, label
    assert re.search(r"<th>Total return</th><td>-?[\d,]+\.\d\d%</td>", page)
    assert "first 100 of" in page  # trade list capped on the page (all in trades.csv)


def test_vendored_plotly_matches_plotly_py():
    """The embedded bundle is the plotly.js version that plotly.py writes figures for."""
    import plotly

    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")[:200]
    mine = VENDOR.read_text(encoding="utf-8")[:200]
    version = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", full)
    assert version and f"plotly.js (cartesian - minified) v{version.group(1)}" in mine
