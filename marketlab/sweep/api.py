"""``marketlab.sweep.run``: a grid of one spec's variants, run on a backend, into one results table."""

from __future__ import annotations

import hashlib
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.config import Identifier, load_toml
from marketlab.core.errors import SpecError
from marketlab.core.registry import ids, resolve
from marketlab.sweep.backends import SCHEDULERS, check, execute, run_tune
from marketlab.sweep.grid import Params, apply, check_keys, expand, parse_grid, sample, variant_id
from marketlab.sweep.results import SweepFolder, to_table


DONE = ("ok", "stopped")  # a restart skips these variants (a stopped trial was ASHA's decision, not a failure)


def check_scheduler(scheduler: str, metric: str | None, mode: str, backend: str, num_samples: int | None,
                    grace_period: int, max_t: int) -> None:
    """Refuse a bad ``--scheduler`` set-up (one line) before anything runs."""
    if scheduler not in SCHEDULERS:
        raise SpecError(None, "--scheduler", f"unknown scheduler {scheduler!r} (known: {', '.join(SCHEDULERS)})")
    if not metric:
        raise SpecError(None, "--metric", f"--scheduler {scheduler} needs --metric (the trial metric it decides on)")
    if mode not in ("max", "min"):
        raise SpecError(None, "--mode", f"must be max or min, got {mode!r}")
    if backend != "ray":
        raise SpecError(None, "--backend", f"--scheduler {scheduler} runs on Ray Tune: use --backend ray")
    if num_samples is not None and num_samples < 1:
        raise SpecError(None, "--num-samples", f"must be >= 1, got {num_samples}")
    if grace_period < 1 or max_t < grace_period:
        raise SpecError(None, "--grace-period", f"need 1 <= grace period ({grace_period}) <= max_t ({max_t})")


@dataclass
class SweepResult:
    """What a sweep did: ``table`` (one row per variant, see :func:`marketlab.sweep.results.to_table`),
    written to ``path``; ``ran`` variants run now, ``skipped`` already done, ``failed`` of all rows."""

    name: str
    kind: str
    path: Path
    table: pl.DataFrame
    ran: int
    skipped: int
    failed: int
    backend: str
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary plus every row (what ``--json`` prints)."""
        return {
            "name": self.name, "kind": self.kind, "table": str(self.path), "variants": self.table.height,
            "ran": self.ran, "skipped": self.skipped, "failed": self.failed, "backend": self.backend,
            "wall_s": round(self.wall_s, 3), "rows": self.table.to_dicts(),
        }


def runner_kinds() -> list[str]:
    """Names of the runnable spec kinds (``runner/<name>`` registry ids)."""
    return [i.split("/", 1)[1] for i in ids("runner")]


def infer_kind(raw: Mapping[str, Any], path: str | Path) -> str:
    """The runnable kind whose ``matches`` accepts the TOML table (first in name order)."""
    for name in runner_kinds():
        if resolve(name, kind="runner").matches(raw):
            return name
    raise SpecError(path, None, f"cannot tell which kind of spec this is; pass --kind ({', '.join(runner_kinds())})")


def plan(spec: str | Path, grid: Sequence[str] | Mapping[str, Sequence[Any]] | None = None, *,
         variants: Sequence[Params] | None = None, kind: str | None = None, random: int | None = None,
         random_seed: int = 0) -> tuple[str, dict[str, Any], list[Params]]:
    """(kind, raw TOML table, variants) with every variant validated like a spec file: an unknown key
    names the spec's known keys, a bad value names its key; nothing runs before all variants pass.
    ``random`` = N: random search, N variants of the grid drawn with ``random_seed``."""
    path = Path(spec)
    raw = load_toml(path)
    kind = kind or infer_kind(raw, path)
    runner = resolve(kind, kind="runner", path=path, key="--kind")
    if variants is None:
        if grid is None:
            raise SpecError(None, "--grid", "empty grid: give at least one key=v1,v2,...")
        variants = expand(parse_grid(grid))
        if random is not None:
            variants = sample(variants, random, random_seed)
    elif not variants:
        raise SpecError(None, "--grid", "no variants to run")
    keys = sorted({k for v in variants for k in v})
    check_keys(dict.fromkeys(keys), runner.spec_type(), path)
    for v in variants:
        runner.load(apply(raw, v), path)
    return kind, raw, [dict(v) for v in variants]


def run(
    spec: str | Path,
    grid: Sequence[str] | Mapping[str, Sequence[Any]] | None = None,
    *,
    variants: Sequence[Params] | None = None,
    backend: str = "local",
    max_concurrency: int | None = None,
    address: str | None = None,
    store: str | Path | None = None,
    name: str | None = None,
    kind: str | None = None,
    retries: int = 2,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
    random: int | None = None,
    random_seed: int = 0,
    scheduler: str | None = None,
    metric: str | None = None,
    mode: str = "max",
    num_samples: int | None = None,
    grace_period: int = 1,
    max_t: int = 10_000,
    keep_pool: bool = False,
) -> SweepResult:
    """Run every variant of ``grid`` (``["costs.commission=0,0.001", ...]`` or ``{key: [values]}``; or an
    explicit list ``variants`` of ``{key: value}``) of the spec file ``spec`` on ``backend``
    ("sequential", "local" process pool, "ray") and write the results table to
    ``<store>/sweeps/<name>/results.parquet`` (``store``: default ``$MARKETLAB_STORE`` or data/store;
    ``name``: default the spec's file stem). Variants already done by an earlier run with the same name
    are skipped. ``options`` go to the runner (e.g. ``{"write": True}`` for simulations, ``{"report":
    True}`` for backtests). A variant that raises or whose worker dies ``retries`` + 1 times is a
    ``failed`` row with its error; the others complete. ``random`` = N runs a random search: N variants of
    the grid drawn without replacement with ``random_seed`` (the same draw on a restart).

    ``scheduler="asha"`` (training-type kinds: rl, mine, probe; Ray only) runs the variants as Ray Tune
    trials that report ``metric`` each training iteration; ASHA (``mode`` max|min, ``grace_period``,
    ``max_t`` iterations, reduction factor 2) stops the weak ones early: their rows say ``stopped`` with
    the last reported metrics and ``iterations``. ``num_samples`` = N draws N variants of the grid (random
    search, like ``random``). ``keep_pool`` (local backend): reuse warm pool workers across the sweeps of this
    process (:func:`marketlab.sweep.backends.execute`)."""
    t0 = time.perf_counter()
    check(backend, max_concurrency, address)
    path = Path(spec)
    if scheduler is not None:
        check_scheduler(scheduler, metric, mode, backend, num_samples, grace_period, max_t)
        random = num_samples if num_samples is not None else random
    kind, raw, plan_variants = plan(path, grid, variants=variants, kind=kind, random=random, random_seed=random_seed)
    if scheduler is not None and not resolve(kind, kind="runner").iterative:
        iterative = ", ".join(k for k in runner_kinds() if resolve(k, kind="runner").iterative)
        raise SpecError(path, None, f"--scheduler {scheduler} needs a training-type spec ({iterative}); a {kind} "
                        "spec runs once and reports no iterations")
    name = name or path.stem
    problem = typing.get_args(Identifier)[1].check(name)
    if problem:
        raise SpecError(None, "--name", problem)
    from marketlab.store.catalog import default_store_path

    store_root = Path(store) if store is not None else default_store_path()
    folder = SweepFolder(store_root / "sweeps" / name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    opts = dict(options or {})
    param_keys = sorted({k for v in plan_variants for k in v})
    ids_ = [variant_id(kind, digest, v, opts) for v in plan_variants]
    records: dict[str, dict[str, Any]] = {}
    tasks = []
    for vid, params in zip(ids_, plan_variants, strict=True):
        if vid in records:
            continue  # the same variant twice in an explicit list: run once
        done = folder.load(vid)
        if done is not None and done.get("status") in DONE:
            records[vid] = done
            continue
        records[vid] = {}
        tasks.append({
            "kind": kind, "spec_path": str(path.resolve()), "raw": apply(raw, params), "params": params,
            "variant": vid, "run_dir": str((folder.runs / vid).resolve()),
            "store": str(store_root.resolve()) if (store is not None or opts.get("write")) else None,
            "options": opts,
        })
    skipped = len(records) - len(tasks)
    folder.write_meta({"spec": str(path.resolve()), "kind": kind, "variants": plan_variants, "backend": backend,
                       "options": opts})

    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="variant", desc=f"sweep {name}")

    def land(rec: dict[str, Any]) -> None:
        folder.save(rec)
        records[rec["variant"]] = rec
        if bar is not None:
            bar.update(1)

    try:
        if scheduler is not None:
            run_tune(tasks, land, metric=str(metric), mode=mode, storage=str(folder.root.resolve()), name="tune",
                     max_concurrency=max_concurrency, address=address, retries=retries, grace_period=grace_period,
                     max_t=max_t)
        else:
            execute(tasks, land, backend=backend, max_concurrency=max_concurrency, retries=retries, address=address,
                    keep_pool=keep_pool)
    finally:
        if bar is not None:
            bar.close()
    unique = list(dict.fromkeys(ids_))
    table = to_table([records[v] for v in unique if records[v]], param_keys)
    folder.write_table(table)
    failed = int((table["status"] == "failed").sum()) if table.height else 0
    return SweepResult(name, kind, folder.table_path, table, len(tasks), skipped, failed, backend,
                       time.perf_counter() - t0)
