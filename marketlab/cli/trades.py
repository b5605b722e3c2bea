"""``marketlab trades train`` and ``marketlab trades generate``: the TRADES diffusion order-flow generator.

A shell over :mod:`marketlab.simulators.trades.train` and :mod:`marketlab.simulators.trades.world`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

trades = typer.Typer(help="TRADES: a diffusion model of limit-order flow (train, generate).", no_args_is_help=True)


@trades.command("train")
@command
def train_cmd(
    data: Annotated[str, typer.Option("--data", help="Dataset in the store (LOBSTER events + book).")],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol, e.g. GOOG.")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory.")] = Path("runs/trades"),
    preset: Annotated[str, typer.Option("--preset", help="cpu (window 32, depth 2) or paper (256, 8).")] = "cpu",
    config: Annotated[Path | None, typer.Option("--config", help="TOML with a [trades] table (overrides preset).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (overrides the config).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (overrides the config).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train TRADES on one symbol (time split 70/10/20; statistics from the training part)."""
    from marketlab.core.config import load_toml
    from marketlab.core.errors import SpecError
    from marketlab.simulators.trades.train import TradesConfig, train_from_store
    from marketlab.store import Store

    if preset not in ("cpu", "paper"):
        raise SpecError(None, "--preset", f"must be cpu or paper, got {preset!r}")
    over: dict[str, object] = {}
    if config is not None:
        over.update(load_toml(config).get("trades", {}))
    if steps is not None:
        over["steps"] = steps
    if seed is not None:
        over["seed"] = seed
    cfg = TradesConfig.cpu(**over) if preset == "cpu" else TradesConfig.paper(**over)
    res = train_from_store(
        Store(store, create=False), data, symbol, cfg, out, resume=resume, device=device, progress=show_progress(as_json, quiet)
    )
    emit(
        {
            "checkpoint": str(res.out_dir),
            "step": res.step,
            "train_loss": res.train_loss,
            "val_loss_ema": res.val_loss,
            "seconds": round(res.seconds, 2),
            "windows_per_s": round(res.windows_per_s, 1),
        },
        as_json,
        title="trades train",
    )


@trades.command("generate")
@command
def generate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory written by `trades train`.")],
    data: Annotated[str, typer.Option("--data", help="Dataset to start from (history + book).")],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol.")],
    orders: Annotated[int, typer.Option("--orders", help="Orders per market.")] = 100,
    markets: Annotated[int, typer.Option("--markets", help="Independent markets generated in lockstep.")] = 1,
    sampler: Annotated[str, typer.Option("--sampler", help="ddim or ddpm.")] = "ddim",
    steps: Annotated[int, typer.Option("--steps", help="DDIM steps (1-10 typical).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    candidates: Annotated[int, typer.Option("--candidates", help="Samples per market per sampler call.")] = 1,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate order flow from the start of the held-back test part of the day; print the counts."""
    import time

    from marketlab.core.errors import SpecError
    from marketlab.simulators.trades.train import load_checkpoint, load_day
    from marketlab.simulators.trades.world import TradesMarkets
    from marketlab.store import Store

    if sampler not in ("ddim", "ddpm"):
        raise SpecError(None, "--sampler", f"must be ddim or ddpm, got {sampler!r}")
    if orders < 1 or markets < 1 or candidates < 1:
        raise SpecError(None, "--orders/--markets/--candidates", "must be >= 1")
    model, stats, cfg = load_checkpoint(checkpoint)
    tokens, day = load_day(Store(store, create=False), data, symbol, cfg.levels, stats=stats)
    world = TradesMarkets(
        model,
        stats,
        tokens,
        start=max(day.splits["test"].start, cfg.window - 1),
        n_markets=markets,
        seed=seed,
        method=sampler,
        steps=steps,
        candidates=candidates,
    )
    t0 = time.perf_counter()
    counts = world.run(orders).to_dict()
    secs = time.perf_counter() - t0
    n = sum(counts["accepted"].values())
    emit(
        {**counts, "seconds": round(secs, 3), "orders_per_s": round(n / secs, 2) if secs > 0 else None},
        as_json,
        title="trades generate",
    )


@trades.command("simulate")
@command
def simulate_cmd(
    spec: Annotated[Path, typer.Argument(help="TRADES session spec, e.g. specs/simulators/trades_goog.toml.")],
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (overrides the spec's).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a session with TRADES and write it to the store (events + book, LOBSTER-like schemas)."""
    from marketlab.simulators.trades.simulation import simulate_trades_day
    from marketlab.store import Store

    emit(simulate_trades_day(spec, Store(store) if store is not None else None, seed), as_json, title="trades simulate")


def register(app: typer.Typer) -> None:
    """Add the ``trades`` command group to the marketlab CLI."""
    app.add_typer(trades, name="trades")
