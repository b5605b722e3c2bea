"""CLI: ``marketlab alpha eval "<formula>" --data <dataset>`` and ``marketlab mine <spec>.toml``."""

from __future__ import annotations

import sys

from pathlib import Path
from typing import Annotated

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

alpha_app = typer.Typer(help="Formulaic alphas: evaluate formulas against forward returns.", no_args_is_help=True)


@alpha_app.command("eval")
@command
def eval_cmd(
    formula: Annotated[str, typer.Argument(help='Formula, e.g. "Corr(close, volume, 20)".')],
    data: Annotated[str, typer.Option("--data", help="Panel dataset in the store.")],
    store: StoreOpt = None,
    period: Annotated[str | None, typer.Option("--period", help="START:END (inclusive dates, either may be empty).")] = None,
    target: Annotated[str, typer.Option("--target", help="Target formula (may look ahead).")] = "Ref(close, -20) / close - 1",
    universe: Annotated[str, typer.Option("--universe", help="members (in-universe stock-days) or all.")] = "all",
    json: JsonOpt = False,
) -> None:
    """Print IC, RankIC, ICIR and coverage of FORMULA against TARGET over PERIOD."""
    from marketlab.core.device import set_torch_threads
    from marketlab.features.alpha_eval import evaluate_formula

    set_torch_threads()
    if store is not None:  # reading never makes a store: a wrong --store is an error naming the path
        from marketlab.store import Store

        Store(store, create=False)
    summary = evaluate_formula(formula, data, store=store, period=period, target=target,
                               universe=universe)
    emit(summary, json, title="alpha eval")


@command
def mine_cmd(
    spec: Annotated[Path, typer.Argument(help="Mining spec, e.g. specs/agents/alphagen_csi300.toml.")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the spec's output checkpoint.")] = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mine a formulaic alpha pool (AlphaGen PPO, GP or hand factors); write pool.json and store signals."""
    from marketlab.agents.alphagen.mine import MineSpec, mine

    s = MineSpec.from_toml(spec)

    def started(info: dict) -> None:
        if not quiet:
            tb = f"; tensorboard --logdir {info['tensorboard']}" if info["tensorboard"] else ""
            print(f"run: {info['run']}{tb}", file=sys.stderr, flush=True)

    res = mine(s, resume=resume, progress=show_progress(json, quiet), on_start=started)
    out = {
        "method": res["method"],
        "dataset": res["dataset"],
        "pool_size": len(res["pool"]["alphas"]),
        **{f"{k}_{m}": v[m] for k, v in res["metrics"].items() for m in ("ic", "rank_ic", "icir")},
        "pool_json": res.get("pool_json"),
        "signals": res.get("signals"),
        "seconds": res["seconds"]["total"],
        "tensorboard": res.get("tensorboard"),
    }
    if json:
        out["pool"] = res["pool"]
    emit(out, json, title="mine")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the marketlab CLI."""
    app.add_typer(alpha_app, name="alpha")
    app.command("mine")(mine_cmd)
