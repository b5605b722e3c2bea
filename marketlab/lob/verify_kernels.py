"""numba kernels of the LOBSTER verification (rules in :mod:`marketlab.lob.lobster`), on the book state of
:mod:`marketlab.lob.kernels` (same arrays, same compilation: :func:`marketlab.lob.kernels.kernel`).
:meth:`marketlab.lob.OrderBook.verify_lobster_rows` is the only caller.
"""

# The kernels are typed by numba from the array dtypes documented in marketlab.lob.kernels.
# mypy: disable-error-code="no-untyped-def"
from __future__ import annotations

import numpy as np

from marketlab.lob.kernels import (
    L_CNT,
    L_HEAD,
    L_QTY,
    L_TAIL,
    O_NEXT,
    O_PRICE,
    O_QTY,
    O_SIDE,
    S_ASK,
    S_BASE,
    S_BID,
    S_NEEDPX,
    S_NEVT,
    S_NLEV,
    _new_order,
    _reduce_order,
    _remove_order,
    _set_level,
    hash_get_nb,
    kernel,
    scan_up_nb,
    snapshot_nb,
    synthetic_id_nb,
)

# per-row flags of lobster_verify_nb (names and meaning in marketlab.lob.lobster.FLAG_NAMES)
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

BIG = np.int64(1) << np.int64(62)


@kernel()
def _compare_nb(snap, row, L):
    """Bit k set when level k+1 (ask px/sz and bid px/sz) matches."""
    bits = 0
    for k in range(L):
        j = 4 * k
        if snap[j] == row[j] and snap[j + 1] == row[j + 1] and snap[j + 2] == row[j + 2] and snap[j + 3] == row[j + 3]:
            bits |= 1 << k
    return bits


@kernel()
def _in_row(row, L, s, price):
    """Size of ``price`` on side s (0 bid, 1 ask) in a book row, or -1 when absent."""
    off = 0 if s == 1 else 2
    for k in range(L):
        if row[4 * k + off] == price:
            return row[4 * k + off + 1]
    return -1


@kernel()
def _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, s, lo, hi):
    """Make side s equal to ``row`` for every price in [lo, hi] (ticks, inclusive). Returns ``(filled,
    dropped)``: levels set to the row's (non-zero) size and engine levels the row does not list, removed."""
    side = 1 if s == 0 else -1
    base = sc[S_BASE]
    filled = 0
    dropped = 0
    # drop engine levels in range that the row does not list / fix their size
    li = scan_up_nb(bm, s, max(lo - base, 0))
    while li >= 0 and li + base <= hi:
        px = li + base
        want = _in_row(row, L, s, px)
        if want < 0:
            want = 0
        if levels[s, li, L_QTY] != want:
            _set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, px, want)
            sc[S_NEVT] = 0
            if want > 0:
                filled += 1
            else:
                dropped += 1
        li = scan_up_nb(bm, s, li + 1)
    # add row levels in range that the engine lacks
    off = 0 if s == 1 else 2
    for k in range(L):
        px = row[4 * k + off]
        if px > 0 and px >= lo and px <= hi:
            li = px - base
            if levels[s, li, L_QTY] != row[4 * k + off + 1]:
                _set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, px, row[4 * k + off + 1])
                sc[S_NEVT] = 0
                filled += 1
    return filled, dropped


@kernel()
def _take_level(orders, levels, bm, hkeys, hvals, sc, side, price, qty):
    """Remove ``qty`` lots from the level (side, price) when the named order could not supply them:
    pre-existing (synthetic) liquidity first, then an order of exactly that size (most likely the one
    that changed out of view), then the newest orders. Returns what could not be taken. Sets
    sc[S_NEEDPX] = 1 (read as flag F_UNKNOWN_SHORT) when real orders had to be used."""
    s = 0 if side > 0 else 1
    li = price - sc[S_BASE]
    sid = synthetic_id_nb(side, price)
    sslot = hash_get_nb(hkeys, hvals, sc, sid)
    if sslot >= 0:
        q = orders[sslot, O_QTY]
        t = qty if qty < q else q
        _reduce_order(orders, levels, bm, hkeys, hvals, sc, sslot, t)
        qty -= t
    if qty <= 0:
        return 0
    sc[S_NEEDPX] = 1
    slot = levels[s, li, L_HEAD]
    while slot != -1:
        if orders[slot, O_QTY] == qty:
            _remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
            return 0
        slot = orders[slot, O_NEXT]
    while qty > 0 and levels[s, li, L_CNT] > 0:
        slot = levels[s, li, L_TAIL]
        q = orders[slot, O_QTY]
        t = qty if qty < q else q
        _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, t)
        qty -= t
    return qty


@kernel()
def _window(row, L, s):
    """Visible window of side s in ``row`` as (lo, hi) ticks: asks [0, ask_px_L], bids [bid_px_L, BIG];
    the whole side when the row has fewer than L levels there."""
    if s == 1:
        pl = row[4 * (L - 1)]
        return (np.int64(0), pl if pl > 0 else BIG)
    pl = row[4 * (L - 1) + 2]
    return (pl if pl > 0 else np.int64(0), BIG)


@kernel(inline=True)
def _verify_add(orders, levels, bm, hkeys, hvals, sc, ts, oid, side, price, size):
    """Rule 2, type 1: rest the order at the back of its level without matching; returns its flags."""
    if hash_get_nb(hkeys, hvals, sc, oid) >= 0:
        return F_DUP
    f = 0
    opp = sc[S_ASK] if side > 0 else sc[S_BID]
    if opp != 0 and ((side > 0 and price >= opp) or (side < 0 and price <= opp)):
        f = F_CROSS
    _new_order(orders, levels, bm, hkeys, hvals, sc, oid, side, price, size, ts, 0, False)
    return f


@kernel(inline=True)
def _verify_reduce(orders, levels, bm, hkeys, hvals, sc, events, ts, typ, oid, side, price, size, top):
    """Rule 2(b), types 2/3/4: the message's size is what left the level. The named order gives what it
    has; any difference is liquidity whose per-order split changed while the level was out of view.
    Returns the row's flags."""
    s = 0 if side > 0 else 1
    f = 0
    slot = hash_get_nb(hkeys, hvals, sc, oid)
    rest = size
    if slot >= 0:
        q = orders[slot, O_QTY]
        if orders[slot, O_SIDE] != side or orders[slot, O_PRICE] != price:
            f |= F_ATTR
        if typ == 3:
            _remove_order(orders, levels, bm, hkeys, hvals, sc, slot)
            if size != q:
                f |= F_BOOK_DELETE_SIZE
            if size < q:
                _set_level(orders, levels, bm, hkeys, hvals, sc, events, ts, side, price,
                           levels[s, price - sc[S_BASE], L_QTY] + q - size)
                sc[S_NEVT] = 0
            rest = size - q if size > q else 0
        else:
            take = size if size < q else q
            _reduce_order(orders, levels, bm, hkeys, hvals, sc, slot, take)
            rest = size - take
            if rest > 0:
                f |= F_OVERSIZE
    if rest > 0:
        if slot < 0:
            f |= F_UNKNOWN_SEEDED
        if price >= sc[S_BASE] and price <= top:
            rest = _take_level(orders, levels, bm, hkeys, hvals, sc, side, price, rest)
            if rest > 0:
                f |= F_UNKNOWN_NOLIQ
        else:
            f |= F_UNKNOWN_NOLIQ
    return f


@kernel(inline=True)
def _entered_view(orders, levels, bm, hkeys, hvals, sc, events, ts, prev, row, L, top):
    """Rule 4: prices newly inside the visible window (row's window larger than prev's) are set from the
    row; prices inside prev's window are never touched. Returns ``(filled, dropped)`` levels (see _sync_range)."""
    filled = 0
    dropped = 0
    plo, _phi = _window(prev, L, 0)
    clo, _chi = _window(row, L, 0)
    if clo < plo:
        f, d = _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, 0, max(clo, sc[S_BASE]), plo - 1)
        filled += f
        dropped += d
    _plo, phi = _window(prev, L, 1)
    _clo, chi = _window(row, L, 1)
    if chi > phi:
        f, d = _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, 1, phi + 1, min(chi, top))
        filled += f
        dropped += d
    return filled, dropped


@kernel()
def lobster_verify_nb(orders, levels, bm, hkeys, hvals, sc, events, msgs, book, L, snap, pre, post, flags, filled,
                      dropped):
    """Replay ``msgs[1:]`` (``int64[n, 6]``: ts, type, order_id, size, price, direction) on a book seeded
    with ``book[0]`` and verify every row of ``book`` (``int64[n, 4L]``) by the rules of
    :mod:`marketlab.lob.lobster`.

    ``pre[i]``/``post[i]``: per-level match bits before/after rule 4; ``flags[i]``: ``F_*`` bits;
    ``filled[i]``/``dropped[i]``: levels rule 4 set from the row / removed because the row does not list
    them. Capacity (slots, hash, band, events) must have been
    allocated by the caller.
    """
    n = msgs.shape[0]
    top = sc[S_BASE] + sc[S_NLEV] - 1
    full = (1 << L) - 1
    for i in range(1, n):
        ts = msgs[i, 0]
        typ = msgs[i, 1]
        sc[S_NEVT] = 0
        sc[S_NEEDPX] = 0
        f = 0
        if typ == 1:
            f = _verify_add(orders, levels, bm, hkeys, hvals, sc, ts, msgs[i, 2], msgs[i, 5], msgs[i, 4], msgs[i, 3])
        elif typ == 2 or typ == 3 or typ == 4:
            f = _verify_reduce(orders, levels, bm, hkeys, hvals, sc, events, ts, typ, msgs[i, 2], msgs[i, 5],
                               msgs[i, 4], msgs[i, 3], top)
        if sc[S_NEEDPX] == 1:
            f |= F_UNKNOWN_SHORT
        row = book[i]
        snapshot_nb(levels, bm, sc, L, snap)
        bits = _compare_nb(snap, row, L)
        pre[i] = bits
        nf, nd = _entered_view(orders, levels, bm, hkeys, hvals, sc, events, ts, book[i - 1], row, L, top)
        filled[i] = nf
        dropped[i] = nd
        if nf + nd > 0:
            f |= F_ENTERED_VIEW
            snapshot_nb(levels, bm, sc, L, snap)
            bits = _compare_nb(snap, row, L)
        post[i] = bits
        if bits != full:
            f |= F_RESYNC
            for sd in range(2):
                clo, chi = _window(row, L, sd)
                _sync_range(orders, levels, bm, hkeys, hvals, sc, events, ts, row, L, sd, max(clo, sc[S_BASE]),
                            min(chi, top))
        flags[i] = f
    return n
