"""Windowed datasets for the LOB predictors: FI-2010 (shipped labels) and LOBSTER (TLOB preprocessing).

A :class:`WindowSet` keeps **one** contiguous ``(N, F)`` float32 tensor and two index maps: window start
``starts[j]`` and label position ``label_index[j]``. Window ``j`` is ``features[starts[j] : starts[j]+T]``,
taken from a strided view (``Tensor.as_strided``, no copy); only a mini-batch is materialised when it is
gathered. Windows never straddle a segment (an FI-2010 stock/day, a LOBSTER day/split).

FI-2010 (``../shared/data/fi2010_noauction_zscore``, see its SOURCE.md): the standard training file
(Train CF_7 = days 1-7) is not staged; the store's ingestor
(:func:`marketlab.store.ingest.fi2010.load_training_set`) rebuilds it from the daily files (each day back
to day-1 units with the pooled statistics of the preceding days, then days 1-7 z-scored together). Day 10
(``Test_CF_9``, the only standard test day available) is used as shipped, as the standard protocol does.
Labels are the shipped ones, aligned to the **last** step of each window.

LOBSTER (TLOB's ``preprocessing/lobster.py``): drop event types 2/5/6/7, keep an event when the running
sum of sizes crosses a multiple of ``q = 500`` shares, features = 40 book columns (prices in dollars) +
6 message features ``[dt, event_type(0/1/2), size, price, direction(aggressor for executions), depth]``
(the event type sits at column 41, where TLOB/MLPLOB embed it), split **by time within the day**, and
z-scored with training statistics pooled over all price columns and over all size columns. Labels are
TLOB's with α fitted on the training split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S
from marketlab.features.labels import (
    UNDEFINED,
    fi2010_labels,
    fit_tlob_alpha,
    tlob_labels,
    tlob_smoothing,
)

# ----------------------------------------------------------------------------------------------------
# Window sets


@dataclass
class WindowSet:
    """Windows of ``seq_size`` rows cut from ``features`` by index maps (no per-window copies).

    ``features``: ``(N, F)`` float32; ``labels``: ``(N,)`` int64 with ``-1`` = undefined;
    ``starts``/``label_index``: ``(M,)`` int64; ``ts``: ``(N,)`` int64 ns (or sample numbers) for outputs;
    ``symbols``: ``(N,)`` symbol per row (or None).
    """

    features: torch.Tensor
    labels: torch.Tensor
    starts: np.ndarray
    label_index: np.ndarray
    seq_size: int
    ts: np.ndarray | None = None
    symbols: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = self.features.contiguous()
        n, _ = self.features.shape
        self._view = self.features.as_strided(
            (max(n - self.seq_size + 1, 0), self.seq_size, self.features.shape[1]),
            (self.features.shape[1], self.features.shape[1], 1),
        )

    def __len__(self) -> int:
        return int(len(self.starts))

    @property
    def num_features(self) -> int:
        """Feature columns per row."""
        return int(self.features.shape[1])

    def windows(self) -> torch.Tensor:
        """The strided ``(N-T+1, T, F)`` view of every possible window (shares memory with ``features``)."""
        return self._view

    def batch(self, idx: np.ndarray, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather windows ``idx`` -> ``x (b, T, F)`` float32 and ``y (b,)`` int64 (copies only the batch)."""
        s = torch.from_numpy(self.starts[idx])
        x = self._view.index_select(0, s)
        y = self.labels.index_select(0, torch.from_numpy(self.label_index[idx]))
        if device is not None and device.type != "cpu":
            return x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return x, y

    def subset(self, idx: np.ndarray) -> "WindowSet":
        """The same arrays with only windows ``idx`` (e.g. a subsample); still no copies of features."""
        return WindowSet(self.features, self.labels, self.starts[idx], self.label_index[idx], self.seq_size,
                         self.ts, self.symbols, dict(self.meta))

    def window_labels(self) -> np.ndarray:
        """Labels of all windows, ``(M,)`` int64."""
        return self.labels.numpy()[self.label_index]


def window_index(
    segments: list[tuple[int, int]], seq_size: int, label_offset: int, labels: np.ndarray, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Index maps of every window ``[s, s+T)`` inside one segment whose label ``labels[s+offset]`` is defined.

    ``segments``: half-open ``(begin, end)`` row ranges. Returns ``(starts, label_index)`` int64.
    """
    starts_all, lab_all = [], []
    for b, e in segments:
        if e - b < seq_size:
            continue
        s = np.arange(b, e - seq_size + 1, stride, dtype=np.int64)
        li = s + label_offset
        ok = (li < e) & (labels[np.minimum(li, len(labels) - 1)] != UNDEFINED)
        starts_all.append(s[ok])
        lab_all.append(li[ok])
    if not starts_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts_all), np.concatenate(lab_all)


# ----------------------------------------------------------------------------------------------------
# FI-2010

FI2010_HORIZONS = {10: 1, 20: 2, 50: 5, 100: 10}  # TLOB's h (events) -> FI-2010 k (samples)


@lru_cache(maxsize=2)
def load_fi2010(root: str, train_days: int = 7, test_day: int = 10) -> Any:
    """The store ingestor's standard-protocol arrays (rebuilt days 1..``train_days``, test day as shipped),
    cached per process: :func:`marketlab.store.ingest.fi2010.load_training_set`."""
    from marketlab.store.ingest.fi2010 import load_training_set

    return load_training_set(Path(root), train_days=train_days, test_day=test_day)


def segments_of(*keys: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs of rows where every key array is constant (e.g. one stock on one day)."""
    n = len(keys[0])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    return list(zip(starts.tolist(), [*starts[1:].tolist(), n], strict=False))


def _cut_segments(segments: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(b, lo), min(e, hi)) for b, e in segments if min(e, hi) > max(b, lo)]


def fi2010_windowsets(
    root: str | Path,
    *,
    horizon: int,
    seq_size: int,
    num_features: int = 144,
    train_days: int = 7,
    test_day: int = 10,
    val_fraction: float = 0.2,
) -> dict[str, WindowSet]:
    """FI-2010 train / val / test :class:`WindowSet` s for TLOB horizon ``h`` in {10, 20, 50, 100}.

    Train = the first ``1 - val_fraction`` of the rebuilt days 1-7 in time order, val = the rest;
    test = ``test_day`` as shipped. ``num_features``: 144 (all) or 40 (LOB only). Labels are the
    shipped ones for ``k = h / 10`` samples at the window's last step; windows stay within one stock-day.
    """
    if horizon not in FI2010_HORIZONS:
        raise DataError(root, f"FI-2010 horizon must be one of {sorted(FI2010_HORIZONS)}", field="horizon",
                        value=horizon)
    if num_features not in (40, 144):
        raise DataError(root, "FI-2010 num_features must be 40 or 144", field="num_features", value=num_features)
    k = FI2010_HORIZONS[horizon]
    sp = load_fi2010(str(root), train_days, test_day)
    meta = {"dataset": "fi2010", "horizon": horizon, "k": k}
    out: dict[str, WindowSet] = {}
    lab = fi2010_labels(sp.y_train.T, k).astype(np.int64)
    feats = torch.from_numpy(np.ascontiguousarray(sp.x_train[:, :num_features]))
    segs = segments_of(sp.day_train, sp.stock_train)
    n = len(lab)
    cut = int(n * (1 - val_fraction))
    ts = np.arange(n, dtype=np.int64)
    for name, (lo, hi) in (("train", (0, cut)), ("val", (cut, n))):
        st, li = window_index(_cut_segments(segs, lo, hi), seq_size, seq_size - 1, lab)
        out[name] = WindowSet(feats, torch.from_numpy(lab), st, li, seq_size, ts, None,
                              dict(meta, split=name, days=list(range(1, train_days + 1))))
    lab = fi2010_labels(sp.y_test.T, k).astype(np.int64)
    st, li = window_index(segments_of(sp.day_test, sp.stock_test), seq_size, seq_size - 1, lab)
    # FI-2010 has no timestamps: ts = sample number within the test day; symbols = anonymous stock ids
    symbols = np.array([f"FI{int(d):02d}S{int(s) + 1}" for d, s in zip(sp.day_test, sp.stock_test, strict=False)], dtype=object)
    out["test"] = WindowSet(torch.from_numpy(np.ascontiguousarray(sp.x_test[:, :num_features])),
                            torch.from_numpy(lab), st, li, seq_size, np.arange(len(lab), dtype=np.int64), symbols,
                            dict(meta, split="test", days=[test_day]))
    return out


# ----------------------------------------------------------------------------------------------------
# LOBSTER (TLOB preprocessing)

LOBSTER_KEEP_TYPES = (1, 3, 4)  # drop 2 (partial cancel), 5 (hidden execution), 6 (cross), 7 (halt)
EVENT_TYPE_CODE = {1: 0, 3: 1, 4: 2}  # limit order, cancel/delete, market (execution)


@dataclass
class LobsterArrays:
    """One symbol's events and the book after each event, in float units.

    ``time``: seconds after midnight; ``type``, ``size`` (shares), ``price`` ($), ``direction`` (+1/-1
    of the resting order); ``book``: ``(N, 4L)`` ask_px, ask_sz, bid_px, bid_sz per level ($, shares).
    ``day``: ``(N,)`` int day index; ``ts``: ``(N,)`` int64 ns UTC.
    """

    time: np.ndarray
    type: np.ndarray
    size: np.ndarray
    price: np.ndarray
    direction: np.ndarray
    book: np.ndarray
    day: np.ndarray
    ts: np.ndarray
    symbol: str = ""


def lobster_from_frames(events: pl.DataFrame, book: pl.DataFrame, levels: int = 10) -> LobsterArrays:
    """Join store frames (``events`` + ``book`` in float units, one symbol) on ``seq`` -> :class:`LobsterArrays`."""
    need_book = [f"{s}_{k}_{i}" for i in range(1, levels + 1) for s, k in
                 (("ask", "px"), ("ask", "sz"), ("bid", "px"), ("bid", "sz"))]
    missing = [c for c in need_book if c not in book.columns]
    if missing:
        raise DataError("book", f"missing column(s) for {levels} levels", field=missing[0])
    for c in ("ts", "seq", "type", "side", "price", "size"):
        if c not in events.columns:
            raise DataError("events", "missing column", field=c)
    df = events.select("ts", "seq", "type", "side", "price", "size", "symbol").join(
        book.select(["seq", *need_book]), on="seq", how="inner").sort("ts", "seq")
    ts = df["ts"].to_numpy().astype(np.int64)
    day = (ts // NS_PER_DAY).astype(np.int64)
    tod = (ts % NS_PER_DAY) / NS_PER_S
    return LobsterArrays(
        time=tod, type=df["type"].to_numpy().astype(np.int64), size=df["size"].to_numpy().astype(np.float64),
        price=df["price"].to_numpy().astype(np.float64), direction=df["side"].to_numpy().astype(np.float64),
        book=df.select(need_book).to_numpy().astype(np.float64), day=day - day.min(), ts=ts,
        symbol=str(df["symbol"][0]) if df.height else "",
    )


def volume_sample_mask(size: np.ndarray, q: float) -> np.ndarray:
    """TLOB's quantity sampling: keep event ``i`` when the running size sum crosses a multiple of ``q``.

    ``cumsum % q < size`` <=> the cumulative volume passed a multiple of ``q`` within this event.
    """
    c = np.cumsum(size)
    return (c % q) < size


def lobster_features(a: LobsterArrays, *, q: float = 500.0, levels: int = 10) -> dict[str, np.ndarray]:
    """TLOB preprocessing per day: filter types, volume-sample, build the 46 raw features.

    Returns ``features (n, 4L + 6)`` float64 (book first, then [dt, event_type, size, price, direction,
    depth]), ``mid (n,)`` $, ``day (n,)``, ``ts (n,)``.
    """
    out: dict[str, list[np.ndarray]] = {"features": [], "mid": [], "day": [], "ts": []}
    for d in np.unique(a.day):
        m = (a.day == d)
        keep = m & np.isin(a.type, LOBSTER_KEEP_TYPES)
        idx = np.flatnonzero(keep)
        if idx.size < 3:
            continue
        # depth uses the book before the event for cancels/executions, after it for adds
        prev = np.maximum(idx - 1, np.flatnonzero(m)[0])
        sel = idx[volume_sample_mask(a.size[idx], q)] if q > 0 else idx
        pos = np.searchsorted(idx, sel)
        book = a.book[sel, : 4 * levels]
        t = a.time[sel]
        dt = np.diff(t, prepend=34_200.0)  # first delta from the 09:30 open
        typ = a.type[sel]
        side = a.direction[sel]
        before = prev[pos]
        best_after = np.where(side > 0, a.book[sel, 2], a.book[sel, 0])
        best_before = np.where(side > 0, a.book[before, 2], a.book[before, 0])
        ref = np.where(typ == 1, best_after, best_before)
        depth = np.maximum(np.round(np.abs(a.price[sel] - ref) * 100.0), 0.0)  # cents
        direction = np.where(typ == 4, -side, side)  # executions: aggressor side
        msg = np.column_stack([dt, np.vectorize(EVENT_TYPE_CODE.get)(typ).astype(np.float64),
                               a.size[sel], a.price[sel], direction, depth])
        feats = np.column_stack([book, msg])[1:]  # the reference drops the first row
        mid = ((book[:, 0] + book[:, 2]) / 2.0)[1:]
        out["features"].append(feats)
        out["mid"].append(mid)
        out["day"].append(np.full(len(mid), d))
        out["ts"].append(a.ts[sel][1:])
    if not out["features"]:
        raise DataError(None, "no events left after filtering and sampling", field="events")
    return {k: np.concatenate(v) for k, v in out.items()}


def lobster_normalise(train: np.ndarray, *others: np.ndarray, levels: int = 10) -> list[np.ndarray]:
    """Z-score with training statistics: pooled over all book price columns, pooled over all book size
    columns, and per column for the message features except the event type (column ``4L + 1``)."""
    nb = 4 * levels
    px = np.r_[0:nb:2]
    sz = np.r_[1:nb:2]
    mu = np.zeros(train.shape[1])
    sd = np.ones(train.shape[1])
    mu[px], sd[px] = train[:, px].mean(), train[:, px].std()
    mu[sz], sd[sz] = train[:, sz].mean(), train[:, sz].std()
    for c in range(nb, train.shape[1]):
        if c == nb + 1:
            continue  # event type stays a category code for the embedding
        mu[c], sd[c] = train[:, c].mean(), train[:, c].std()
    sd[sd < 1e-12] = 1.0
    return [((x - mu) / sd).astype(np.float32) for x in (train, *others)]


def tlob_windowsets(
    features: np.ndarray,
    mid: np.ndarray,
    day: np.ndarray,
    ts: np.ndarray,
    symbol: str,
    *,
    horizon: int,
    seq_size: int,
    splits: tuple[float, float] = (0.8, 0.9),
    levels: int = 10,
    num_features: int | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, WindowSet]:
    """Split rows ``(n, F)`` by time, z-score with training statistics, TLOB-label and window them.

    Rows (in time order) are cut at fractions ``splits`` (default 80/10/10). Labels are computed inside
    each split (no label reads across a cut), α is fitted on the training split only, windows stay within
    one day and window ``x[i : i+T]`` is labelled at ``i + T - λ``.
    """
    if seq_size < tlob_smoothing(horizon):
        raise DataError(None, f"seq_size must be >= the smoothing length {tlob_smoothing(horizon)} so the "
                        "past average lies inside the window", field="seq_size", value=seq_size)
    n = len(mid)
    c1, c2 = int(n * splits[0]), int(n * splits[1])
    parts = {"train": (0, c1), "val": (c1, c2), "test": (c2, n)}
    raw = {k: features[lo:hi] for k, (lo, hi) in parts.items()}
    normed = dict(zip(raw, lobster_normalise(raw["train"], raw["val"], raw["test"], levels=levels), strict=False))
    alpha = fit_tlob_alpha(mid[:c1], horizon)
    lam = tlob_smoothing(horizon)
    nf = num_features or features.shape[1]
    out = {}
    for k, (lo, hi) in parts.items():
        lab = tlob_labels(mid[lo:hi], horizon, alpha).astype(np.int64)
        st, li = window_index(segments_of(day[lo:hi]), seq_size, seq_size - lam, lab)
        feats = torch.from_numpy(np.ascontiguousarray(normed[k][:, :nf]))
        out[k] = WindowSet(feats, torch.from_numpy(lab), st, li, seq_size, ts[lo:hi],
                           np.full(hi - lo, symbol or "SYM", dtype=object),
                           {**(meta or {}), "horizon": horizon, "alpha": alpha, "split": k})
    return out


def lobster_windowsets(
    a: LobsterArrays,
    *,
    horizon: int,
    seq_size: int,
    splits: tuple[float, float] = (0.8, 0.9),
    q: float = 500.0,
    levels: int = 10,
    num_features: int = 46,
) -> dict[str, WindowSet]:
    """LOBSTER train / val / test windows with TLOB labels at ``horizon`` (sampled events).

    TLOB preprocessing (:func:`lobster_features`), then :func:`tlob_windowsets`: split by time (with a
    single day, the staged GOOG sample, a cut within the day is the only split possible), training-split
    z-score and α. ``num_features``: 46 (book + messages) or 40 (book only).
    """
    if seq_size < tlob_smoothing(horizon):
        raise DataError(None, f"seq_size must be >= the smoothing length {tlob_smoothing(horizon)} so the "
                        "past average lies inside the window", field="seq_size", value=seq_size)
    f = lobster_features(a, q=q, levels=levels)
    return tlob_windowsets(f["features"], f["mid"], f["day"], f["ts"], a.symbol, horizon=horizon,
                           seq_size=seq_size, splits=splits, levels=levels, num_features=num_features,
                           meta={"dataset": "lobster", "q": q})


def book_windowsets(
    book: pl.DataFrame,
    *,
    horizon: int,
    seq_size: int,
    splits: tuple[float, float] = (0.8, 0.9),
    levels: int = 10,
) -> dict[str, WindowSet]:
    """Book-only windows (TLOB's BTC path: Binance L2, no messages, no sampling) from a store ``book``
    frame in float units, one symbol: features = the top ``levels`` (ask px, ask sz, bid px, bid sz),
    TLOB labels on the mid, split by time, pooled training z-score."""
    cols = [f"{s}_{k}_{i}" for i in range(1, levels + 1) for s, k in
            (("ask", "px"), ("ask", "sz"), ("bid", "px"), ("bid", "sz"))]
    missing = [c for c in cols if c not in book.columns]
    if missing:
        raise DataError("book", f"missing column(s) for {levels} levels", field=missing[0])
    df = book.sort("ts", "seq")
    x = df.select(cols).to_numpy().astype(np.float64)
    ok = (x[:, 0] > 0) & (x[:, 2] > 0)  # both sides quoted
    x = x[ok]
    ts = df["ts"].to_numpy()[ok].astype(np.int64)
    mid = (x[:, 0] + x[:, 2]) / 2.0
    day = ts // NS_PER_DAY
    return tlob_windowsets(x, mid, day, ts, str(df["symbol"][0]) if df.height else "", horizon=horizon,
                           seq_size=seq_size, splits=splits, levels=levels, meta={"dataset": "book"})
