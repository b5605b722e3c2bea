"""``marketlab simulate`` (agent-based trading day -> store) and ``marketlab stylized`` (realism table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress


@command
def simulate(
    spec: Annotated[Path, typer.Argument(help="Simulator spec, e.g. specs/simulators/abm_default.toml.")],
    seed: Annotated[int | None, typer.Option("--seed", help="Master seed (overrides the spec's).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name (overrides market.dataset).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    seeds: Annotated[str | None, typer.Option("--seeds", help="A fleet: one day per seed, e.g. 0..7 or 1,5,9.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="Fleet backend: local (process pool), ray or sequential.")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Fleet on a Ray cluster: auto, host:port or ray://host:10001.")] = None,
    max_concurrency: Annotated[int | None, typer.Option("--max-concurrency", help="Fleet days in flight at once.")] = None,
) -> None:
    """Simulate one trading day with the agent-based market and write it to the store; with ``--seeds``,
    a fleet of days (one per seed, each written by its own task) and its stylized facts, mean ± band."""
    from marketlab.simulators.abm import simulate_day
    from marketlab.store import Store

    if seeds is not None:
        from marketlab.cli.sweep import run_fleet

        run_fleet(spec, seeds, seed=seed, backend=backend, address=address, max_concurrency=max_concurrency,
                  dataset=dataset, store=store, as_json=as_json, progress=show_progress(as_json, quiet))
        return
    if address is not None or max_concurrency is not None or backend != "local":
        from marketlab.core.errors import SpecError

        raise SpecError(None, "--backend", "--backend, --address and --max-concurrency run a fleet: give --seeds too")
    summary = simulate_day(spec, Store(store), seed, progress=show_progress(as_json, quiet), dataset=dataset)
    emit(summary, as_json, title="simulate")


@command
def stylized(
    dataset: Annotated[str, typer.Argument(help="Dataset, or dataset:SYMBOL, in the store.")],
    against: Annotated[
        list[str] | None, typer.Option("--against", help="Dataset(s) to compare with (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="PNG path (default reports/stylized_<dataset>.png).")] = None,
    max_lag: Annotated[int, typer.Option("--max-lag", help="Largest ACF lag in minutes.")] = 30,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stylized facts of a LOB dataset side by side with others; prints a table and writes a PNG."""
    from marketlab.core.errors import SpecError
    from marketlab.simulators.stylized import facts_for_dataset, format_table, plot_facts
    from marketlab.store import Store

    if max_lag < 1:
        raise SpecError(None, "--max-lag", f"must be >= 1, got {max_lag}")
    st = Store(store, create=False)  # reading never makes a store
    facts = []
    for ref in [dataset, *(against or [])]:
        facts.extend(facts_for_dataset(st, ref, max_lag=max_lag))
    png = out or Path("reports") / f"stylized_{dataset.replace(':', '_')}.png"
    plot_facts(facts, png)
    if as_json:
        emit({"figure": str(png), "facts": [f.to_dict() for f in facts]}, True)
    else:
        typer.echo(format_table(facts))
        typer.echo(f"figure: {png}")


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``stylized`` to the top-level app."""
    app.command("simulate")(simulate)
    app.command("stylized")(stylized)
