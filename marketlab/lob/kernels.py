"""numba kernels of the price-time-priority limit-order book (L3: every order, FIFO queue per level).

All state lives in a handful of flat, preallocated NumPy arrays so one kernel call can process a whole
batch of commands without touching Python objects. :class:`marketlab.lob.engine.OrderBook` owns the
arrays, grows them when a kernel asks for room, and is the only supported way to use these kernels.

State arrays (all ``int64`` unless said otherwise)
--------------------------------------------------
``orders[cap, 8]``
    One row (64 bytes, one cache line) per order slot: ``O_ID, O_SIDE (+1/-1), O_PRICE (ticks),
    O_QTY (remaining lots), O_PREV, O_NEXT (slot links inside the level's FIFO; -1 = none), O_TS,
    O_SYN (SYN_LIQ: synthetic "pre-existing liquidity" of replay; SYN_DEFERRED: a crossing add held out
    of the book)``. Free slots form a list through ``O_NEXT`` starting at ``sc[S_FREE]``.
``levels[2, W + 2F, 4]``
    Per side (0 = bid, 1 = ask). Rows ``[0, W)`` are the dense *window*: the level at ``price`` is row
    ``price - sc[S_BASE]`` (``W = sc[S_NLEV]`` levels, at most ``sc[S_WCAP]``). Prices outside the window
    live on *far levels*: row ``W + k`` is the k-th far level of the side in ascending price order
    (``k < sc[S_NFAR + s]``) and ``levels[s, W + F + k, 0]`` its price (``F = sc[S_FCAP]``), found by
    binary search; inserting or deleting one shifts the rows after it, so no row index is kept across
    such a change. Columns: ``L_HEAD, L_TAIL`` (slots), ``L_QTY`` (total lots), ``L_CNT`` (orders).
    The window grows (re-based, doubling) up to ``S_WCAP``; beyond that a price becomes a far level, and
    when a far table fills the boundary re-centres the window (:func:`relayout_nb`).
``bitmap[2, W // 64]`` (``uint64``)
    Bit set where a window level is non-empty, so the next occupied level is found 64 prices at a time.
``hkeys[hcap], hvals[hcap]``
    Open-addressing hash map order id -> slot (linear probing, backward-shift deletion, ``hvals == -1``
    marks an empty bucket); ``hcap`` is a power of two kept at most half full.
``sc[N_SCALARS]``
    Scalars (``S_*`` below): window base and size, best bid/ask (0 = none), free-list head, counters, last
    timestamp, venue policy, far-table counts and capacity, the deferred-add list, ...

Commands (``cmds[n, 7]``): ``C_TS, C_KIND, C_ID, C_SIDE, C_PRICE, C_SIZE, C_AUX``; kinds are the ``K_*``
constants below. Outputs: ``fills[m, 7]`` (``ts, seq, taker_id, maker_id, aggressor_side, price, size``),
``events[m, 7]`` (``ts, seq, type, order_id, side, price, size`` with LOBSTER type codes, i.e. the
store's EVENTS_SCHEMA without ``symbol``), ``status[n]`` (0 accepted, ``R_*`` rejection code) and, when
``depth > 0``, ``snaps[n, 4*depth]`` (``ask_px_i, ask_sz_i, bid_px_i, bid_sz_i``; empty levels are 0).

Compilation (why the decorators look the way they do): every kernel is ``@kernel()``, i.e. ``@njit(cache=True,
_nrt=False, boundscheck=False)``. The kernels never allocate, so numba's reference-counting runtime has
nothing to manage, yet with it every call between kernels and every array view bumped an atomic
refcount: those ``lock inc/dec`` instructions were ~25% of replay time (perf). Small leaf helpers and the per-command
helpers of :func:`process_nb` are ``@kernel(inline=True)`` (numba-IR inlining: ~15% faster); the larger ones are left to LLVM to keep the first
compile short. Copies of snapshot rows are explicit loops: a slice assignment between two rows of the same
array allocates a temporary per event. The id -> slot hash (``hkeys``/``hvals``) are strided views of one
interleaved ``int64[hcap, 2]`` table, so a probe touches one cache line.

A kernel that runs out of room (order slots, hash buckets, window, far table, output rows) returns a negative
``NEED_*`` code and the index of the command it did *not* process; nothing of that command has been
applied, so the caller grows the arrays and resumes there.
"""

# The kernels are typed by numba from the array dtypes documented above, not by annotations.
# mypy: disable-error-code="no-untyped-def"
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

def kernel(inline: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """The one way kernels are compiled: ``njit(cache=True, _nrt=False, boundscheck=False)``, inlined at the
    numba-IR level with ``inline=True`` (see the module docstring for why)."""
    decorator: Callable[[Callable[..., Any]], Any] = njit(  # type: ignore[call-overload]
        cache=True, _nrt=False, boundscheck=False, inline="always" if inline else "never"
    )
    return decorator

# --- order slot columns
O_ID, O_SIDE, O_PRICE, O_QTY, O_PREV, O_NEXT, O_TS, O_SYN = 0, 1, 2, 3, 4, 5, 6, 7
# --- level columns
L_HEAD, L_TAIL, L_QTY, L_CNT = 0, 1, 2, 3
# --- scalars
S_BASE = 0  # price (ticks) of level index 0
S_NLEV = 1  # number of price levels in the band (multiple of 64)
S_BID = 2  # best bid price, 0 = no bids
S_ASK = 3  # best ask price, 0 = no asks
S_FREE = 4  # head of the free-slot list, -1 = full
S_LIVE = 5  # live orders
S_HSHIFT = 6  # 64 - log2(hcap) for Fibonacci hashing
S_HCOUNT = 7  # keys in the hash map
S_SEQ = 8  # next event sequence number
S_LASTTS = 9  # timestamp of the last accepted command
S_NBID = 10  # resting bid orders
S_NASK = 11  # resting ask orders
S_NFILL = 12  # fill rows written
S_NEVT = 13  # event rows written
S_NEEDPX = 14  # price that did not fit the band (with NEED_BAND)
S_TOLERANT = 15  # 1: replay resolves unknown ids against synthetic liquidity at (side, price)
S_WB = 16  # worst bid price in the last batch snapshot (0 = side had < depth levels): changes at >= it matter
S_WA = 17  # worst ask price in the last batch snapshot (BIG when < depth levels)
S_DIRTY = 18  # 1 when a level inside the last snapshot's window changed since that snapshot
S_XADD = 19  # venue policy for an apply_add that crosses the book: XADD_REJECT / XADD_REST
S_REDUCE = 20  # venue policy for apply_reduce sizes: REDUCE_LEFT (size left the book) / REDUCE_REMAINING
S_NFAR = 21  # far levels of side 0 (bids) at S_NFAR, of side 1 (asks) at S_NFAR + 1
S_FCAP = 23  # far level capacity F per side
S_WCAP = 24  # largest dense window (levels) the book may allocate; prices beyond it live in far levels
S_DEFHEAD = 26  # first deferred crossing add (slot, -1 = none), FIFO through O_NEXT
S_DEFTAIL = 27  # last deferred crossing add (slot)
S_NDEFER = 28  # deferred crossing adds waiting for the book to uncross
N_SCALARS = 32

# --- command columns and kinds
C_TS, C_KIND, C_ID, C_SIDE, C_PRICE, C_SIZE, C_AUX = 0, 1, 2, 3, 4, 5, 6
K_LIMIT = 1  # aux: TIF_GTC / TIF_IOC / TIF_FOK
K_MARKET = 2  # price ignored
K_CANCEL = 3  # by id (side ignored); size 0 = cancel all; else reduce by size (>= remaining cancels all)
K_MODIFY = 4  # by id (side ignored); price (0 = keep), size = new remaining size (0 = cancel)
K_APPLY_ADD = 5  # replay: rest without matching (crossing the book is rejected)
K_APPLY_REDUCE = 6  # replay: reduce by size; aux = event type to emit (2 cancel, 3 delete, 4 execute)
K_SET_LEVEL = 7  # replay: set the total at (side, price) to size through synthetic liquidity
K_NOOP = 8  # replay: a message that leaves the visible book unchanged (hidden execution, halt)
TIF_GTC, TIF_IOC, TIF_FOK = 0, 1, 2
XADD_REJECT, XADD_REST, XADD_DEFER = 0, 1, 2  # crossing apply_add: rejected (R_CROSS) / rested anyway (the book
# may cross) / held out of the book (O_SYN = SYN_DEFERRED) until the opposite side no longer crosses it
SYN_REAL, SYN_LIQ, SYN_DEFERRED = 0, 1, 2  # O_SYN: a real order / synthetic pre-existing liquidity / a deferred add
REDUCE_LEFT, REDUCE_REMAINING = 0, 1  # apply_reduce size: lots that left the book / lots the order still has

# --- event types (LOBSTER codes, = marketlab.core.schema.EventType)
E_ADD, E_CANCEL, E_DELETE, E_EXECUTE = 1, 2, 3, 4

# --- status codes: 0 ok, > 0 rejection (the book is unchanged), < 0 kernel needs room
OK = 0
R_SIZE = 1  # size <= 0
R_PRICE = 2  # price <= 0
R_DUP_ID = 3  # order id already live
R_UNKNOWN_ID = 4  # cancel/modify/reduce of an id that is not live
R_TS = 5  # timestamp earlier than the previous command's
R_FOK = 6  # fill-or-kill could not fill completely (killed, nothing traded)
R_OFF_TICK = 7  # price not an integer number of ticks (set at the Python boundary)
R_SIDE = 8  # side not +1/-1
R_KIND = 9  # unknown command kind
R_CROSS = 10  # replay add would cross the opposite best
R_OVERSIZE = 11  # replay reduce larger than the order's remaining size (strict mode)
R_ATTR = 12  # replay message's side/price differ from the live order's
R_ID = 13  # non-positive order id for a new order (ids <= 0 are reserved)
R_BAND = 14  # no longer produced (prices outside the dense window rest on far levels); kept for old logs
NEED_SLOTS = -1
NEED_HASH = -2
NEED_BAND = -3
NEED_OUT = -4
NEED_FAR = -5  # a far table is full: the boundary re-centres the window or doubles the far capacity

U1 = np.uint64(1)
U0 = np.uint64(0)
ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
FIB = np.uint64(11400714819323198485)


# ---------------------------------------------------------------- bitmap
@kernel(inline=True)
def _bit_set(bm, s, i):
    bm[s, i >> 6] |= U1 << np.uint64(i & 63)


@kernel(inline=True)
def _bit_clear(bm, s, i):
    bm[s, i >> 6] &= ~(U1 << np.uint64(i & 63))


@kernel()
def scan_up_nb(bm, s, i):
    """Smallest occupied level index >= i on side s, or -1."""
    nw = bm.shape[1]
    if i < 0:
        i = 0
    w = i >> 6
    if w >= nw:
        return -1
    word = bm[s, w] & (ALL << np.uint64(i & 63))
    while True:
        if word != U0:
            return (w << 6) + np.int64(trailing_zeros(word))  # type: ignore[call-arg]  # numba intrinsic
        w += 1
        if w >= nw:
            return -1
        word = bm[s, w]


@kernel()
def scan_down_nb(bm, s, i):
    """Largest occupied level index <= i on side s, or -1."""
    if i < 0:
        return -1
    nw = bm.shape[1]
    w = i >> 6
    if w >= nw:
        w = nw - 1
        word = bm[s, w]
    else:
        word = bm[s, w] & (ALL >> np.uint64(63 - (i & 63)))
    while True:
        if word != U0:
            return (w << 6) + 63 - np.int64(leading_zeros(word))  # type: ignore[call-arg]  # numba intrinsic
        w -= 1
        if w < 0:
            return -1
        word = bm[s, w]


# ---------------------------------------------------------------- hash map id -> slot
@kernel(inline=True)
def _home(key, shift):
    return np.int64((np.uint64(key) * FIB) >> np.uint64(shift))


@kernel(inline=True)
def hash_get_nb(hkeys, hvals, sc, key):
    """Slot of order ``key`` or -1."""
    mask = hkeys.shape[0] - 1
    i = _home(key, sc[S_HSHIFT])
    while hvals[i] != -1:
        if hkeys[i] == key:
            return hvals[i]
        i = (i + 1) & mask
    return -1


@kernel(inline=True)
def hash_put_nb(hkeys, hvals, sc, key, slot):
    """Insert ``key`` (must be absent)."""
    mask = hkeys.shape[0] - 1
    i = _home(key, sc[S_HSHIFT])
    while hvals[i] != -1:
        i = (i + 1) & mask
    hkeys[i] = key
    hvals[i] = slot
    sc[S_HCOUNT] += 1


@kernel()
def hash_del_nb(hkeys, hvals, sc, key):
    """Remove ``key`` (backward-shift deletion keeps probe chains intact without tombstones)."""
    mask = hkeys.shape[0] - 1
    shift = sc[S_HSHIFT]
    i = _home(key, shift)
    while hvals[i] != -1:
        if hkeys[i] == key:
            break
        i = (i + 1) & mask
    if hvals[i] == -1:
        return
    j = i
    while True:
        j = (j + 1) & mask
        if hvals[j] == -1:
            break
        k = _home(hkeys[j], shift)
        # move j back to i when its home bucket is not cyclically in (i, j]
        if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
            hkeys[i] = hkeys[j]
            hvals[i] = hvals[j]
            i = j
    hvals[i] = -1
    sc[S_HCOUNT] -= 1


@kernel()
def rehash_nb(orders, hkeys, hvals, sc):
    """Rebuild the (new, empty) hash map from the live slots of ``orders``."""
    hvals[:] = -1
    sc[S_HCOUNT] = 0
    for slot in range(orders.shape[0]):
        if orders[slot, O_QTY] > 0:
            hash_put_nb(hkeys, hvals, sc, orders[slot, O_ID], slot)


# ---------------------------------------------------------------- far levels (outside the dense window)
# levels[s, W + k] (k < sc[S_NFAR + s]) holds the k-th far level of side s in ascending price order and
# levels[s, W + F + k, 0] its price (W = sc[S_NLEV], F = sc[S_FCAP]). Rows move when a far level is
# inserted or deleted: nothing refers to a level row across such a change (orders name their price).
@kernel(inline=True)
def _far_pos(levels, sc, s, price):
    """First k with far price k of side s >= ``price`` (binary search; = count when none)."""
    pk = sc[S_NLEV] + sc[S_FCAP]
    lo = 0
    hi = sc[S_NFAR + s]
    while lo < hi:
        mid = (lo + hi) >> 1
        if levels[s, pk + mid, 0] < price:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(inline=True)
def _lvl(levels, sc, s, price):
    """Row of level (s, price): its window index, its far row, or -1 when a far level does not exist."""
    li = price - sc[S_BASE]
    if li >= 0 and li < sc[S_NLEV]:
        return li
    n = sc[S_NFAR + s]
    if n == 0:
        return -1
    k = _far_pos(levels, sc, s, price)
    if k < n and levels[s, sc[S_NLEV] + sc[S_FCAP] + k, 0] == price:
        return sc[S_NLEV] + k
    return -1


@kernel()
def level_row_nb(levels, sc, side, price):
    """Row of level (side, price) or -1 (for the Python boundary)."""
    if sc[S_NLEV] == 0:
        return -1
    return _lvl(levels, sc, 0 if side > 0 else 1, price)


@kernel()
def _far_insert(levels, sc, s, price):
    """Insert an empty far level at ``price`` on side s (absent; room checked by the caller); its row."""
    w = sc[S_NLEV]
    pk = w + sc[S_FCAP]
    n = sc[S_NFAR + s]
    k = _far_pos(levels, sc, s, price)
    for j in range(n, k, -1):
        for c in range(4):
            levels[s, w + j, c] = levels[s, w + j - 1, c]
        levels[s, pk + j, 0] = levels[s, pk + j - 1, 0]
    levels[s, w + k, L_HEAD] = -1
    levels[s, w + k, L_TAIL] = -1
    levels[s, w + k, L_QTY] = 0
    levels[s, w + k, L_CNT] = 0
    levels[s, pk + k, 0] = price
    sc[S_NFAR + s] = n + 1
    return w + k


@kernel()
def _far_delete(levels, sc, s, row):
    """Remove the (empty) far level at ``row`` of side s."""
    w = sc[S_NLEV]
    pk = w + sc[S_FCAP]
    n = sc[S_NFAR + s]
    for j in range(row - w, n - 1):
        for c in range(4):
            levels[s, w + j, c] = levels[s, w + j + 1, c]
        levels[s, pk + j, 0] = levels[s, pk + j + 1, 0]
    sc[S_NFAR + s] = n - 1


@kernel()
def next_up_nb(levels, bm, sc, s, price):
    """Smallest occupied price > ``price`` on side s (window or far), 0 when none."""
    base = sc[S_BASE]
    w = sc[S_NLEV]
    best = 0
    i = price + 1 - base
    if i < w:
        j = scan_up_nb(bm, s, i)
        if j >= 0:
            best = j + base
    n = sc[S_NFAR + s]
    if n > 0:
        k = _far_pos(levels, sc, s, price + 1)
        if k < n:
            fp = levels[s, w + sc[S_FCAP] + k, 0]
            if best == 0 or fp < best:
                best = fp
    return best


@kernel()
def next_down_nb(levels, bm, sc, s, price):
    """Largest occupied price < ``price`` on side s (window or far), 0 when none."""
    base = sc[S_BASE]
    w = sc[S_NLEV]
    best = 0
    i = price - 1 - base
    if i >= 0 and w > 0:
        j = scan_down_nb(bm, s, i)
        if j >= 0:
            best = j + base
    n = sc[S_NFAR + s]
    if n > 0:
        k = _far_pos(levels, sc, s, price) - 1
        if k >= 0:
            fp = levels[s, w + sc[S_FCAP] + k, 0]
            if fp > best:
                best = fp
    return best


@kernel()
def relayout_nb(levels, sc, new, new_bm, new_base, new_w, new_f):
    """Copy every occupied level (window and far) into ``new`` (``int64[2, new_w + 2*new_f, 4]``, window
    rows initialised to empty) laid out for window ``[new_base, new_base + new_w)`` with far capacity
    ``new_f``, set ``new_bm``, then point the scalars at the new layout. Returns the far levels of the
    fuller side, or -1 (nothing changed) when ``new_f`` is too small."""
    base = sc[S_BASE]
    w = sc[S_NLEV]
    f = sc[S_FCAP]
    need = 0
    for s in range(2):  # count far levels of the new layout first: fail before writing anything
        cnt = 0
        for k in range(sc[S_NFAR + s]):
            p = levels[s, w + f + k, 0]
            if p < new_base or p >= new_base + new_w:
                cnt += 1
        for li in range(w):
            if levels[s, li, L_CNT] > 0 and (li + base < new_base or li + base >= new_base + new_w):
                cnt += 1
        if cnt > need:
            need = cnt
    if need > new_f:
        return -1
    new_bm[:, :] = U0
    for s in range(2):
        n = sc[S_NFAR + s]
        nf = 0
        k = 0
        li = 0
        while k < n or li < w:  # ascending price: far below the window, window, far above it
            if li < w and levels[s, li, L_CNT] == 0:
                li += 1
                continue
            if k < n and (li >= w or levels[s, w + f + k, 0] < li + base):
                p = levels[s, w + f + k, 0]
                src = w + k
                k += 1
            else:
                p = li + base
                src = li
                li += 1
            if p >= new_base and p < new_base + new_w:
                dst = p - new_base
                _bit_set(new_bm, s, dst)
            else:
                dst = new_w + nf
                new[s, new_w + new_f + nf, 0] = p
                nf += 1
            for c in range(4):
                new[s, dst, c] = levels[s, src, c]
        sc[S_NFAR + s] = nf
    sc[S_BASE] = new_base
    sc[S_NLEV] = new_w
    sc[S_FCAP] = new_f
    return need


# ---------------------------------------------------------------- levels and orders
@kernel(inline=True)
def _sidx(side):
    return 0 if side > 0 else 1


@kernel(inline=True)
def _touch(sc, s, price):
    """Mark the batch snapshot dirty when a level inside its window changes (so unchanged rows are copied)."""
    if s == 0:
        if price >= sc[S_WB]:
            sc[S_DIRTY] = 1
    elif price <= sc[S_WA]:
        sc[S_DIRTY] = 1


@kernel(inline=True)
def _level_gained(levels, bm, sc, s, li, price):
    """Level (s, li) just became non-empty: set its bit (window levels) and update the best price."""
    if li < sc[S_NLEV]:
        _bit_set(bm, s, li)
    if s == 0:
        if sc[S_BID] == 0 or price > sc[S_BID]:
            sc[S_BID] = price
    else:
        if sc[S_ASK] == 0 or price < sc[S_ASK]:
            sc[S_ASK] = price


@kernel()
def _level_emptied(levels, bm, sc, s, li, price):
    """Level (s, li) just became empty: clear its bit (or delete the far level) and move the best price
    if it was the best."""
    if li < sc[S_NLEV]:
        _bit_clear(bm, s, li)
    else:
        _far_delete(levels, sc, s, li)
    if s == 0:
        if sc[S_BID] == price:
            sc[S_BID] = next_down_nb(levels, bm, sc, 0, price)
    else:
        if sc[S_ASK] == price:
            sc[S_ASK] = next_up_nb(levels, bm, sc, 1, price)


@kernel(inline=True)
def _take_slot(orders, sc, oid, side, price, qty, ts, syn):
    """Pop a free order slot and write the order's id, side, price, size, time and origin (``O_SYN``) into it;
    the queue links are the caller's. Returns the slot (room is checked by the caller)."""
    slot = sc[S_FREE]
    sc[S_FREE] = orders[slot, O_NEXT]
    orders[slot, O_ID] = oid
    orders[slot, O_SIDE] = side
    orders[slot, O_PRICE] = price
    orders[slot, O_QTY] = qty
    orders[slot, O_TS] = ts
    orders[slot, O_SYN] = syn
    return slot


@kernel()
def _new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, qty, ts, syn, front):
    """Allocate a slot and link it at the tail (``front`` False) or head of its level. Room is checked
    by the caller."""
    s = _sidx(side)
    li = _lvl(levels, sc, s, price)
    if li < 0:
        li = _far_insert(levels, sc, s, price)
    slot = _take_slot(orders, sc, oid, side, price, qty, ts, syn)
    if levels[s, li, L_CNT] == 0:
        orders[slot, O_PREV] = -1
        orders[slot, O_NEXT] = -1
        levels[s, li, L_HEAD] = slot
        levels[s, li, L_TAIL] = slot
    elif front:
        h = levels[s, li, L_HEAD]
        orders[slot, O_PREV] = -1
        orders[slot, O_NEXT] = h
        orders[h, O_PREV] = slot
        levels[s, li, L_HEAD] = slot
    else:
        t = levels[s, li, L_TAIL]
        orders[slot, O_PREV] = t
        orders[slot, O_NEXT] = -1
        orders[t, O_NEXT] = slot
        levels[s, li, L_TAIL] = slot
    levels[s, li, L_QTY] += qty
    levels[s, li, L_CNT] += 1
    _touch(sc, s, price)
    if levels[s, li, L_CNT] == 1:
        _level_gained(levels, bm, sc, s, li, price)
    hash_put_nb(hkeys, hvals, sc, oid, slot)
    sc[S_LIVE] += 1
    if s == 0:
        sc[S_NBID] += 1
    else:
        sc[S_NASK] += 1
    return slot


@kernel()
def _remove_order(orders, levels, bm, hkeys, hvals, sc, slot):
    """Unlink ``slot`` from its level (whatever quantity it still has), free it and forget its id."""
    s = _sidx(orders[slot, O_SIDE])
    price = orders[slot, O_PRICE]
    li = _lvl(levels, sc, s, price)
    p = orders[slot, O_PREV]
    n = orders[slot, O_NEXT]
    if p == -1:
        levels[s, li, L_HEAD] = n
    else:
        orders[p, O_NEXT] = n
    if n == -1:
        levels[s, li, L_TAIL] = p
    else:
        orders[n, O_PREV] = p
    levels[s, li, L_QTY] -= orders[slot, O_QTY]
    levels[s, li, L_CNT] -= 1
    _touch(sc, s, price)
    hash_del_nb(hkeys, hvals, sc, orders[slot, O_ID])
    orders[slot, O_QTY] = 0
    orders[slot, O_NEXT] = sc[S_FREE]
    sc[S_FREE] = slot
    sc[S_LIVE] -= 1
    if s == 0:
        sc[S_NBID] -= 1
    else:
        sc[S_NASK] -= 1
    if levels[s, li, L_CNT] == 0:
        _level_emptied(levels, bm, sc, s, li, price)


@kernel()
def _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, qty):
    """Take ``qty`` (<= remaining) off an order, removing it when nothing is left."""
    if qty >= orders[slot, O_QTY]:
        _remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
    else:
        orders[slot, O_QTY] -= qty
        s = _sidx(orders[slot, O_SIDE])
        levels[s, _lvl(levels, sc, s, orders[slot, O_PRICE]), L_QTY] -= qty
        _touch(sc, s, orders[slot, O_PRICE])


@kernel(inline=True)
def _row7(out, k, ts, seq, c2, c3, c4, price, size):
    """Write row ``k`` of an events or fills array (their seven columns share this layout)."""
    out[k, 0] = ts
    out[k, 1] = seq
    out[k, 2] = c2
    out[k, 3] = c3
    out[k, 4] = c4
    out[k, 5] = price
    out[k, 6] = size


@kernel(inline=True)
def _emit(events, sc, ts, etype, oid, side, price, size):
    k = sc[S_NEVT]
    _row7(events, k, ts, sc[S_SEQ], etype, oid, side, price, size)
    sc[S_SEQ] += 1
    sc[S_NEVT] = k + 1


@kernel(inline=True)
def _fill(fills, sc, ts, taker, maker, aggressor, price, size):
    k = sc[S_NFILL]
    _row7(fills, k, ts, sc[S_SEQ], taker, maker, aggressor, price, size)
    sc[S_NFILL] = k + 1


@kernel(inline=True)
def synthetic_id_nb(side, price):
    """Negative id of the synthetic order holding pre-existing liquidity at (side, price)."""
    return -(price * 2 + (0 if side > 0 else 1)) - 1


@kernel()
def _fillable(orders, levels, bm, sc, side, price, market, need):
    """Opposite-side quantity available at prices no worse than ``price`` (stops once >= need)."""
    tot = 0
    if side > 0:
        p = sc[S_ASK]
        while p > 0 and tot < need:
            if not market and p > price:
                break
            tot += levels[1, _lvl(levels, sc, 1, p), L_QTY]
            p = next_up_nb(levels, bm, sc, 1, p)
    else:
        p = sc[S_BID]
        while p > 0 and tot < need:
            if not market and p < price:
                break
            tot += levels[0, _lvl(levels, sc, 0, p), L_QTY]
            p = next_down_nb(levels, bm, sc, 0, p)
    return tot


@kernel()
def _match(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, side, price, qty, market):
    """Match an incoming order against the opposite side in price-time priority; returns what is left."""
    o = 1 if side > 0 else 0
    while qty > 0:
        best = sc[S_ASK] if side > 0 else sc[S_BID]
        if best == 0:
            break
        if not market:
            if side > 0 and best > price:
                break
            if side < 0 and best < price:
                break
        # one fill per pass: emptying a far level moves the rows after it, so the row is looked up again
        slot = levels[o, _lvl(levels, sc, o, best), L_HEAD]
        f = orders[slot, O_QTY]
        if f > qty:
            f = qty
        mid = orders[slot, O_ID]
        _fill(fills, sc, ts, oid, mid, side, best, f)
        _emit(events, sc, ts, E_EXECUTE, mid, -side, best, f)
        qty -= f
        _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, f)
    return qty


@kernel(inline=True)
def _room(orders_free, hkeys, sc, fills, events, need_rows):
    """Negative NEED_* code when a command touching up to ``need_rows`` output rows might not fit."""
    if orders_free < 0:
        return NEED_SLOTS
    if 2 * (sc[S_HCOUNT] + 2) > hkeys.shape[0]:
        return NEED_HASH
    if sc[S_NFILL] + need_rows > fills.shape[0] or sc[S_NEVT] + need_rows + 2 > events.shape[0]:
        return NEED_OUT
    return OK


@kernel(inline=True)
def _in_band(sc, price):
    return price >= sc[S_BASE] and price < sc[S_BASE] + sc[S_NLEV]


@kernel()
def _submit(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, side, price, qty, market, tif):
    """New order: match, then rest the remainder (GTC limit only). Validation done by the caller."""
    if tif == TIF_FOK:
        if _fillable(orders, levels, bm, sc, side, price, market, qty) < qty:
            return R_FOK
    left = _match(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, side, price, qty, market)
    if left > 0 and not market and tif == TIF_GTC:
        _new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, left, ts, 0, False)
        _emit(events, sc, ts, E_ADD, oid, side, price, left)
    return OK


@kernel()
def _set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, price, size):
    """Make the level total at (side, price) equal ``size`` by resizing its synthetic order (created at
    the head of the queue: pre-existing liquidity is older than anything seen); if real orders alone
    exceed ``size``, the oldest are reduced (their out-of-view history is unknown)."""
    s = _sidx(side)
    li = _lvl(levels, sc, s, price)
    sid = synthetic_id_nb(side, price)
    sslot = hash_get_nb(hkeys, hvals, sc, sid)
    syn = orders[sslot, O_QTY] if sslot >= 0 else 0
    real = (levels[s, li, L_QTY] if li >= 0 else 0) - syn
    if size >= real:
        want = size - real
        if want == syn:
            return
        if sslot >= 0:
            if want == 0:
                _remove_order(orders, levels, bm, hkeys, hvals, sc, sslot)
                _emit(events, sc, ts, E_DELETE, sid, side, price, syn)
            else:
                orders[sslot, O_QTY] = want
                levels[s, li, L_QTY] += want - syn
                _touch(sc, s, price)
                _emit(events, sc, ts, E_ADD if want > syn else E_CANCEL, sid, side, price, abs(want - syn))
        else:
            _new_order(orders, levels, bm, hkeys, hvals, sc, sid, side, price, want, ts, 1, True)
            _emit(events, sc, ts, E_ADD, sid, side, price, want)
        return
    if sslot >= 0:
        _remove_order(orders, levels, bm, hkeys, hvals, sc, sslot)
        _emit(events, sc, ts, E_DELETE, sid, side, price, syn)
    excess = real - size
    while excess > 0:
        slot = levels[s, _lvl(levels, sc, s, price), L_HEAD]
        q = orders[slot, O_QTY]
        take = q if q < excess else excess
        oid = orders[slot, O_ID]
        _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, take)
        _emit(events, sc, ts, E_DELETE if take == q else E_CANCEL, oid, side, price, take)
        excess -= take


# ---------------------------------------------------------------- deferred crossing adds (XADD_DEFER)
# A deferred add holds an order slot and its id in the hash (so the feed's fills and cancels find it) but
# no level; deferred slots form a FIFO list through O_PREV/O_NEXT (S_DEFHEAD/S_DEFTAIL). While it waits,
# its reductions change only its size and emit nothing: the book does not change until it rests.
@kernel()
def _defer(orders, hkeys, hvals, sc, oid, side, price, qty, ts):
    """Hold a crossing add out of the book (room checked by the caller)."""
    slot = _take_slot(orders, sc, oid, side, price, qty, ts, SYN_DEFERRED)
    tail = sc[S_DEFTAIL]
    orders[slot, O_PREV] = tail
    orders[slot, O_NEXT] = -1
    if sc[S_DEFHEAD] < 0:
        sc[S_DEFHEAD] = slot
    else:
        orders[tail, O_NEXT] = slot
    sc[S_DEFTAIL] = slot
    hash_put_nb(hkeys, hvals, sc, oid, slot)
    sc[S_NDEFER] += 1


@kernel()
def _undefer(orders, hkeys, hvals, sc, slot):
    """Drop a deferred add (filled, cancelled, or about to rest): unlink, forget its id, free the slot."""
    p = orders[slot, O_PREV]
    n = orders[slot, O_NEXT]
    if p < 0:
        sc[S_DEFHEAD] = n
    else:
        orders[p, O_NEXT] = n
    if n < 0:
        sc[S_DEFTAIL] = p
    else:
        orders[n, O_PREV] = p
    hash_del_nb(hkeys, hvals, sc, orders[slot, O_ID])
    orders[slot, O_QTY] = 0
    orders[slot, O_SYN] = SYN_REAL
    orders[slot, O_NEXT] = sc[S_FREE]
    sc[S_FREE] = slot
    sc[S_NDEFER] -= 1


@kernel()
def _deferred_take(orders, hkeys, hvals, sc, slot, qty):
    """Take ``qty`` off a deferred add (all of it drops the add)."""
    if qty >= orders[slot, O_QTY]:
        _undefer(orders, hkeys, hvals, sc, slot)
    else:
        orders[slot, O_QTY] -= qty


@kernel()
def _rest_deferred(orders, levels, bm, hkeys, hvals, sc, events, ts):
    """Rest, oldest first, every deferred add the opposite side no longer crosses (event 1 at ``ts``)."""
    slot = sc[S_DEFHEAD]
    while slot >= 0:
        nxt = orders[slot, O_NEXT]
        side = orders[slot, O_SIDE]
        price = orders[slot, O_PRICE]
        opp = sc[S_ASK] if side > 0 else sc[S_BID]
        if opp == 0 or (side > 0 and price < opp) or (side < 0 and price > opp):
            oid = orders[slot, O_ID]
            qty = orders[slot, O_QTY]
            ots = orders[slot, O_TS]
            _undefer(orders, hkeys, hvals, sc, slot)
            _new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, qty, ots, SYN_REAL, False)
            _emit(events, sc, ts, E_ADD, oid, side, price, qty)
        slot = nxt


@kernel(inline=True)
def _check_room(hkeys, sc, fills, events, kind, side, price):
    """``NEED_*`` when command (kind, side, price) might not fit the arrays, else OK: output rows for the
    worst case (every resting order on the opposite side fills; both sides for set_level/modify), a free
    slot, hash headroom and, for commands that can rest an order, a price inside the band."""
    need = sc[S_NASK] if side > 0 else sc[S_NBID]
    if kind == K_SET_LEVEL or kind == K_MODIFY:
        need = sc[S_NASK] + sc[S_NBID]
    nd = sc[S_NDEFER]
    code = _room(sc[S_FREE], hkeys, sc, fills, events, need + nd + 3)
    if code != OK:
        return code
    f = sc[S_FCAP]
    if nd > 0 and (sc[S_NFAR] + nd >= f or sc[S_NFAR + 1] + nd >= f):
        return NEED_FAR  # a deferred add may rest at a new far level after this command
    rests = kind == K_LIMIT or kind == K_APPLY_ADD or kind == K_SET_LEVEL or kind == K_MODIFY
    if rests and price > 0 and not _in_band(sc, price):
        # grow the window while it stays within S_WCAP levels, else the price is a far level
        w = sc[S_NLEV]
        lo = min(sc[S_BASE], price)
        hi = max(sc[S_BASE] + w, price + 1)
        if w == 0 or hi - lo <= sc[S_WCAP]:
            sc[S_NEEDPX] = price
            return NEED_BAND
        if sc[S_NFAR] >= f or sc[S_NFAR + 1] >= f:
            sc[S_NEEDPX] = price
            return NEED_FAR
    return OK


@kernel(inline=True)
def _cmd_new(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, kind, oid, side, price, size, aux):
    """limit / market / apply_add: validate, then match-and-rest (or rest only, for apply_add)."""
    if side != 1 and side != -1:
        return R_SIDE
    if size <= 0:
        return R_SIZE
    if kind != K_MARKET and price <= 0:
        return R_PRICE
    if oid <= 0:
        return R_ID
    if hash_get_nb(hkeys, hvals, sc, oid) >= 0:
        return R_DUP_ID
    if kind == K_APPLY_ADD:
        opp = sc[S_ASK] if side > 0 else sc[S_BID]
        if opp != 0 and ((side > 0 and price >= opp) or (side < 0 and price <= opp)):
            if sc[S_XADD] == XADD_REJECT:
                return R_CROSS
            if sc[S_XADD] == XADD_DEFER:
                _defer(orders, hkeys, hvals, sc, oid, side, price, size, ts)
                return OK
        _new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, size, ts, 0, False)
        _emit(events, sc, ts, E_ADD, oid, side, price, size)
        return OK
    tif = aux if kind == K_LIMIT else TIF_IOC
    return _submit(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, side, price, size, kind == K_MARKET, tif)


@kernel(inline=True)
def _qty_side_price(orders, slot):
    """(remaining quantity, side, price) of the order in ``slot``."""
    return orders[slot, O_QTY], orders[slot, O_SIDE], orders[slot, O_PRICE]


@kernel(inline=True)
def _cmd_cancel(orders, levels, bm, hkeys, hvals, sc, events, ts, oid, size):
    """cancel: size 0 or >= remaining deletes the order, else reduces it (keeps priority)."""
    slot = hash_get_nb(hkeys, hvals, sc, oid)
    if size < 0:
        return R_SIZE
    if slot < 0 or oid <= 0:
        return R_UNKNOWN_ID
    q, sd, px = _qty_side_price(orders, slot)
    if orders[slot, O_SYN] == SYN_DEFERRED:
        _deferred_take(orders, hkeys, hvals, sc, slot, q if size == 0 else size)
        return OK
    if size == 0 or size >= q:
        _remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
        _emit(events, sc, ts, E_DELETE, oid, sd, px, q)
    else:
        _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, size)
        _emit(events, sc, ts, E_CANCEL, oid, sd, px, size)
    return OK


@kernel(inline=True)
def _cmd_modify(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, price, size):
    """modify to (price, size): a same-price reduction keeps priority; a price change or size increase is
    cancel + new order (loses priority, may match); size 0 cancels the order."""
    if size == 0:
        return _cmd_cancel(orders, levels, bm, hkeys, hvals, sc, events, ts, oid, 0)
    slot = hash_get_nb(hkeys, hvals, sc, oid)
    if size < 0:
        return R_SIZE
    if price < 0:
        return R_PRICE
    if slot < 0 or oid <= 0:
        return R_UNKNOWN_ID
    q, sd, px = _qty_side_price(orders, slot)
    newpx = px if price == 0 else price
    if orders[slot, O_SYN] == SYN_DEFERRED:  # still waiting: it rests with its new price and size
        orders[slot, O_PRICE] = newpx
        orders[slot, O_QTY] = size
        return OK
    if newpx == px and size <= q:
        if size < q:
            _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, q - size)
            _emit(events, sc, ts, E_CANCEL, oid, sd, px, q - size)
        return OK
    _remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
    _emit(events, sc, ts, E_DELETE, oid, sd, px, q)
    _submit(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, sd, newpx, size, False, TIF_GTC)
    return OK


@kernel(inline=True)
def _cmd_apply_reduce(orders, levels, bm, hkeys, hvals, sc, events, ts, oid, side, price, size, aux):
    """apply_reduce (replay): take ``size`` off order ``oid`` and emit event type ``aux`` (2/3/4). In
    tolerant mode an unknown id is served by the synthetic liquidity at (side, price) and an oversize
    reduction is clamped. With the ``REDUCE_REMAINING`` policy ``size`` is what the order still has after
    the event (0 removes it) instead of what left the book."""
    if side != 1 and side != -1:
        return R_SIDE
    remaining = sc[S_REDUCE] == REDUCE_REMAINING
    slot = hash_get_nb(hkeys, hvals, sc, oid)
    if size < 0 or (size == 0 and not remaining):
        return R_SIZE
    if slot < 0 and sc[S_TOLERANT] == 1 and price > 0:
        # an order that predates the data: take it from the synthetic liquidity at its level
        slot = hash_get_nb(hkeys, hvals, sc, synthetic_id_nb(side, price))
    if slot < 0:
        return R_UNKNOWN_ID
    q, sd, px = _qty_side_price(orders, slot)
    if sd != side or px != price:
        return R_ATTR
    if remaining:
        if size >= q:  # a "reduce" to the same or a larger size is not a reduction
            return R_OVERSIZE
        size = q - size
    if size > q and sc[S_TOLERANT] == 0:
        return R_OVERSIZE
    take = size if size < q else q
    if orders[slot, O_SYN] == SYN_DEFERRED:
        _deferred_take(orders, hkeys, hvals, sc, slot, take)
        return OK
    eid = orders[slot, O_ID]
    _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, take)
    et = aux if (aux == E_CANCEL or aux == E_EXECUTE) else E_DELETE
    if et == E_CANCEL and take == q:
        et = E_DELETE
    _emit(events, sc, ts, et, eid, sd, px, take)
    return OK


@kernel(inline=True)
def _apply_cmd(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, kind, oid, side, price, size, aux):
    """Validate and apply one command (room already checked); returns 0 or its ``R_*`` code (the book is
    unchanged on a rejection)."""
    if ts < sc[S_LASTTS]:
        return R_TS
    if kind == K_NOOP:
        return OK
    if kind == K_LIMIT or kind == K_MARKET or kind == K_APPLY_ADD:
        return _cmd_new(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, kind, oid, side, price, size, aux)
    if kind == K_CANCEL:
        return _cmd_cancel(orders, levels, bm, hkeys, hvals, sc, events, ts, oid, size)
    if kind == K_MODIFY:
        return _cmd_modify(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, oid, price, size)
    if kind == K_APPLY_REDUCE:
        return _cmd_apply_reduce(orders, levels, bm, hkeys, hvals, sc, events, ts, oid, side, price, size, aux)
    if kind == K_SET_LEVEL:
        if side != 1 and side != -1:
            return R_SIDE
        if size < 0:
            return R_SIZE
        if price <= 0:
            return R_PRICE
        _set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, price, size)
        return OK
    return R_KIND


@kernel(inline=True)
def _snapshot_row(levels, bm, sc, depth, snaps, i, start):
    """``snaps[i]`` = top-``depth`` book after command i: recomputed when a level inside the last
    snapshot's window changed (or at the batch start), else copied from row i-1 (an explicit loop: a
    slice assignment of overlapping views allocates a temporary per event)."""
    if sc[S_DIRTY] == 1 or i == start:
        snapshot_nb(levels, bm, sc, depth, snaps[i])
        _set_window(sc, snaps[i], depth)
    else:
        for j in range(4 * depth):
            snaps[i, j] = snaps[i - 1, j]


@kernel()
def process_nb(orders, levels, bm, hkeys, hvals, sc, cmds, start, status, fills, events, snaps, depth, stop_on_reject):
    """Apply ``cmds[start:]`` in order.

    Returns ``(code, i)``: ``code`` 0 when all commands were processed (``i = len(cmds)``), a ``NEED_*``
    code when command ``i`` needs more room (nothing of it applied), or with ``stop_on_reject`` the
    rejection code of command ``i`` (which was not applied). ``status[i]`` receives each command's code;
    ``snaps[i]`` the top-``depth`` book after command ``i`` when ``depth > 0``.
    """
    n = cmds.shape[0]
    for i in range(start, n):
        ts = cmds[i, C_TS]
        kind = cmds[i, C_KIND]
        side = cmds[i, C_SIDE]
        price = cmds[i, C_PRICE]
        code = _check_room(hkeys, sc, fills, events, kind, side, price)
        if code != OK:
            return code, i
        code = _apply_cmd(orders, levels, bm, hkeys, hvals, sc, fills, events, ts, kind, cmds[i, C_ID], side, price,
                          cmds[i, C_SIZE], cmds[i, C_AUX])
        status[i] = code
        if code != OK and code != R_FOK and stop_on_reject:
            return code, i
        if code == OK or code == R_FOK:
            sc[S_LASTTS] = ts
            if sc[S_NDEFER] > 0:
                _rest_deferred(orders, levels, bm, hkeys, hvals, sc, events, ts)
        if depth > 0:
            _snapshot_row(levels, bm, sc, depth, snaps, i, start)
    return OK, n


@kernel()
def one_nb(orders, levels, bm, hkeys, hvals, sc, cmd, status, fills, events, nosnap, ts, kind, oid, side, price, size,
           aux):
    """One command from scalars (the per-call simulation API): writes it into ``cmd[0]`` and runs
    :func:`process_nb` without snapshots. Returns its status (0 or ``R_*``), or a negative ``NEED_*`` code
    when the arrays must grow first (nothing applied; the caller grows them and re-runs ``cmd``)."""
    cmd[0, C_TS] = ts
    cmd[0, C_KIND] = kind
    cmd[0, C_ID] = oid
    cmd[0, C_SIDE] = side
    cmd[0, C_PRICE] = price
    cmd[0, C_SIZE] = size
    cmd[0, C_AUX] = aux
    status[0] = 0
    # Typed zeros, not literals: a literal 0/False would compile a second, literal-specialised copy of the
    # (large) process_nb beside the one the batch path uses, doubling the engine's first-run compile time.
    zero = np.int64(0)
    code, i = process_nb(orders, levels, bm, hkeys, hvals, sc, cmd, zero, status, fills, events, nosnap, zero,
                         np.bool_(False))
    return code if code < 0 else status[0]


@kernel()
def _set_window(sc, row, depth):
    """Record the top-``depth`` window of a fresh snapshot row and clear the dirty flag."""
    wa = row[4 * (depth - 1)]
    wb = row[4 * (depth - 1) + 2]
    sc[S_WA] = wa if wa > 0 else np.int64(1) << np.int64(62)
    sc[S_WB] = wb
    sc[S_DIRTY] = 0


@kernel()
def snapshot_nb(levels, bm, sc, depth, out):
    """Write the top ``depth`` levels into ``out[4*depth]`` as ask_px, ask_sz, bid_px, bid_sz per level."""
    _snap_side(levels, bm, sc, depth, out, 1)
    _snap_side(levels, bm, sc, depth, out, 0)


@kernel(inline=True)
def _snap_side(levels, bm, sc, depth, out, s):
    """Side ``s`` of :func:`snapshot_nb` (a constant after inlining, so each side compiles to its own loop):
    asks (s = 1) into columns 0, 1 of each level walking up in price, bids (s = 0) into columns 2, 3 walking
    down. When the best price is in the window no far level lies on its inner side, so the window's bitmap is
    walked outwards by index and the far levels beyond the window follow in table order (the cost of far stub
    orders is nil until the window's levels run out); a far best price takes the general walk."""
    base = sc[S_BASE]
    w = sc[S_NLEV]
    p = sc[S_BID + s]  # S_ASK = S_BID + 1
    c = 2 - 2 * s
    k = 0
    if p > 0 and p - base < w and p >= base:
        li = p - base
        while k < depth and li >= 0:
            out[4 * k + c] = li + base
            out[4 * k + c + 1] = levels[s, li, L_QTY]
            k += 1
            li = scan_up_nb(bm, 1, li + 1) if s == 1 else scan_down_nb(bm, 0, li - 1)
        n = sc[S_NFAR + s]
        if k < depth and n > 0:
            pk = w + sc[S_FCAP]
            # far asks ascend from the first above the window; far bids descend from the last below it
            j = _far_pos(levels, sc, 1, base + w) if s == 1 else _far_pos(levels, sc, 0, base) - 1
            while k < depth and 0 <= j < n:
                out[4 * k + c] = levels[s, pk + j, 0]
                out[4 * k + c + 1] = levels[s, w + j, L_QTY]
                k += 1
                j += 2 * s - 1
    else:
        while k < depth and p > 0:
            out[4 * k + c] = p
            out[4 * k + c + 1] = levels[s, _lvl(levels, sc, s, p), L_QTY]
            k += 1
            p = next_up_nb(levels, bm, sc, 1, p) if s == 1 else next_down_nb(levels, bm, sc, 0, p)
    while k < depth:
        out[4 * k + c] = 0
        out[4 * k + c + 1] = 0
        k += 1


@kernel()
def level_orders_nb(orders, levels, sc, side, price, out):
    """Write the queue (order ids, front first) at (side, price) into ``out``; returns the count."""
    s = _sidx(side)
    li = _lvl(levels, sc, s, price) if sc[S_NLEV] > 0 else -1
    if li < 0:
        return 0
    slot = levels[s, li, L_HEAD]
    k = 0
    while slot != -1 and k < out.shape[0]:
        out[k] = orders[slot, O_ID]
        k += 1
        slot = orders[slot, O_NEXT]
    return k
