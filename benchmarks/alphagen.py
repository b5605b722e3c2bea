"""AlphaGen mining speed: PPO steps/s end to end and per stage (policy, expression evaluation, pool update).

Mines the S&P 500 spec (``specs/agents/alphagen_sp500.toml``: pool 10, PPO settings of the spec) for ``--steps``
token steps, once with one token env (the reference's loop: one policy call per token) and once with
``--n-envs`` envs stepped in lockstep (one batched policy call per step), in the same process. Each stage's
time is process CPU time (what a busy shared machine does not inflate), and wall time is reported beside it.
The stages: ``policy`` (rollout forward passes, action masks, buffer), ``ppo_update`` (the gradient epochs),
``expr_eval`` (formula values on the training rows), ``pool_update`` (normalise, correlate, refit weights).

    python benchmarks/alphagen.py [--steps 16384] [--n-envs 8] [--store /tmp/alphagen_store]

Appends a run (hardware, load) to ``benchmarks/results/alphagen.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runlog import Run

ROOT = Path(__file__).resolve().parents[1]


def _timed(owner: Any, name: str, acc: dict[str, float], key: str) -> Callable[[], None]:
    """Wrap ``owner.name`` so its process CPU time adds to ``acc[key]``; returns the undo."""
    f = getattr(owner, name)

    def g(*a: Any, **k: Any) -> Any:
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            acc[key] += time.process_time() - t

    setattr(owner, name, g)
    return lambda: setattr(owner, name, f)


def mine_once(md: Any, miner: Any) -> dict[str, Any]:
    """One mining run with stage timers; returns steps/s (wall and CPU) and CPU seconds per stage."""
    import sb3_contrib.ppo_mask.ppo_mask as ppo_mask

    from marketlab.agents.alphagen import mine as mine_mod
    from marketlab.agents.alphagen.pool import AlphaPool

    acc: dict[str, float] = defaultdict(float)
    undo = [_timed(ppo_mask.MaskablePPO, "collect_rollouts", acc, "rollouts"),
            _timed(ppo_mask.MaskablePPO, "train", acc, "ppo_update"),
            _timed(mine_mod.MiningData, "train_values", acc, "expr_eval"),
            _timed(AlphaPool, "try_add", acc, "pool_update")]  # fmt: skip
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        pool = mine_mod.run_alphagen(md, miner, Path(tempfile.mkdtemp()), progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        for u in undo:
            u()
    stages = {"policy": acc["rollouts"] - acc["expr_eval"] - acc["pool_update"], "ppo_update": acc["ppo_update"],
              "expr_eval": acc["expr_eval"], "pool_update": acc["pool_update"]}
    steps = miner.steps
    return {
        "n_envs": miner.n_envs, "n_steps_per_env": miner.n_steps, "steps": steps,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "steps_per_wall_s": round(steps / wall, 1), "steps_per_cpu_s": round(steps / cpu, 1),
        "stage_cpu_s": {k: round(v, 2) for k, v in stages.items()},
        "stage_steps_per_cpu_s": {k: round(steps / v, 1) if v > 0 else None for k, v in stages.items()},
        "formulas_tried": pool.n_tried, "pool_size": pool.size, "pool_train_ic": round(pool.objective, 4),
        "projected_200k_wall_min_at_this_cpu_rate": round(200_000 / (steps / cpu) / 60, 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16384)
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "marketlab_alphagen_bench_store"))
    args = ap.parse_args()
    run = Run("alphagen")

    from marketlab.agents.alphagen.mine import MineSpec, MiningData
    from marketlab.core.device import set_torch_threads
    from marketlab.store import Store

    set_torch_threads()
    spec = MineSpec.from_toml(ROOT / "specs" / "agents" / "alphagen_sp500.toml")
    store = Store(args.store)
    if spec.data.dataset not in store.datasets()["dataset"].to_list():
        store.ingest(spec.data.format, [spec.data.source], dataset=spec.data.dataset)
    md = MiningData(spec, store=store)
    # warm-up: numba compiles (cached on disk) and torch's lazy imports happen outside the timed runs
    mine_once(md, dataclasses.replace(spec.miner, steps=2 * spec.miner.n_steps))
    rows = []
    for n_envs in (1, args.n_envs):
        per_env = max(1, spec.miner.n_steps // n_envs)  # the same rollout size: n_envs x n_steps per env
        miner = dataclasses.replace(spec.miner, steps=args.steps, n_envs=n_envs, n_steps=per_env, seed=0)
        rows.append(mine_once(md, miner))
        print(rows[-1], flush=True)
    ratio = rows[1]["steps_per_cpu_s"] / rows[0]["steps_per_cpu_s"]
    print(f"lockstep x{args.n_envs} vs one env: {ratio:.2f}x steps per CPU-second")
    run.save({"spec": "specs/agents/alphagen_sp500.toml", "configs": rows, "lockstep_vs_one_env_cpu_ratio": round(ratio, 2)})


if __name__ == "__main__":
    main()
