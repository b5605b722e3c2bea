"""Train / validation / test splits by date and statistics fitted on the training split only.

The default :class:`Splits` are the issue's calendar version of the paper's Table 2 (one year train,
four months validation, the rest test): train [2022-01-01, 2023-01-01), validation [2023-01-01,
2023-05-01), test [2023-05-01, 2024-01-01), the same for every symbol. Bounds are half-open UTC dates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.config import Spec
from marketlab.core.errors import DataError, SpecError
from marketlab.core.timeutil import to_ns

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Splits(Spec):
    """Half-open [start, end) ISO dates (UTC) of the three splits."""

    train_start: str = "2022-01-01"
    train_end: str = "2023-01-01"
    val_start: str = "2023-01-01"
    val_end: str = "2023-05-01"
    test_start: str = "2023-05-01"
    test_end: str = "2024-01-01"

    def bounds(self) -> dict[str, tuple[int, int]]:
        """Split name -> (start_ns, end_ns)."""
        return {
            "train": (to_ns(self.train_start), to_ns(self.train_end)),
            "val": (to_ns(self.val_start), to_ns(self.val_end)),
            "test": (to_ns(self.test_start), to_ns(self.test_end)),
        }

    def validate(self, path: Any = None) -> None:
        """Each split non-empty and in time order with no overlap (an overlap leaks test rows into training)."""
        for name in SPLIT_NAMES:
            for end in ("start", "end"):
                key = f"{name}_{end}"
                try:
                    to_ns(getattr(self, key))
                except SpecError as exc:  # the time parser knows neither the file nor the table
                    raise SpecError(path, f"splits.{key}", str(exc).split(": ", 1)[-1]) from None
        b = self.bounds()
        for name in SPLIT_NAMES:
            lo, hi = b[name]
            if hi <= lo:
                raise SpecError(path, f"splits.{name}_end", f"{name} split is empty or reversed: end <= start")
        for a, c in (("train", "val"), ("val", "test")):
            if b[c][0] < b[a][1]:
                raise SpecError(path, f"splits.{c}_start",
                                f"{c} split starts before the {a} split ends (overlapping splits leak data)")

    def split(self, frame: pl.DataFrame, *, symbol: str = "") -> dict[str, pl.DataFrame]:
        """Rows of ``frame`` (with ``ts`` ns) per split; a split with no rows is a :class:`DataError`."""
        self.validate()
        out = {}
        for name, (lo, hi) in self.bounds().items():
            part = frame.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
            if part.height == 0:
                raise DataError(None, f"{symbol or 'data'}: the {name} split [{np.datetime64(lo, 'ns')}, "
                                      f"{np.datetime64(hi, 'ns')}) has no rows")
            out[name] = part
        return out


@dataclass(frozen=True)
class Standardizer:
    """Per-column z-scoring with mean/std fitted on training rows (NaN-aware); NaN becomes 0 after scaling."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, train: pl.DataFrame, columns: list[str] | tuple[str, ...]) -> Standardizer:
        """Fit mean/std per column on the training rows (constant or all-NaN columns get std 1)."""
        x = train.select(columns).to_numpy().astype(np.float64)
        mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        return cls(tuple(columns), tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """(T, C) float32 scaled features, clipped to +-10 standard deviations."""
        x = frame.select(self.columns).to_numpy().astype(np.float64)
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        out: np.ndarray = np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), -10, 10).astype(np.float32)
        return out

    def to_json(self) -> str:
        """JSON string of columns, means and stds."""
        return json.dumps({"columns": list(self.columns), "mean": list(self.mean), "std": list(self.std)})

    @classmethod
    def from_json(cls, text: str) -> Standardizer:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(tuple(d["columns"]), tuple(d["mean"]), tuple(d["std"]))
