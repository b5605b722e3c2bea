"""One annualisation and one trade count: the calendar inference, and vectorbt's ``pf.stats()`` equal to
``BacktestResult.metrics`` (both checked against plain numpy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from marketlab.backtests import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.metrics import periods_per_year
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_MIN, to_ns
from marketlab.market import synthetic_market

MON = to_ns("2024-01-01")  # a Monday


def _weekdays(n_days: int) -> np.ndarray:
    """Midnights of the first ``n_days`` weekdays from MON."""
    d = np.arange(n_days * 7 // 5 + 7)
    d = d[d % 7 < 5][:n_days]
    return MON + d * NS_PER_DAY


def test_calendars():
    days = np.arange(400, dtype=np.int64)
    assert periods_per_year(MON + days * NS_PER_DAY) == 365  # daily, 7 days a week (crypto)
    assert periods_per_year(_weekdays(300)) == 252  # daily, weekdays only (equities)
    assert periods_per_year(MON + np.arange(20_000) * NS_PER_MIN) == 365 * 1440  # 1-minute crypto
    session = to_ns("2024-01-01T14:30") - MON + np.arange(390) * NS_PER_MIN  # 09:30-16:00 New York, in UTC
    us_minutes = (_weekdays(10)[:, None] + session[None, :]).ravel()
    assert periods_per_year(us_minutes) == 252 * 390
    assert periods_per_year(MON + np.arange(300) * NS_PER_MIN) == 365 * 1440  # under 2 days: 24h clock
    assert periods_per_year(MON + np.arange(100) * 7 * NS_PER_DAY) == pytest.approx(365.25 / 7)  # weekly


def _run(market, strategy, **data):
    spec = {"name": "agree", "data": {"dataset": "mem", **data}, "signal": {"kind": "momentum-v1", "lookback": 10},
            "strategy": strategy, "costs": {"commission": 0.001, "spread": 0.0004}}
    return Backtest(BacktestSpec.from_dict(spec), market=market).run(report=False)


TOPK = {"kind": "topk", "top_k": 2, "rebalance": 5}
CROSS = {"kind": "signals"}


@pytest.mark.parametrize(
    "calendar,strategy,ppy",
    [("weekdays", TOPK, 252.0), ("7days", TOPK, 365.0), ("minutes", CROSS, 525_600.0), ("weekdays", CROSS, 252.0)],
)
def test_vectorbt_stats_equal_metrics(calendar, strategy, ppy):
    """pf.stats() and res.metrics give one Sharpe/Sortino/Calmar/trade count, equal to plain numpy with
    the calendar's periods per year; open trades at the end count in both."""
    n_assets = 1 if strategy is CROSS else 5
    m = synthetic_market(300, n_assets, seed=3, vol=0.02, bar_seconds=60 if calendar == "minutes" else 86_400)
    if calendar == "weekdays":
        m = dataclasses.replace(m, ts=_weekdays(300))
    res = _run(m, strategy)
    assert res.periods_per_year == ppy
    st = res.portfolio.stats(column=0) if n_assets == 1 else res.portfolio.stats()
    r = np.diff(np.concatenate([[10_000.0], res.value])) / np.concatenate([[10_000.0], res.value[:-1]])
    sharpe = r.mean() / r.std(ddof=1) * np.sqrt(ppy)
    assert res.metrics["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    assert float(st["Sharpe Ratio"]) == pytest.approx(sharpe, rel=1e-9)
    assert float(st["Sortino Ratio"]) == pytest.approx(res.metrics["sortino"], rel=1e-9)
    assert float(st["Calmar Ratio"]) == pytest.approx(res.metrics["calmar"], rel=1e-9)
    assert float(st["Max Drawdown [%]"]) / -100 == pytest.approx(res.metrics["max_drawdown"], rel=1e-9)
    assert int(st["Total Trades"]) == res.metrics["n_trades"]
    assert int(st["Total Closed Trades"]) == res.metrics["n_closed_trades"]
    assert float(st["Win Rate [%]"]) / 100 == pytest.approx(res.metrics["hit_rate"], rel=1e-12)
    assert np.ravel(res.portfolio.returns_acc.sharpe_ratio())[0] == pytest.approx(sharpe, rel=1e-9)
    if strategy is TOPK:
        assert int(st["Total Open Trades"]) > 0  # the case where the two counts used to differ


def test_explicit_periods_per_year_reaches_vectorbt():
    m = synthetic_market(300, 5, seed=3, vol=0.02, bar_seconds=86_400)
    res = _run(m, TOPK, periods_per_year=12.0)
    assert res.periods_per_year == 12.0
    r = np.diff(np.concatenate([[10_000.0], res.value])) / np.concatenate([[10_000.0], res.value[:-1]])
    assert float(res.portfolio.stats()["Sharpe Ratio"]) == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(12), rel=1e-9)
    copy = res.portfolio.replace()  # vectorbt's copies and column selections rebuild the Portfolio: the year goes along
    assert float(copy.stats()["Sharpe Ratio"]) == pytest.approx(float(res.portfolio.stats()["Sharpe Ratio"]), rel=1e-12)
