"""Reading market data from the store, and the one explicit step that may write to it (ingest).

Construction never ingests: a spec runner (``Backtest.run``, ``agents.sb3.train``, the CLI) calls
:func:`prepare_data` first, then envs and backtests only read through :func:`load_market_spec`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.errors import DataError, SpecError, StoreError
from marketlab.market.data import MarketData, market_from_frame
from marketlab.market.forkshare import fork_shared, store_key
from marketlab.market.signals import align_signals
from marketlab.market.spec import DataSpec


def open_store(path: str | Path | None) -> Any:
    """Open the store at ``path`` (the default store when None); lazy import, the store is heavy."""
    from marketlab.store import Store

    return Store(path) if path else Store()


def has_dataset(store: Any, dataset: str) -> bool:
    """Whether the store's catalog lists ``dataset``."""
    names = store.datasets()
    col = "dataset" if "dataset" in names.columns else names.columns[0]
    return dataset in names[col].to_list()


def ensure_dataset(
    store: Any, dataset: str, *, format: str = "ohlcv", paths: list[str] | tuple[str, ...] = (),
    options: dict[str, Any] | None = None, base: Path | None = None, key: str = "data.ingest.paths",
) -> None:
    """Ingest ``paths`` into ``dataset`` with ``Store.ingest(format, ...)`` when the store lacks it.

    Relative paths are tried against ``base`` (the spec's folder) first, then the current directory.
    Without paths a missing dataset is a :class:`StoreError` naming it.
    """
    if has_dataset(store, dataset):
        return
    if not paths:
        hint = " (run `marketlab data synth` first)" if dataset.startswith("synth") else ""
        raise StoreError(f"dataset '{dataset}' is not in the store at {getattr(store, 'path', '?')}{hint}")
    resolved = []
    for p in paths:
        cand = Path(p)
        if not cand.is_absolute() and base is not None and (base / cand).exists():
            cand = base / cand
        if not cand.exists():
            raise SpecError(base, key, f"file not found: {p}")
        resolved.append(cand)
    store.ingest(format, resolved, dataset=dataset, **(options or {}))


def prepare_data(spec: DataSpec, store: Any, *, base: Path | None = None, prefix: str = "data.") -> None:
    """The explicit data step of a spec runner: ingest ``spec.ingest`` when the store lacks the dataset."""
    ing = spec.ingest
    if not spec.dataset:
        return
    ensure_dataset(
        store, spec.dataset, format=ing.format if ing else "ohlcv", paths=list(ing.paths) if ing else [],
        options=dict(ing.options) if ing else None, base=base, key=f"{prefix}ingest.paths",
    )


def load_market(
    store: Any,
    dataset: str,
    *,
    kind: str = "bars",
    symbols: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    key: str = "data.symbols",
) -> MarketData:
    """Read ``dataset`` from the store (``scan_bars`` or ``scan_panel``, rows in ``[start, end)``) into
    :class:`MarketData`.

    A dataset the store does not know is a :class:`StoreError` naming it; requested ``symbols`` without
    bars a :class:`SpecError` naming ``key`` and them (never silently dropped); an empty period a
    :class:`DataError`.
    """
    scan = {"bars": "scan_bars", "panel": "scan_panel"}.get(kind)
    if scan is None:
        raise SpecError(None, "data.kind", f"must be 'bars' or 'panel', got {kind!r}")
    try:
        lf = getattr(store, scan)(dataset, symbols=symbols or None, start=start, end=end)
        frame = lf.collect() if isinstance(lf, pl.LazyFrame) else lf
    except (StoreError, DataError):
        raise
    except Exception as exc:  # the store raises its own errors; anything else still names the dataset
        raise StoreError(f"dataset '{dataset}': {exc}") from None
    if symbols:
        missing = sorted(set(symbols) - set(frame["symbol"].unique().to_list())) if frame.height else sorted(set(symbols))
        if missing:
            period = f" in [{start}, {end})" if start or end else ""
            raise SpecError(None, key, f"no {kind} in dataset '{dataset}'{period} for symbol(s): {', '.join(missing)}")
    if frame.height == 0:
        raise DataError(f"dataset '{dataset}'", f"no {kind} for symbols={symbols or 'all'} in [{start}, {end}]")
    return market_from_frame(frame, source=f"dataset '{dataset}'")


def load_market_spec(spec: DataSpec, store: Any = None, *, key: str = "data.dataset") -> MarketData:
    """The bars named by ``spec`` (and its aligned ``signals`` columns) from ``store`` (default: ``spec.store``).

    Reads only: a missing dataset is a :class:`StoreError` (run :func:`prepare_data` first)."""
    if not spec.dataset:
        raise SpecError(None, key, "no dataset given and no market passed")

    def read() -> MarketData:
        st = store if store is not None else open_store(spec.store)
        market = load_market(st, spec.dataset, kind=spec.kind, symbols=list(spec.symbols) or None, start=spec.start, end=spec.end)
        if spec.signals:
            sig = st.scan_signals(spec.signals, symbols=list(market.symbols), start=spec.start, end=spec.end)
            cols = list(spec.signal_columns) or None
            market = market.with_extra(align_signals(market, sig, cols, source=f"dataset '{spec.signals}'"))
        return market

    # A forked vector-env worker takes its parent's read (Polars is not fork-safe: see .forkshare).
    # the store's absolute root (a relative spec.store names a different store from another folder)
    where = store_key(store) if store is not None else f"spec-store:{Path(spec.store).resolve() if spec.store else None}"
    fields = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
    return fork_shared(("market", where, fields), read, what=f"dataset '{spec.dataset}'")
