"""Tearsheet statistics of a backtest (what quantstats/pyfolio users read), from vectorbt's returns accessor.

Ratios, drawdowns, alpha/beta, information ratio and capture ratios come from
``vectorbt.returns.accessors.ReturnsAccessor`` annualised with the backtest's ``periods_per_year`` (so they
equal ``BacktestResult.metrics`` and ``pf.stats()``); skew/kurtosis, calendar returns and rolling windows
from pandas; VaR/CVaR and the tail ratio from numpy percentiles. tests/unit/test_report.py checks every number against plain numpy on small known series.

Conventions: returns are simple bar returns of the net value with the initial cash as the value before
the first bar; the benchmark is a value series of the same length (any scale). Distribution statistics
(VaR, CVaR, skew, kurtosis, best/worst) are over daily returns (bar returns compounded per UTC day) when
bars are shorter than a day, else over bar returns. Rolling windows are in bars; a window whose returns
are all equal has no Sharpe (NaN), not an infinite one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marketlab.core.metrics import returns_of

VAR_LEVEL = 0.05  # VaR / CVaR cut-off: the worst 5% of periods
N_DRAWDOWNS = 5


@dataclass
class Row:
    """One line of a statistics table: ``fmt`` is "pct", "ratio", "int", "days" or "x" (times)."""

    name: str
    strategy: float
    benchmark: float | None
    fmt: str


@dataclass
class Tearsheet:
    """Everything the report shows, at full resolution (figures thin it for display).

    Attributes: returns / bench_returns: bar returns (T,) on a DatetimeIndex; period: "day" or "bar", the
    unit of ``dist_returns`` (the distribution statistics' returns); tables: section name -> rows;
    monthly: year x month (1..12) compounded returns; yearly: year -> strategy, benchmark; drawdowns: the
    worst drawdowns (peak, valley, recovery dates, depth, length in days); rolling: sharpe, beta (T,) over
    ``window`` bars; exposure: gross, net (T,); turnover: traded notional / mean value per ``turnover_period``
    (day for samples up to 90 days, week up to 3 years, else month).
    """

    returns: pd.Series
    bench_returns: pd.Series | None
    period: str
    dist_returns: pd.Series
    dist_bench: pd.Series | None
    tables: dict[str, list[Row]]
    monthly: pd.DataFrame
    yearly: pd.DataFrame
    drawdowns: pd.DataFrame
    rolling: pd.DataFrame
    window: int
    exposure: pd.DataFrame
    turnover: pd.Series
    turnover_period: str


def returns_accessor(returns: pd.Series, bar_seconds: float, periods_per_year: float, benchmark: pd.Series | None = None) -> Any:
    """vectorbt's ``ReturnsAccessor`` over ``returns`` with a year of ``periods_per_year`` bars."""
    import vectorbt  # noqa: F401  (registers the .vbt accessor)

    bar = pd.Timedelta(seconds=bar_seconds)
    return returns.vbt.returns(freq=bar, year_freq=bar * periods_per_year, benchmark_rets=benchmark)


def calendar_returns(value: pd.Series, init_cash: float, rule: str) -> pd.Series:
    """Compounded returns per calendar period (``rule``: pandas offset, "ME" months, "YE" years), the first
    from ``init_cash``."""
    last = value.resample(rule).last().dropna()
    prev = last.shift(1)
    prev.iloc[0] = init_cash
    return last / prev - 1.0


def worst_drawdowns(acc: Any, index: pd.DatetimeIndex, n: int = N_DRAWDOWNS) -> pd.DataFrame:
    """The ``n`` deepest drawdowns of vectorbt's drawdown records: peak, valley, recovery (NaT while still
    under water), depth (<= 0), days from peak to recovery (or to the last bar)."""
    rec = acc.drawdowns.values
    cols = ["peak", "valley", "recovery", "depth", "days"]
    if rec.shape[0] == 0:
        return pd.DataFrame(columns=cols)
    depth = rec["valley_val"] / rec["peak_val"] - 1.0
    order = np.argsort(depth, kind="stable")[:n]
    rec, depth = rec[order], depth[order]
    recovered = rec["status"] == 1
    end = index[rec["end_idx"]]
    return pd.DataFrame({
        "peak": index[rec["peak_idx"]],
        "valley": index[rec["valley_idx"]],
        "recovery": end.where(recovered, pd.NaT),
        "depth": depth,
        "days": (end - index[rec["peak_idx"]]) / pd.Timedelta(days=1),
    })


def rolling_sharpe(returns: pd.Series, window: int, periods_per_year: float) -> pd.Series:
    """Annualised Sharpe over trailing ``window`` bars (pandas' stable rolling moments; NaN where flat)."""
    roll = returns.rolling(window)
    sd = roll.std(ddof=1)
    return (roll.mean() / sd.where(sd > 0) * np.sqrt(periods_per_year)).rename("sharpe")


def rolling_beta(returns: pd.Series, bench: pd.Series, window: int) -> pd.Series:
    """Trailing ``window``-bar beta of ``returns`` on ``bench``: cov / var (NaN where the benchmark is flat)."""
    var = bench.rolling(window).var(ddof=1)
    return (returns.rolling(window).cov(bench, ddof=1) / var.where(var > 0)).rename("beta")


def tail_ratio(returns: np.ndarray) -> float:
    """|95th percentile| / |5th percentile| of the non-NaN ``returns`` (linear interpolation; inf when the
    5th percentile is 0, NaN when empty): vectorbt's ``tail_ratio`` formula in numpy, because its numba
    kernel (``np.percentile`` in nopython mode) took 6.6 s of CPU to compile on a fresh cache, a tenth of the
    first demo's compile time, for two percentiles."""
    x = returns[~np.isnan(returns)]
    if not len(x):
        return float("nan")
    p95, p5 = np.abs(np.percentile(x, [95.0, 5.0]))
    return float(p95 / p5) if p5 != 0.0 else float("inf")


def _dist(r: pd.Series, intraday: bool) -> pd.Series:
    return (1.0 + r).groupby(r.index.floor("D")).prod() - 1.0 if intraday else r


def _side(acc: Any, r: pd.Series, dist: pd.Series, monthly: pd.Series, value: pd.Series, init_cash: float) -> dict[str, float]:
    """Statistics of one return series (strategy or benchmark)."""
    var = float(np.nanpercentile(dist, 100 * VAR_LEVEL)) if len(dist) else float("nan")
    tail = dist[dist <= var]
    dd = acc.drawdowns.values
    days = (r.index[dd["end_idx"]] - r.index[dd["peak_idx"]]) / pd.Timedelta(days=1)
    return {
        "total": float(value.iloc[-1] / init_cash - 1.0),
        "cagr": float(acc.annualized()),
        "vol": float(acc.annualized_volatility()),
        "sharpe": float(acc.sharpe_ratio()),
        "sortino": float(acc.sortino_ratio()),
        "calmar": float(acc.calmar_ratio()),
        "omega": float(acc.omega_ratio()),
        "mdd": float(acc.max_drawdown()),
        "longest_dd": float(days.max()) if dd.shape[0] else 0.0,
        "skew": float(dist.skew()),
        "kurt": float(dist.kurt()),
        "var": var,
        "cvar": float(tail.mean()) if len(tail) else float("nan"),
        "tail": tail_ratio(r.to_numpy()),
        "best": float(dist.max()),
        "worst": float(dist.min()),
        "best_month": float(monthly.max()),
        "worst_month": float(monthly.min()),
        "pos_months": float((monthly > 0).mean()),
    }


def tearsheet(
    *,
    ts: np.ndarray,
    value: np.ndarray,
    init_cash: float,
    periods_per_year: float,
    bar_seconds: float,
    benchmark: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    traded: np.ndarray | None = None,
    metrics: dict[str, Any] | None = None,
    window: int = 0,
) -> Tearsheet:
    """All tearsheet statistics of a net value path.

    Args:
        ts: (T,) int64 ns UTC bar times. value: (T,) net value. benchmark: (T,) benchmark value (any scale).
        weights: (T, N) position value / net value. traded: (T,) traded notional per bar.
        metrics: ``BacktestResult.metrics`` (trade counts, hit rate, turnover, exposure are read from it).
        window: rolling window in bars (0: a quarter of a year, at most a tenth of the sample, at least 2).
    """
    index = pd.DatetimeIndex(np.asarray(ts).astype("datetime64[ns]"))
    v = pd.Series(value, index=index, name="strategy")
    r = pd.Series(returns_of(value, init_cash), index=index, name="strategy")
    b_val = b = None
    if benchmark is not None:
        b_val = pd.Series(benchmark / benchmark[0] * init_cash, index=index, name="benchmark")
        b = pd.Series(returns_of(b_val.to_numpy(), init_cash), index=index, name="benchmark")
    intraday = bar_seconds < 0.99 * 86_400
    acc = returns_accessor(r, bar_seconds, periods_per_year, b)
    monthly_s = calendar_returns(v, init_cash, "ME")
    dist = _dist(r, intraday)
    s = _side(acc, r, dist, monthly_s, v, init_cash)
    bs: dict[str, float] = {}
    monthly_b = dist_b = None
    if b is not None and b_val is not None:
        monthly_b = calendar_returns(b_val, init_cash, "ME")
        dist_b = _dist(b, intraday)
        bs = _side(returns_accessor(b, bar_seconds, periods_per_year), b, dist_b, monthly_b, b_val, init_cash)
    unit = "day" if intraday else "bar"

    def row(name: str, key: str, fmt: str) -> Row:
        return Row(name, s[key], bs.get(key) if bs else None, fmt)

    tables = {
        "Returns and risk": [
            row("Total return", "total", "pct"), row("CAGR", "cagr", "pct"), row("Volatility (ann.)", "vol", "pct"),
            row("Sharpe", "sharpe", "ratio"), row("Sortino", "sortino", "ratio"), row("Calmar", "calmar", "ratio"),
            row("Omega", "omega", "ratio"), row("Max drawdown", "mdd", "pct"), row("Longest drawdown", "longest_dd", "days"),
            row("Best month", "best_month", "pct"), row("Worst month", "worst_month", "pct"), row("Positive months", "pos_months", "pct"),
        ],
        f"Distribution ({'daily' if intraday else 'bar'} returns)": [
            row(f"Best {unit}", "best", "pct"), row(f"Worst {unit}", "worst", "pct"),
            row(f"VaR {1 - VAR_LEVEL:.0%}", "var", "pct"), row(f"CVaR {1 - VAR_LEVEL:.0%}", "cvar", "pct"),
            row("Skew", "skew", "ratio"), row("Excess kurtosis", "kurt", "ratio"), row("Tail ratio", "tail", "ratio"),
        ],
    }
    if b is not None:
        active = r - b
        # capture ratios compare annualised returns of up/down periods: over minute bars these overflow, so
        # intraday samples use daily returns (a year of days: periods per year / bars per day)
        cap = acc
        if intraday and dist_b is not None:
            bars_per_day = float(np.median(r.groupby(r.index.floor("D")).size()))
            cap = returns_accessor(dist, 86_400, periods_per_year / bars_per_day, dist_b)
        tables["Against the benchmark"] = [
            Row("Alpha (ann.)", float(acc.alpha()), None, "pct"),
            Row("Beta", float(acc.beta()), None, "ratio"),
            Row("Correlation", float(r.corr(b)), None, "ratio"),
            Row("Information ratio (ann.)", float(acc.information_ratio()) * float(np.sqrt(periods_per_year)), None, "ratio"),
            Row("Tracking error (ann.)", float(active.std(ddof=1) * np.sqrt(periods_per_year)), None, "pct"),
            Row(f"Up capture ({'daily' if intraday else 'bar'})", float(cap.up_capture()), None, "ratio"),
            Row(f"Down capture ({'daily' if intraday else 'bar'})", float(cap.down_capture()), None, "ratio"),
        ]
    m = metrics or {}
    w = weights if weights is not None else np.zeros((len(value), 0))
    gross = np.abs(w).sum(axis=1)
    tables["Trading"] = [
        Row("Exposure (mean gross)", float(gross.mean()) if len(gross) else float("nan"), None, "pct"),
        Row("Time in market", float((gross > 1e-12).mean()) if len(gross) else float("nan"), None, "pct"),
        Row("Turnover (ann., x value)", float(m.get("turnover", float("nan"))), None, "x"),
        Row("Trades", float(m.get("n_trades", 0)), None, "int"),
        Row("Closed trades", float(m.get("n_closed_trades", m.get("n_trades", 0))), None, "int"),
        Row("Hit rate (closed)", float(m.get("hit_rate", float("nan"))), None, "pct"),
    ]
    yearly = pd.DataFrame({"strategy": calendar_returns(v, init_cash, "YE")})
    if b_val is not None:
        yearly["benchmark"] = calendar_returns(b_val, init_cash, "YE")
    yearly.index = yearly.index.year
    monthly = monthly_s.groupby([monthly_s.index.year, monthly_s.index.month]).first().unstack()
    monthly = monthly.reindex(columns=range(1, 13))
    n = len(value)
    if window <= 0:
        window = int(max(2, min(periods_per_year / 4, n / 10)))
    rolling = pd.DataFrame({"sharpe": rolling_sharpe(r, window, periods_per_year)})
    if b is not None:
        rolling["beta"] = rolling_beta(r, b, window)
    exposure = pd.DataFrame({"gross": gross, "net": w.sum(axis=1)}, index=index)
    tr = pd.Series(traded if traded is not None else np.zeros(n), index=index)
    span_days = (index[-1] - index[0]) / pd.Timedelta(days=1) if n else 0.0
    period, rule = ("day", "D") if span_days <= 90 else ("week", "W") if span_days <= 3 * 365 else ("month", "MS")
    turnover = tr.resample(rule).sum() / v.resample(rule).mean()
    return Tearsheet(r, b, unit, dist, dist_b, tables, monthly, yearly, worst_drawdowns(acc, index), rolling, window,
                     exposure, turnover.dropna(), period)
