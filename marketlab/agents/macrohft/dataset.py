"""From minute klines to the arrays MacroHFT trains on: features, context, splits, regimes.

Every statistic (feature scaling, context scaling, regime bins) is fitted on the training split only;
features and context are computed on the whole series first, which is safe because both are causal
(row t reads rows <= t), so validation rows may use training history but nothing reads the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from marketlab.agents.macrohft.config import MacroHFTConfig
from marketlab.agents.macrohft.data import (
    contiguous_segments,
    gap_report,
    read_kline_archives,
    read_store_bars,
)
from marketlab.agents.macrohft.regimes import RegimeBins, chunk_bounds, chunk_indicators, macro_context
from marketlab.agents.macrohft.splits import Standardizer
from marketlab.features.kline import KLINE_SINGLE, KLINE_TREND, kline_features

REGIMES: tuple[tuple[str, int], ...] = (("slope", 0), ("slope", 1), ("slope", 2), ("vol", 0), ("vol", 1), ("vol", 2))


@dataclass
class SplitArrays:
    """One split of one symbol: ``ts`` (T,) ns, ``close`` (T,), scaled ``s1`` (T, F1), ``s2`` (T, F2) and
    ``ctx`` (T, 2) float32, the contiguous ``segments`` [lo, hi) (episodes never cross a gap) and the raw
    (unscaled) taker-flow imbalance ``flow`` (T,) = (taker buy - taker sell) / volume, read by the rule baselines."""

    name: str
    ts: np.ndarray
    close: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    ctx: np.ndarray
    segments: list[tuple[int, int]]
    flow: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of minutes."""
        return len(self.ts)

    def window(self, lo: int, hi: int) -> SplitArrays:
        """Rows [lo, hi) as a split of its own (segments recomputed; used by reduced budgets)."""
        ts = self.ts[lo:hi]
        return SplitArrays(self.name, ts, self.close[lo:hi], self.s1[lo:hi], self.s2[lo:hi], self.ctx[lo:hi],
                           contiguous_segments(ts), None if self.flow is None else self.flow[lo:hi])


@dataclass
class Decomposition:
    """Chunks of a split with their indicator values and labels under the TRAIN-fitted bins."""

    chunks: list[tuple[int, int]]
    slope: np.ndarray
    vol: np.ndarray
    labels: dict[str, np.ndarray]  # "slope"/"vol" -> (n_chunks,) in {0, 1, 2}
    trains: dict[str, np.ndarray] = field(default_factory=dict)  # train split only: chunks a sub-agent learns from

    def chunks_for(self, kind: str, label: int, *, training: bool = False) -> list[tuple[int, int]]:
        """Chunks with ``label`` under indicator ``kind`` (for training: minus the code scheme's tails)."""
        keep = self.labels[kind] == label
        if training and kind in self.trains:
            keep &= self.trains[kind]
        return [c for c, k in zip(self.chunks, keep, strict=True) if k]


@dataclass
class Prepared:
    """Everything phase 1 and 2 read. ``fitted`` holds the train-only statistics (JSON-ready)."""

    symbol: str
    splits: dict[str, SplitArrays]
    decomposition: dict[str, Decomposition]
    bins: dict[str, RegimeBins]
    scalers: dict[str, Standardizer]
    gaps: list[dict[str, Any]]

    def fitted(self) -> dict[str, Any]:
        """Train-only statistics as JSON-ready values (saved next to checkpoints)."""
        return {"bins": {k: b.to_dict() for k, b in self.bins.items()},
                "scalers": {k: s.to_json() for k, s in self.scalers.items()}}


def load_frame(cfg: MacroHFTConfig) -> pl.DataFrame:
    """The configured symbol's minutes over the three splits (archives folder or store dataset)."""
    lo, hi = cfg.splits.train_start, cfg.splits.test_end
    if cfg.archives:
        return read_kline_archives(cfg.archives, cfg.symbol, lo, hi)
    from marketlab.store.catalog import Store

    return read_store_bars(Store(cfg.store or None), cfg.dataset, cfg.symbol, lo, hi)


def prepare(cfg: MacroHFTConfig, frame: pl.DataFrame | None = None) -> Prepared:
    """Features, context, splits, train-fitted scalers and regime decomposition for ``cfg.symbol``."""
    frame = load_frame(cfg) if frame is None else frame.sort("ts")
    feats = kline_features(frame)
    ctx_all = macro_context(frame["close"].to_numpy(), cfg.context_window)
    feats = feats.with_columns(pl.Series("slope_ctx", ctx_all[:, 0]), pl.Series("vol_ctx", ctx_all[:, 1]),
                               frame["close"].alias("close"))
    parts = cfg.splits.split(feats, symbol=cfg.symbol)
    train = parts["train"]
    scalers = {"s1": Standardizer.fit(train, KLINE_SINGLE), "s2": Standardizer.fit(train, KLINE_TREND),
               "ctx": Standardizer.fit(train, ["slope_ctx", "vol_ctx"])}
    arrays = {}
    for name, part in parts.items():
        ts = part["ts"].to_numpy()
        arrays[name] = SplitArrays(name, ts, part["close"].to_numpy().astype(np.float64),
                                   scalers["s1"].transform(part), scalers["s2"].transform(part),
                                   scalers["ctx"].transform(part), contiguous_segments(ts),
                                   np.nan_to_num(part["taker_imbalance"].to_numpy().astype(np.float64)))
    decomp: dict[str, Decomposition] = {}
    bins: dict[str, RegimeBins] = {}
    for name in ("train", "val", "test"):
        a = arrays[name]
        chunks = chunk_bounds(a.segments, cfg.chunk)
        slope, vol = chunk_indicators(a.close, chunks)
        if name == "train":
            bins = {"slope": RegimeBins.fit(slope, cfg.scheme), "vol": RegimeBins.fit(vol, cfg.scheme)}
        labels = {"slope": bins["slope"].label(slope), "vol": bins["vol"].label(vol)}
        trains = {"slope": bins["slope"].trains(slope), "vol": bins["vol"].trains(vol)} if name == "train" else {}
        decomp[name] = Decomposition(chunks, slope, vol, labels, trains)
    return Prepared(cfg.symbol, arrays, decomp, bins, scalers, gap_report(frame["ts"].to_numpy()))
