"""Env steps/s: Trading-v0 single env, gymnasium vector envs and the batched torch env, side by side with
gym-anytrading's StocksEnv and FinRL's StockTradingEnv (when importable; they are not dependencies).

Run: ``.venv/bin/python benchmarks/envs.py [--quick]``; ``--ppo`` runs only the section that times SB3 PPO
training with the batched VecEnv against ``DummyVecEnv`` and ``SubprocVecEnv`` (:func:`ppo_main`);
``--rewards`` only the batched numba env at B=32768 per reward (pnl, diff-sharpe), A/B against other
checkouts given as ``--baseline LABEL=DIR`` (:func:`rewards_main`). To include the peers without adding them to the
project: ``pip install --no-deps --target /tmp/peers gym-anytrading finrl`` and set
``MARKETLAB_PEERS=/tmp/peers``. Appends a run (time, commit, hardware, load) to
``benchmarks/results/envs.json`` through ``benchmarks/runlog.py``.

All single-env numbers use random actions on 1-minute-like GBM bars of one asset; marketlab's env has
costs (commission, spread, slippage) and a 32-bar window of 4 features (a 129-float observation).

Each rate is the best of a few repeats, both per wall-clock second and per CPU second of this process
(``time.process_time``): on a shared machine the second one discounts the time other jobs held the core.
The batched env runs with its numba engine (the CPU default) at several batch sizes (small batches keep
the (B, 129) float32 observation buffer in L2) and with its torch engine (float64 / float32).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
# The checkout whose marketlab is timed: this one, or a baseline's (set by rewards_main for its workers).
ROOT = Path(os.environ.get("MARKETLAB_BENCH_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import marketlab.envs  # noqa: E402,F401  (registers the gymnasium ids)
from marketlab.envs.batched import BatchedTradingEnv  # noqa: E402
from marketlab.market import synthetic_market  # noqa: E402
from marketlab.envs.trading import TradingEnv  # noqa: E402
from runlog import Run  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

CFG = {
    "costs": {"commission": 0.0002, "spread": 0.0001, "slippage": 0.0001},
    "observation": {"window": 32},
    "period": "all",
}


CPU_RATES: dict[str, float] = {}  # name -> best steps per CPU second, filled by rate()


def rate(fn, steps: int, repeats: int = 3, name: str | None = None) -> float:
    """Best-of-``repeats`` steps per wall second of ``fn(steps)`` (per CPU second into CPU_RATES[name])."""
    best = best_cpu = 0.0
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn(steps)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        best = max(best, steps / wall)
        best_cpu = max(best_cpu, steps / max(cpu, 1e-9))
    if name:
        CPU_RATES[name] = best_cpu
    return best


def random_steps(env, n_actions: int, steps: int):
    """``run(n)``: step ``env`` with the first ``n`` of ``steps`` seeded random discrete actions, resetting at
    episode ends (the env is reset with seed 0 here)."""
    acts = np.random.default_rng(0).integers(0, n_actions, steps)
    env.reset(seed=0)

    def run(n: int) -> None:
        for i in range(n):
            _, _, term, trunc, _ = env.step(int(acts[i]))
            if term or trunc:
                env.reset()

    return run


def single_env(market, steps: int, wrapped: bool, name: str | None = None) -> float:
    import gymnasium as gym

    env = gym.make("marketlab/Trading-v0", market=market, config=CFG) if wrapped else TradingEnv(CFG, market=market)
    return rate(random_steps(env, n_actions=3, steps=steps), steps, name=name)


def vector_env(market, steps: int, n_envs: int, kind: str) -> float:
    import gymnasium as gym

    fns = [lambda: gym.make("marketlab/Trading-v0", market=market, config=CFG) for _ in range(n_envs)]
    venv = gym.vector.SyncVectorEnv(fns) if kind == "sync" else gym.vector.AsyncVectorEnv(fns, context="fork")
    venv.reset(seed=0)
    rng = np.random.default_rng(0)

    def run(n: int) -> None:
        for _ in range(n // n_envs):
            venv.step(rng.integers(0, 3, n_envs))

    try:
        return rate(run, steps)
    finally:
        venv.close()


def batched(market, steps: int, num_envs: int, device: str, dtype: torch.dtype, engine: str = "auto", name: str | None = None,
            compile: bool = False, reward: str = "pnl-v1") -> float:
    env = BatchedTradingEnv({**CFG, "episode_length": 2000, "random_start": True, "reward": {"kind": reward}}, market=market,
                            num_envs=num_envs, device=device, dtype=dtype, engine=engine, compile=compile)
    env.reset(seed=0)
    gen = torch.Generator(device="cpu").manual_seed(0)
    acts = torch.randint(0, 3, (16, num_envs), generator=gen).to(env.device)

    def run(n: int) -> None:
        for i in range(max(1, n // num_envs)):
            env.step(acts[i % 16])
        if env.device.type == "cuda":
            torch.cuda.synchronize()

    run(num_envs * 4)  # warm-up (CUDA kernels, caches, compilation)
    return rate(run, steps, name=name)


def peers_path() -> None:
    p = os.environ.get("MARKETLAB_PEERS")
    if p and p not in sys.path:
        sys.path.insert(0, p)


def anytrading(market, steps: int) -> float | None:
    peers_path()
    try:
        import pandas as pd
        from gym_anytrading.envs import StocksEnv
    except ImportError:
        return None
    df = pd.DataFrame({"Open": market.open[:, 0], "High": market.high[:, 0], "Low": market.low[:, 0], "Close": market.close[:, 0], "Volume": market.volume[:, 0]})
    env = StocksEnv(df=df, window_size=32, frame_bound=(32, len(df)))
    return rate(random_steps(env, n_actions=2, steps=steps), steps, name="gym_anytrading_StocksEnv")


def finrl(market, steps: int) -> float | None:
    peers_path()
    path = None
    for base in sys.path:
        cand = Path(base) / "finrl" / "meta" / "env_stock_trading" / "env_stocktrading.py"
        if cand.is_file():
            path = cand
            break
    if path is None:
        return None
    import pandas as pd

    spec = importlib.util.spec_from_file_location("finrl_env_stocktrading", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # only this module: the finrl package __init__ pulls data vendors
    n = market.n_steps
    ret = np.concatenate([[0.0], np.diff(np.log(market.close[:, 0]))])
    df = pd.DataFrame({"date": np.arange(n), "tic": "S000", "close": market.close[:, 0], "ret": ret}, index=np.arange(n))
    env = mod.StockTradingEnv(
        df=df, stock_dim=1, hmax=100, initial_amount=10_000, num_stock_shares=[0], buy_cost_pct=[0.0002], sell_cost_pct=[0.0002],
        reward_scaling=1e-4, state_space=4, action_space=1, tech_indicator_list=["ret"], print_verbosity=10**9,
    )
    acts = np.random.default_rng(0).uniform(-1, 1, (steps, 1))
    env.reset(seed=0)

    def run(k: int) -> None:
        for i in range(k):
            _, _, term, trunc, _ = env.step(acts[i])
            if term or trunc:
                env.reset()

    return rate(run, steps, repeats=1, name="finrl_StockTradingEnv")


def ppo_train_rate(market, vec_kind: str, n_envs: int, timesteps: int) -> dict[str, float]:
    """SB3 PPO training throughput (timesteps/s of ``model.learn``, rollouts and updates together) on
    Trading-v0 with ``n_envs`` episodes in a ``batched`` / ``dummy`` / ``subproc`` VecEnv
    (:func:`marketlab.agents.sb3.make_train_env`, what ``marketlab rl train`` builds); the model is built and
    warmed up by one short ``learn`` before the timed one, so set-up and numba compilation are not counted."""
    import dataclasses

    from marketlab.agents.sb3 import AgentSpec, _make_model, make_train_env

    spec = AgentSpec.from_dict({
        "name": "bench", "algo": "ppo", "seed": 0, "device": "cpu", "net_arch": [64, 64],
        "hyper": {"n_steps": 256, "batch_size": 256, "n_epochs": 4}, "vec": {"n_envs": n_envs, "kind": vec_kind},
        "env": {**CFG, "period": "all", "episode_length": 2000, "random_start": True},
    })
    venv, kind = make_train_env(spec, dataclasses.replace(spec.env), market)
    assert kind == vec_kind, (kind, vec_kind)
    model = _make_model(spec, venv)
    model.learn(total_timesteps=256 * n_envs)  # warm-up: numba kernels, torch
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    venv.close()
    return {"steps_per_s": timesteps / wall, "steps_per_cpu_s_main_process": timesteps / cpu}


def ppo_main(quick: bool) -> None:
    """The PPO training section: batched vs DummyVecEnv vs SubprocVecEnv (SB3's default start method)."""
    run = Run("envs")
    market = synthetic_market(20_000, 1, seed=0)
    n_envs = 8
    timesteps = 256 * n_envs * (2 if quick else 8)
    res = {kind: ppo_train_rate(market, kind, n_envs, timesteps) for kind in ("batched", "dummy", "subproc")}
    for kind, r in res.items():
        print(f"ppo_{kind}_{n_envs}: {r['steps_per_s']:>10,.0f} timesteps/s ({r['steps_per_cpu_s_main_process']:,.0f} per CPU s of the main process)")
    ratios = {"batched_vs_dummy": res["batched"]["steps_per_s"] / res["dummy"]["steps_per_s"],
              "batched_vs_subproc": res["batched"]["steps_per_s"] / res["subproc"]["steps_per_s"]}
    print(ratios)
    out = {
        "section": "ppo_training",
        "ppo_train_timesteps_per_s": res,
        "ratios": ratios,
        "setup": f"SB3 PPO (MlpPolicy [64, 64], n_steps 256 x {n_envs} envs, batch 256, 4 epochs, one torch thread) on "
        f"Trading-v0 (1 asset, 32x4 window, costs, episodes of 2000 bars), {timesteps} timesteps after a warm-up rollout; "
        "subproc = SubprocVecEnv with SB3's default start method (forkserver)",
        "note": "rates include PPO's gradient updates, which are the same work for every vector env; the subproc rate "
        "counts wall time only (its workers' CPU is in other processes)",
    }
    print(f"appended to {run.save(out)}")


REWARDS = ("pnl-v1", "diff-sharpe-v1")
REWARDS_B = 32768


def rewards_worker(steps: int) -> None:
    """One process's share of :func:`rewards_main`: prints {reward: best ns per env-step of CPU time} as JSON."""
    market = synthetic_market(20_000, 1, seed=0)
    out = {}
    for reward in REWARDS:
        batched(market, steps, REWARDS_B, "cpu", torch.float64, "numba", name=reward, reward=reward)
        out[reward] = 1e9 / CPU_RATES[reward]
    print(json.dumps(out))


def rewards_main(baselines: list[str], rounds: int, quick: bool) -> None:
    """The batched numba env at B=32768 per reward, this checkout against ``LABEL=DIR`` baselines: each round
    runs one fresh process per checkout (in alternating order), each times every reward best of 3 by process
    CPU time; the result per checkout and reward is the best over rounds, with every round's value kept."""
    run = Run("envs")
    trees = {"this": ROOT}
    for spec in baselines:
        label, _, path = spec.partition("=")
        trees[label] = Path(path).resolve()
    steps = int(REWARDS_B * (20 if quick else 120))
    per_round: dict[str, dict[str, list[float]]] = {label: {r: [] for r in REWARDS} for label in trees}
    loads = [os.getloadavg()[0]]
    for i in range(rounds):
        order = list(trees) if i % 2 == 0 else list(reversed(trees))
        for label in order:
            tree = trees[label]
            env = dict(os.environ, MARKETLAB_BENCH_TREE=str(tree), PYTHONPATH=str(tree),
                       NUMBA_CACHE_DIR=str(tree / ".cache" / "numba"))
            cmd = [sys.executable, __file__, "--rewards-worker", str(steps)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            for reward, ns in json.loads(done.stdout.strip().splitlines()[-1]).items():
                per_round[label][reward].append(ns)
            loads.append(os.getloadavg()[0])
            print(f"round {i}: {label:10s} " + "  ".join(f"{r} {v[-1]:6.1f} ns" for r, v in per_round[label].items()), flush=True)
    best = {label: {r: min(v) for r, v in d.items()} for label, d in per_round.items()}
    for label, d in best.items():
        print(f"best {label:10s} " + "  ".join(f"{r} {v:6.1f} ns per env-step (CPU)" for r, v in d.items()))
    out = {
        "section": "batched_rewards",
        "ns_per_env_step_cpu_best": best,
        "ns_per_env_step_cpu_rounds": per_round,
        "trees": {label: str(path) for label, path in trees.items()},
        "load_average_1min_between_processes": loads,
        "setup": f"batched Trading-v0, numba engine (float64), B={REWARDS_B}, 1 asset, 32x4 window, costs, episodes of 2000 "
        f"bars with random starts and auto-reset; {steps // REWARDS_B} steps per repeat, best of 3 repeats per process "
        f"(process CPU time), {rounds} rounds of one fresh process per checkout in alternating order",
    }
    print(f"appended to {run.save(out)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    ap.add_argument("--ppo", action="store_true", help="only the SB3 PPO training section (vector envs compared)")
    ap.add_argument("--rewards", action="store_true", help="only the batched numba env at B=32768 per reward (A/B with --baseline)")
    ap.add_argument("--baseline", action="append", default=[], metavar="LABEL=DIR", help="with --rewards: another checkout to time")
    ap.add_argument("--rounds", type=int, default=5, help="with --rewards: alternating rounds (one process per checkout each)")
    ap.add_argument("--rewards-worker", type=int, metavar="STEPS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.rewards_worker:
        rewards_worker(args.rewards_worker)
        return
    if args.rewards:
        rewards_main(args.baseline, args.rounds, args.quick)
        return
    if args.ppo:
        ppo_main(args.quick)
        return
    run = Run("envs")
    load_before = os.getloadavg()
    k = 0.1 if args.quick else 1.0
    market = synthetic_market(20_000, 1, seed=0)
    res: dict[str, float | None] = {}

    def put(name: str, fn, *a, **kw) -> None:
        res[name] = fn(*a, **kw, name=name)

    put("marketlab_single_raw", single_env, market, int(50_000 * k), wrapped=False)
    res["marketlab_single_gym_make"] = single_env(market, int(50_000 * k), wrapped=True)
    res["marketlab_sync_vector_8"] = vector_env(market, int(40_000 * k), 8, "sync")
    res["marketlab_async_vector_2"] = vector_env(market, int(10_000 * k), 2, "async")
    for b in (256, 1024, 4096, 32768):
        put(f"marketlab_batched_numba_cpu_f64_{b}", batched, market, int(max(4_000_000, 40 * b) * k), b, "cpu", torch.float64, "numba")
    put("marketlab_batched_torch_cpu_f64_4096", batched, market, int(2_000_000 * k), 4096, "cpu", torch.float64, "torch")
    put("marketlab_batched_torch_cpu_f32_4096", batched, market, int(2_000_000 * k), 4096, "cpu", torch.float32, "torch")
    put("marketlab_batched_torch_cpu_f32_32768", batched, market, int(4_000_000 * k), 32768, "cpu", torch.float32, "torch")
    put("marketlab_single_raw_again", single_env, market, int(50_000 * k), wrapped=False)  # drift check of the load
    if torch.cuda.is_available():
        for b in (65_536, 1_048_576):
            for dt, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
                res[f"marketlab_batched_torch_cuda_{tag}_{b}"] = batched(market, b * 50, b, "cuda", dt, "torch")
            res[f"marketlab_batched_torch_cuda_f32_{b}_compiled"] = batched(market, b * 50, b, "cuda", torch.float32, "torch", compile=True)
    res["gym_anytrading_StocksEnv"] = anytrading(market, int(50_000 * k))
    res["finrl_StockTradingEnv"] = finrl(market, int(3_000 * k))
    load_after = os.getloadavg()
    single = max(res["marketlab_single_raw"], res["marketlab_single_raw_again"])
    single_cpu = max(CPU_RATES["marketlab_single_raw"], CPU_RATES["marketlab_single_raw_again"])
    numba_keys = [key for key in res if key.startswith("marketlab_batched_numba")]
    best_numba = max(numba_keys, key=lambda key: res[key])
    best_numba_cpu = max(numba_keys, key=lambda key: CPU_RATES[key])
    ratios = {
        "single_vs_anytrading": single / res["gym_anytrading_StocksEnv"] if res["gym_anytrading_StocksEnv"] else None,
        "single_vs_finrl": single / res["finrl_StockTradingEnv"] if res["finrl_StockTradingEnv"] else None,
        "single_vs_anytrading_per_cpu_second": single_cpu / CPU_RATES["gym_anytrading_StocksEnv"] if res["gym_anytrading_StocksEnv"] else None,
        "single_vs_finrl_per_cpu_second": single_cpu / CPU_RATES["finrl_StockTradingEnv"] if res["finrl_StockTradingEnv"] else None,
        "batched_cpu_best_vs_single": res[best_numba] / single,
        "batched_cpu_best_vs_single_per_cpu_second": CPU_RATES[best_numba_cpu] / single_cpu,
        "batched_cpu_numba_4096_vs_single": res["marketlab_batched_numba_cpu_f64_4096"] / single,
        "batched_cpu_torch_f64_vs_single": res["marketlab_batched_torch_cpu_f64_4096"] / single,
        "batched_cpu_torch_f32_vs_single": max(res["marketlab_batched_torch_cpu_f32_4096"], res["marketlab_batched_torch_cpu_f32_32768"]) / single,
    }
    for name, v in res.items():
        cpu = f"{CPU_RATES[name]:>14,.0f} per CPU s" if name in CPU_RATES else ""
        print(f"{name:45s} {v:>14,.0f} steps/s {cpu}" if v else f"{name:45s} {'not installed':>14s}")
    for name, v in ratios.items():
        print(f"{name:45s} {v:>14.2f}x" if v else f"{name:45s} {'n/a':>14s}")
    out = {
        "steps_per_s": res,
        "steps_per_cpu_s": CPU_RATES,
        "ratios": ratios,
        "best_batched_cpu": {"wall": best_numba, "cpu": best_numba_cpu},
        "setup": "1 asset, random actions, Trading-v0 with commission+spread+slippage and a 32x4 feature window (129 floats); "
        "batched: episode_length 2000 with random starts and auto-reset, numba engine (float64) and torch engine; "
        "single = the better of two runs (before and after the batched runs); "
        "anytrading StocksEnv window 32, FinRL StockTradingEnv 1 stock + 1 indicator",
        "torch_threads": torch.get_num_threads(),
        "note": f"shared 2-core machine with other engineers' jobs running (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after): absolute numbers are noisy; ratios are from the same process; "
        "steps_per_cpu_s counts only the CPU time this process got",
    }
    print(f"appended to {run.save(out)}")


if __name__ == "__main__":
    main()
