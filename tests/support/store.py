"""Helpers shared by the store tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl
from hypothesis import strategies as st

MIN = 60 * 10**9  # one minute in ns


def tree_hash(root: Path) -> str:
    """Hash of every path (files and directories) and every file's bytes under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        h.update(dirpath.encode())
        for name in sorted(filenames):
            h.update(name.encode())
            h.update((Path(dirpath) / name).read_bytes())
    return h.hexdigest()


@st.composite
def trade_frames(draw: st.DrawFn, symbols: tuple[str, ...] = ("A", "B", "C"), latest_start: int = 10**6 * MIN,
                 max_trades: int = 80, max_gap: int = 3 * MIN) -> pl.DataFrame:
    """Trades (ts ns, symbol, price ticks, size lots) of 1-3 of ``symbols``, grouped by symbol, each starting
    in [-10 min, ``latest_start``] with 1..``max_trades`` trades ``max_gap`` ns apart at most (same ts allowed)."""
    rows = []
    for sym in draw(st.lists(st.sampled_from(symbols), min_size=1, max_size=3, unique=True)):
        t = draw(st.integers(-10 * MIN, latest_start))
        for _ in range(draw(st.integers(1, max_trades))):
            t += draw(st.integers(0, max_gap))
            rows.append((t, sym, draw(st.integers(1, 500)), draw(st.integers(1, 1000))))
    return pl.DataFrame(rows, schema={"ts": pl.Int64, "symbol": pl.String, "price": pl.Int64, "size": pl.Int64},
                        orient="row")
