"""The ``marketlab`` command: a thin shell over the Python API.

Each component contributes a module ``marketlab.cli.<name>`` with a ``register(app)`` function that adds
its commands; heavy imports happen inside the commands so ``marketlab --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

app = typer.Typer(
    name="marketlab",
    help="marketlab: market-data store, LOB engine and simulators, predictors, alpha mining, RL, xVA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per component; each owns its commands.
_COMMAND_MODULES = [
    "data",  # ingest, data list/bars/sql/synth
    "book",  # book verify
    "sim",  # simulate, stylized
    "models",  # train, predict
    "alpha",  # alpha eval, mine
    "rl",  # rl train/eval
    "backtest",  # backtest
    "xva",  # xva, bsde
    "demo",  # demo
]

for _name in _COMMAND_MODULES:
    _modname = f"marketlab.cli.{_name}"
    if importlib.util.find_spec(_modname) is not None:
        importlib.import_module(_modname).register(app)


def main() -> None:  # pragma: no cover - console entry
    app()
