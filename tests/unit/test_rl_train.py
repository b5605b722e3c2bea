"""RL training runs: the batched VecEnv when n_envs > 1, resume equal to an uninterrupted run (safetensors +
JSON checkpoints, no pickle), TensorBoard event files with the path printed at the start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from marketlab.agents.sb3 import AgentSpec, train
from marketlab.core.errors import SpecError
from marketlab.market import synthetic_market


@pytest.fixture(scope="module")
def market():
    return synthetic_market(400, 1, seed=5, vol=0.01)


def _spec(kind: str = "auto", n: int = 4, **over) -> AgentSpec:
    d = {"name": "r", "algo": "ppo", "total_timesteps": 512, "seed": 3, "device": "cpu", "net_arch": [16],
         "hyper": {"n_steps": 64, "batch_size": 32, "n_epochs": 2}, "vec": {"n_envs": n, "kind": kind},
         "env": {"period": "train", "episode_length": 50, "random_start": True, "data": {"test_start": "2024-01-01T05:00"},
                 "observation": {"window": 4}, "costs": {"commission": 0.0005}, "decision_interval": 2,
                 "reward": {"turnover_penalty": 0.001}}}
    d.update(over)
    return AgentSpec.from_dict(d)


def _weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(str(run / "policy.safetensors"))


@pytest.mark.parametrize("kind,n", [("auto", 4), ("dummy", 2)])
def test_resume_equals_an_uninterrupted_run(kind, n, market, tmp_path):
    whole = train(_spec(kind, n), market=market, out_dir=tmp_path / "whole")
    info = json.loads((whole / "train.json").read_text())
    assert info["vec"] == ("batched" if kind == "auto" else "dummy") and info["complete"]
    part = train(_spec(kind, n), market=market, out_dir=tmp_path / "part", stop_after=200)
    first = json.loads((part / "train.json").read_text())
    assert not first["complete"] and 200 <= first["timesteps"] < 512  # stopped at a rollout boundary
    assert not all(np.array_equal(a, b) for a, b in zip(_weights(whole).values(), _weights(part).values(), strict=True))
    starts = []
    part = train(_spec(kind, n), market=market, out_dir=tmp_path / "part", resume=True, on_start=starts.append)
    assert starts[0]["resumed_from"] == first["timesteps"] and starts[0]["total_timesteps"] == 512
    a, b = _weights(whole), _weights(part)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # bit for bit
    ck = part / "checkpoint"
    assert sorted(p.name for p in ck.iterdir()) == ["env.safetensors", "optimizer.safetensors", "policy.safetensors",
                                                     "rng.safetensors", "state.json"]
    assert json.loads((ck / "state.json").read_text())["num_timesteps"] == 512


def test_resume_refuses_another_spec_and_a_missing_checkpoint(market, tmp_path):
    with pytest.raises(SpecError, match="nothing to resume"):
        train(_spec(), market=market, out_dir=tmp_path, resume=True)
    train(_spec(), market=market, out_dir=tmp_path, stop_after=100)
    with pytest.raises(SpecError, match=r"key 'hyper.n_epochs': differs from the run being resumed"):
        train(_spec(hyper={"n_steps": 64, "batch_size": 32, "n_epochs": 3}), market=market, out_dir=tmp_path, resume=True)


def test_batched_auto_falls_back_for_a_reward_without_kernel(market, tmp_path):
    from marketlab.core.registry import register

    class NoKernel:  # a user's reward written in Python only (no numba kernel): single env only
        def __init__(self, config, init_cash):
            self.init_cash = init_cash

        def reset(self, value):
            pass

        def __call__(self, prev, value):
            return (value - prev) / self.init_cash

    register("reward/test-no-kernel-v1", NoKernel)
    spec = _spec(env={"period": "train", "episode_length": 50, "data": {"test_start": "2024-01-01T05:00"},
                      "observation": {"window": 4}, "reward": {"kind": "test-no-kernel-v1"}}, total_timesteps=256)
    run = train(spec, market=market, out_dir=tmp_path)
    assert json.loads((run / "train.json").read_text())["vec"] == "dummy"
    with pytest.raises(SpecError, match="has no kernel"):
        train(AgentSpec.from_dict({**spec.to_dict(), "vec": {"n_envs": 4, "kind": "batched"}}), market=market, out_dir=tmp_path)


def test_cli_prints_run_and_tensorboard_path_first_and_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    from typer.testing import CliRunner

    from marketlab.cli.main import app

    path = tmp_path / "spec.toml"  # no [env.data]: the built-in synthetic data (daily; train 2021-2022)
    path.write_text(f"""
name = "r"
algo = "ppo"
total_timesteps = 256
device = "cpu"
out_dir = "{tmp_path / 'runs'}"
net_arch = [16]
[hyper]
n_steps = 64
batch_size = 32
n_epochs = 1
[env]
episode_length = 50
random_start = true
[vec]
n_envs = 4
""")
    res = CliRunner().invoke(app, ["rl", "train", str(path), "--json"])
    assert res.exit_code == 0, res.output
    tb = tmp_path / "runs" / "r" / "tb"
    err = res.stderr
    assert err.splitlines()[0].startswith(f"run: {tmp_path / 'runs' / 'r'} (batched x4, 256 timesteps)")
    assert f"tensorboard: tensorboard --logdir {tb}" in err.splitlines()[0]
    out = json.loads(res.stdout)
    assert out["tensorboard"] == str(tb) and out["vec"] == "batched"
    events = list(tb.rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
