"""Helpers for the TRADES tests: hand-written LOBSTER files and a GOOG slice in a temporary store."""

from __future__ import annotations

import gzip
import json
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


def train_tiny_cli(
    store_path: Path, out: Path, steps: int, val_every: int, command: tuple[str, ...] = ("trades", "train")
) -> list[str]:
    """Train a tiny TRADES model on dataset ``lob`` symbol GOOG through ``marketlab trades train`` (or
    ``command``, e.g. ``("train", "trades")``) into ``out`` (window 8, depth 1; seconds). Returns the
    ``--data/--symbol/--store`` arguments shared by the next commands."""
    from typer.testing import CliRunner

    from marketlab.cli.main import app

    cfg = out.parent / f"{out.name}.toml"
    cfg.write_text(
        f"[trades]\nwindow = 8\ndepth = 1\naugment_dim = 8\nbatch_size = 8\nval_every = {val_every}\nval_batches = 1\n"
    )
    base = ["--data", "lob", "--symbol", "GOOG", "--store", str(store_path)]
    r = CliRunner().invoke(app, [*command, *base, "--config", str(cfg), "--steps", str(steps), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["step"] == steps
    return base


def synthetic_tokens(n: int, seed: int = 0, levels: int = 10):
    """``n`` random but valid order tokens over a two-sided ladder book (grid 100 ticks), for tests that
    need tokens without the real data."""
    import numpy as np

    from marketlab.simulators.trades.tokens import OrderTokens

    rng = np.random.default_rng(seed)
    grid = 100
    mid = 1_000_000 + grid * np.cumsum(rng.integers(-1, 2, n))
    book = np.zeros((n, 4 * levels), dtype=np.int64)
    for i in range(levels):
        book[:, 4 * i] = mid + grid * (i + 1)
        book[:, 4 * i + 1] = rng.integers(1, 500, n)
        book[:, 4 * i + 2] = mid - grid * (i + 1)
        book[:, 4 * i + 3] = rng.integers(1, 500, n)
    kind = rng.choice(3, size=n, p=[0.5, 0.4, 0.1]).astype(np.int8)
    side = rng.choice([-1, 1], size=n).astype(np.int8)
    depth = rng.integers(0, 5, n)
    price = np.where(side > 0, book[:, 2] - depth * grid, book[:, 0] + depth * grid)
    price = np.where(kind == 2, np.where(side > 0, book[:, 0], book[:, 2]), price)
    ts = 34_200 * 10**9 + np.cumsum(rng.exponential(0.2e9, n).astype(np.int64))
    return OrderTokens(
        ts=ts,
        kind=kind,
        side=side,
        size=rng.integers(1, 300, n).astype(np.int64),
        price=price.astype(np.int64),
        order_id=np.arange(1, n + 1, dtype=np.int64),
        book=book,
        grid=grid,
    )
