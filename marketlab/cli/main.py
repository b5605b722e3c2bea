"""The ``marketlab`` command: a thin shell over the Python API.

Each component contributes a module ``marketlab.cli.<name>`` with a ``register(app)`` function that adds
its commands; heavy imports happen inside the commands so ``marketlab --help`` stays fast. A command
module that fails to import is an error, never a silently missing command.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from marketlab.cli.common import OneLineErrors, set_debug

app = typer.Typer(
    name="marketlab",
    cls=OneLineErrors,
    help="marketlab: market-data store, LOB engine and simulators, predictors, alpha mining, RL, xVA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")] = False,
) -> None:
    set_debug(debug)


# One module per component; each owns its commands.
COMMAND_MODULES = (
    "data",  # ingest, data list/bars/sql/synth
    "book",  # book verify
    "sim",  # simulate, stylized
    "trades",  # trades train/generate (TRADES diffusion order flow)
    "models",  # train, predict
    "alpha",  # alpha eval, mine
    "rl",  # rl train/eval
    "backtest",  # backtest
    "xva",  # xva, bsde
    "demo",  # demo
    "sweep",  # sweep (grids of any runnable spec, local or on Ray)
    "spec",  # spec schema|example|list|docs
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"marketlab.cli.{_name}").register(app)


def main() -> None:  # pragma: no cover - console entry
    """Console entry point."""
    app()
