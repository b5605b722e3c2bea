"""``marketlab rl train specs/agents/<spec>.toml`` and ``marketlab rl eval <run> --period test``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

rl = typer.Typer(help="Train and evaluate SB3 agents on marketlab/Trading-v0.", no_args_is_help=True)


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
    store: StoreOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an agent on the train period; saves policy.safetensors, config.json and a resumable checkpoint in
    the run folder, TensorBoard logs in <run>/tb (the paths are printed on stderr at the start)."""
    import contextlib
    import json as jsonlib
    import sys

    from marketlab.agents.sb3 import AgentSpec, train

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


@rl.command("eval")
@command
def eval_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by `marketlab rl train`.")],
    period: Annotated[Literal["train", "test", "all"], typer.Option("--period", help="train | test | all")] = "test",
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Roll the trained policy over a period and compare it with buy-and-hold."""
    from marketlab.agents.sb3 import evaluate

    emit(evaluate(run, period=period, store=_store(store, create=False)), json, title=f"rl eval {run}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the CLI app."""
    app.add_typer(rl, name="rl")
