"""Helpers for the TRADES tests: hand-written LOBSTER files and a GOOG slice in a temporary store."""

from __future__ import annotations

import gzip
from pathlib import Path

LOBSTER_DIR = "lobster_sample_2012-06-21"
GOOG_MSG = "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
GOOG_BOOK = "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"


def write_goog_slice(shared_data: Path, out: Path, rows: int) -> list[Path]:
    """The first ``rows`` message/orderbook rows of the real GOOG L10 sample, written under LOBSTER names."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in (GOOG_MSG, GOOG_BOOK):
        with gzip.open(shared_data / LOBSTER_DIR / name, "rt") as f:
            lines = [next(f) for _ in range(rows)]
        p = out / name.removesuffix(".gz")
        p.write_text("".join(lines))
        paths.append(p)
    return paths


def goog_slice_store(shared_data: Path, root: Path, rows: int = 3000):
    """A store at ``root/store`` holding dataset ``lob`` with the first ``rows`` GOOG events + books."""
    from marketlab.store import Store

    store = Store(root / "store")
    store.ingest("lobster", write_goog_slice(shared_data, root / "raw", rows), dataset="lob")
    return store
