"""Where the variants run: ``sequential`` (this process), ``local`` (a process pool on this machine's
cores) or ``ray`` (a Ray cluster: a local one started for the sweep, or ``address`` = ``auto`` /
``host:port`` / ``ray://host:10001``). All three run :func:`marketlab.sweep.tasks.run_task` on the same
task dicts, so they give the same answers; they differ in where and in how a dead worker is retried:

* ``local``: a worker process that dies breaks the pool; the unfinished variants are resubmitted to a
  fresh pool, each at most ``retries`` more times, then recorded as failed;
* ``ray``: Ray's own task retries (``max_retries``) re-run a variant whose worker died; when they run
  out, the variant is recorded as failed with Ray's error.

No scheduler is written here: Ray (or ``concurrent.futures``) schedules; this module only caps the
number of variants in flight (``max_concurrency``) and collects records as they finish.

On Ray, an input that a runner shares across variants (``Runner.shared_key``: the mining panel) is loaded
once by the driver and ``ray.put`` into the object store; each task gets its ObjectRef as a top-level
argument, which Ray resolves on the worker from its node's object store (one transfer per node, no read
of the store per task). :func:`run_tune` runs training-type variants as Ray Tune trials under ASHA.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import socket
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from marketlab.core.errors import MarketlabError
from marketlab.core.files import atomic_write
from marketlab.sweep.tasks import failed_record, run_task

BACKENDS = ("sequential", "local", "ray")
OnRecord = Callable[[dict[str, Any]], None]


class ClusterError(MarketlabError):
    """The Ray cluster cannot be reached or Ray is not installed."""


def execute(tasks: list[dict[str, Any]], on_record: OnRecord, *, backend: str = "local",
            max_concurrency: int | None = None, retries: int = 2, address: str | None = None,
            keep_pool: bool = False) -> None:
    """Run every task on ``backend``; ``on_record`` gets each variant's record as it finishes. ``keep_pool``
    (local backend): keep the process pool's workers alive after the sweep and reuse them in the next
    ``keep_pool`` sweep of this process with the same number of workers (warm workers: their imports and
    numba caches are already loaded); :func:`shutdown_pool` ends them (also at exit)."""
    check(backend, max_concurrency, address)
    if backend == "ray":
        _run_ray(tasks, on_record, max_concurrency, retries, address)
    elif not tasks:
        return
    elif backend == "sequential":
        for t in tasks:
            on_record(run_task(t))
    else:
        _run_pool(tasks, on_record, max_concurrency or os.cpu_count() or 1, retries, keep_pool)


def check(backend: str, max_concurrency: int | None, address: str | None) -> None:
    """Refuse a bad backend, concurrency or address (one line) before anything runs; an explicit cluster
    address must answer a TCP connection."""
    if backend not in BACKENDS:
        raise MarketlabError(f"--backend: unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    if max_concurrency is not None and max_concurrency < 1:
        raise MarketlabError(f"--max-concurrency: must be >= 1, got {max_concurrency}")
    if address is not None and backend != "ray":
        raise MarketlabError(f"--address {address}: only the ray backend takes a cluster address")
    if address is not None and address != "auto":
        _check_reachable(address)


# ---------------------------------------------------------------------------------------------- local pool
def _pool_context() -> Any:
    # forkserver: workers fork from a clean server process (not from this one, which may hold threads
    # and a Ray or torch runtime); spawn where forkserver does not exist. The server preloads nothing of
    # marketlab: preloading marketlab.store + marketlab.backtests there (to pay the workers' imports once) was
    # tried, and the workers forked from it failed with ForkUnsafeError (Polars' thread pool had started in
    # the server), so each worker imports its own.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


_KEPT: dict[int, ProcessPoolExecutor] = {}  # workers -> the pool kept alive between keep_pool sweeps


def shutdown_pool() -> None:
    """End the workers of a pool kept by ``keep_pool`` sweeps (registered to run at exit too)."""
    while _KEPT:
        _, pool = _KEPT.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pool)


def _open_pool(workers: int, n_tasks: int, keep: bool) -> ProcessPoolExecutor:
    if not keep:
        return ProcessPoolExecutor(max_workers=min(workers, n_tasks), mp_context=_pool_context())
    if workers not in _KEPT:
        shutdown_pool()  # one kept pool at a time: another size replaces it
        _KEPT[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())
    return _KEPT[workers]


def _run_pool(tasks: list[dict[str, Any]], on_record: OnRecord, workers: int, retries: int, keep: bool = False) -> None:
    pending = list(tasks)
    crashes: Counter[str] = Counter()
    while pending:
        pool = _open_pool(workers, len(pending), keep)
        broken = False
        try:
            futures: dict[Future[dict[str, Any]], dict[str, Any]] = {pool.submit(run_task, t): t for t in pending}
            pending = []
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = futures.pop(fut)
                    try:
                        on_record(fut.result())
                    except BrokenProcessPool:
                        # which worker died is unknown: every unfinished variant counts one crash
                        broken = True
                        crashes[task["variant"]] += 1
                        if crashes[task["variant"]] > retries:
                            on_record(failed_record(task, f"worker process died ({crashes[task['variant']]} attempts)"))
                        else:
                            pending.append(task)
        except BaseException:
            broken = True
            raise
        finally:
            if not keep or broken:  # a broken (or interrupted) kept pool is not reused
                _KEPT.pop(workers, None)
                pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- Ray
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("backend 'ray' needs Ray: pip install 'marketlab[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to ``host:port`` (``ray://`` stripped) within ``timeout`` s, else ClusterError."""
    hostport = address.removeprefix("ray://").rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"--address {address}: expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"ray cluster at {address} does not answer ({exc.strerror or type(exc).__name__})") from None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; returns True when this call started it (the caller shuts it down).

    ``address`` None starts a local cluster of ``num_cpus`` workers (all cores when None); ``auto`` joins
    the cluster started on this machine by ``ray start --head``; ``host:port`` / ``ray://host:10001``
    joins a remote one (checked with one TCP connection first, so a wrong address fails in seconds)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        return True
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"ray cluster at {address} does not answer ({first[:200]})") from None
    return True


def _run_ray(tasks: list[dict[str, Any]], on_record: OnRecord, max_concurrency: int | None, retries: int,
             address: str | None) -> None:
    ray = _import_ray()
    started = connect(address, max_concurrency)
    try:
        if not tasks:
            return
        remote = ray.remote(run_task).options(max_retries=retries, retry_exceptions=False, num_cpus=1)
        cap = max_concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
        shared = {key: ray.put(value) for key, value in load_shared(tasks).items()}
        queue = list(tasks)
        inflight: dict[Any, dict[str, Any]] = {}
        while queue or inflight:
            while queue and len(inflight) < cap:
                task = queue.pop(0)
                key = task.get("shared_key")
                inflight[remote.remote(task, shared[key] if key is not None else None)] = task
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                task = inflight.pop(ref)
                try:
                    on_record(ray.get(ref))
                except ray.exceptions.RayError as exc:  # retries exhausted (worker or node died)
                    first = " ".join(str(exc).split())[:300]
                    on_record(failed_record(task, f"{type(exc).__name__}: {first}"))
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------- shared inputs
def load_shared(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Each distinct shared input of ``tasks`` loaded once in this process: ``{key: value}``; every task
    that shares one gets its ``shared_key`` set (tasks whose runner shares nothing are left alone)."""
    from pathlib import Path

    from marketlab.core.registry import resolve
    from marketlab.sweep.runners import RunContext

    out: dict[str, Any] = {}
    for task in tasks:
        runner = resolve(task["kind"], kind="runner")
        spec = runner.load(task["raw"], task["spec_path"])
        ctx = RunContext(Path(task["spec_path"]), Path(task["run_dir"]), task.get("store"), dict(task.get("options") or {}))
        key = runner.shared_key(spec, ctx)
        if key is None:
            continue
        task["shared_key"] = key
        if key not in out:
            out[key] = runner.load_shared(spec, ctx)
    return out


# ---------------------------------------------------------------------------------------------- Ray Tune
SCHEDULERS = ("asha",)


def _trial(config: dict[str, Any], shared: dict[str, Any] | None = None) -> None:
    """One Tune trial: run the variant, reporting each training iteration through ``tune.report``; the
    variant's record is written to ``<run_dir>/trial.json`` when it ends (a trial that ASHA stops never
    gets there: its record is made by the driver from the last report)."""
    import json
    from pathlib import Path

    from ray import tune

    task = config["task"]
    record_path = Path(task["run_dir"]) / TRIAL_RECORD
    record_path.unlink(missing_ok=True)  # a record left by an earlier run of this variant is not this trial's
    last: dict[str, float] = {}
    n = [0]

    def report(metrics: dict[str, float]) -> None:
        n[0] += 1
        last.update({k: float(v) for k, v in metrics.items()})
        tune.report({**last, "iterations": float(n[0])})

    key = task.get("shared_key")
    rec = run_task(task, shared=(shared or {}).get(key) if key is not None else None, on_iteration=report)
    rec["metrics"] = {**last, **rec["metrics"], "iterations": float(n[0])}
    text = json.dumps(rec, default=str, allow_nan=True)
    atomic_write(record_path, lambda p: Path(p).write_text(text))


TRIAL_RECORD = "trial.json"


def run_tune(tasks: list[dict[str, Any]], on_record: OnRecord, *, metric: str, mode: str, storage: str, name: str,
             max_concurrency: int | None = None, address: str | None = None, retries: int = 2,
             grace_period: int = 1, reduction_factor: int = 2, max_t: int = 10_000) -> None:
    """Run the variants as Ray Tune trials under ASHA on ``metric`` (``mode`` max|min), each trial's
    metric reported per training iteration by its runner; ``on_record`` gets one record per trial:
    ``ok`` (ran to the end), ``failed`` (the runner raised: its error), ``stopped`` (ASHA stopped it: its
    metrics are the last reported, with ``iterations``) or ``failed`` with Tune's error (the trial's worker
    died ``retries`` + 1 times). Tune's own files go to ``storage``/``name``."""
    import contextlib
    import json
    import sys
    from pathlib import Path

    ray = _import_ray()
    started = connect(address, max_concurrency)
    try:
        if not tasks:
            return
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        shared = load_shared(tasks)
        trainable = tune.with_parameters(_trial, shared=shared) if shared else _trial
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
                                  grace_period=grace_period, reduction_factor=reduction_factor)
        cap = max_concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"task": tune.grid_search(tasks)},
            tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=cap),
            run_config=tune.RunConfig(storage_path=storage, name=name, verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=retries)),
        )
        with contextlib.redirect_stdout(sys.stderr):  # Tune's progress lines never mix into --json output
            results = tuner.fit()
        for i in range(len(results)):
            res = results[i]
            task = (res.config or {})["task"]
            m = dict(res.metrics or {})
            done = Path(task["run_dir"]) / TRIAL_RECORD
            if done.exists():
                on_record(json.loads(done.read_text()))
                continue
            rec = failed_record(task, "")
            rec["seed"] = _seed(task)
            if res.error is not None:
                rec["error"] = " ".join(f"{type(res.error).__name__}: {res.error}".split())[:500]
            else:
                rec.update(status="stopped", error=None, wall_s=m.get("time_total_s"),
                           metrics={k: float(v) for k, v in m.items() if k in _reported(m)})
            on_record(rec)
    finally:
        if started:
            ray.shutdown()


def _seed(task: dict[str, Any]) -> int | None:
    """The variant's master seed (a stopped trial's record is made here, not by its worker)."""
    from marketlab.core.registry import resolve

    runner = resolve(task["kind"], kind="runner")
    seed: int | None = runner.seed(runner.load(task["raw"], task["spec_path"]))
    return seed


def _reported(m: dict[str, Any]) -> list[str]:
    """Keys of a Tune result that the trial reported itself (Tune adds time, ids, host ...)."""
    tune_keys = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date", "time_this_iter_s",
                 "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore",
                 "experiment_tag", "should_checkpoint"}
    return [k for k, v in m.items() if k not in tune_keys and not k.startswith("_") and isinstance(v, (int, float))
            and not isinstance(v, bool)]
