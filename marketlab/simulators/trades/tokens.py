"""Store events <-> TRADES order tokens, the conditioning book, time splits and normalisation.

An **order token** is one order message in the generator's vocabulary (Berti et al., TRADES §5):

======== ===================================================================================
feature  meaning
======== ===================================================================================
dt       seconds since the previous kept order (the first token of a range: 0)
size     lots
price    price relative to the mid before the order, in grid steps (signed; x.5 when the
         spread is odd)
side     +1 buy / -1 sell *of the order*: a LOBSTER execution (type 4) carries the resting
         order's side, so it becomes a market order of the opposite side (the reference's flip)
depth    grid steps from the anchor (see :func:`anchor_price`): buys ``(anchor - price)/grid``,
         sells ``(price - anchor)/grid``; signed, so an order inside the spread has depth < 0
         (the reference floors it at 0, losing the price; we keep it so decoding is exact)
type     0 limit (LOBSTER 1), 1 cancel (LOBSTER 3 full delete), 2 market (LOBSTER 4 visible
         execution), embedded by the fixed 3-dim :data:`TYPE_EMBED`
======== ===================================================================================

LOBSTER types 2 (partial cancel), 5 (hidden execution), 6 (cross) and 7 (halt) are dropped, as in
the reference. The **conditioning book** of token i is the store's book snapshot *before* the order
(the row of ``seq - 1``): top ``levels`` levels, prices relative to the same mid in grid steps, sizes in
lots. "Grid" is the order-entry increment in store ticks (LOBSTER: 0.01 USD = 100 ticks of 0.0001).

Splits are by time within the day (:func:`time_split`): first 70% of the session's wall-clock span
for training, next 10% validation, last 20% test. Normalisation statistics (:class:`TokenStats`)
come from the training split only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError

LIMIT, CANCEL, MARKET = 0, 1, 2
KIND_NAMES = ("limit", "cancel", "market")
#: LOBSTER event type -> token kind (types not listed are dropped).
LOBSTER_TO_KIND = {1: LIMIT, 3: CANCEL, 4: MARKET}
KIND_TO_LOBSTER = {v: k for k, v in LOBSTER_TO_KIND.items()}
#: Fixed (not trained) type embedding: row k embeds kind k; decoding takes the nearest row.
TYPE_EMBED = np.eye(3, dtype=np.float32)
#: Continuous order features in token order; ``side`` is not normalised.
ORDER_FEATURES = ("dt", "size", "price", "side", "depth")
ORDER_DIM = len(ORDER_FEATURES) + TYPE_EMBED.shape[1]  # 8, as the reference's SIZE_ORDER_EMB
_NORMALISED = (0, 1, 2, 4)  # columns of ORDER_FEATURES that are z-scored
_DT, _SIZE = 0, 1  # the dt and size columns of ORDER_FEATURES
#: dt offset of the log scale (seconds): simultaneous orders (dt = 0) map to log(1 us)
DT_EPS_S = 1e-6


def _to_model_scale(feats: np.ndarray, log_scale: bool) -> np.ndarray:
    """A float64 copy of raw features (N, 5), with dt and size in log scale when ``log_scale``."""
    out = np.array(feats, dtype=np.float64)
    if log_scale:
        out[:, _SIZE] = np.log(np.maximum(out[:, _SIZE], 1.0))
        out[:, _DT] = np.log(np.maximum(out[:, _DT], 0.0) + DT_EPS_S)
    return out
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class OrderTokens:
    """Orders of one symbol-day in token form plus the book before each.

    Shapes: N orders, L levels. ``ts`` int64 ns; ``kind`` int8 (0 limit, 1 cancel, 2 market); ``side``
    int8 of the order; ``size`` int64 lots; ``price`` int64 store ticks; ``order_id`` int64 (the id the
    message referred to; not a model feature); ``book`` int64 (N, 4L) ask_px, ask_sz, bid_px, bid_sz per
    level before the order (0 = empty level); ``grid`` store ticks per price step.
    """

    ts: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    size: np.ndarray
    price: np.ndarray
    order_id: np.ndarray
    book: np.ndarray
    grid: int

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def levels(self) -> int:
        """Book levels per side (L)."""
        return int(self.book.shape[1] // 4)

    def take(self, idx: slice | np.ndarray) -> OrderTokens:
        """Rows ``idx`` (a slice or index array) as new tokens."""
        return OrderTokens(self.ts[idx], self.kind[idx], self.side[idx], self.size[idx], self.price[idx],
                           self.order_id[idx], self.book[idx], self.grid)


# ----------------------------------------------------------------------------------------- events -> tokens
def tokens_from_frames(events: pl.DataFrame, book: pl.DataFrame, *, levels: int = 10, grid: int | None = None,
                       source: str = "events") -> OrderTokens:
    """Kept events of one symbol-day (EVENTS_SCHEMA) paired with the book row of ``seq - 1``.

    ``book`` is in ``book_schema(L)`` with row ``seq`` the book after event ``seq`` (the store's LOBSTER
    convention); levels beyond the book's are empty. Events without a previous book row are dropped.
    ``grid`` defaults to the GCD of the kept limit prices (the order-entry increment).
    """
    if events.height == 0:
        raise DataError(source, "no events")
    if book.height == 0:
        raise DataError(source, "no book snapshots: TRADES needs the book before each order")
    ev = events.sort("seq")
    seq = ev["seq"].to_numpy()
    typ = ev["type"].to_numpy().astype(np.int64)
    keep = np.isin(typ, list(LOBSTER_TO_KIND))
    bk = book.sort("seq")
    bseq = bk["seq"].to_numpy()
    pos = np.searchsorted(bseq, seq - 1)
    has_prev = (pos < bseq.shape[0]) & (bseq[np.minimum(pos, bseq.shape[0] - 1)] == seq - 1)
    keep &= has_prev
    rows = pos[keep]
    cols = []
    for i in range(1, levels + 1):
        for name in (f"ask_px_{i}", f"ask_sz_{i}", f"bid_px_{i}", f"bid_sz_{i}"):
            cols.append(bk[name].to_numpy()[rows] if name in bk.columns else np.zeros(rows.shape[0], np.int64))
    bmat = np.ascontiguousarray(np.stack(cols, axis=1).astype(np.int64)) if cols else np.zeros((0, 0), np.int64)
    kind = np.array([LOBSTER_TO_KIND[int(t)] for t in typ[keep]], dtype=np.int8) if keep.any() else np.zeros(0, np.int8)
    side = ev["side"].to_numpy()[keep].astype(np.int8)
    side = np.where(kind == MARKET, -side, side).astype(np.int8)
    price = ev["price"].to_numpy()[keep].astype(np.int64)
    if grid is None:
        lim = price[(kind == LIMIT) & (price > 0)]
        grid = int(np.gcd.reduce(lim)) if lim.size else 1
    if np.isnan(bmat.astype(np.float64)).any():  # pragma: no cover - int columns cannot hold NaN
        raise DataError(source, "NaN in the conditioning book")
    return OrderTokens(
        ts=ev["ts"].to_numpy()[keep].astype(np.int64), kind=kind, side=side,
        size=ev["size"].to_numpy()[keep].astype(np.int64), price=price,
        order_id=ev["order_id"].to_numpy()[keep].astype(np.int64), book=bmat, grid=int(grid),
    )


def tokens_from_store(store: Any, dataset: str, symbol: str, *, levels: int = 10, start: Any = None,
                      end: Any = None, grid: int | None = None) -> OrderTokens:
    """Tokens of ``symbol`` in ``dataset`` (a :class:`marketlab.store.Store`), time range ``[start, end)``.

    A symbol whose dataset holds no book snapshots is a one-line :class:`DataError` naming it.
    """
    where = f"dataset '{dataset}' symbol '{symbol}'"
    ev = store.scan_events(dataset, symbol, start, end).collect()
    try:
        bk = store.scan_book(dataset, symbol, start, end).collect()
    except Exception as exc:  # StoreError: the dataset has no book table
        raise DataError(where, f"no book data ({exc})") from None
    if ev.height == 0:
        raise DataError(where, "no events in the requested range")
    if bk.height == 0:
        raise DataError(where, "no book data: TRADES needs the book before each order")
    days = ev["ts"].to_numpy() // 86_400_000_000_000
    if np.unique(days).size > 1:  # seq restarts each day: pair per day, then join
        parts = [tokens_from_frames(ev.filter(pl.col("ts") // 86_400_000_000_000 == d),
                                    bk.filter(pl.col("ts") // 86_400_000_000_000 == d),
                                    levels=levels, grid=grid, source=where) for d in np.unique(days)]
        g = grid or int(np.gcd.reduce([p.grid for p in parts]))
        cat = {f: np.concatenate([getattr(p, f) for p in parts])
               for f in ("ts", "kind", "side", "size", "price", "order_id", "book")}
        return OrderTokens(**cat, grid=g)
    return tokens_from_frames(ev, bk, levels=levels, grid=grid, source=where)


# ----------------------------------------------------------------------------------------- tokens -> events
def events_from_tokens(tokens: OrderTokens, symbol: str) -> pl.DataFrame:
    """Inverse of the event -> token mapping for the kept types: EVENTS_SCHEMA rows (``seq`` = row index).

    Market orders go back to LOBSTER executions on the resting side (side flipped back).
    """
    n = len(tokens)
    typ = np.array([KIND_TO_LOBSTER[int(k)] for k in tokens.kind], dtype=np.int8) if n else np.zeros(0, np.int8)
    side = np.where(tokens.kind == MARKET, -tokens.side, tokens.side).astype(np.int8)
    return pl.DataFrame({
        "ts": tokens.ts, "symbol": [symbol] * n, "seq": np.arange(n, dtype=np.int64), "type": typ,
        "order_id": tokens.order_id, "side": side, "price": tokens.price, "size": tokens.size,
    }, schema_overrides={"type": pl.Int8, "side": pl.Int8})


# ----------------------------------------------------------------------------------------- book geometry
def best_prices(book: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best ask, best bid) in store ticks per row of ``book`` (N, 4L); 0 where the side is empty."""
    return book[..., 0], book[..., 2]


def mid_price(book: np.ndarray) -> np.ndarray:
    """Mid in store ticks (float) per row; one-sided books use the present side; empty books NaN."""
    ask, bid = best_prices(book)
    ask = ask.astype(np.float64)
    bid = bid.astype(np.float64)
    mid = np.where((ask > 0) & (bid > 0), 0.5 * (ask + bid), np.where(ask > 0, ask, np.where(bid > 0, bid, np.nan)))
    return np.asarray(mid)


def anchor_price(kind: np.ndarray, side: np.ndarray, book: np.ndarray, grid: int) -> np.ndarray:
    """The price an order's depth is measured from, store ticks (int64, 0 where the book is empty).

    Limit/cancel orders: the best price of their own side (reference: best bid for buys, best ask
    for sells). Market orders: the opposite best (the level they hit). When that side is empty, the
    other side's best one grid step away from it (a buy anchored one step below the best ask).
    """
    ask, bid = best_prices(book)
    own_is_bid = (side > 0) ^ (kind == MARKET)  # the side of the book the order's price refers to
    want = np.where(own_is_bid, bid, ask)
    other = np.where(own_is_bid, ask, bid)
    fallback = np.where(other > 0, np.where(own_is_bid, other - grid, other + grid), 0)
    return np.asarray(np.where(want > 0, want, fallback)).astype(np.int64)


def depth_of(kind: np.ndarray, side: np.ndarray, price: np.ndarray, book: np.ndarray, grid: int) -> np.ndarray:
    """Depth in grid steps (float; integer for on-grid prices) from :func:`anchor_price`, counted away
    from the spread: a buy limit below the best bid is positive, a buy market lifting above the best
    ask too; an order inside the spread is negative."""
    anc = anchor_price(kind, side, book, grid)
    on_bid = (side > 0) ^ (kind == MARKET)  # the anchor is on the bid side: deeper = lower price
    return np.asarray(np.where(on_bid, anc - price, price - anc) / grid, dtype=np.float64)


def price_from_depth(kind: np.ndarray, side: np.ndarray, depth: np.ndarray, book: np.ndarray, grid: int) -> np.ndarray:
    """Inverse of :func:`depth_of` for integer depths: store-tick prices on the grid (int64)."""
    anc = anchor_price(kind, side, book, grid)
    on_bid = (side > 0) ^ (kind == MARKET)
    d = np.rint(depth).astype(np.int64) * grid
    return np.asarray(np.where(on_bid, anc - d, anc + d), dtype=np.int64)


def book_features(book: np.ndarray, grid: int) -> np.ndarray:
    """Conditioning book (N, 4L) float64: prices relative to the mid in grid steps, sizes in lots.

    Empty levels continue the ladder one step beyond the last present level with size 0, so the
    features stay finite. A row with an empty book (no mid) is a :class:`DataError`.
    """
    book = np.asarray(book)
    n, w = book.shape
    lv = w // 4
    mid = mid_price(book)
    if np.isnan(mid).any():
        r = int(np.flatnonzero(np.isnan(mid))[0])
        raise DataError("conditioning book", "both sides empty: no mid price (NaN in conditioning)", row=r)
    out = np.zeros((n, w), dtype=np.float64)
    prev_a = np.full(n, np.nan)
    prev_b = np.full(n, np.nan)
    for i in range(lv):
        apx, asz, bpx, bsz = (book[:, 4 * i + k] for k in range(4))
        ra = (apx - mid) / grid
        rb = (bpx - mid) / grid
        if i == 0:
            fa = np.where(np.isnan(prev_a), 0.5, prev_a + 1)
            fb = np.where(np.isnan(prev_b), -0.5, prev_b - 1)
        else:
            fa, fb = prev_a + 1, prev_b - 1
        ra = np.where(apx > 0, ra, fa)
        rb = np.where(bpx > 0, rb, fb)
        out[:, 4 * i] = ra
        out[:, 4 * i + 1] = np.where(apx > 0, asz, 0)
        out[:, 4 * i + 2] = rb
        out[:, 4 * i + 3] = np.where(bpx > 0, bsz, 0)
        prev_a, prev_b = ra, rb
    return out


def order_features(tokens: OrderTokens) -> np.ndarray:
    """Raw (not normalised) order features (N, 5) float64 in :data:`ORDER_FEATURES` order."""
    n = len(tokens)
    dt = np.zeros(n, dtype=np.float64)
    if n > 1:
        dt[1:] = np.diff(tokens.ts) / 1e9
    mid = mid_price(tokens.book)
    rel = (tokens.price - mid) / tokens.grid
    depth = depth_of(tokens.kind, tokens.side, tokens.price, tokens.book, tokens.grid)
    return np.stack([dt, tokens.size.astype(np.float64), rel, tokens.side.astype(np.float64), depth], axis=1)


# ----------------------------------------------------------------------------------------- splits + stats
def time_split(ts: np.ndarray, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, slice]:
    """Time-ordered split of sorted ``ts`` (ns) by wall-clock: boundaries at ``t0 + f * (t1 - t0)``.

    Returns ``{"train": slice, "val": slice, "test": slice}`` of row indices (contiguous, disjoint).
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    if ts.size == 0:
        return {s: slice(0, 0) for s in SPLITS}
    t0, t1 = float(ts[0]), float(ts[-1])
    b1 = int(np.searchsorted(ts, t0 + fractions[0] * (t1 - t0), side="left"))
    b2 = int(np.searchsorted(ts, t0 + (fractions[0] + fractions[1]) * (t1 - t0), side="left"))
    return {"train": slice(0, b1), "val": slice(b1, b2), "test": slice(b2, ts.size)}


@dataclass(frozen=True)
class TokenStats:
    """z-score statistics: per normalised order feature (dt, size, price, depth) and pooled book prices
    and sizes. Computed from the training split only (:meth:`fit`).

    ``log_scale``: size and dt are z-scored as ``log(size)`` (lots >= 1) and ``log(dt + 1 us)``, not
    linearly. Why: both are heavy-tailed (LOBSTER GOOG 2012-06-21: sizes median 100, p99.9 1,000, max
    2,300 lots; dt median 0.9 ms, mean 163 ms), so in linear z-space a small denoiser error at the clamp
    edge is thousands of lots or seconds of delay — with the linear scaling, 1,235 of 4,596 DDIM-10
    samples of the CPU GOOG model were discarded as ``size_above_max`` (benchmarks/results/trades.json)
    and generated markets advanced ~10 s per order. In log space errors are relative. Checkpoints written
    before this field load with ``log_scale=False`` (linear, as they were trained)."""

    order_mean: tuple[float, ...]
    order_std: tuple[float, ...]
    book_px_mean: float
    book_px_std: float
    book_sz_mean: float
    book_sz_std: float
    grid: int
    #: per model-token dimension (8), the training split's range in z-space: samplers clamp x0 to it
    z_lo: tuple[float, ...] = ()
    z_hi: tuple[float, ...] = ()
    log_scale: bool = False

    @classmethod
    def fit(cls, order_feats: np.ndarray, book_feats: np.ndarray, grid: int, *, log_scale: bool = True) -> TokenStats:
        """Statistics of the given rows (pass the training split only)."""
        if order_feats.shape[0] < 2:
            raise DataError("training split", f"needs at least 2 orders for statistics, got {order_feats.shape[0]}")
        order_feats = _to_model_scale(order_feats, log_scale)
        cols = order_feats[:, list(_NORMALISED)]
        mean = cols.mean(axis=0)
        std = np.maximum(cols.std(axis=0), 1e-8)
        px = book_feats[:, 0::2]
        sz = book_feats[:, 1::2]
        z = order_feats.astype(np.float64).copy()
        z[:, list(_NORMALISED)] = (cols - mean) / std
        n_emb = TYPE_EMBED.shape[1]
        lo = tuple(float(v) for v in z.min(axis=0)) + (0.0,) * n_emb
        hi = tuple(float(v) for v in z.max(axis=0)) + (1.0,) * n_emb
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std), float(px.mean()),
                   float(max(px.std(), 1e-8)), float(sz.mean()), float(max(sz.std(), 1e-8)), int(grid), lo, hi,
                   bool(log_scale))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenStats:
        """Inverse of :meth:`to_dict`; non-finite values are a :class:`DataError`."""
        vals = [d[k] for k in ("book_px_mean", "book_px_std", "book_sz_mean", "book_sz_std")]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals + list(d["order_mean"]) + list(d["order_std"])):
            raise DataError("token stats", "non-finite normalisation statistics")
        return cls(tuple(float(v) for v in d["order_mean"]), tuple(float(v) for v in d["order_std"]),
                   float(vals[0]), float(vals[1]), float(vals[2]), float(vals[3]), int(d["grid"]),
                   tuple(float(v) for v in d.get("z_lo", ())), tuple(float(v) for v in d.get("z_hi", ())),
                   bool(d.get("log_scale", False)))

    # -------------------------------------------------------------- (de)normalisation
    def encode_orders(self, feats: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """Raw features (N, 5) + kinds (N,) -> model tokens (N, 8) float32: z-scored features, side, type
        embedding."""
        z = _to_model_scale(feats, self.log_scale)
        idx = list(_NORMALISED)
        z[:, idx] = (z[:, idx] - np.asarray(self.order_mean)) / np.asarray(self.order_std)
        return np.concatenate([z, TYPE_EMBED[kind.astype(np.int64)]], axis=1).astype(np.float32)

    def decode_orders(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model tokens (N, 8) -> (raw features (N, 5) float64, kinds (N,) int8 by the nearest type row)."""
        x = np.asarray(x, dtype=np.float64)
        f = x[:, : len(ORDER_FEATURES)].copy()
        idx = list(_NORMALISED)
        f[:, idx] = f[:, idx] * np.asarray(self.order_std) + np.asarray(self.order_mean)
        if self.log_scale:
            with np.errstate(over="ignore"):  # a non-finite size is discarded by the decoder
                f[:, _SIZE] = np.exp(f[:, _SIZE])
                f[:, _DT] = np.maximum(np.exp(f[:, _DT]) - DT_EPS_S, 0.0)
        emb = x[:, len(ORDER_FEATURES):]
        d = ((emb[:, None, :] - TYPE_EMBED[None, :, :]) ** 2).sum(-1)
        return f, d.argmin(axis=1).astype(np.int8)

    def encode_book(self, book_feats: np.ndarray) -> np.ndarray:
        """Raw book features (N, 4L) -> z-scored float32 (prices and sizes pooled separately)."""
        z = np.empty_like(book_feats, dtype=np.float64)
        z[:, 0::2] = (book_feats[:, 0::2] - self.book_px_mean) / self.book_px_std
        z[:, 1::2] = (book_feats[:, 1::2] - self.book_sz_mean) / self.book_sz_std
        if not np.isfinite(z).all():
            raise DataError("conditioning book", "NaN or infinite value in conditioning")
        return z.astype(np.float32)


@dataclass(frozen=True)
class EncodedDay:
    """Model-ready arrays of one symbol-day: ``orders`` (N, 8) float32, ``book`` (N, 4L) float32, the
    split slices and the statistics they were normalised with."""

    orders: np.ndarray
    book: np.ndarray
    splits: dict[str, slice]
    stats: TokenStats


def encode_day(tokens: OrderTokens, stats: TokenStats | None = None,
               fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> EncodedDay:
    """Split by time, fit statistics on the training split (unless ``stats`` is given), normalise all."""
    feats = order_features(tokens)
    bfeats = book_features(tokens.book, tokens.grid)
    splits = time_split(tokens.ts, fractions)
    if stats is None:
        tr = splits["train"]
        stats = TokenStats.fit(feats[tr], bfeats[tr], tokens.grid)
    return EncodedDay(stats.encode_orders(feats, tokens.kind), stats.encode_book(bfeats), splits, stats)
