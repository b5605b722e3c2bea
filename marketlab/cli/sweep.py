"""``marketlab sweep <spec.toml> --grid key=v1,v2 ...``: the same as ``marketlab.sweep.run(spec, grid, ...)``;
and the fleet half of ``marketlab simulate <spec> --seeds 0..7`` (:func:`run_fleet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

BackendOpt = Annotated[str, typer.Option("--backend", help="sequential | local (process pool) | ray.")]
AddressOpt = Annotated[
    str | None, typer.Option("--address", help="Ray cluster: auto, host:port or ray://host:10001 (default: start a local one).")
]
ConcurrencyOpt = Annotated[int | None, typer.Option("--max-concurrency", help="Variants in flight at once (default: all cores).")]
MAX_METRIC_COLUMNS = 6


@command
def sweep(
    spec: Annotated[Path, typer.Argument(help="Spec to sweep (backtest, simulate, probe ...), e.g. specs/backtests/momentum_synth.toml.")],
    grid: Annotated[list[str], typer.Option("--grid", help="key=v1,v2,... (repeatable; the variants are the product).")],
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Runnable spec kind (default: inferred from the spec).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Sweep name: results in <store>/sweeps/<name>/ (default: the spec's stem).")] = None,
    retries: Annotated[int, typer.Option("--retries", help="Re-runs of a variant whose worker died.", min=0)] = 2,
    report: Annotated[bool, typer.Option("--report", help="Backtests: write each variant's HTML/PNG report.")] = False,
    random: Annotated[int | None, typer.Option("--random", help="Random search: run N variants of the grid, drawn with --seed.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --random draw.")] = 0,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="asha: Ray Tune trials, weak ones stopped early "
                                                  "(training-type specs: rl, mine, probe; --backend ray).")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Trial metric the scheduler decides on, reported each "
                                               "iteration (e.g. train_ic for mining, ep_rew_mean for rl).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="max | min: whether a higher --metric is better.")] = "max",
    num_samples: Annotated[int | None, typer.Option("--num-samples", help="With --scheduler: N variants drawn from "
                                                    "the grid (random search, seeded by --seed).")] = None,
    grace_period: Annotated[int, typer.Option("--grace-period", help="ASHA: iterations before a trial may be stopped.")] = 1,
    max_t: Annotated[int, typer.Option("--max-t", help="ASHA: most iterations a trial runs.")] = 10_000,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run every variant of a grid of spec overrides and collect one results table (restart skips done variants).

    Exit status 1 when some variant failed (the table and its error column are still written)."""
    from marketlab.sweep import run

    res = run(spec, grid, backend=backend, max_concurrency=max_concurrency, address=address, store=store, name=name,
              kind=kind, retries=retries, options={"report": True} if report else None,
              progress=show_progress(as_json, quiet), random=random, random_seed=seed, scheduler=scheduler,
              metric=metric, mode=mode, num_samples=num_samples, grace_period=grace_period, max_t=max_t)
    if as_json:
        emit(res.to_dict(), True)
        return
    print_table(res)
    if res.failed:
        typer.echo(f"error: {res.failed} of {res.table.height} variants failed (see the error column)", err=True)
        raise typer.Exit(1)


def print_table(res: Any) -> None:
    """The results as a rich table: params, status, the first metrics, wall time, error."""
    from rich.console import Console
    from rich.table import Table

    t = res.table
    fixed = {"variant", "status", "seed", "wall_s", "host", "run_dir", "error"}
    params = [c for c in t.columns if "." in c and c not in fixed]
    metrics = [c for c in t.columns if c not in fixed and c not in params][:MAX_METRIC_COLUMNS]
    cols = ["variant", *params, "status", *metrics, "wall_s", "error"]
    table = Table(title=f"sweep {res.name} ({res.kind}, {res.backend}): {t.height} variants, ran {res.ran}, "
                        f"skipped {res.skipped}, failed {res.failed}")
    for c in cols:
        table.add_column(c, overflow="fold")
    for row in t.select(cols).iter_rows():
        table.add_row(*("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)[:120] for v in row))
    Console().print(table)
    typer.echo(f"table: {res.path}")


def run_fleet(spec: Path, seeds: str, *, seed: int | None, backend: str, address: str | None,
              max_concurrency: int | None, dataset: str | None, store: Path | None, as_json: bool,
              progress: bool) -> None:
    """Run the fleet and print its summary (``--json``: the summary, the facts and every day's row)."""
    from marketlab.core.errors import SpecError
    from marketlab.sweep.fleet import aggregate, parse_seeds, simulate_fleet

    if seed is not None:
        raise SpecError(None, "--seed", "give --seed (one day) or --seeds (a fleet), not both")
    res = simulate_fleet(spec, parse_seeds(seeds), backend=backend, max_concurrency=max_concurrency, address=address,
                         store=store, dataset=dataset, progress=progress)
    facts = aggregate(res.table)
    summary: dict[str, Any] = {k: v for k, v in res.to_dict().items() if k != "rows"}
    if as_json:
        emit({**summary, "facts": facts, "rows": res.table.to_dicts()}, True)
    else:
        _print_facts(summary, facts)
    if res.failed:
        typer.echo(f"error: {res.failed} of {res.table.height} days failed (see {res.path})", err=True)
        raise typer.Exit(1)


def _print_facts(summary: dict[str, Any], facts: dict[str, dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"fleet {summary['name']}: {summary['variants']} days ({summary['backend']}), ran {summary['ran']}, "
                    f"skipped {summary['skipped']}, failed {summary['failed']}")
    for c in ("fact", "mean ± std", "95% band of the mean", "min .. max", "days"):
        t.add_column(c)
    for name, f in facts.items():
        t.add_row(name, f"{f['mean']:.4g} ± {f['std']:.2g}", f"[{f['lo']:.4g}, {f['hi']:.4g}]",
                  f"{f['min']:.4g} .. {f['max']:.4g}", f"{f['n']:.0f}")
    Console().print(t)
    typer.echo(f"table: {summary['table']}")


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the top-level app."""
    app.command("sweep")(sweep)
