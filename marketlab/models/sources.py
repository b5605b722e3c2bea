"""Where predictor data comes from (FI-2010 folder or a store dataset) and where predictions go (store
signals). Used by the CLI and by scripts; everything returns :class:`WindowSet` dicts.

``data`` may be ``"fi2010"`` (resolved to ``$MARKETLAB_DATA/fi2010_noauction_zscore``; see :func:`data_root`),
a folder holding the FI-2010 ``.txt.xz`` files, or the name of a store dataset with ``events`` and
``book`` tables: LOBSTER-style messages get TLOB's preprocessing; level-change feeds without order ids
(Binance) use the book-only path (TLOB's BTC setup). Both use TLOB labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl

from marketlab.core.config import DATA_ENV, PositiveFloat, PositiveInt, Range, Spec
from marketlab.core.errors import DataError, MarketlabError
from marketlab.models.datasets import (
    WindowSet,
    book_windowsets,
    fi2010_windowsets,
    lobster_from_frames,
    lobster_windowsets,
)


@dataclass(frozen=True)
class DataConfig(Spec):
    """``[data]`` table of a training config. ``num_features`` None = the model's natural width
    (FI-2010: 40 LOB features; LOBSTER: 46 for TLOB/MLPLOB, 40 otherwise)."""

    seq_size: PositiveInt | None = None
    num_features: PositiveInt | None = None
    val_fraction: Annotated[float, Range(0.0, 1.0, lo_open=True, hi_open=True)] = 0.2
    sampling_q: PositiveFloat = 500.0
    levels: PositiveInt = 10
    mode: Literal["auto", "lobster", "book"] = "auto"


def data_root() -> Path:
    """The folder of raw datasets named by ``$MARKETLAB_DATA`` (never guessed from the checkout or cwd).

    Unset is a :class:`DataError` telling the user to set it or pass an explicit path.
    """
    env = os.environ.get(DATA_ENV)
    if not env:
        raise DataError(None, f"no data root: set {DATA_ENV} to the folder of raw datasets or pass an explicit path")
    return Path(env)


def _has_fi2010(p: Path) -> bool:
    from marketlab.store.ingest.fi2010 import day_file

    try:
        day_file(p, 1)
    except DataError:
        return False
    return True


def resolve_fi2010(data: str) -> Path | None:
    """The FI-2010 folder named by ``data``, or None when ``data`` is not an FI-2010 source."""
    if data == "fi2010":
        p = data_root() / "fi2010_noauction_zscore"
        if not _has_fi2010(p):
            raise DataError(p, f"FI-2010 files not found (check {DATA_ENV} or pass the FI-2010 folder)")
        return p
    p = Path(data)
    return p if p.is_dir() and _has_fi2010(p) else None


DEFAULT_SEQ = {"tlob": 128, "mlplob": 384, "deeplob": 100, "binctabl": 10}


def load_windowsets(model: str, data: str, *, horizon: int, dcfg: DataConfig | None = None,
                    store: Any = None, symbol: str | None = None) -> tuple[dict[str, WindowSet], dict[str, Any]]:
    """Window sets for ``model`` from ``data`` + a JSON-able data spec to store with the checkpoint."""
    d = dcfg or DataConfig()
    seq = d.seq_size or DEFAULT_SEQ.get(model, 100)
    fi = resolve_fi2010(data)
    if fi is not None:
        nf = d.num_features or 40
        sets = fi2010_windowsets(fi, horizon=horizon, seq_size=seq, num_features=nf, val_fraction=d.val_fraction)
        return sets, {"source": "fi2010", "path": str(fi), "horizon": horizon, "seq_size": seq, "num_features": nf}
    if store is None:
        from marketlab.store import Store

        store = Store()
    book = store.scan_book(data, symbol, as_float=True).collect()
    if book.height == 0:
        raise DataError(data, "dataset has no book rows" + (f" for symbol {symbol}" if symbol else ""))
    syms = book["symbol"].unique().to_list()
    if len(syms) != 1:
        raise DataError(data, f"dataset has symbols {sorted(syms)[:5]}: pass --symbol", field="symbol")
    try:
        events = store.scan_events(data, symbol, as_float=True).collect()
    except MarketlabError:
        events = None
    # LOBSTER-style message streams carry order ids; level-change feeds (Binance) do not: book-only path
    if d.mode == "book" or (d.mode == "auto" and (events is None or events.height == 0
                                                  or int(events["order_id"].abs().max()) == 0)):
        sets = book_windowsets(book, horizon=horizon, seq_size=seq, levels=d.levels)
        return sets, {"source": "store", "mode": "book", "dataset": data, "symbol": syms[0], "horizon": horizon,
                      "seq_size": seq, "num_features": 4 * d.levels, "alpha": sets["train"].meta["alpha"]}
    if events is None:
        raise DataError(data, "dataset has no events table (needed for mode 'lobster')", field="events")
    arr = lobster_from_frames(events, book, levels=d.levels)
    nf = d.num_features or (46 if model in ("tlob", "mlplob") else 40)
    sets = lobster_windowsets(arr, horizon=horizon, seq_size=seq, q=d.sampling_q, levels=d.levels, num_features=nf)
    return sets, {"source": "store", "mode": "lobster", "dataset": data, "symbol": syms[0], "horizon": horizon,
                  "seq_size": seq,
                  "num_features": nf, "alpha": sets["train"].meta["alpha"], "q": d.sampling_q}


def signals_frame(ws: WindowSet, proba: np.ndarray, *, horizon: int, model: str) -> pl.DataFrame:
    """Class probabilities per window as a signals frame.

    Columns: ``ts`` (time of the window's last input row: when the forecast is available), ``symbol``,
    ``p_up``, ``p_stationary``, ``p_down``, ``pred`` (0/1/2), ``signal`` (= p_up - p_down, in [-1, 1]),
    ``label`` (true class), ``horizon``, ``model``. One row per (symbol, ts) (the last window wins).
    """
    end = ws.starts + ws.seq_size - 1
    ts = ws.ts[end] if ws.ts is not None else end
    sym = ws.symbols[end] if ws.symbols is not None else np.full(len(end), "SYM", dtype=object)
    df = pl.DataFrame({
        "ts": np.asarray(ts, dtype=np.int64), "symbol": [str(s) for s in sym],
        "p_up": proba[:, 0].astype(np.float64), "p_stationary": proba[:, 1].astype(np.float64),
        "p_down": proba[:, 2].astype(np.float64), "pred": proba.argmax(1).astype(np.int8),
        "signal": (proba[:, 0] - proba[:, 2]).astype(np.float64),
        "label": ws.window_labels().astype(np.int8),
    }).with_columns(pl.lit(horizon, pl.Int32).alias("horizon"), pl.lit(model).alias("model"))
    return df.unique(["symbol", "ts"], keep="last", maintain_order=True).sort("symbol", "ts")


def write_signals(store: Any, dataset: str, df: pl.DataFrame, *, tick_size: float = 0.01,
                  meta: dict[str, Any] | None = None) -> Any:
    """Write a signals frame to ``store`` as ``dataset`` (one Instrument per symbol); returns the report."""
    from marketlab.store import IngestBatch, Instrument

    instruments = [Instrument(s, tick_size, 1.0) for s in sorted(df["symbol"].unique().to_list())]
    return store.write(IngestBatch(dataset=dataset, frames={"signals": df}, instruments=instruments,
                                   meta=dict(meta or {})), format="predictions", mode="replace")
