"""Replay of recorded L3 messages (LOBSTER codes) through the engine, and row-by-row verification of a
LOBSTER book. One replay machinery: messages become engine commands through
:func:`marketlab.lob.commands.events_to_commands`, a mid-day start is seeded with
:func:`marketlab.lob.commands.seed_commands`; the kernels live in :mod:`marketlab.lob.kernels` (engine) and
:mod:`marketlab.lob.verify_kernels` (verification).

Generic replay (:func:`replay_messages`)
----------------------------------------
Type 1 becomes an ``apply_add`` (rests without matching: recorded data lists executions itself), types
2/3/4 an ``apply_reduce`` (partial cancel / delete / execution), types 5-7 a no-op that still yields a
snapshot.

* ``strict=True`` (data that starts from an empty book): the first bad message raises a one-line
  :class:`DataError` naming the source, the 1-based row, the field and the value — a non-positive size or
  price, an unknown order id, a duplicate id, an add that crosses the book, a reduction larger than the
  order, a timestamp earlier than the previous one. The book is left as it was before that message.
* ``strict=False`` (data that starts mid-day, like LOBSTER): seed ``initial_book`` (one book row,
  ``int64[4L]``) as synthetic liquidity; reductions of ids that predate the file are taken from it.

Verification against the orderbook file (:func:`verify_lobster`)
----------------------------------------------------------------

Input arrays come from :func:`marketlab.store.ingest.lobster.read_lobster` (the CLI glues the two; this
module sits below the store and takes plain arrays): ``msgs int64[n, 6]`` (ts, type, order_id, size,
price, direction) and ``book int64[n, 4L]`` (ask_px, ask_sz, bid_px, bid_sz per level; 0 = empty), prices
in ticks that are multiples of ``grid`` for resting orders.

Rules (exactly what the replay does)
------------------------------------
1. **Seed.** Row 0 is the book after message 0; it is loaded as one synthetic order per level (ids < 0,
   see :func:`marketlab.lob.kernels.synthetic_id_nb`) and verification starts at message 1 (when message
   0 is an add, that order is kept under its id behind the synthetic part of its level). Orders that
   were resting before the file starts are therefore known only as level aggregates.
2. **Apply** message i: type 1 rests a new order at the back of its level (no matching: the data already
   lists the executions as type 4); type 2 reduces, type 3 removes and type 4 reduces the order by id;
   types 5 (hidden execution), 6 and 7 leave the visible book unchanged.
   (b) The message's size is what leaves the level: if the named order has less (or was never added:
   it predates the file or was entered while its level was deeper than L), the rest is taken from the
   synthetic liquidity at (direction, price), then from an order of exactly that size at the level, then
   from the newest orders; a delete whose size is below the order's remaining size returns the
   difference to the level as synthetic liquidity. Which order at a level changed while the level was
   out of view is unknowable from a level-L file; the level totals are not.
3. **Compare** the engine's top L levels with row i ("strict", messages only).
4. **Levels entering view.** A level-L message file holds only events that touch the top L levels, so
   a price level that was deeper than L can change unseen. The visible window of a side in row i-1 is
   every price at or better than its L-th price (every price when that row has fewer than L levels). When
   row i's window is larger than row i-1's (a visible level vanished, so level L+1 slid into view), each
   price in the newly visible part is set from row i (synthetic liquidity added/removed, levels not in
   row i dropped). This is the only information taken from the orderbook file after the seed; prices
   inside the previous window are never touched.
5. **Compare again** ("post") -> the reported match rates. A row that still differs is classified and the
   whole visible window is then re-synchronised from the row so one error does not cascade (counted).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.errors import DataError
from marketlab.lob import kernels as K
from marketlab.lob.commands import events_to_commands, seed_commands
from marketlab.lob.engine import BatchResult, OrderBook
from marketlab.lob.verify_kernels import (
    F_ATTR,
    F_BOOK_DELETE_SIZE,
    F_CROSS,
    F_DUP,
    F_ENTERED_VIEW,
    F_OVERSIZE,
    F_RESYNC,
    F_UNKNOWN_NOLIQ,
    F_UNKNOWN_SEEDED,
    F_UNKNOWN_SHORT,
)

FLAG_NAMES = {
    F_UNKNOWN_SEEDED: "id_never_added_served_by_pre_existing_liquidity",
    F_UNKNOWN_SHORT: "size_taken_from_other_orders_at_level_changed_out_of_view",
    F_UNKNOWN_NOLIQ: "size_exceeds_level_total",
    F_ATTR: "message_side_or_price_differs_from_order",
    F_OVERSIZE: "reduce_larger_than_remaining_size",
    F_DUP: "add_of_live_order_id",
    F_CROSS: "add_crossing_the_book",
    F_ENTERED_VIEW: "deeper_level_entered_view",
    F_RESYNC: "window_resynchronised_after_mismatch",
    F_BOOK_DELETE_SIZE: "delete_size_differs_from_remaining",
}

# ---------------------------------------------------------------- generic replay
FIELD_OF = {
    K.R_SIZE: "size", K.R_PRICE: "price", K.R_DUP_ID: "order_id", K.R_UNKNOWN_ID: "order_id",
    K.R_TS: "time", K.R_SIDE: "direction", K.R_CROSS: "price", K.R_OVERSIZE: "size",
    K.R_ATTR: "price", K.R_ID: "order_id", K.R_BAND: "price", K.R_KIND: "type",
}
PROBLEM = {
    K.R_SIZE: "non-positive size", K.R_PRICE: "non-positive price", K.R_DUP_ID: "order id already in the book",
    K.R_UNKNOWN_ID: "unknown order id (cancel/execution of an order never added)",
    K.R_TS: "timestamp earlier than the previous message", K.R_SIDE: "direction must be 1 or -1",
    K.R_CROSS: "new order would cross the book", K.R_OVERSIZE: "size larger than the order's remaining size",
    K.R_ATTR: "side/price differ from the order's", K.R_ID: "non-positive order id",
    K.R_BAND: "price outside the representable band", K.R_KIND: "unknown message type",
}
_MSG_COLUMN = {"size": 3, "price": 4, "order_id": 2, "time": 0, "direction": 5, "type": 1}


@dataclass
class ReplayResult:
    """``book`` after the last message; ``batch`` holds per-row status, snapshots and emitted events."""

    book: OrderBook
    batch: BatchResult


def replay_messages(
    msgs: np.ndarray,
    *,
    depth: int = 10,
    strict: bool = True,
    initial_book: np.ndarray | None = None,
    source: str | Path | None = None,
    book: OrderBook | None = None,
) -> ReplayResult:
    """Replay ``msgs`` (``int64[n, 6]`` LOBSTER rows in ticks, see module docstring); ``snaps[i]`` is the
    top-``depth`` book after row i."""
    ob = book or OrderBook(capacity=max(1024, int((np.asarray(msgs)[:, 1] == 1).sum()) + 64), tolerant=not strict)
    if initial_book is not None:
        row = np.asarray(initial_book, dtype=np.int64)
        a1, b1 = int(row[0]), int(row[2])
        if a1 > 0 and b1 > 0 and b1 >= a1:
            raise DataError(source, "crossed initial book (best bid >= best ask)", field="bid_px_1", value=b1)
        ts0 = int(msgs[0, 0]) if len(msgs) else 0
        ob.process(seed_commands(row, ts0))
        ob.drain_events()
    res = ob.process(events_to_commands(np.asarray(msgs, dtype=np.int64)), depth=depth, stop_on_reject=strict)
    if strict:
        bad = np.flatnonzero((res.status != 0) & (res.status != K.R_FOK))
        if bad.size:
            i = int(bad[0])
            code = int(res.status[i])
            fld = FIELD_OF.get(code, "type")
            raise DataError(source, PROBLEM.get(code, f"rejected (code {code})"), row=i + 1, field=fld,
                            value=int(msgs[i, _MSG_COLUMN[fld]]))
    return ReplayResult(ob, res)


# ---------------------------------------------------------------- verification against the orderbook file
@dataclass
class VerifyReport:
    """Result of :func:`verify_lobster` (all rates are shares of the ``rows_compared`` rows 1..n-1)."""

    rows: int
    levels: int
    rows_compared: int
    match_rate_level1: float
    match_rate_all_levels: float
    match_rate_per_level: list[float]
    strict_match_rate_level1: float  # messages only, before rule 4
    strict_match_rate_all_levels: float
    events_per_s: float
    seconds: float
    flag_counts: dict[str, int]
    mismatch_rows: int
    mismatch_classes: dict[str, int]
    strict_mismatch_classes: dict[str, int]
    max_levels_filled_per_row: int  # most price levels rule 4 set from the row after one message
    levels_filled_total: int  # price levels rule 4 set from the file over the day
    levels_dropped_total: int  # engine levels rule 4 removed as absent from the newly visible part
    first_mismatch_rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


def _classify(flags: np.ndarray, msgs: np.ndarray, mask: np.ndarray, first: int = 0) -> dict[str, int]:
    """Class of every row in ``mask``: the first flag in a fixed order that is set, else by message type."""
    order = [F_UNKNOWN_NOLIQ, F_ATTR, F_DUP, F_CROSS, F_UNKNOWN_SHORT, F_OVERSIZE, F_BOOK_DELETE_SIZE, F_ENTERED_VIEW]
    if first:
        order.remove(first)
        order.insert(0, first)
    out: dict[str, int] = {}
    rest = mask.copy()
    for fl in order:
        hit = rest & ((flags & fl) != 0)
        if hit.any():
            out[FLAG_NAMES[fl]] = int(hit.sum())
        rest &= ~hit
    if rest.any():
        types = msgs[rest, 1]
        for t, c in zip(*np.unique(types, return_counts=True), strict=True):
            out[f"unexplained_after_type_{int(t)}"] = int(c)
    return out


def _to_engine_ticks(msgs: np.ndarray, book: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``msgs``/``book`` with prices divided by ``grid`` (hidden executions, cross and halt
    messages get price 0: they never touch the visible book)."""
    m = msgs.copy()
    book_t = book.copy()
    vis = m[:, 1] <= 4
    m[:, 4] = np.where(vis, m[:, 4] // grid, 0)
    book_t[:, 0::2] //= grid
    return m, book_t


def _seeded_book(m: np.ndarray, book_t: np.ndarray) -> OrderBook:
    """A tolerant book holding row 0 as synthetic liquidity (rule 1), sized so the verification kernel
    never has to stop: every add may rest at once, plus one synthetic order per (side, price) in the band.
    When message 0 is an add, its order is kept by id behind the synthetic part of its level."""
    L = book_t.shape[1] // 4
    vis = m[:, 1] <= 4
    pxs = np.concatenate([m[vis, 4], book_t[:, 0::2][book_t[:, 0::2] > 0]])
    lo, hi = int(pxs.min()), int(pxs.max())
    cap = int((m[:, 1] == 1).sum()) + 2 * (hi - lo + 256) + 64
    ob = OrderBook(capacity=cap, price_band=(max(1, lo - 64), hi + 64), tolerant=True)
    ob.reserve(cap, events=1 << 16)
    seed_row = book_t[0].copy()
    first_add = np.zeros((0, 7), dtype=np.int64)
    if m[0, 1] == 1:
        off = 0 if m[0, 5] < 0 else 2
        for k in range(L):
            if seed_row[4 * k + off] == m[0, 4] and seed_row[4 * k + off + 1] >= m[0, 3]:
                seed_row[4 * k + off + 1] -= m[0, 3]
                first_add = events_to_commands(m[:1], mode="apply")
                break
    seed = np.vstack([seed_commands(seed_row, int(m[0, 0])), first_add])
    if seed.shape[0]:
        res = ob.process(seed)
        if res.status.any():  # pragma: no cover - validated by the parser
            raise ValueError("seed row could not be loaded")
    ob.drain_events()
    return ob


def _run_verify(m: np.ndarray, book_t: np.ndarray) -> tuple[tuple[np.ndarray, ...], float]:
    """((pre, post, flags, filled, dropped), kernel seconds) of one verification run on engine-tick arrays."""
    ob = _seeded_book(m, book_t)
    t0 = time.perf_counter()
    out = ob.verify_lobster_rows(m, book_t)
    return out, time.perf_counter() - t0


def verify_bits(msgs: np.ndarray, book: np.ndarray, *, grid: int = 1) -> np.ndarray:
    """Per-row post-rule match bits (bit k = level k+1 equal) of :func:`verify_lobster`, ``int64[n]``."""
    return _run_verify(*_to_engine_ticks(msgs, book, grid))[0][1]


def verify_lobster(msgs: np.ndarray, book: np.ndarray, *, grid: int = 1, repeat_timing: bool = True) -> VerifyReport:
    """Replay and verify a LOBSTER day (see the module docstring for the rules).

    ``msgs int64[n, 6]``, ``book int64[n, 4L]`` in ticks; ``grid`` divides resting prices (ticks -> the
    engine's price index, e.g. 100 LOBSTER units = one cent), making the price band 100x smaller.
    ``events_per_s`` is messages / wall time of the (already compiled) replay kernel.
    """
    n = msgs.shape[0]
    L = book.shape[1] // 4
    m, book_t = _to_engine_ticks(msgs, book, grid)
    (pre, post, flags, filled, dropped), secs = _run_verify(m, book_t)
    if repeat_timing:  # first call may include JIT/cache load; time a second, warm run
        (pre, post, flags, filled, dropped), secs = _run_verify(m, book_t)
    full = (1 << L) - 1
    rows = slice(1, n)
    nc = max(n - 1, 1)
    post_ok = post[rows] == full
    pre_ok = pre[rows] == full
    per_level = [float(((post[rows] >> k) & 1).sum() / nc) for k in range(L)]
    flag_counts = {name: int(((flags & fl) != 0).sum()) for fl, name in FLAG_NAMES.items()}
    mism = np.zeros(n, dtype=bool)
    mism[1:] = ~post_ok
    strict_mism = np.zeros(n, dtype=bool)
    strict_mism[1:] = ~pre_ok
    return VerifyReport(
        rows=n,
        levels=L,
        rows_compared=n - 1,
        match_rate_level1=float(((post[rows] & 1) == 1).sum() / nc),
        match_rate_all_levels=float(post_ok.sum() / nc),
        match_rate_per_level=per_level,
        strict_match_rate_level1=float(((pre[rows] & 1) == 1).sum() / nc),
        strict_match_rate_all_levels=float(pre_ok.sum() / nc),
        events_per_s=float((n - 1) / secs) if secs > 0 else float("inf"),
        seconds=float(secs),
        flag_counts=flag_counts,
        mismatch_rows=int(mism.sum()),
        mismatch_classes=_classify(flags, msgs, mism),
        strict_mismatch_classes=_classify(flags, msgs, strict_mism, first=F_ENTERED_VIEW),
        max_levels_filled_per_row=int(filled.max()) if n else 0,
        levels_filled_total=int(filled.sum()),
        levels_dropped_total=int(dropped.sum()),
        first_mismatch_rows=[int(x) + 1 for x in np.flatnonzero(mism)[:20]],  # 1-based file rows
    )
