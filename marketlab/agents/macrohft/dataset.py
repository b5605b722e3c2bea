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
from marketlab.agents.macrohft.data import contiguous_segments, ensure_bars, gap_report, read_store_bars
from marketlab.agents.macrohft.regimes import RegimeBins, chunk_bounds, chunk_indicators, macro_context
from marketlab.agents.macrohft.splits import Standardizer
from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_MIN, TimeLike
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


#: Minutes read before a split prepared on its own (:func:`prepare_splits`): the 360-minute context and the
#: 60-minute trends need their windows, and the causal Butterworth state forgets where it started by a factor
#: 0.854 per minute (below 1e-100 of the price after one day). Two days cover both with a wide margin.
WARMUP_MINUTES = 2 * 1440


def load_frame(cfg: MacroHFTConfig, start: TimeLike | None = None, end: TimeLike | None = None) -> pl.DataFrame:
    """The configured symbol's minutes in [start, end) (default: over the three splits), from the store
    (``cfg.archives`` ingested into ``cfg.dataset`` first when the store lacks it)."""
    from marketlab.market.loading import open_store

    store = open_store(cfg.store or None)
    ensure_bars(store, cfg.bars_dataset, cfg.archives)
    return read_store_bars(store, cfg.bars_dataset, cfg.symbol, cfg.splits.train_start if start is None else start,
                           cfg.splits.test_end if end is None else end)


def feature_frame(frame: pl.DataFrame, cfg: MacroHFTConfig) -> pl.DataFrame:
    """Unscaled features of ``frame``'s minutes (sorted by ``ts``): ``ts``, the klines-only s1 and s2 columns,
    the macro context ``slope_ctx``/``vol_ctx`` and ``close``. Causal: row t reads rows <= t."""
    feats = kline_features(frame)
    ctx_all = macro_context(frame["close"].to_numpy(), cfg.context_window)
    return feats.with_columns(pl.Series("slope_ctx", ctx_all[:, 0]), pl.Series("vol_ctx", ctx_all[:, 1]),
                              frame["close"].alias("close"))


def fit_scalers(train: pl.DataFrame) -> dict[str, Standardizer]:
    """The s1, s2 and context standardizers, fitted on the training split's feature rows."""
    return {"s1": Standardizer.fit(train, KLINE_SINGLE), "s2": Standardizer.fit(train, KLINE_TREND),
            "ctx": Standardizer.fit(train, ["slope_ctx", "vol_ctx"])}


def split_arrays(name: str, part: pl.DataFrame, scalers: dict[str, Standardizer]) -> SplitArrays:
    """One split's feature rows (of :func:`feature_frame`) scaled with the train-fitted ``scalers``."""
    ts = part["ts"].to_numpy()
    return SplitArrays(name, ts, part["close"].to_numpy().astype(np.float64),
                       scalers["s1"].transform(part), scalers["s2"].transform(part),
                       scalers["ctx"].transform(part), contiguous_segments(ts),
                       np.nan_to_num(part["taker_imbalance"].to_numpy().astype(np.float64)))


def prepare(cfg: MacroHFTConfig, frame: pl.DataFrame | None = None) -> Prepared:
    """Features, context, splits, train-fitted scalers and regime decomposition for ``cfg.symbol``."""
    frame = load_frame(cfg) if frame is None else frame.sort("ts")
    parts = cfg.splits.split(feature_frame(frame, cfg), symbol=cfg.symbol)
    scalers = fit_scalers(parts["train"])
    arrays = {name: split_arrays(name, part, scalers) for name, part in parts.items()}
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


def prepare_splits(cfg: MacroHFTConfig, fitted: dict[str, Any], names: tuple[str, ...] = ("test",),
                   frame: pl.DataFrame | None = None) -> Prepared:
    """Only the named splits, scaled with a trained run's saved train-fitted statistics (``fitted``, as
    :meth:`Prepared.fitted` wrote them to ``run.json``): what a trained agent needs to act on a split, without
    re-reading and re-featurising the two years a full :func:`prepare` covers.

    Each split is read with :data:`WARMUP_MINUTES` before it (never before ``train_start``, where
    :func:`prepare` starts too), so its features are :func:`prepare`'s up to the float rounding of the rolling
    windows (tested to 1e-9, and the policies' positions equal). ``decomposition`` is left empty."""
    scalers = {k: Standardizer.from_json(v) for k, v in fitted["scalers"].items()}
    bins = {k: RegimeBins.from_dict(v) for k, v in fitted["bins"].items()}
    bounds = cfg.splits.bounds()
    arrays: dict[str, SplitArrays] = {}
    gaps: list[dict[str, Any]] = []
    for name in names:
        lo, hi = bounds[name]
        start = max(bounds["train"][0], lo - WARMUP_MINUTES * NS_PER_MIN)
        window = load_frame(cfg, start, hi) if frame is None else frame.sort("ts").filter(
            (pl.col("ts") >= start) & (pl.col("ts") < hi))
        part = feature_frame(window, cfg).filter(pl.col("ts") >= lo)
        if part.height == 0:
            raise DataError(None, f"{cfg.symbol}: the {name} split [{np.datetime64(lo, 'ns')}, "
                                  f"{np.datetime64(hi, 'ns')}) has no rows")
        arrays[name] = split_arrays(name, part, scalers)
        gaps += [g for g in gap_report(window["ts"].to_numpy()) if g not in gaps]
    return Prepared(cfg.symbol, arrays, {}, bins, scalers, gaps)
