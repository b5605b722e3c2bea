"""MacroHFT through the CLI (``rl train`` phase 1 -> phase 2 -> resume, ``rl eval``) and through a backtest spec
(``signal/macrohft-v1``): vectorbt's equity equals the env's P&L of the same positions traded all-in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from marketlab.agents.macrohft.evaluate import allin_env_value, load_trained, policy_positions
from marketlab.cli.main import app

from tests.support.binance import KLINES, kline_days

TINY_TOML = """
name = "mh_tiny"
symbol = "{symbol}"
dataset = "mh_klines"
archives = "{data}/klines"
store = "{data}/store"
out_dir = "runs"
chunk = 120
scheme = "paper"
fee = {fee}
[splits]
train_start = "2022-01-01"
train_end = "2022-01-04"
val_start = "2022-01-04"
val_end = "2022-01-05"
test_start = "2022-01-05"
test_end = "2022-01-07"
[sub]
epochs = 1
batch_size = 32
n_envs = 4
warmup = 32
updates_per_block = 2
block = 50
max_chunks = 4
[hyper]
epochs = 1
batch_size = 32
n_envs = 2
block = 50
warmup = 32
updates_per_block = 2
memory_capacity = 200
steps_per_epoch = 600
"""


def _spec(tmp_path: Path, data: Path, *, symbol: str = "BTCUSDT", fee: float = 0.0002, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(TINY_TOML.format(symbol=symbol, data=data, fee=fee))
    return p


@pytest.fixture(scope="module")
def data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``klines/`` (six real BTCUSDT days, the spec's ``archives``) and ``store/`` (ingested on first use)."""
    tmp = tmp_path_factory.mktemp("mh_data")
    kline_days(shared_data, tmp / "klines", {"BTCUSDT": [f"2022-01-0{d}" for d in range(1, 7)]})
    return tmp


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MacroHFT run trained through the CLI in two calls: phase 1, then phase 2 on the saved sub-agents."""
    tmp = tmp_path_factory.mktemp("mh")
    spec = _spec(tmp, data)
    code, out, err = _cli("rl", "train", str(spec), "--phase", "1", "--json", "--no-tensorboard")
    assert code == 0, err
    s = json.loads(out)
    run = Path(s["run"])
    assert run == tmp / "runs" / "mh_tiny"  # out_dir is relative to the spec file
    assert [a["agent"] for a in s["agents"]] == [f"sub_{k}_{i}" for k in ("slope", "vol") for i in range(3)]
    assert not (run / "hyper").exists()
    code, out, err = _cli("rl", "train", str(spec), "--phase", "2", "--json", "--no-tensorboard")
    assert code == 0, err
    assert json.loads(out)["agents"][-1]["agent"] == "hyper" and (run / "hyper" / "model.safetensors").is_file()
    return run


@pytest.mark.slow
def test_cli_resume_keeps_finished_agents_and_eval_reports_the_split(trained: Path, shared_data: Path) -> None:
    weights = {p: p.read_bytes() for p in trained.glob("*/model.safetensors")}
    spec = trained.parent.parent / "spec.toml"
    code, out, err = _cli("rl", "train", str(spec), "--resume", "--json", "--no-tensorboard")
    assert code == 0, err
    assert {p: p.read_bytes() for p in trained.glob("*/model.safetensors")} == weights  # loaded, not retrained
    code, out, err = _cli("rl", "eval", str(trained), "--period", "test", "--json")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["split"] == "test" and ev["start"].startswith("2022-01-05T00:00")
    assert set(ev["policies"]) == {"macrohft", "uniform", "buy_and_hold"}
    bh = ev["policies"]["buy_and_hold"]
    assert bh["trades"] == 1.0
    cfg, prep, _, _ = load_trained(trained)
    c = prep.splits["test"].close
    # all-in buy and hold: coins = cash / (c0 (1 + fee)), marked at the last close
    assert bh["total_return"] == pytest.approx(c[-1] / (c[0] * (1 + cfg.fee)) - 1, rel=1e-9)


@pytest.mark.slow
def test_backtest_spec_trades_the_policy_and_matches_the_env(trained: Path, shared_data: Path, tmp_path: Path) -> None:
    """signal/macrohft-v1 through vectorbt: the equity curve equals the env reward accumulated all-in (1e-9)."""
    from marketlab.backtests.engine import Backtest
    from marketlab.backtests.spec import BacktestSpec
    from marketlab.store import Store

    store = Store(tmp_path / "store")
    days = [shared_data / KLINES / f"BTCUSDT-1m-2022-01-0{d}.zip" for d in (5, 6)]
    store.ingest("ohlcv", days, dataset="btc_klines")
    cfg, prep, subs, hyper = load_trained(trained)
    test = prep.splits["test"]
    for policy in ("macrohft", "sub_vol_1"):
        spec = BacktestSpec.from_dict({
            "name": "mh_bt", "data": {"dataset": "btc_klines", "kind": "bars", "symbols": ["BTCUSDT"], "periods_per_year": 525_600.0},
            "signal": {"kind": "macrohft-v1", "run": str(trained), "params": {"policy": policy}},
            "strategy": {"kind": "weights"}, "costs": {"commission": cfg.fee, "init_cash": 10_000.0},
            "benchmark": {"kind": "none"}, "report": {"html": False, "png": False}})
        res = Backtest(spec, store=store).run(report=False)
        pos = policy_positions(policy, prep, "test", subs, hyper)
        assert 0 < np.abs(np.diff(pos)).sum()  # the policy trades: fees are exercised
        np.testing.assert_allclose(res.value, allin_env_value(test.close, pos, cfg.fee, 10_000.0), rtol=1e-9)


@pytest.mark.slow
def test_cli_bad_inputs_are_one_line_errors(trained: Path, data: Path, tmp_path: Path) -> None:
    code, _, err = _cli("rl", "train", str(_spec(tmp_path, data, symbol="DOGEUSDT", name="doge.toml")), "-q")
    assert code == 2 and err.startswith("error: ") and "DOGEUSDT" in err and len(err.strip().splitlines()) == 1
    other = _spec(tmp_path, data, fee=0.001, name="fee.toml")  # another config, same run folder
    code, _, err = _cli("rl", "train", str(other), "--phase", "2", "--out", str(trained.parent), "-q")
    assert code == 2 and "another config" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli("rl", "eval", str(trained), "--period", "all")
    assert code == 2 and "one split" in err
    code, _, err = _cli("rl", "train", str(_spec(tmp_path, data, name="t.toml")), "--timesteps", "10")
    assert code == 2 and "SB3 agent specs" in err
    bad = tmp_path / "overlap.toml"
    bad.write_text(_spec(tmp_path, data).read_text().replace('val_start = "2022-01-04"', 'val_start = "2022-01-03"'))
    code, _, err = _cli("rl", "train", str(bad), "-q")
    assert code == 2 and "splits.val_start" in err and "overlapping" in err
