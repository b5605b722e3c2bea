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
            assert np.isfinite(obs).all() and obs.shape[0] == 2
            v.close()
            print("OK", env_id)
    """
    out = _run(code, synth_store)
    assert all(f"OK {env_id}" in out for env_id in ENVS), out


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
                assert np.isfinite(obs).all() and obs.shape[0] == 2
                v.close()
                print("OK", env_id)
    """
    out = _run(code, synth_store)
    assert all(f"OK {env_id}" in out for env_id in ENVS), out


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
