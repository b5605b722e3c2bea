"""Simulation fleets: many simulated days of one spec as tasks, each writing its own day to the store.

Seed ``s_i`` (the i-th of ``seeds``) simulates the spec's session shifted by ``i`` days, so the fleet is one
dataset of ``len(seeds)`` days. Each task writes its day with ``Store.replace`` from its own process: the
store's writer lock and single commit point (data/README.md) make the concurrent writers safe, and a
re-run of a day supersedes it (never doubles it). The fleet is a sweep (``runner/simulate`` with the
``write`` option) over the explicit variants ``{seed, market.start}``, so it restarts, retries and lands
its table like any sweep; :func:`aggregate` reduces the per-day stylized facts to mean ± band.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.config import load_toml
from marketlab.core.errors import SpecError
from marketlab.sweep.api import SweepResult, run

#: Facts summarised by default (the stylized-facts table's headline rows).
FACTS = (
    "ret_std_bps", "ret_excess_kurtosis", "hill_tail_index", "ret_acf_lag1", "absret_acf_lag1",
    "absret_acf_mean_1_10", "volume_volatility_corr", "spread_mean_bps", "depth_l1_mean", "n_events",
)


def parse_seeds(text: str) -> list[int]:
    """``"0..7"`` (inclusive) / ``"1,5,9"`` / ``"3"`` -> seeds; anything else is a one-line SpecError."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)\.\.(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise SpecError(None, "--seeds", f"empty range {text!r} (use lo..hi with lo <= hi)")
        return list(range(lo, hi + 1))
    parts = [p.strip() for p in text.split(",")]
    if not text or not all(p.isdigit() for p in parts):
        raise SpecError(None, "--seeds", f"expected lo..hi or a,b,c (non-negative integers), got {text!r}")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) < len(seeds):
        raise SpecError(None, "--seeds", f"a seed is given twice in {text!r}")
    return seeds


def fleet_variants(spec: str | Path, seeds: Sequence[int], dataset: str | None = None) -> list[dict[str, Any]]:
    """``{seed, market.start (+ i days)[, market.dataset]}`` per seed, in the order given."""
    raw = load_toml(spec)
    start = str(raw.get("market", {}).get("start", "2024-01-02T14:30:00"))
    try:
        t0 = dt.datetime.fromisoformat(start)
    except ValueError:
        raise SpecError(spec, "market.start", f"invalid time {start!r}") from None
    out = []
    for i, s in enumerate(seeds):
        v: dict[str, Any] = {"seed": int(s), "market.start": (t0 + dt.timedelta(days=i)).isoformat()}
        if dataset is not None:
            v["market.dataset"] = dataset
        out.append(v)
    return out


def simulate_fleet(
    spec: str | Path,
    seeds: Sequence[int],
    *,
    backend: str = "local",
    max_concurrency: int | None = None,
    address: str | None = None,
    store: str | Path | None = None,
    dataset: str | None = None,
    name: str | None = None,
    retries: int = 2,
    progress: bool = False,
    keep_pool: bool = False,
) -> SweepResult:
    """Simulate one day per seed on ``backend``, each written to ``store`` by its own task; the results
    table (one row per day: seed, start, facts, wall time, host) lands in ``<store>/sweeps/<name>/``
    (default name ``<spec stem>-fleet``). ``keep_pool``: see :func:`marketlab.sweep.run`."""
    if not seeds:
        raise SpecError(None, "--seeds", "no seeds given")
    return run(spec, variants=fleet_variants(spec, seeds, dataset), backend=backend, max_concurrency=max_concurrency,
               address=address, store=store, name=name or f"{Path(spec).stem}-fleet", kind="simulate", retries=retries,
               options={"write": True}, progress=progress, keep_pool=keep_pool)


def aggregate(table: pl.DataFrame, facts: Sequence[str] = FACTS) -> dict[str, dict[str, float]]:
    """Per fact over the fleet's ``ok`` days: ``mean``, ``std`` (ddof 1), ``lo``/``hi`` = mean ∓ 1.96 std/√n
    (95% band of the mean), ``min``, ``max``, ``n`` (days where the fact is defined)."""
    ok = table.filter(pl.col("status") == "ok")
    out: dict[str, dict[str, float]] = {}
    for f in facts:
        if f not in ok.columns:
            continue
        x = ok[f].drop_nulls().drop_nans().to_numpy()
        n = len(x)
        if n == 0:
            continue
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if n > 1 else math.nan
        half = 1.96 * std / math.sqrt(n) if n > 1 else math.nan
        out[f] = {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "min": float(x.min()),
                  "max": float(x.max()), "n": float(n)}
    return out
