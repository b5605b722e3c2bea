"""Performance metrics of an equity curve, computed from arrays (no vectorbt needed).

Conventions: ``value`` (T,) is net portfolio value after costs at each bar close; returns are simple
bar returns with the initial cash as the value before the first bar; annualisation uses
``periods_per_year`` (:func:`periods_per_year` infers it from the timestamps: 252 trading days for
markets closed at weekends, 365 days for 24/7 markets such as crypto); risk-free rate 0. The same
numbers as vectorbt's returns accessor (``ReturnsAccessor``) when it is given the same annualisation
(tests/unit/test_metrics.py checks both against plain numpy).
"""

from __future__ import annotations

import math

import numpy as np

from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S

TRADING_DAYS = 252.0  # markets closed at weekends (equities)
CALENDAR_DAYS = 365.0  # 24/7 markets (crypto); vectorbt's default year


def periods_per_year(ts: np.ndarray) -> float:
    """Bars per year of the calendar the timestamps ``ts`` (T,) int64 ns UTC come from.

    A market that trades at weekends (>= 10% of the days with bars are Saturdays or Sundays) or around
    the clock (intraday bars covering >= 20 h of a day, or a sample shorter than two days) has 365 days a
    year, others 252. Daily bars: days per year. Intraday bars: 24/7 markets 365 x 86,400 s / spacing
    (525,600 for 1-minute crypto); session markets 252 x the median number of bars per day (252 x 390
    for 1-minute US equities). Bars coarser than 1.5 days: calendar time (365.25 days / spacing).
    """
    ts = np.asarray(ts, dtype=np.int64)
    if ts.shape[0] < 2:
        return TRADING_DAYS
    sec = float(np.median(np.diff(ts))) / NS_PER_S
    if sec > 1.5 * 86_400:
        return 365.25 * 86_400 / sec
    days, per_day = np.unique(ts // NS_PER_DAY, return_counts=True)
    weekend = float(np.mean((days + 3) % 7 >= 5))  # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays
    if sec >= 0.99 * 86_400:
        return CALENDAR_DAYS if weekend >= 0.1 else TRADING_DAYS
    full_day = 86_400 / sec
    span_days = (ts[-1] - ts[0]) / NS_PER_DAY
    if weekend >= 0.1 or span_days < 2 or float(np.median(per_day)) >= full_day * 20 / 24:
        return CALENDAR_DAYS * full_day
    return TRADING_DAYS * float(np.median(per_day))


def returns_of(value: np.ndarray, init_cash: float) -> np.ndarray:
    """Simple returns (T,) of ``value`` with ``init_cash`` as the value before row 0."""
    prev = np.concatenate([[init_cash], value[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prev > 0, value / prev - 1.0, 0.0)


def drawdown(value: np.ndarray) -> np.ndarray:
    """value / running max - 1, (T,), <= 0."""
    peak = np.maximum.accumulate(value)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, value / peak - 1.0, -1.0)


def summary(
    value: np.ndarray,
    *,
    init_cash: float,
    periods_per_year: float,
    traded: np.ndarray | None = None,
    gross_exposure: np.ndarray | None = None,
    trade_pnl: np.ndarray | None = None,
    n_open_trades: int = 0,
    benchmark: np.ndarray | None = None,
) -> dict[str, float]:
    """Headline metrics.

    Args:
        value: (T,) net value. traded: (T,) traded notional per bar (turnover). gross_exposure: (T,)
        sum |position value| / value. trade_pnl: (n_closed,) PnL of closed trades (hit rate).
        n_open_trades: trades still open at the last bar. A trade is one vectorbt trade record: a
        position from its entry to one exit order (an exit in parts makes one trade per part);
        ``n_trades`` = closed + open, vectorbt's "Total Trades".
        benchmark: (T,) benchmark value (any scale) for the benchmark-relative return.
    Returns: total_return, cagr, volatility, sharpe, sortino, calmar, max_drawdown, turnover
        (annualised traded notional / mean value), hit_rate, exposure (mean gross exposure),
        benchmark_return, excess_return (total minus benchmark), n_bars, n_trades, n_closed_trades.
    """
    n = int(value.shape[0])
    r = returns_of(value, init_cash)
    years = n / periods_per_year if periods_per_year > 0 else float("nan")
    total = float(value[-1] / init_cash - 1.0) if n else float("nan")
    cagr = float((value[-1] / init_cash) ** (1.0 / years) - 1.0) if n and value[-1] > 0 and years > 0 else -1.0
    sd = float(r.std(ddof=1)) if n > 1 else float("nan")
    mean = float(r.mean()) if n else float("nan")
    ann = math.sqrt(periods_per_year)
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if n else float("nan")
    mdd = float(drawdown(value).min()) if n else float("nan")
    out = {
        "total_return": total,
        "cagr": cagr,
        "volatility": sd * ann,
        "sharpe": mean / sd * ann if sd > 0 else float("nan"),
        "sortino": mean / downside * ann if downside > 0 else float("nan"),
        "calmar": cagr / abs(mdd) if mdd < 0 else float("nan"),
        "max_drawdown": mdd,
        "turnover": float(traded.sum() / value.mean() / years) if traded is not None and years > 0 else float("nan"),
        "hit_rate": float((trade_pnl > 0).mean()) if trade_pnl is not None and trade_pnl.size else float("nan"),
        "exposure": float(gross_exposure.mean()) if gross_exposure is not None and n else float("nan"),
        "n_bars": n,
        "n_trades": (int(trade_pnl.size) if trade_pnl is not None else 0) + int(n_open_trades),
        "n_closed_trades": int(trade_pnl.size) if trade_pnl is not None else 0,
    }
    if benchmark is not None and benchmark.size and np.isfinite(benchmark[[0, -1]]).all():
        b = float(benchmark[-1] / benchmark[0] - 1.0)
        out["benchmark_return"] = b
        out["excess_return"] = total - b
    else:
        out["benchmark_return"] = float("nan")
        out["excess_return"] = float("nan")
    return out
