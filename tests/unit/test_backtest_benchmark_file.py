"""Backtests against a benchmark series read from a CSV file (e.g. the CSI300 index), and the exact
clipping of stored signals to the backtested period."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from marketlab.backtests import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.errors import DataError, SpecError
from marketlab.core.timeutil import NS_PER_DAY
from marketlab.market import align_signals, clip_signals, synthetic_market


@pytest.fixture(scope="module")
def market():
    return synthetic_market(60, 8, seed=3, vol=0.02, bar_seconds=86_400, start="2024-01-01")


def _dates(m) -> list[str]:
    return [str(np.datetime64(int(t), "ns").astype("datetime64[D]")) for t in m.ts]


def _index_csv(path, m, *, skip_first: int = 0):
    """An index file with a gap: the benchmark starts ``skip_first`` days late (as-of fill forward)."""
    dates = _dates(m)
    close = 1000.0 * np.cumprod(1 + 0.01 * np.sin(np.arange(len(dates))))
    rows = pl.DataFrame({"date": dates, "code": "IDX", "close": close})
    other = pl.DataFrame({"date": dates, "code": "OTHER", "close": 1.0})
    pl.concat([other, rows.slice(skip_first)]).write_csv(path)
    return close


def _spec(path, **bench):
    return BacktestSpec.from_dict({
        "name": "bf", "data": {"dataset": "mem", "kind": "panel", "test_start": "2024-01-21", "period": "test"},
        "signal": {"kind": "alpha-v1", "dataset": "sig", "columns": ["value"]},
        "strategy": {"kind": "topk", "top_k": 3, "rebalance": 1, "n_drop": 1, "delay": 1},
        "costs": {"commission": 0.0015},
        "benchmark": {"kind": "file", "path": str(path), "symbol": "IDX", **bench},
    })  # fmt: skip


def _signals(m, rng) -> pl.DataFrame:
    t, n = m.close.shape
    return pl.DataFrame({
        "date": np.repeat(np.array(_dates(m), dtype="datetime64[D]"), n),
        "symbol": np.tile(np.array(m.symbols, dtype=object), t).astype(str),
        "value": rng.standard_normal(t * n),
    })  # fmt: skip


def test_benchmark_from_index_file(tmp_path, market):
    close = _index_csv(tmp_path / "idx.csv", market)
    bt = Backtest(_spec(tmp_path / "idx.csv"), market=market, signal_frame=_signals(market, np.random.default_rng(0)))
    res = bt.run(report=False)
    lo = 20  # 2024-01-21 is the 21st daily bar
    assert res.metrics["benchmark_return"] == pytest.approx(close[-1] / close[lo] - 1, rel=1e-12)
    assert res.benchmark[0] == pytest.approx(res.init_cash)


def test_benchmark_file_gap_fills_forward_and_errors(tmp_path, market):
    close = _index_csv(tmp_path / "late.csv", market, skip_first=25)  # no index value on the first 5 test days
    res = Backtest(_spec(tmp_path / "late.csv"), market=market, signal_frame=_signals(market, np.random.default_rng(1))).run(report=False)
    assert res.metrics["benchmark_return"] == pytest.approx(close[-1] / close[25] - 1, rel=1e-12)
    sig = _signals(market, np.random.default_rng(1))
    with pytest.raises(SpecError, match="benchmark.path"):
        BacktestSpec.from_dict({**_spec_dict_without_path()})
    with pytest.raises(SpecError, match=r"benchmark\.symbol.*'NOPE'"):
        Backtest(_spec(tmp_path / "late.csv", symbol="NOPE"), market=market, signal_frame=sig).run(report=False)
    with pytest.raises(SpecError, match="file not found"):
        Backtest(_spec(tmp_path / "missing.csv"), market=market, signal_frame=sig).run(report=False)
    pl.DataFrame({"date": ["2024-01-01"], "code": ["IDX"], "price": [1.0]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="bad.csv.*close"):
        Backtest(_spec(tmp_path / "bad.csv"), market=market, signal_frame=sig).run(report=False)


def _spec_dict_without_path() -> dict:
    return {"name": "bf", "data": {"dataset": "mem"}, "signal": {"kind": "momentum-v1"},
            "benchmark": {"kind": "file", "symbol": "IDX"}}  # fmt: skip


@pytest.mark.parametrize("lo,hi", [(0, 60), (10, 40), (30, 31), (59, 60)])
def test_clip_signals_is_exact(market, lo, hi):
    rng = np.random.default_rng(lo)
    sig = _signals(market, rng).sample(fraction=0.4, seed=lo)  # gaps: as-of values reach back before lo
    m = market.slice_rows(lo, hi)
    clipped = clip_signals(sig, m)
    a = align_signals(m, sig, ["value"])["value"]
    b = align_signals(m, clipped, ["value"])["value"]
    np.testing.assert_array_equal(a, b)
    tt = clipped["date"].cast(pl.Int64).to_numpy() * NS_PER_DAY
    assert (tt <= m.ts[-1]).all() and (tt < m.ts[0]).sum() <= m.n_assets
