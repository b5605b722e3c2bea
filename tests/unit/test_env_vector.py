"""Every env works in every vector wrapper with default settings: gymnasium's async vector env (fork on
Linux) and SB3's SubprocVecEnv (forkserver), on envs that read the store through Polars.

A regression used to hang forever (a forked worker calling Polars after the parent started its thread
pool; see marketlab.market.forkshare), so each check runs in its own process session under a timeout
and a hang fails the test instead of the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120  # the checks take 5-15 s on the shared 2-core CPU; a hang is forever


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory):
    from marketlab.store import Store
    from marketlab.store.synth import write_synth

    path = tmp_path_factory.mktemp("vecstore") / "store"
    write_synth(Store(path), 0, n_symbols=2, n_days=300, n_events=3_000)
    return path


def _run(code: str, store: Path) -> str:
    """Run ``code`` as a script (as a user would: forkserver workers re-import its top level) in a fresh
    interpreter in its own session, so a hung worker is killed with it; return stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ML_STORE": str(store)}
    script = store.parent / "check_vec.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=ROOT, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung: no result after {TIMEOUT_S} s (vector env workers deadlocked)")
    assert proc.returncode == 0, err[-3000:]
    return out


_CHECKED = """
import numpy as np


def checked(v, obs, env_id):  # after the steps: finite observations from both envs; close; report OK
    assert np.isfinite(obs).all() and obs.shape[0] == 2
    v.close()
    print("OK", env_id)
"""


def _assert_every_env_ok(code: str, store: Path) -> None:
    """Run ``code`` (after the ``checked(v, obs, env_id)`` helper) and assert every env of ENVS said OK."""
    out = _run(_CHECKED + textwrap.dedent(code), store)
    assert all(f"OK {env_id}" in out for env_id in ENVS), out


ENVS = {
    "marketlab/Trading-v0": {
        "config": {"data": {"dataset": "synth_daily", "kind": "panel", "symbols": ["SYN000"], "test_start": "2022-01-03"}},
    },
    "marketlab/LOBExecution-v0": {"config": {"quantity": 200, "horizon": 5, "step_events": 50, "warmup_events": 200}},
}


def test_gymnasium_async_vector_env_default_settings(synth_store):
    code = f"""
        import os, gymnasium as gym, numpy as np, marketlab.envs
        from marketlab.store import Store
        for env_id, kw in {ENVS!r}.items():
            v = gym.make_vec(env_id, 2, vectorization_mode="async", store=Store(os.environ["ML_STORE"]), **kw)
            assert type(v).__name__ == "AsyncVectorEnv"
            obs, _ = v.reset(seed=0)
            v.action_space.seed(0)
            for _ in range(8):
                obs, r, term, trunc, info = v.step(v.action_space.sample())
            checked(v, obs, env_id)
    """
    _assert_every_env_ok(code, synth_store)


@pytest.mark.slow  # forkserver: each of the 2 workers per env re-imports torch, SB3 and marketlab
def test_sb3_subproc_vec_env_default_settings(synth_store):
    code = f"""
        import os, gymnasium as gym, numpy as np, marketlab.envs
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv
        from marketlab.store import Store

        if __name__ == "__main__":  # forkserver workers import this script
            for env_id, kw in {ENVS!r}.items():
                kw = dict(store=Store(os.environ["ML_STORE"]), **kw)
                gym.make(env_id, **kw).close()  # the parent reads the store first (Polars' pool running)
                v = make_vec_env(env_id, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, env_kwargs=kw)
                obs = v.reset()
                for _ in range(8):
                    obs, r, done, info = v.step(np.array([v.action_space.sample() for _ in range(2)]))
                checked(v, obs, env_id)
    """
    _assert_every_env_ok(code, synth_store)


def test_forked_worker_reads_its_parents_data_and_refuses_to_hang(synth_store):
    """With an explicit fork: a child that needs its parent's read gets it without touching the store
    (the store is gone by then); a read the parent did not make is a clear error, not a hang."""
    code = """
        import multiprocessing as mp, os, shutil
        from marketlab.market import DataSpec, load_market_spec
        from marketlab.store import Store

        spec = DataSpec(dataset="synth_daily", kind="panel", symbols=["SYN000"])
        other = DataSpec(dataset="synth_daily", kind="panel", symbols=["SYN001"])
        parent = load_market_spec(spec, Store(os.environ["ML_STORE"]))   # starts Polars' thread pool
        from marketlab.market.forkshare import polars_pool_running
        assert polars_pool_running()
        copy = os.environ["ML_STORE"] + "_gone"
        shutil.copytree(os.environ["ML_STORE"], copy)
        store = Store(copy)
        again = load_market_spec(spec, store)                             # same process: read again
        assert again is not parent

        def child(q):
            m = load_market_spec(spec, store)
            q.put(("same", float(m.close.sum()), m.symbols))
            try:
                load_market_spec(other, store)
                q.put(("other", "read"))
            except RuntimeError as exc:
                q.put(("other", str(exc)))

        shutil.rmtree(copy)                                               # children must not need it
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        same, other = q.get(timeout=60), q.get(timeout=60)
        p.join(30)
        assert same == ("same", float(again.close.sum()), ("SYN000",)), same
        assert "forked after Polars started its thread pool" in other[1] and "spawn" in other[1], other
        print("OK")
    """
    assert "OK" in _run(code, synth_store)


# --- the batched env as a gymnasium VectorEnv and an SB3 VecEnv ----------------------------------------

def _cfg(**kw):
    # Fixed starts (random_start false): per-env vector envs and the batched one start every episode at
    # the same bar, so they can be compared step for step.
    return {"period": "all", "episode_length": 7, "observation": {"window": 4}, "costs": {"commission": 0.001, "spread": 0.0004},
            "reward": {"kind": "diff-sharpe-v1"}, **kw}


def test_batched_gymnasium_vector_env_equals_sync_vector_env():
    import gymnasium as gym
    import numpy as np
    from gymnasium.vector import AutoresetMode

    import marketlab.envs  # noqa: F401
    from marketlab.envs.vector import BatchedVectorEnv
    from marketlab.market import synthetic_market

    m = synthetic_market(60, 2, seed=8, vol=0.01)
    n = 3
    batched = gym.make_vec("marketlab/Trading-v0", n, config=_cfg(), market=m)  # default: the vector entry point
    assert isinstance(batched, BatchedVectorEnv)
    sync = gym.make_vec("marketlab/Trading-v0", n, vectorization_mode="sync", config=_cfg(), market=m,
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    assert batched.single_observation_space == sync.single_observation_space and batched.action_space == sync.action_space
    ob, _ = batched.reset(seed=0)
    os_, _ = sync.reset(seed=0)
    np.testing.assert_array_equal(ob, os_)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(20):
        a = rng.integers(0, 3, (n, 2))
        ob2, rb, tb, trb, ib = batched.step(a)
        os2, rs, ts, trs, is_ = sync.step(a)
        np.testing.assert_array_equal(ob2, os2)
        np.testing.assert_allclose(rb, rs, rtol=1e-6, atol=1e-7)  # float32 rewards
        np.testing.assert_array_equal(tb, ts)
        np.testing.assert_array_equal(trb, trs)
        np.testing.assert_allclose(ib["value"], is_["value"], rtol=1e-12)
        if tb.any():
            ended += 1
            np.testing.assert_array_equal(ib["_final_obs"], is_["_final_obs"])
            for i in np.flatnonzero(tb):
                np.testing.assert_array_equal(ib["final_obs"][i], is_["final_obs"][i])
                assert ib["final_info"]["value"][i] == pytest.approx(is_["final_info"]["value"][i], rel=1e-12)
                assert ib["final_info"]["t"][i] == is_["final_info"]["t"][i]
        assert ob2 is not ob  # a fresh array each step
        ob = ob2
    assert ended >= 2
    batched.close()
    sync.close()


def test_batched_sb3_vec_env_equals_dummy_vec_env():
    import numpy as np
    from stable_baselines3.common.vec_env import DummyVecEnv

    from marketlab.envs.trading import TradingEnv
    from marketlab.envs.vector import sb3_batched_vec_env
    from marketlab.market import synthetic_market

    m = synthetic_market(60, 1, seed=9, vol=0.01)
    n = 4
    cfg = _cfg(action={"kind": "weights-v1"})
    batched = sb3_batched_vec_env(cfg, num_envs=n, market=m)
    dummy = DummyVecEnv([lambda: TradingEnv(cfg, market=m) for _ in range(n)])
    ob, od = batched.reset(), dummy.reset()
    np.testing.assert_array_equal(ob, od)
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(20):
        a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        prev = ob
        kept = prev.copy()
        ob, rb, db, ib = batched.step(a)
        od, rd, dd, id_ = dummy.step(a)
        np.testing.assert_array_equal(prev, kept)  # the previous observation was not overwritten (SB3 keeps it)
        np.testing.assert_array_equal(ob, od)
        np.testing.assert_allclose(rb, rd, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(db, dd)
        for i in np.flatnonzero(db):
            ended += 1
            np.testing.assert_array_equal(ib[i]["terminal_observation"], id_[i]["terminal_observation"])
            assert ib[i]["value"] == pytest.approx(id_[i]["value"], rel=1e-12)
    assert ended >= 4
