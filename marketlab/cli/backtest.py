"""``marketlab backtest specs/backtests/<name>.toml [--json]``: the same as ``Backtest.from_spec(path).run()``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketlab.cli.common import JsonOpt, StoreOpt, command, emit


@command
def backtest(
    spec: Annotated[Path, typer.Argument(help="Backtest spec (TOML), e.g. specs/backtests/ma_cross_btc.toml.")],
    store: StoreOpt = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip the HTML/PNG report.")] = False,
    json: JsonOpt = False,
) -> None:
    """Run a backtest spec: data -> signal -> vectorbt portfolio -> metrics and report."""
    from marketlab.backtests import Backtest

    st = None
    if store is not None:
        from marketlab.store import Store

        st = Store(store)
    result = Backtest.from_spec(spec, store=st).run(report=not no_report)
    emit(result.to_dict(), json, title=f"backtest {result.name}")
    if result.report_path is not None and not json:
        typer.echo(f"report: {result.report_path}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the CLI app."""
    app.command("backtest")(backtest)
