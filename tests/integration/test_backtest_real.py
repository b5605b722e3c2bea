"""The shipped specs on the real datasets in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketlab.backtests import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.config import load_toml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _spec(name: str, shared: Path, out: Path, **over) -> dict:
    d = load_toml(ROOT / "specs" / "backtests" / f"{name}.toml")
    if "ingest" in d["data"]:
        d["data"]["ingest"]["paths"] = [str(shared / p.removeprefix("$MARKETLAB_DATA/")) for p in d["data"]["ingest"]["paths"]]
    d["report"]["out_dir"] = str(out)
    for k, v in over.items():
        d[k].update(v)
    return d


# slow (`make test-full`): a month of real minutes ingested, then the backtest and its HTML/PNG report; 34 s of CPU in a
# serial profile with a fresh numba cache (vectorbt's kernels compiled), 6 s with a warm one
@pytest.mark.slow
def test_ma_cross_on_btc_minutes(shared_data, tmp_store, tmp_path):
    res = Backtest(BacktestSpec.from_dict(_spec("ma_cross_btc", shared_data, tmp_path)), store=tmp_store).run()
    assert res.metrics["n_bars"] == 10 * 1440 + 1  # 2024-01-22 00:00 .. 2024-02-01 00:00 inclusive
    assert res.metrics["n_trades"] > 5 and np.isfinite(res.metrics["sharpe"])
    # the benchmark is buy-and-hold BTC over the test period
    close = res.portfolio.close.to_numpy().reshape(-1)
    assert res.metrics["benchmark_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-12)
    assert res.report_path.is_file()


@pytest.mark.slow
def test_top50_momentum_on_sp500(shared_data, tmp_store, tmp_path):
    res = Backtest(BacktestSpec.from_dict(_spec("momentum_top50_sp500", shared_data, tmp_path)), store=tmp_store).run(report=False)
    assert len(res.symbols) == 505 and res.metrics["n_bars"] == 1259
    held = (np.abs(res.weights) > 0).sum(axis=1)
    assert held.max() == 50 and held[:252].max() == 0  # no positions before 12 months of history
    assert -0.9 < res.metrics["total_return"] < 10 and 0.9 < res.metrics["exposure"] / (held > 0).mean() < 1.05


@pytest.mark.slow
def test_rl_agent_spec_end_to_end(shared_data, tmp_store, tmp_path):
    """Train the PPO spec briefly, backtest it with specs/backtests/rl_ppo_btc.toml: vectorbt == env rollout."""
    from marketlab.agents.sb3 import AgentSpec, evaluate, train

    a = load_toml(ROOT / "specs" / "agents" / "ppo_trading.toml")
    a["env"]["data"]["ingest"]["paths"] = [str(shared_data / "binance_spot_1m_btc_eth_2024_01" / "BTCUSDT_1m_2024-01.csv.gz")]
    a.update(total_timesteps=256, out_dir=str(tmp_path / "runs"), device="cpu")
    a["hyper"].update(n_steps=64, batch_size=64)
    a["vec"]["n_envs"] = 1
    run = train(AgentSpec.from_dict(a), store=tmp_store)
    d = _spec("rl_ppo_btc", shared_data, tmp_path)
    d["signal"]["run"] = str(run)
    res = Backtest(BacktestSpec.from_dict(d), store=tmp_store).run(report=False)
    ev = evaluate(run, period="test", store=tmp_store)
    assert res.value[-1] == pytest.approx(ev["final_value"], rel=1e-9)
