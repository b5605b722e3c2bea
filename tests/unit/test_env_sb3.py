"""SB3 PPO, DQN and SAC train on Trading-v0 from specs (tiny runs), save/load as safetensors, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from marketlab.agents.baselines import BuyAndHold, Flat, MACross, run_policy
from marketlab.agents.sb3 import AgentSpec, evaluate, load_run, rollout, rollout_weights, train
from marketlab.core.errors import SpecError
from marketlab.market import market_to_frame, synthetic_market
from marketlab.envs.trading import TradingEnv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def market():
    return synthetic_market(400, 2, seed=5, vol=0.01)


def _spec(algo: str, tmp: Path, **env) -> dict:
    action = {"kind": "weights-v1"} if algo == "sac" else {"kind": "discrete-v1"}
    hyper = {
        "ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 1},
        "dqn": {"learning_starts": 16, "buffer_size": 500, "batch_size": 16, "train_freq": 4},
        "sac": {"learning_starts": 16, "buffer_size": 500, "batch_size": 16},
    }[algo]
    return {
        "name": f"{algo}_tiny", "algo": algo, "total_timesteps": 128, "seed": 3, "device": "cpu", "out_dir": str(tmp),
        "net_arch": [16], "hyper": hyper,
        "env": {"period": "train", "episode_length": 50, "random_start": True, "action": action,
                "data": {"test_start": "2024-01-01T05:00"}, "observation": {"window": 4}, "costs": {"commission": 0.0005}, **env},
    }


@pytest.mark.parametrize("algo", ["ppo", "dqn", "sac"])
def test_sb3_algos_train_save_load_eval(algo, market, tmp_path):
    m = market if algo == "sac" else market.slice_rows(0, market.n_steps)
    if algo == "dqn":  # DQN needs a Discrete space: one asset
        m = synthetic_market(400, 1, seed=5, vol=0.01)
    spec = AgentSpec.from_dict(_spec(algo, tmp_path))
    run = train(spec, market=m)
    assert (run / "policy.safetensors").is_file() and json.loads((run / "config.json").read_text())["algo"] == algo
    model, env, _ = load_run(run, market=m, period="test")
    out = rollout(model, env)
    assert out["t"][0] == env.t_lo and out["value"].shape == (out["t"].size + 1,)
    res = evaluate(run, period="test", market=m)
    assert res["final_value"] == pytest.approx(out["value"][-1])
    w = rollout_weights(run, m, test_start="2024-01-01T05:00")
    assert np.isnan(w[: env.t_lo]).all() and np.isfinite(w[env.t_lo]).all()


def test_training_is_deterministic(tmp_path):
    m = synthetic_market(300, 1, seed=1, vol=0.01)
    from safetensors.numpy import load_file

    runs = [train(AgentSpec.from_dict(_spec("ppo", tmp_path / str(i))), market=m) for i in range(2)]
    a, b = (load_file(str(r / "policy.safetensors")) for r in runs)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_shipped_agent_specs_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETLAB_DATA", str(tmp_path))  # they read $MARKETLAB_DATA/... (existence is checked on use)
    for name in ("ppo_trading", "dqn_trading", "sac_trading"):
        spec = AgentSpec.from_toml(ROOT / "specs" / "agents" / f"{name}.toml")
        assert spec.name == name and spec.algo == name.split("_")[0]


def test_agent_spec_errors(tmp_path):
    with pytest.raises(SpecError, match=r"key 'env.action.kind': dqn needs discrete"):
        AgentSpec.from_dict({**_spec("dqn", tmp_path), "env": {"action": {"kind": "weights-v1"}}})
    with pytest.raises(SpecError, match=r"key 'algo': must be one of"):
        AgentSpec.from_dict({**_spec("ppo", tmp_path), "algo": "a2c"})
    with pytest.raises(SpecError, match=r"key 'lr': unknown key"):
        AgentSpec.from_dict({**_spec("ppo", tmp_path), "lr": 0.1})


def test_baselines(market):
    env = TradingEnv({"period": "all", "action": {"kind": "discrete-v1"}}, market=market)
    bh = run_policy(BuyAndHold(2), env)
    c = market.close
    expect = 10_000 * (0.5 * c[-1] / c[env.t_lo]).sum()  # zero costs: half the cash in each asset
    assert bh["value"][-1] == pytest.approx(expect, rel=1e-9)
    assert run_policy(Flat(), env)["value"][-1] == pytest.approx(10_000.0)
    assert np.isfinite(run_policy(MACross(3, 10), env)["value"]).all()


def test_cli_rl_train_and_eval(tmp_path):
    from typer.testing import CliRunner

    from marketlab.cli.main import app
    from marketlab.store import IngestBatch, Instrument, Store

    store = Store(tmp_path / "store")
    m = synthetic_market(300, 1, seed=4, vol=0.01)
    store.write(IngestBatch("bars1", {"bars": market_to_frame(m)}, [Instrument(m.symbols[0], 0.01, 1.0)]), format="test")
    spec = _spec("ppo", tmp_path / "runs")
    spec["env"]["data"] = {"dataset": "bars1", "test_start": "2024-01-01T04:00"}
    lines = [f'name = "{spec["name"]}"', 'algo = "ppo"', "total_timesteps = 64", 'device = "cpu"', f'out_dir = "{tmp_path / "runs"}"',
             "net_arch = [8]", "[hyper]", "n_steps = 32", "batch_size = 16", "n_epochs = 1", "[env]", "episode_length = 30",
             "[env.data]", 'dataset = "bars1"', 'test_start = "2024-01-01T04:00"', "[env.observation]", "window = 4"]
    (tmp_path / "a.toml").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["rl", "train", str(tmp_path / "a.toml"), "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["run"]
    r = CliRunner().invoke(app, ["rl", "eval", run, "--period", "test", "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["period"] == "test"
    r = CliRunner().invoke(app, ["rl", "eval", str(tmp_path), "--json"])
    assert r.exit_code == 2 and "config.json missing" in r.stderr
