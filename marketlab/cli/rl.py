"""``marketlab rl train specs/agents/<spec>.toml`` and ``marketlab rl eval <run> --period test`` (SB3 agent specs,
and MacroHFT specs ``specs/agents/macrohft_*.toml``, recognised by their tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from marketlab.core.errors import SpecError

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

rl = typer.Typer(help="Train and evaluate SB3 agents on marketlab/Trading-v0 and MacroHFT agents on minute klines.",
                 no_args_is_help=True)


def _store(path: Path | None, *, create: bool = True) -> Any:
    """The store at ``--store`` (None: the spec's); ``create=False`` for commands that only read."""
    if path is None:
        return None
    from marketlab.store import Store

    return Store(path, create=create)


@rl.command("train")
@command
def train_cmd(
    spec: Annotated[Path, typer.Argument(help="Agent spec (TOML), e.g. specs/agents/ppo_trading.toml.")],
    timesteps: Annotated[int | None, typer.Option("--timesteps", help="Override total_timesteps.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Runs folder (default: the spec's out_dir).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run's checkpoint (same spec) to its total timesteps.")] = False,
    stop_after: Annotated[int | None, typer.Option("--stop-after", min=1, help="Stop after about N timesteps of this call, leaving a checkpoint to --resume.")] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=0, help="Also checkpoint every N timesteps (0: at the end only).")] = 0,
    tensorboard: Annotated[bool, typer.Option("--tensorboard/--no-tensorboard", help="Write TensorBoard event files to <run>/tb.")] = True,
    budget: Annotated[Literal["paper", "reduced"], typer.Option("--budget", help="MacroHFT only: the spec as written (paper) or the reduced CPU budget.")] = "paper",
    phase: Annotated[Literal["1", "2", "all"], typer.Option("--phase", help="MacroHFT only: 1 = sub-agents, 2 = hyper-agent on saved sub-agents, all.")] = "all",
    seed: Annotated[int | None, typer.Option("--seed", help="MacroHFT only: override the spec's seed.")] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an agent on the train period; saves policy.safetensors, config.json and a resumable checkpoint in
    the run folder, TensorBoard logs in <run>/tb (the paths are printed on stderr at the start).

    A MacroHFT spec (specs/agents/macrohft_*.toml) trains phase 1 (six regime sub-agents) then phase 2 (the
    hyper-agent) into <out_dir>/<name>/, one checkpoint per agent; --resume keeps the finished agents."""
    import contextlib
    import json as jsonlib
    import sys

    from marketlab.agents.macrohft.config import is_macrohft_spec
    from marketlab.agents.sb3 import AgentSpec, train

    if is_macrohft_spec(spec):
        if timesteps is not None or stop_after is not None or checkpoint_every:
            raise SpecError(spec, None, "--timesteps/--stop-after/--checkpoint-every are for SB3 agent specs; a MacroHFT "
                                        "budget is its [sub]/[hyper] epochs (or --budget reduced)")
        summary = _train_macrohft(spec, out=out, resume=resume, budget=budget, phase=phase, seed=seed,
                                  progress=show_progress(json, quiet), tensorboard=tensorboard)
        emit(summary, json, title=f"rl train {summary['name']}")
        return

    agent = AgentSpec.from_toml(spec)
    # SB3's bar (rich) and logs write to stdout: during training stdout is stderr, so stdout holds the result only
    def started(info: dict[str, Any]) -> None:
        tb = f"tensorboard --logdir {info['tensorboard']}" if info["tensorboard"] else "off (pip install 'marketlab[rl]')"
        resumed = f", resumed at {info['resumed_from']}" if info["resumed_from"] else ""
        print(f"run: {info['run']} ({info['vec']} x{agent.vec.n_envs}, {info['total_timesteps']} timesteps{resumed}); "
              f"tensorboard: {tb}", file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):
        run = train(spec, store=_store(store), out_dir=out, total_timesteps=timesteps, progress=show_progress(json, quiet),
                    resume=resume, stop_after=stop_after, checkpoint_every=checkpoint_every, tensorboard=tensorboard,
                    on_start=started)
    summary = {"run": str(run), **jsonlib.loads((run / "train.json").read_text())}
    emit(summary, json, title=f"rl train {agent.name}")


def _train_macrohft(spec: Path, *, out: Path | None, resume: bool, budget: Literal["paper", "reduced"],
                    phase: str, seed: int | None, progress: bool, tensorboard: bool) -> dict[str, Any]:
    """Phase 1 and/or 2 of a MacroHFT spec into ``<out or spec.out_dir>/<name>/``; a JSON-ready summary."""
    import dataclasses
    import sys

    from marketlab.agents.macrohft.config import MacroHFTConfig, with_budget
    from marketlab.agents.macrohft.dataset import prepare
    from marketlab.agents.macrohft.train import train_run

    cfg = with_budget(MacroHFTConfig.from_toml(spec), budget)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    run = Path(out or cfg.out_dir) / cfg.name
    phases = (1, 2) if phase == "all" else (int(phase),)
    if progress:
        print(f"run: {run} (MacroHFT {cfg.symbol}, budget {budget}, phases {phases}); preparing features ...",
              file=sys.stderr, flush=True)
    prep = prepare(cfg)
    s = train_run(cfg, prep, run, resume=resume, progress=progress, phases=phases, tensorboard=tensorboard)
    agents = [{"agent": f"sub_{p['kind']}_{p['label']}", "best_val_return_rate": p.get("best_val_return_rate"),
               "seconds": p.get("seconds")} for p in s["phase1"]]
    if s["phase2"] is not None:
        agents.append({"agent": "hyper", "best_val_return_rate": s["phase2"].get("best_val_return_rate"),
                       "seconds": s["phase2"].get("seconds")})
    return {"name": cfg.name, "run": str(run), "symbol": cfg.symbol, "budget": budget, "fingerprint": s["fingerprint"],
            "rows": {k: v.n for k, v in prep.splits.items()}, "agents": agents}


@rl.command("eval")
@command
def eval_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by `marketlab rl train`.")],
    period: Annotated[Literal["train", "val", "test", "all"], typer.Option("--period", help="train | test | all (SB3); train | val | test (MacroHFT)")] = "test",
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Roll the trained policy over a period and compare it with buy-and-hold (a MacroHFT run: the hyper-agent,
    the uniform mix of its sub-agents and buy-and-hold on one split, paper metrics, traded all-in at the run's fee)."""
    from marketlab.agents.sb3 import evaluate

    if (run / "run.json").is_file():
        from marketlab.agents.macrohft.evaluate import evaluate_run

        if period == "all":
            raise SpecError(run, None, "a MacroHFT run is evaluated on one split: --period train, val or test (not all)")
        emit(evaluate_run(run, period), json, title=f"rl eval {run}")
        return
    if period == "val":
        raise SpecError(run, None, "--period val is for MacroHFT runs; an SB3 run has train | test | all")

    emit(evaluate(run, period=period, store=_store(store, create=False)), json, title=f"rl eval {run}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the CLI app."""
    app.add_typer(rl, name="rl")
