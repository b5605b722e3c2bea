"""Row-by-row reconstruction of a LOBSTER book with the L3 engine, and its verification.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from marketlab.lob import kernels as K
from marketlab.lob.engine import OrderBook

# per-row flags
F_UNKNOWN_SEEDED = 1  # reduce of an id never added (or short), served by pre-existing (synthetic) liquidity
F_UNKNOWN_SHORT = 2  # ... part of it taken from other orders at the level (identities changed out of view)
F_UNKNOWN_NOLIQ = 4  # ... and the whole level held less than the message's size
F_ATTR = 8  # message side/price differ from the live order's
F_OVERSIZE = 16  # reduce larger than the order's remaining size (clamped)
F_DUP = 32  # add of an id that is live
F_CROSS = 64  # add that would cross the opposite best (applied anyway)
F_ENTERED_VIEW = 128  # a deeper level entered the window and was set from the row (rule 4)
F_RESYNC = 256  # post mismatch: window re-synchronised from the row (rule 5)
F_BOOK_DELETE_SIZE = 512  # type 3 whose size differs from the order's remaining size

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


@njit(cache=True, _nrt=False, boundscheck=False)
def _compare_nb(snap, row, L):
    """Bit k set when level k+1 (ask px/sz and bid px/sz) matches."""
    bits = 0
    for k in range(L):
        j = 4 * k
        if snap[j] == row[j] and snap[j + 1] == row[j + 1] and snap[j + 2] == row[j + 2] and snap[j + 3] == row[j + 3]:
            bits |= 1 << k
    return bits


@njit(cache=True, _nrt=False, boundscheck=False)
def _in_row(row, L, s, price):
    """Size of ``price`` on side s (0 bid, 1 ask) in a book row, or -1 when absent."""
    off = 0 if s == 1 else 2
    for k in range(L):
        if row[4 * k + off] == price:
            return row[4 * k + off + 1]
    return -1


@njit(cache=True, _nrt=False, boundscheck=False)
def _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, s, lo, hi):
    """Make side s equal to ``row`` for every price in [lo, hi] (ticks, inclusive). Returns True when
    something changed."""
    side = 1 if s == 0 else -1
    base = sc[S_BASE_]
    changed = False
    # drop engine levels in range that the row does not list / fix their size
    li = K.scan_up_nb(bm, s, max(lo - base, 0))
    while li >= 0 and li + base <= hi:
        px = li + base
        want = _in_row(row, L, s, px)
        if want < 0:
            want = 0
        if levels[s, li, K.L_QTY] != want:
            K._set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, px, want)
            sc[K.S_NEVT] = 0
            changed = True
        li = K.scan_up_nb(bm, s, li + 1)
    # add row levels in range that the engine lacks
    off = 0 if s == 1 else 2
    for k in range(L):
        px = row[4 * k + off]
        if px > 0 and px >= lo and px <= hi:
            li = px - base
            if levels[s, li, K.L_QTY] != row[4 * k + off + 1]:
                K._set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, px, row[4 * k + off + 1])
                sc[K.S_NEVT] = 0
                changed = True
    return changed


S_BASE_ = K.S_BASE


@njit(cache=True, _nrt=False, boundscheck=False)
def _take_level(orders, levels, bm, hkeys, hvals, sc, side, price, qty):
    """Remove ``qty`` lots from the level (side, price) when the named order could not supply them:
    pre-existing (synthetic) liquidity first, then an order of exactly that size (most likely the one
    that changed out of view), then the newest orders. Returns what could not be taken. Sets flag bit
    F_UNKNOWN_SHORT in sc[S_NEEDPX] when real orders had to be used."""
    s = 0 if side > 0 else 1
    li = price - sc[S_BASE_]
    sid = K.synthetic_id_nb(side, price)
    sslot = K.hash_get_nb(hkeys, hvals, sc, sid)
    if sslot >= 0:
        q = orders[sslot, K.O_QTY]
        t = qty if qty < q else q
        K._reduce_order(orders, levels, bm, hkeys, hvals, sc, sslot, t)
        qty -= t
    if qty <= 0:
        return 0
    sc[K.S_NEEDPX] = 1
    slot = levels[s, li, K.L_HEAD]
    while slot != -1:
        if orders[slot, K.O_QTY] == qty:
            K._remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
            return 0
        slot = orders[slot, K.O_NEXT]
    while qty > 0 and levels[s, li, K.L_CNT] > 0:
        slot = levels[s, li, K.L_TAIL]
        q = orders[slot, K.O_QTY]
        t = qty if qty < q else q
        K._reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, t)
        qty -= t
    return qty


BIG = np.int64(1) << np.int64(62)


@njit(cache=True, _nrt=False, boundscheck=False)
def _window(row, L, s):
    """Visible window of side s in ``row`` as (lo, hi) ticks: asks [0, ask_px_L], bids [bid_px_L, BIG];
    the whole side when the row has fewer than L levels there."""
    if s == 1:
        pl = row[4 * (L - 1)]
        return (np.int64(0), pl if pl > 0 else BIG)
    pl = row[4 * (L - 1) + 2]
    return (pl if pl > 0 else np.int64(0), BIG)


@njit(cache=True, _nrt=False, boundscheck=False)
def lobster_verify_nb(orders, levels, bm, hkeys, hvals, sc, events, msgs, book, L, snap, pre, post, flags):
    """Replay ``msgs[1:]`` on a book seeded with ``book[0]`` and verify every row (see module rules).

    ``pre[i]``/``post[i]``: per-level match bits before/after rule 4; ``flags[i]``: ``F_*`` bits.
    Capacity (slots, hash, band, events) must have been allocated by the caller.
    """
    n = msgs.shape[0]
    top = sc[S_BASE_] + sc[K.S_NLEV] - 1
    for i in range(1, n):
        ts = msgs[i, 0]
        typ = msgs[i, 1]
        oid = msgs[i, 2]
        size = msgs[i, 3]
        price = msgs[i, 4]
        side = msgs[i, 5]
        s = 0 if side > 0 else 1
        f = 0
        sc[K.S_NEVT] = 0
        sc[K.S_NEEDPX] = 0
        if typ == 1:
            if K.hash_get_nb(hkeys, hvals, sc, oid) >= 0:
                f |= F_DUP
            else:
                opp = sc[K.S_ASK] if side > 0 else sc[K.S_BID]
                if opp != 0 and ((side > 0 and price >= opp) or (side < 0 and price <= opp)):
                    f |= F_CROSS
                K._new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, size, ts, 0, False)
        elif typ == 2 or typ == 3 or typ == 4:
            # The message's size is what left the level (rule 2b): the named order gives what it has;
            # any difference is liquidity whose per-order split changed while the level was out of view.
            slot = K.hash_get_nb(hkeys, hvals, sc, oid)
            rest = size
            if slot >= 0:
                q = orders[slot, K.O_QTY]
                if orders[slot, K.O_SIDE] != side or orders[slot, K.O_PRICE] != price:
                    f |= F_ATTR
                if typ == 3:
                    K._remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
                    if size != q:
                        f |= F_BOOK_DELETE_SIZE
                    if size < q:
                        K._set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, price,
                                     levels[s, price - sc[S_BASE_], K.L_QTY] + q - size)
                        sc[K.S_NEVT] = 0
                    rest = size - q if size > q else 0
                else:
                    take = size if size < q else q
                    K._reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, take)
                    rest = size - take
                    if rest > 0:
                        f |= F_OVERSIZE
            if rest > 0:
                if slot < 0:
                    f |= F_UNKNOWN_SEEDED
                if price >= sc[S_BASE_] and price <= top:
                    rest = _take_level(orders, levels, bm, hkeys, hvals, sc, side, price, rest)
                    if rest > 0:
                        f |= F_UNKNOWN_NOLIQ
                else:
                    f |= F_UNKNOWN_NOLIQ
        if sc[K.S_NEEDPX] == 1:
            f |= F_UNKNOWN_SHORT
        row = book[i]
        K.snapshot_nb(levels, bm, sc, L, snap)
        bits = _compare_nb(snap, row, L)
        pre[i] = bits
        # rule 4: prices newly inside the visible window are taken from the row
        prev = book[i - 1]
        changed = False
        for sd in range(2):
            plo, phi = _window(prev, L, sd)
            clo, chi = _window(row, L, sd)
            if sd == 1 and chi > phi:
                changed |= _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, 1, phi + 1, min(chi, top))
            if sd == 0 and clo < plo:
                changed |= _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, 0, max(clo, sc[S_BASE_]), plo - 1)
        if changed:
            f |= F_ENTERED_VIEW
            K.snapshot_nb(levels, bm, sc, L, snap)
            bits = _compare_nb(snap, row, L)
        post[i] = bits
        if bits != (1 << L) - 1:
            f |= F_RESYNC
            for sd in range(2):
                clo, chi = _window(row, L, sd)
                _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, sd,
                            max(clo, sc[S_BASE_]), min(chi, top))
        flags[i] = f
    return n


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
    first_mismatch_rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

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
        for t, c in zip(*np.unique(types, return_counts=True)):
            out[f"unexplained_after_type_{int(t)}"] = int(c)
    return out


def verify_bits(msgs: np.ndarray, book: np.ndarray, *, grid: int = 1) -> np.ndarray:
    """Per-row post-rule match bits (bit k = level k+1 equal) of :func:`verify_lobster`, ``int64[n]``."""
    return verify_lobster(msgs, book, grid=grid, repeat_timing=False, _bits=True)  # type: ignore[return-value]


def verify_lobster(msgs: np.ndarray, book: np.ndarray, *, grid: int = 1, repeat_timing: bool = True,
                   _bits: bool = False) -> VerifyReport:
    """Replay and verify a LOBSTER day (see the module docstring for the rules).

    ``msgs int64[n, 6]``, ``book int64[n, 4L]`` in ticks; ``grid`` divides resting prices (ticks -> the
    engine's price index, e.g. 100 LOBSTER units = one cent), making the price band 100x smaller.
    ``events_per_s`` is messages / wall time of the (already compiled) replay kernel.
    """
    n = msgs.shape[0]
    L = book.shape[1] // 4
    m = msgs.copy()
    book_t = book.copy()
    vis = m[:, 1] <= 4
    m[:, 4] = np.where(vis, m[:, 4] // grid, 0)
    book_t[:, 0::2] //= grid
    pxs = np.concatenate([m[vis, 4], book_t[:, 0::2][book_t[:, 0::2] > 0]])
    lo, hi = int(pxs.min()), int(pxs.max())

    def run() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        # capacity up front so the kernel never has to stop: every add may rest at once, plus one
        # synthetic order per (side, price) in the band
        cap = int((m[:, 1] == 1).sum()) + 2 * (hi - lo + 256) + 64
        ob = OrderBook(capacity=cap, price_band=(max(1, lo - 64), hi + 64), tolerant=True)
        while ob._hkeys.shape[0] < 2 * cap + 64:
            ob._grow_hash()
        ob._events = np.zeros((1 << 16, 7), dtype=np.int64)
        # seed: row 0 as synthetic liquidity; when message 0 is an add, its order is kept by id
        seed_row = book_t[0].copy()
        first_add = None
        if m[0, 1] == 1:
            off = 0 if m[0, 5] < 0 else 2
            for k in range(L):
                if seed_row[4 * k + off] == m[0, 4] and seed_row[4 * k + off + 1] >= m[0, 3]:
                    seed_row[4 * k + off + 1] -= m[0, 3]
                    first_add = (int(m[0, 0]), K.K_APPLY_ADD, int(m[0, 2]), int(m[0, 5]), int(m[0, 4]), int(m[0, 3]), 1)
                    break
        seed = []
        for k in range(L):
            for s, off in ((-1, 0), (1, 2)):
                px, sz = int(seed_row[4 * k + off]), int(seed_row[4 * k + off + 1])
                if px > 0 and sz > 0:
                    seed.append((int(m[0, 0]), K.K_SET_LEVEL, 0, s, px, sz, 0))
        if first_add is not None:
            seed.append(first_add)
        if seed:
            res = ob.process(np.array(seed, dtype=np.int64))
            if res.status.any():  # pragma: no cover - validated by the parser
                raise ValueError("seed row could not be loaded")
        ob.drain_events()
        snap = np.zeros(4 * L, dtype=np.int64)
        pre = np.zeros(n, dtype=np.int64)
        post = np.zeros(n, dtype=np.int64)
        flags = np.zeros(n, dtype=np.int64)
        t0 = time.perf_counter()
        lobster_verify_nb(ob._orders, ob._levels, ob._bm, ob._hkeys, ob._hvals, ob._sc, ob._events, m, book_t, L,
                          snap, pre, post, flags)
        return pre, post, flags, time.perf_counter() - t0

    pre, post, flags, secs = run()
    if _bits:
        return post  # type: ignore[return-value]
    if repeat_timing:  # first call may include JIT/cache load; time a second, warm run
        pre, post, flags, secs = run()
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
        first_mismatch_rows=[int(x) + 1 for x in np.flatnonzero(mism)[:20]],  # 1-based file rows
    )
