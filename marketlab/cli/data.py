"""CLI for the store: ``marketlab ingest``, ``marketlab data list|bars|sql|synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

data_app = typer.Typer(help="Inspect and query the market-data store.", no_args_is_help=True)


def _store(path: Path | None, *, create: bool = True) -> Any:
    """The store at ``path``; read-only commands pass ``create=False`` (no store is made by looking)."""
    from marketlab.store import Store

    return Store(path, create=create)


@command
def ingest(
    format: Annotated[str, typer.Argument(help="lobster | fi2010 | binance-raw | ohlcv | ashare | mbo")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name (default: from the folder).")] = None,
    opt: Annotated[list[str] | None, typer.Option("--opt", help="Parser option KEY=VALUE (repeatable), e.g. "
                                                  "--opt tick_size=0.01 --opt crossing_add=defer.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Let new values replace stored records with the same key (reported).")] = False,
    store: StoreOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Parse files of FORMAT and write them atomically into the store.

    Records already stored (same natural key and values) are skipped whatever file they come from; a
    stored key with a different value is an error naming it, unless --replace."""
    release_freed_memory()
    rep = _store(store).ingest(format, paths, dataset=dataset, progress=show_progress(json, quiet), replace=replace,
                               **_options(opt or []))
    emit(rep.to_dict(), json, title=f"ingest {format}")


# polars' allocator (jemalloc) keeps freed pages resident for ~1.5 s by default (polars sets 500 ms dirty + 1000 ms
# "muzzy": MADV_FREE pages still count in RSS); these settings make it return them at once
JEMALLOC_RELEASE = "dirty_decay_ms:0,muzzy_decay_ms:0"
# glibc mallopt parameters (malloc.h) and the fixed threshold for both (glibc's default starting value)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
GLIBC_RELEASE_BYTES = 128 * 1024


def release_freed_memory() -> None:
    """Make the allocators return freed memory at once, for a streamed ingest.

    A stream holds one batch at a time, but allocators keep what a batch freed for reuse, so peak RSS grows
    past the batch (benchmarks/ingest_memory.py has the figures):

    * polars' jemalloc keeps freed pages resident for ~1.5 s by default, several batches' worth. It reads
      ``_RJEM_MALLOC_CONF`` once, when polars is loaded (polars appends a user's value to its own defaults):
      a user's own setting wins, and once polars is loaded (the Python API after other work) this does
      nothing for it;
    * glibc's malloc (numpy arrays, Arrow's Parquet encoder) raises its mmap threshold each time a large
      block is freed (up to 32 MB), after which a batch's arrays come from the heap and stay there until
      the writer trims it at the end of the batch; a fixed threshold of 128 KiB (glibc's default start)
      keeps every large array in its own mapping, returned when it is freed. Set at once through
      ``mallopt``; a user's ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` wins;
    * Arrow's default pool (mimalloc) keeps what the Parquet encoder freed (measured: ~13-20 MB after
      writing one 230k-row events file, against ~7 MB on the system allocator): the ingest uses the system
      allocator (``ARROW_DEFAULT_MEMORY_POOL=system``, read when pyarrow loads; a user's setting wins)."""
    import os
    import sys

    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_RELEASE)
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    _glibc_release()


def _glibc_release() -> None:
    import ctypes
    import ctypes.util
    import os

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return
    for option, variable in ((M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"), (M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_")):
        if variable not in os.environ:
            mallopt(option, GLIBC_RELEASE_BYTES)


def _options(pairs: list[str]) -> dict[str, Any]:
    """``--opt KEY=VALUE`` strings -> parser options; a value reads as a number or bool when it is one."""
    import json as _json

    from marketlab.core.errors import DataError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DataError(None, f"--opt expects KEY=VALUE, got {pair!r}")
        try:
            parsed = _json.loads(value)
        except ValueError:
            parsed = value
        out[key.strip()] = parsed if isinstance(parsed, (int, float, bool)) else value
    return out


@data_app.command("list")
@command
def list_(store: StoreOpt = None, json: JsonOpt = False) -> None:
    """List datasets (kinds, symbols, rows per kind, time range)."""
    st = _store(store, create=False)
    df = st.datasets().drop("meta")
    rows = df.with_columns([df[c].cast(str) for c in ("created_at", "updated_at")]).to_dicts()
    per_kind: dict[str, dict[str, int]] = {}
    for t in st.tables().select("dataset", "kind", "rows").to_dicts():
        per_kind.setdefault(t["dataset"], {})[t["kind"]] = int(t["rows"] or 0)
    for r in rows:  # events and book rows are different things: never one sum
        r["rows"] = per_kind.get(r["dataset"], {})
    if json:
        emit({"datasets": rows}, True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="datasets")
    for c in ("dataset", "format", "kinds", "symbols", "rows"):
        table.add_column(c)
    for r in rows:
        shown = {**r, "rows": ", ".join(f"{k} {n:,}" for k, n in r["rows"].items())}
        table.add_row(*(str(shown[c]) for c in ("dataset", "format", "kinds", "symbols", "rows")))
    Console().print(table)


@data_app.command("bars")
@command
def bars(
    dataset: str,
    symbol: str,
    freq: Annotated[str, typer.Option("--freq", help="Bar size: 1m, 5m, 1h, 1d, 30s ...")] = "1m",
    start: Annotated[str | None, typer.Option(help="Start (ISO), inclusive.")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO), exclusive.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the bars to this Parquet file.")] = None,
    to_dataset: Annotated[str | None, typer.Option("--to-dataset", help="Also write the bars to the store as this bars dataset (replaces it).")] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """OHLCV + vwap bars of one symbol from its trades (or executions of its events, or finer bars).

    With ``--to-dataset NAME`` the bars become a store dataset (``scan_bars``) that backtests and the
    trading env read; the symbol's instrument metadata is copied from the source dataset."""
    from marketlab.core.errors import StoreError
    from marketlab.store import resample

    if to_dataset is not None:
        from marketlab.store import check_dataset

        check_dataset(to_dataset, source="--to-dataset")
        if to_dataset == dataset:
            raise StoreError(f"--to-dataset '{to_dataset}' is the source dataset; a resample never overwrites "
                             "its own source (pick another name)")
    if out is not None and out.is_dir():
        raise StoreError(f"--out {out}: is a directory (give a .parquet file path)")
    if out is not None and not out.parent.is_dir():
        raise StoreError(f"--out {out}: folder {out.parent} does not exist")
    st = _store(store, create=to_dataset is not None)
    st._require_dataset(dataset)
    kinds = set(st.tables(dataset)["kind"].to_list())
    if "trades" in kinds:
        df = resample.trades_to_bars(st.scan_trades(dataset, symbol, start, end, as_float=True), freq)
        source = "trades"
    elif "events" in kinds:
        df = resample.events_to_bars(st.scan_events(dataset, symbol, start, end, as_float=True), freq)
        source = "events"
    elif "bars" in kinds:
        df = resample.aggregate_bars(st.scan_bars(dataset, symbol, start, end), freq)
        source = "bars"
    else:
        raise StoreError(f"dataset '{dataset}' has no trades, events or bars to resample")
    summary: dict[str, Any] = {"dataset": dataset, "symbol": symbol, "freq": freq, "source": source,
                               "bars": df.height}
    if out is not None:
        df.write_parquet(out)
        summary["out"] = str(out)
    if to_dataset is not None:
        from marketlab.store import IngestBatch

        if df.height == 0:
            raise StoreError(f"dataset '{dataset}' has no {source} for {symbol} in [{start}, {end}]: no bars to write")
        rep = st.replace(IngestBatch(dataset=to_dataset, frames={"bars": df},
                                     instruments=[st.instrument(dataset, symbol)],
                                     meta={"source": dataset, "freq": freq, "from": source}), format="bars")
        summary["dataset_out"] = to_dataset
        summary["dataset_rows"] = rep.rows.get("bars")
        summary["dataset_replaced_rows"] = rep.replaced.get("bars", 0)
    if df.height:
        summary["first"] = df.row(0, named=True)
        summary["last"] = df.row(-1, named=True)
    emit(summary, json, title="bars")


@data_app.command("sql")
@command
def sql(
    query: str,
    limit: Annotated[int, typer.Option(help="Rows to print (table mode).")] = 50,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Run a DuckDB query over the store (views: <kind>_<dataset>, datasets, instruments, ingest_log, tables)."""
    df = _store(store, create=False).sql(query)
    if json:
        emit({"rows": df.height, "columns": df.columns, "data": df.head(limit).to_dicts()}, True)
        return
    import polars as pl

    with pl.Config(tbl_rows=limit, tbl_cols=-1):
        typer.echo(df.head(limit))


@data_app.command("synth")
@command
def synth(
    seed: Annotated[int, typer.Option(help="Random seed (same seed -> same data).")] = 0,
    symbols: Annotated[int, typer.Option(help="Symbols in the daily panel.")] = 300,
    days: Annotated[int, typer.Option(help="Business days in the daily panel.")] = 756,
    events: Annotated[int, typer.Option(help="Events in the LOB day.")] = 20_000,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the seeded synthetic daily panel (synth_daily) and LOB day (synth_lob) into the store."""
    from marketlab.store.synth import write_synth

    reps = write_synth(_store(store), seed, n_symbols=symbols, n_days=days, n_events=events)
    emit({"seed": seed, "datasets": [r.to_dict() for r in reps]}, json, title="synth")


def register(app: typer.Typer) -> None:
    """Add ``ingest`` (top level) and the ``data`` group to the main app."""
    app.command("ingest")(ingest)
    app.add_typer(data_app, name="data")
