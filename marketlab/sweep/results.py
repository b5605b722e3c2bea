"""A sweep's folder in the store and its one results table.

Layout (``<store>/sweeps/<name>/``)::

    sweep.json                 what was asked (spec, kind, grid, backend), rewritten at each run
    variants/<id>.json         one record per finished variant, written atomically by the driver as it lands
    runs/<id>/                 the variant's run folder (started.json, metrics.json, anything the runner writes)
    results.parquet            the table: one row per variant of the grid (params, metrics, status, error,
                               seed, wall_s, host, run_dir), replaced atomically at the end of each run

The variant records are the commit points of a sweep: a restart skips every variant whose record says
``ok`` (failed ones run again), so an interrupted sweep loses at most the variants in flight, and the
table, built from the records of the grid's variants, has exactly one row per variant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.files import atomic_write

LEAD = ("variant", "status")
TAIL = ("seed", "wall_s", "host", "run_dir", "error")


class SweepFolder:
    """``<store>/sweeps/<name>``: records of finished variants and the results table."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.variants = root / "variants"
        self.runs = root / "runs"
        self.table_path = root / "results.parquet"

    def record_path(self, variant: str) -> Path:
        """Where the record of ``variant`` lives."""
        return self.variants / f"{variant}.json"

    def load(self, variant: str) -> dict[str, Any] | None:
        """The stored record of ``variant`` (None when it has not finished or its file is unreadable)."""
        p = self.record_path(variant)
        try:
            rec: dict[str, Any] = json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return rec

    def save(self, record: dict[str, Any]) -> None:
        """Commit one finished variant (atomic: a killed driver leaves the old record or the new one)."""
        text = json.dumps(record, default=str, allow_nan=True)
        atomic_write(self.record_path(record["variant"]), lambda p: Path(p).write_text(text))

    def write_meta(self, meta: dict[str, Any]) -> None:
        """``sweep.json``: what this run of the sweep was asked to do."""
        atomic_write(self.root / "sweep.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1, default=str)))

    def write_table(self, table: pl.DataFrame) -> None:
        """Replace ``results.parquet`` atomically."""
        atomic_write(self.table_path, lambda p: table.write_parquet(p))


def _value(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def to_table(records: Iterable[dict[str, Any]], param_keys: list[str]) -> pl.DataFrame:
    """One row per record: variant, status, the params (one column per grid key), the metrics (one
    Float64 column each; null where a variant lacks it or failed), seed, wall_s, host, run_dir, error."""
    records = list(records)
    metric_keys: list[str] = []
    for r in records:
        metric_keys += [k for k in r.get("metrics", {}) if k not in metric_keys and k not in param_keys]
    cols: dict[str, pl.Series] = {
        "variant": pl.Series([r["variant"] for r in records], dtype=pl.String),
        "status": pl.Series([r["status"] for r in records], dtype=pl.String),
    }
    for k in param_keys:
        cols[k] = pl.Series(k, [r["params"].get(k) for r in records], strict=False)
    for k in metric_keys:
        cols[k] = pl.Series(k, [_value(r.get("metrics", {}).get(k)) for r in records], dtype=pl.Float64, strict=False)
    cols["seed"] = pl.Series([r.get("seed") for r in records], dtype=pl.Int64)
    cols["wall_s"] = pl.Series([r.get("wall_s") for r in records], dtype=pl.Float64)
    for k in ("host", "run_dir", "error"):
        cols[k] = pl.Series([r.get(k) for r in records], dtype=pl.String)
    return pl.DataFrame(cols)
