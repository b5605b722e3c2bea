"""Causality of the backtester: whatever happens after time T (signals dropped, prices changed) leaves
the weights and the equity curve up to T unchanged, through the whole engine (source -> strategy ->
vectorbt -> holdings), for stored signals and for rules on prices."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from marketlab.backtests import Backtest, BacktestSpec
from marketlab.market import MarketData, synthetic_market

COSTS = {"commission": 0.001, "spread": 0.0004}


@pytest.fixture(scope="module")
def market() -> MarketData:
    return synthetic_market(160, 6, seed=21, vol=0.02, bar_seconds=86_400)


def _signals(m: MarketData) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    t, n = m.close.shape
    return pl.DataFrame({"ts": np.repeat(m.ts, n), "symbol": np.tile(np.array(m.symbols), t), "alpha": rng.normal(size=t * n)})


def _run(spec: dict, m: MarketData, frame: pl.DataFrame | None = None):
    return Backtest(BacktestSpec.from_dict(spec), market=m, signal_frame=frame).run(report=False)


@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("cut", [40, 97, 150])
def test_dropping_stored_signals_after_t_changes_nothing_before_t(market, cut, delay):
    spec = {"name": "causal", "data": {"dataset": "mem"}, "costs": COSTS, "benchmark": {"kind": "none"},
            "signal": {"kind": "alpha-v1", "dataset": "sig", "columns": ["alpha"]},
            "strategy": {"kind": "topk", "top_k": 2, "rebalance": 1, "delay": delay}}
    sig = _signals(market)
    full = _run(spec, market, sig)
    part = _run(spec, market, sig.filter(pl.col("ts") <= int(market.ts[cut])))
    np.testing.assert_array_equal(full.weights[: cut + 1], part.weights[: cut + 1])
    np.testing.assert_array_equal(full.value[: cut + 1], part.value[: cut + 1])
    assert not np.array_equal(full.value, part.value)  # the cut does change the future: the test can fail


def _bumped_after(m: MarketData, cut: int) -> MarketData:
    """Prices after ``cut`` jump by a factor that grows with the symbol's column (so any look-ahead in a
    cross-sectional rank shows at ``cut`` itself) times noise."""
    k = np.ones_like(m.close)
    ramp = np.exp(0.5 * (np.arange(m.n_assets) - m.n_assets / 2))
    k[cut + 1 :] = ramp * np.exp(np.random.default_rng(cut).normal(0, 0.3, k[cut + 1 :].shape))
    return MarketData(m.ts, m.symbols, m.open * k, m.high * k, m.low * k, m.close * k, m.volume, m.tradable, {}, m.source)


@pytest.mark.parametrize(
    "signal,strategy",
    [({"kind": "momentum-v1", "lookback": 10}, {"kind": "topk", "top_k": 2, "rebalance": 2}),
     ({"kind": "ma-cross-v1", "fast": 3, "slow": 12}, {"kind": "signals", "direction": "both"}),
     ({"kind": "mean-reversion-v1", "lookback": 8}, {"kind": "signals"})],
)
@pytest.mark.parametrize("cut", [61, 90, 121])
def test_prices_after_t_do_not_reach_decisions_before_t(market, signal, strategy, cut):
    spec = {"name": "causal", "data": {"dataset": "mem"}, "costs": COSTS, "benchmark": {"kind": "none"},
            "signal": signal, "strategy": strategy}
    full, bumped = _run(spec, market), _run(spec, _bumped_after(market, cut))
    np.testing.assert_array_equal(full.weights[: cut + 1], bumped.weights[: cut + 1])
    np.testing.assert_array_equal(full.value[: cut + 1], bumped.value[: cut + 1])
    assert not np.array_equal(full.value, bumped.value)
