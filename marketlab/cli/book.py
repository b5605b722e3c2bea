"""``marketlab book ...``: order-book reconstruction checks (and, from other modules, simulate/stylized).

Commands register on one sub-app, :data:`book_app`; another component adds its commands with
``@book_app.command("name")`` in :func:`register` (or top-level ones on ``app``), so this module stays the
single owner of the ``book`` group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, command, emit, input_files

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

    input_files(message_file, orderbook_file)
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

    input_files(*capture)
    cap = read_capture(list(capture))
    emit(verify_capture(cap), as_json, title=f"Binance {cap.symbol} book check")


@book_app.command("verify-snapshots")
@command
def verify_snapshots(
    events_file: Annotated[Path, typer.Argument(help="Events (.parquet or .csv): ts, seq, type, order_id, side, price, size")],
    snapshots_file: Annotated[Path, typer.Argument(help="Snapshots (.parquet or .csv): ts, seq, ask_px_1, ask_sz_1, bid_px_1, ...")],
    reseed: Annotated[bool, typer.Option("--reseed/--no-reseed", help="Re-seed the window from a snapshot that differs.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild a book from order-by-order events and compare it with periodic top-N snapshots."""
    import numpy as np

    from marketlab.core.errors import DataError
    from marketlab.core.schema import book_levels
    from marketlab.lob.snapshots import verify_snapshots as run

    ev = _read_table(events_file)
    snaps = _read_table(snapshots_file)
    need = ("ts", "seq", "type", "order_id", "side", "price", "size")
    for c in need:
        if c not in ev.columns:
            raise DataError(events_file, "missing column", field=c)
    levels = book_levels(snaps.columns)
    cols = [f"{p}_{i}" for i in range(1, levels + 1) for p in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
    for c in ("ts", "seq", *cols):
        if c not in snaps.columns:
            raise DataError(snapshots_file, "missing column", field=c)
    if levels < 1 or snaps.height < 2:
        raise DataError(snapshots_file, "need book columns and at least two snapshots")
    ev = ev.sort("seq")
    arr = np.zeros(ev.height, dtype=[(c, np.int64) for c in need])
    try:
        for c in need:
            arr[c] = ev[c].to_numpy()
        rows = snaps.select(cols).to_numpy().astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(events_file, f"non-integer values ({exc})") from None
    rep = run(arr, snaps["seq"].to_numpy().astype(np.int64), snaps["ts"].to_numpy().astype(np.int64), rows, reseed=reseed)
    emit(rep.to_dict(), as_json, title=f"snapshot check ({levels} levels, {rep.snapshots_compared} snapshots)")


def _read_table(path: Path) -> Any:
    """A Parquet or CSV file as a polars DataFrame; unreadable input is a one-line DataError."""
    import polars as pl

    from marketlab.core.errors import DataError

    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, reported in one line
        raise DataError(path, f"cannot read table ({type(exc).__name__})") from None


def register(app: typer.Typer) -> None:
    """Add the ``book`` group (verify, verify-binance, verify-snapshots)."""
    app.add_typer(book_app, name="book")
