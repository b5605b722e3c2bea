"""Helpers shared by the sweep tests: a small daily-panel store, a backtest spec over it, probe specs and
a worker killer."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

BACKTEST_SPEC = """
name = "mom_small"
[data]
dataset = "panel8"
kind = "panel"
[signal]
kind = "momentum-v1"
lookback = 20
[strategy]
kind = "topk"
top_k = 2
rebalance = 5
[costs]
commission = 0.0005
[benchmark]
kind = "none"
[report]
html = false
png = false
"""


def write_panel_store(root: Path) -> Path:
    """A store with dataset ``panel8``: 8 symbols x 200 daily GBM bars (seed 3). Returns its path."""
    from marketlab.market import market_to_frame, synthetic_market
    from marketlab.store import IngestBatch, Instrument, Store

    store = Store(root)
    m = synthetic_market(200, 8, seed=3, vol=0.015, bar_seconds=86_400)
    panel = market_to_frame(m).with_columns(
        pl.from_epoch(pl.col("ts"), time_unit="ns").dt.date().alias("date"),
        pl.lit(None, dtype=pl.Float64).alias("vwap"), pl.lit(None, dtype=pl.Float64).alias("amount"),
        pl.lit(1.0).alias("adj_factor"), pl.lit(True).alias("in_universe"), pl.lit(False).alias("suspended"),
    ).drop("ts")
    store.write(IngestBatch("panel8", {"panel": panel}, [Instrument(s, 0.01, 1.0) for s in m.symbols]), format="test")
    return root


def probe_spec(tmp_path: Path, seconds: float = 0.05) -> Path:
    """A probe spec (``seconds`` of busy CPU, seed 7) in ``tmp_path``."""
    p = tmp_path / "probe.toml"
    p.write_text(f"[probe]\nseconds = {seconds}\nseed = 7\n")
    return p


def kill_first_started(run_root: Path, killed: list[int], deadline: float) -> None:
    """SIGKILL the first worker that writes a ``started.json`` under ``run_root`` (its pid goes to ``killed``)."""
    while time.monotonic() < deadline and not killed:
        for f in run_root.glob("*/started.json"):
            try:
                pid = json.loads(f.read_text())["pid"]
            except (OSError, ValueError):
                continue
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.05)


def run_killing_one_worker(spec: Path, store: Path, wait_s: float, **run: Any) -> tuple[pl.DataFrame, list[int]]:
    """``sweep.run`` of ``probe.x`` = 0, 1, 2 while a thread SIGKILLs the first worker that starts (it gives up
    after ``wait_s``); asserts one was killed and the table has one row per variant. Returns (table, killed pids)."""
    from marketlab import sweep

    killed: list[int] = []
    killer = threading.Thread(target=kill_first_started, args=(store / "sweeps" / "probe" / "runs", killed,
                                                                time.monotonic() + wait_s))
    killer.start()
    res = sweep.run(spec, {"probe.x": [0.0, 1.0, 2.0]}, store=store, **run)
    killer.join()
    assert killed, "no worker was killed"
    t = res.table
    assert t.height == 3 and t["variant"].n_unique() == 3
    return t, killed


def assert_one_line_error(out: Any, needle: str) -> None:
    """A CLI result (typer's ``CliRunner``) that exited 2 with one ``error: ...`` line on stderr naming ``needle``."""
    assert out.exit_code == 2, out.output
    line = out.stderr.strip()
    assert line.startswith("error: ") and needle in line and "\n" not in line


def short_abm_spec(tmp_path: Path, duration_s: float = 300.0) -> Path:
    """specs/simulators/abm_default.toml with a ``duration_s`` session (dataset ``abm_default``)."""
    src = Path(__file__).resolve().parents[2] / "specs" / "simulators" / "abm_default.toml"
    text = src.read_text()
    assert "duration_s = 23400.0" in text
    p = tmp_path / "abm_short.toml"
    p.write_text(text.replace("duration_s = 23400.0", f"duration_s = {duration_s}"))
    return p


MINE_SPEC = """
target = "Ref(close, -5) / close - 1"
[data]
dataset = "synth"
universe = "all"
[split]
train = "2015-01-01:2015-06-30"
valid = "2015-07-01:2015-08-31"
test = "2015-09-01:2015-12-31"
[miner]
method = "gp"
capacity = 5
max_len = 10
max_lookback = 40
gp_population = 16
gp_generations = 2
[output]
dir = "mine_out"
"""


def mine_store_and_spec(tmp_path: Path) -> tuple[Path, Path]:
    """A store with the synthetic panel ``synth`` (220 days x 8 stocks, seed 1) and a tiny GP mining spec
    over it: (store path, spec path)."""
    from marketlab.features.panel_tensor import synthetic_panel
    from marketlab.store import IngestBatch, Instrument, Store

    store = Store(tmp_path / "store")
    df = synthetic_panel(220, 8, seed=1)
    store.write(IngestBatch("synth", {"panel": df}, [Instrument(s, 0.01, 1.0) for s in df["symbol"].unique()]))
    spec = tmp_path / "gp.toml"
    spec.write_text(MINE_SPEC)
    return store.path, spec
