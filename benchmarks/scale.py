"""Benchmark: the same work sequentially, on a local process pool and on a local Ray cluster (issue 18).

Three jobs, each run side by side on the three backends of :mod:`marketlab.sweep` in one process:

* ``backtest``: a grid of backtest variants of a real spec (``specs/backtests/ma_cross_btc.toml``: SMA cross on
  Binance BTCUSDT 1-minute bars, ingested once into a benchmark store before any timing);
* ``abm``: a fleet of simulated ABM days (``specs/simulators/abm_default.toml``, session shortened with
  ``--day-seconds``), each task writing its day to the store;
* ``probe`` / ``probe2x``: ``--probe-tasks`` and twice as many tasks of exactly ``--probe-seconds`` of busy CPU.
  ``overhead_per_task_s`` = ``(workers * wall - tasks * probe_seconds) / tasks`` (start-up included) and the
  steady-state ``marginal_overhead_per_task_s`` = ``(workers * (wall_2x - wall) - tasks * probe_seconds) /
  tasks`` (start-up cancels), both also as a fraction of the task.

Speedup = sequential wall / backend wall. The sequential run is warm (the data step and a warm-up backtest ran
in this process first). Pool walls include starting the pool's worker processes and their imports (a fresh
pool per sweep: that is what a user waits for); ``ray`` walls exclude ``ray.init`` (reported as ``ray_init_s``)
but include the Ray workers' first imports; ``ray_warm`` is the same job again on the same cluster (Ray keeps
its workers, so their imports are paid once): the steady state of a long sweep. ``local_warm`` is the same for
the pool: the job again on the pool the ``local`` run kept (``keep_pool=True``), its workers already warm. ``startup_s_est`` = wall -
(sum of the tasks' own wall times) / workers: what the backend added beyond the tasks. Every backend's results table must equal the sequential one
(asserted). On a shared machine the load average matters as much as the core count: it is recorded.

Run: ``nice -n 10 .venv/bin/python benchmarks/scale.py [--variants 16 --days 8 --day-seconds 3600]
[--backends sequential,local,ray]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from runlog import Run  # noqa: E402

WORKERS = 2


def _grid(n: int) -> list[str]:
    """``n`` = a * b variants: fast SMA x slow SMA, both real choices for 1-minute bars."""
    fast = [10, 20, 30, 40, 50, 60, 80, 100][: max(1, int(n**0.5))]
    slow = [120, 180, 240, 300, 360, 480, 600, 720][: max(1, n // len(fast))]
    return [f"signal.fast={','.join(map(str, fast))}", f"signal.slow={','.join(map(str, slow))}"]


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def _compare(tables: dict, cols: list[str]) -> bool:
    ref = tables["sequential"].select(cols)
    return all(t.select(cols).equals(ref) for t in tables.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", type=int, default=16)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--day-seconds", type=float, default=3600.0, help="simulated session length of each ABM day")
    ap.add_argument("--probe-tasks", type=int, default=8)
    ap.add_argument("--probe-seconds", type=float, default=1.0)
    ap.add_argument("--backends", default="sequential,local,ray",
                    help="comma list: sequential, local (also times local_warm: a kept pool reused), ray (also ray_warm)")
    args = ap.parse_args()
    wanted = args.backends.split(",")
    run = Run("scale")

    import ray

    from marketlab import sweep
    from marketlab.backtests import Backtest
    from marketlab.store import Store
    from marketlab.sweep.backends import shutdown_pool
    from marketlab.sweep.fleet import simulate_fleet

    tmp = Path(tempfile.mkdtemp(prefix="scale_"))
    bt_spec = ROOT / "specs" / "backtests" / "ma_cross_btc.toml"
    store = tmp / "store"
    # the data step once, untimed (ingest of the Binance CSV into the benchmark store), and a warm-up
    Backtest.from_spec(bt_spec, store=Store(store)).run(report=False)
    abm_spec = tmp / "abm.toml"
    abm_spec.write_text((ROOT / "specs" / "simulators" / "abm_default.toml").read_text().replace(
        "duration_s = 23400.0", f"duration_s = {args.day_seconds}"))
    probe_spec = tmp / "probe.toml"
    probe_spec.write_text(f"[probe]\nseconds = {args.probe_seconds}\nseed = 0\n")
    grid = _grid(args.variants)
    seeds = list(range(args.days))
    probe_grid = {"probe.x": [float(i) for i in range(args.probe_tasks)]}
    probe_grid2 = {"probe.x": [float(i) for i in range(2 * args.probe_tasks)]}

    # local: a fresh pool per job (kept, keep_pool=True); local_warm: the same job again on that kept pool's
    # warm workers (their imports and numba caches loaded), like ray_warm on Ray's kept workers
    jobs = {
        "backtest": lambda backend, name, keep: sweep.run(bt_spec, grid, backend=backend, max_concurrency=WORKERS,
                                                          store=store, name=name, keep_pool=keep),
        "abm": lambda backend, name, keep: simulate_fleet(abm_spec, seeds, backend=backend, max_concurrency=WORKERS,
                                                          store=tmp / f"abm_{name}", name=name, keep_pool=keep),
        "probe": lambda backend, name, keep: sweep.run(probe_spec, probe_grid, backend=backend, max_concurrency=WORKERS,
                                                       store=tmp / "probe", name=name, keep_pool=keep),
        "probe2x": lambda backend, name, keep: sweep.run(probe_spec, probe_grid2, backend=backend,
                                                         max_concurrency=WORKERS, store=tmp / "probe", name=name,
                                                         keep_pool=keep),
    }
    results: dict = {}
    ray_init_s = None
    order = [b for b in ("sequential", "local", "ray", "ray_warm") if b.removesuffix("_warm") in wanted]
    for backend in order:
        if backend == "ray":
            t = time.perf_counter()
            ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            ray_init_s = time.perf_counter() - t
        for job, fn in jobs.items():
            runs = [backend, "local_warm"] if backend == "local" else [backend]
            if backend == "local":
                shutdown_pool()  # the local row starts cold: a fresh pool for this job
            for b in runs:
                _one(results, job, fn, b)
    shutdown_pool()
    if ray.is_initialized():
        ray.shutdown()
    _summarise(results, args, ray_init_s, grid, run, tmp)


def _one(results: dict, job: str, fn, backend: str) -> None:
    load = os.getloadavg()[0]
    res, wall = _timed(fn, backend.removesuffix("_warm"), f"{job}-{backend}", backend.startswith("local"))
    assert res.failed == 0, res.table.filter(res.table["status"] != "ok")["error"].to_list()
    results.setdefault(job, {})[backend] = {"wall_s": round(wall, 3), "tasks": res.table.height,
                                            "task_wall_s_mean": round(float(res.table["wall_s"].mean()), 3),
                                            "load_1min_at_start": round(load, 2), "table": res.table}
    print(f"{job:8s} {backend:10s} wall {wall:7.2f} s  tasks {res.table.height}  load {load:.1f}", flush=True)


def _summarise(results: dict, args, ray_init_s, grid, run, tmp) -> None:

    out: dict = {"workers": WORKERS, "ray_init_s": round(ray_init_s or 0.0, 2), "grid": grid, "abm_days": args.days,
                 "abm_day_seconds": args.day_seconds, "probe_seconds": args.probe_seconds, "jobs": {}}
    same_cols = {"backtest": ["variant", "sharpe", "total_return", "final_value"],
                 "abm": ["variant", "seed", "n_events", "spread_mean_bps", "ret_std_bps"], "probe": ["variant", "value"],
                 "probe2x": ["variant", "value"]}
    for job, per in results.items():
        seq = per["sequential"]["wall_s"]
        entry = {"same_results_all_backends": _compare({b: r["table"] for b, r in per.items()}, same_cols[job])}
        for b, r in per.items():
            n = r["tasks"]
            workers = 1 if b == "sequential" else WORKERS
            row = {k: v for k, v in r.items() if k != "table"}
            row["speedup_vs_sequential"] = round(seq / r["wall_s"], 2)
            row["startup_s_est"] = round(r["wall_s"] - float(r["table"]["wall_s"].sum()) / workers, 2)
            if job.startswith("probe"):
                over = (workers * r["wall_s"] - n * args.probe_seconds) / n
                row["overhead_per_task_s"] = round(over, 3)
                row["overhead_fraction_of_task"] = round(over / args.probe_seconds, 3)
            if job == "probe2x":
                n1 = per[b]["tasks"] // 2
                marginal = (workers * (r["wall_s"] - results["probe"][b]["wall_s"]) - n1 * args.probe_seconds) / n1
                row["marginal_overhead_per_task_s"] = round(marginal, 3)
                row["marginal_overhead_fraction_of_task"] = round(marginal / args.probe_seconds, 3)
            entry[b] = row
        out["jobs"][job] = entry
    out["note"] = ("2 cores shared with other sessions: the load average (recorded per job) is far above 2 while "
                   "this ran, so speedups are bounded by the CPU share this process got, not by the backends.")
    path = run.save(out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(path)


if __name__ == "__main__":
    main()
