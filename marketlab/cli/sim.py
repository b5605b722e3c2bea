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
    """Simulate one trading day and write it to the store in the LOBSTER schemas. The spec's ``simulator``
    id picks the simulator (``abm-v1``, the agent-based market, when absent; ``trades-v1``, a TRADES
    session); with ``--seeds``, a fleet of agent-based days and their stylized facts, mean ± band."""
    from marketlab.core.config import load_toml
    from marketlab.core.registry import resolve
    from marketlab.simulators.abm import simulate_day
    from marketlab.store import Store

    name = load_toml(spec).get("simulator", "abm-v1")
    sim_cls = resolve(str(name), kind="simulator", path=spec, key="simulator")
    day = getattr(sim_cls, "simulate_day", None)
    if day is not None:  # a simulator with its own day runner (TRADES); the ABM options below do not apply
        if seeds is not None:
            from marketlab.core.errors import SpecError

            raise SpecError(spec, "simulator", f"--seeds runs fleets of the agent-based market, not {name}")
        emit(day(spec, Store(store), seed, dataset=dataset), as_json, title="simulate")
        return
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


@command
def evaluate_sim(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="TRADES checkpoint directory (`trades train`).")],
    data: Annotated[str, typer.Option("--data", help="Dataset of the real day (LOBSTER events + book).")] = "lobster",
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol of the real day.")] = "GOOG",
    abm_spec: Annotated[Path, typer.Option("--abm-spec", help="Agent-based market spec.")] = Path("specs/simulators/abm_default.toml"),
    budget: Annotated[Path | None, typer.Option("--budget", help="TOML with an [eval] table (EvalBudget fields).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for <symbol>_eval.json and .png.")] = Path("reports"),
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """TRADES vs the agent-based market vs replay on the held-back last 20% of a real day: predictive score,
    stylized facts, PCA hull coverage, POV market impact (report JSON + PNG)."""
    from marketlab.core.config import load_toml
    from marketlab.simulators.eval_run import EvalBudget, run_evaluation
    from marketlab.store import Store

    b = EvalBudget.from_dict(load_toml(budget).get("eval", {}), path=budget) if budget else EvalBudget()
    res = run_evaluation(Store(store, create=False), data, symbol, checkpoint, abm_spec, b, out)
    if as_json:
        emit(res, True)
        return
    p = res["predictive"]
    typer.echo("predictive MAE (bps): " + ", ".join(f"{k} {v['mae_bps']:.3f}" for k, v in p.items()))
    typer.echo(f"improvement factor: {res['improvement_factor']}")
    typer.echo("PCA coverage: " + ", ".join(f"{k} {v['coverage']:.3f}" for k, v in res["pca_coverage"].items()))
    typer.echo(f"figure: {res['figure']}")


def register(app: typer.Typer) -> None:
    """Add ``simulate``, ``stylized`` and ``evaluate-sim`` to the top-level app."""
    app.command("simulate")(simulate)
    app.command("stylized")(stylized)
    app.command("evaluate-sim")(evaluate_sim)
