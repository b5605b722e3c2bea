"""``marketlab book ...``: order-book reconstruction checks (and, from other modules, simulate/stylized).

Commands register on one sub-app, :data:`book_app`; another component adds its commands with
``@book_app.command("name")`` in :func:`register` (or top-level ones on ``app``), so this module stays the
single owner of the ``book`` group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, command, emit

book_app = typer.Typer(help="Order-book engine: rebuild real books and verify them row by row.", no_args_is_help=True)


@book_app.command("verify")
@command
def verify(
    message_file: Annotated[Path, typer.Argument(help="LOBSTER …_message_<L>.csv[.gz]")],
    orderbook_file: Annotated[Path, typer.Argument(help="LOBSTER …_orderbook_<L>.csv[.gz]")],
    as_json: JsonOpt = False,
) -> None:
    """Replay a LOBSTER message file through the L3 engine and compare with every orderbook row."""
    from marketlab.lob.lobster import verify_lobster
    from marketlab.store.ingest.lobster import read_lobster

    day = read_lobster(message_file, orderbook_file)
    assert day.book is not None
    rep = verify_lobster(day.msgs, day.book, grid=day.grid)
    out: dict[str, Any] = {"symbol": day.symbol, "date": str(day.date)}
    out.update(rep.to_dict())
    emit(out, as_json, title=f"LOBSTER {day.symbol} {day.date} level {day.levels}")


@book_app.command("verify-binance")
@command
def verify_binance(
    capture: Annotated[list[Path], typer.Argument(help="Binance raw capture(s) (.gz), in time order")],
    as_json: JsonOpt = False,
) -> None:
    """Rebuild a Binance book from REST snapshot + diff-depth stream; compare with bookTicker messages."""
    from marketlab.store.ingest.binance_raw import read_capture, verify_capture

    cap = read_capture(list(capture))
    emit(verify_capture(cap), as_json, title=f"Binance {cap.symbol} book check")


def register(app: typer.Typer) -> None:
    """Add the ``book`` group (verify, verify-binance; simulate/stylized are added by their owners)."""
    app.add_typer(book_app, name="book")
