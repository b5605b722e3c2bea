"""Trading-v0 without a config runs on the built-in data (nothing ingested, no store touched); the
over-trading guards (decision interval, turnover penalty, position limit) against hand-computed answers;
every env config key documented, and docs/envs.md current."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import polars as pl
import pytest

import marketlab.envs  # noqa: F401  (registers the gymnasium ids)
from marketlab.market import synthetic_market

ROOT = Path(__file__).resolve().parents[2]


def test_trading_env_without_config_runs_on_builtin_data(tmp_path, monkeypatch):
    store = tmp_path / "no_store"
    monkeypatch.setenv("MARKETLAB_STORE", str(store))
    monkeypatch.chdir(tmp_path)
    env = gym.make("marketlab/Trading-v0")
    obs, _ = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        obs, r, done, trunc, info = env.step(env.action_space.sample())
        steps += 1
    u = env.unwrapped
    assert steps == u.t_hi - u.t_lo and np.isfinite(info["value"])
    assert not store.exists() and not (tmp_path / "data").exists()  # nothing written: no store, no ingest
    # Known answer from outside the env: the seeded generator's panel, read with Polars directly.
    from marketlab.store.synth import synth_daily

    panel = synth_daily(0, n_symbols=1)[0].sort("date")
    assert u.market.symbols == ("SYN000",) and u.market.n_steps == panel.height == 756
    ok = ~panel["suspended"].to_numpy()
    np.testing.assert_array_equal(u.market.close[ok, 0], panel["close"].to_numpy()[ok])
    # The split: train before 2023-01-02, test from it on.
    first_test = panel.with_row_index().filter(pl.col("date") >= pl.date(2023, 1, 2))["index"][0]
    test = gym.make("marketlab/Trading-v0", config={"period": "test"}).unwrapped
    assert u.t_hi == first_test - 1 and test.t_lo == first_test and test.config.data.test_start == "2023-01-02"


def _env(**cfg):
    from marketlab.envs.trading import TradingEnv

    market = synthetic_market(120, 1, seed=4, vol=0.01)
    base = {"period": "all", "observation": {"window": 4}}
    return TradingEnv({**base, **cfg}, market=market), market


def test_decision_interval_holds_shares_for_k_bars():
    k = 5
    env, m = _env(decision_interval=k, costs={"commission": 0.001})
    env.reset(options={"start": 10})
    _, r1, _, _, i1 = env.step(2)  # long at close[10], held to close[15]
    assert i1["t"] == 10 + k
    fee = 0.001
    shares = 10_000.0 / (m.close[10, 0] * (1 + fee))  # all cash in, fee on top (vectorbt's buy with fees)
    assert i1["value"] == pytest.approx(shares * m.close[15, 0], rel=1e-9)
    assert r1 == pytest.approx((i1["value"] - 10_000.0) / 10_000.0, rel=1e-9)  # pnl-v1 over the k bars
    n_steps, done = 1, False
    while not done:
        _, _, done, _, info = env.step(2)
        n_steps += 1
    last = m.n_steps - 1
    assert info["t"] == last and n_steps == -(-(last - 10) // k)  # the last step is cut at the period's end
    assert info["value"] == pytest.approx(shares * m.close[last, 0], rel=1e-9)  # no trades after the first


def test_turnover_penalty_is_subtracted_from_the_reward_only():
    scale, p = 100.0, 0.002
    out = {}
    for penalty in (0.0, p):
        env, _ = _env(reward={"kind": "pnl-v1", "scale": scale, "turnover_penalty": penalty})
        env.reset(options={"start": 10})
        _, r, _, _, info = env.step(2)  # flat -> long: traded notional = the whole 10_000 (no costs)
        out[penalty] = (r, info["value"], info["traded"])
    assert out[0.0][2] == pytest.approx(10_000.0)
    assert out[p][1] == out[0.0][1]  # the accounting does not see the penalty
    assert out[p][0] == pytest.approx(out[0.0][0] - p * scale, rel=1e-12)  # p * 10_000 / 10_000 * scale


@pytest.mark.parametrize("action,act", [("discrete-v1", 2), ("weights-v1", np.array([1.0], np.float32))])
def test_position_limit_caps_the_target_weight(action, act):
    env, m = _env(action={"kind": action, "max_position": 0.4})
    env.reset(options={"start": 10})
    _, _, _, _, info = env.step(act)
    assert info["traded"] == pytest.approx(4_000.0)  # 0.4 of value, not all of it
    assert env.action_interp.to_weights(act)[0] == pytest.approx(0.4)
    short = 0 if action == "discrete-v1" else np.array([-1.0])
    levered, _ = _env(action={"kind": action, "max_position": 0.4, "levels": [-2.0, 0.0, 2.0]})
    assert levered.action_interp.to_weights(short)[0] == pytest.approx(-0.4)


def _configs():
    from marketlab.core.config import key_rows
    from marketlab.envs.docs import ENV_CONFIGS, _load

    return {env_id: key_rows(_load(entry)) for env_id, entry in ENV_CONFIGS.items()}


def test_every_env_config_key_is_documented():
    missing = [f"{env_id}: {key}" for env_id, rows in _configs().items() for key, _, _, note in rows if not note.strip()]
    assert not missing, f"config keys without a note (add a trailing # comment to the field): {missing}"


def test_docs_envs_md_is_current():
    from marketlab.envs.docs import env_docs

    page = ROOT / "docs" / "envs.md"
    assert page.read_text(encoding="utf-8") == env_docs(), "stale: python -m marketlab.envs.docs > docs/envs.md"


def test_new_keys_are_validated():
    from marketlab.core.errors import SpecError
    from marketlab.envs.spec import TradingEnvConfig

    for bad, key in (({"decision_interval": 0}, "env.decision_interval"), ({"reward": {"turnover_penalty": -1.0}}, "env.reward.turnover_penalty"),
                     ({"action": {"max_position": 0.0}}, "env.action.max_position")):
        with pytest.raises(SpecError, match=key.replace(".", r"\.")):
            TradingEnvConfig.coerce(bad)
    cfg = TradingEnvConfig.coerce({"decision_interval": 3, "action": {"max_position": 0.5}})
    assert cfg.decision_interval == 3 and dataclasses.asdict(cfg)["action"]["max_position"] == 0.5
