"""Aggregated (L2) book rebuilt from a snapshot plus absolute level updates (exchange diff-depth feeds).

Venue feeds such as Binance's diff-depth stream publish, per price, the new *total* quantity (0 deletes
the level), not individual orders, and their price range is wide (a 1000-level snapshot plus far-away
updates span ~10^6 ticks), so a price-indexed band would be wasteful. Each side is a sorted array updated
by binary search + shift, kept so that the best price is at the array END (bids ascending; asks stored NEGATED, ascending): updates
cluster near the touch, so a shift moves only the few levels between the touch and the updated price
instead of the whole side (asks ascending by price made every near-touch ask update shift ~all levels).

``updates int64[m, 4]`` rows are ``(group, side, price, qty)`` in ticks/lots; ``group`` numbers the
venue messages (one diff = one group) so the book can be sampled after each message.
"""

# The kernels are typed by numba from the array dtypes documented above, not by annotations.
# mypy: disable-error-code="no-untyped-def"
from __future__ import annotations

import numpy as np

from marketlab.lob.kernels import kernel


@kernel()
def _set(px, qty, n, price, q):
    """Set ``price`` to ``q`` in the ascending arrays (first ``n`` used); returns the new n (-1 = full).

    Returns ``(new_n, delta)`` with ``delta`` = new - old quantity at that price."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if px[mid] < price:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and px[lo] == price:
        old = qty[lo]
        if q == 0:
            # shift left in place (explicit loops: an overlapping slice copy allocates per update)
            for j in range(lo, n - 1):
                px[j] = px[j + 1]
                qty[j] = qty[j + 1]
            return n - 1, -old
        qty[lo] = q
        return n, q - old
    if q == 0:
        return n, 0
    if n >= px.shape[0]:
        return -1, 0
    for j in range(n, lo, -1):  # shift right in place, from the end
        px[j] = px[j - 1]
        qty[j] = qty[j - 1]
    px[lo] = price
    qty[lo] = q
    return n + 1, q


@kernel()
def l2_apply_nb(bpx, bqty, apx, aqty, counts, updates, depth, tops, deltas):
    """Apply ``updates`` (see module doc) in order; after the last row of each group write the top
    ``depth`` levels into ``tops[group, 4*depth]`` (ask_px, ask_sz, bid_px, bid_sz per level, 0 = empty).

    ``counts[2]`` = used bid/ask lengths (updated in place). ``deltas[m]`` receives the quantity change of
    each row. Returns -1 on success or the row index where a side's capacity ran out.
    """
    m = updates.shape[0]
    for r in range(m):
        side = updates[r, 1]
        if side > 0:
            nb, d = _set(bpx, bqty, counts[0], updates[r, 2], updates[r, 3])
            if nb < 0:
                return r
            counts[0] = nb
        else:
            na, d = _set(apx, aqty, counts[1], -updates[r, 2], updates[r, 3])
            if na < 0:
                return r
            counts[1] = na
        deltas[r] = d
        g = updates[r, 0]
        if depth > 0 and (r == m - 1 or updates[r + 1, 0] != g):
            row = tops[g]
            nb = counts[0]
            na = counts[1]
            for k in range(depth):
                if k < na:
                    row[4 * k] = -apx[na - 1 - k]
                    row[4 * k + 1] = aqty[na - 1 - k]
                else:
                    row[4 * k] = 0
                    row[4 * k + 1] = 0
                if k < nb:
                    row[4 * k + 2] = bpx[nb - 1 - k]
                    row[4 * k + 3] = bqty[nb - 1 - k]
                else:
                    row[4 * k + 2] = 0
                    row[4 * k + 3] = 0
    return -1


class L2Book:
    """Sorted-array L2 book (see module docstring). ``capacity`` levels per side, grown on demand."""

    def __init__(self, capacity: int = 4096) -> None:
        self.bpx = np.zeros(capacity, dtype=np.int64)
        self.bqty = np.zeros(capacity, dtype=np.int64)
        self.apx = np.zeros(capacity, dtype=np.int64)
        self.aqty = np.zeros(capacity, dtype=np.int64)
        self.counts = np.zeros(2, dtype=np.int64)

    def _grow(self) -> None:
        for name in ("bpx", "bqty", "apx", "aqty"):
            a = getattr(self, name)
            b = np.zeros(2 * a.shape[0], dtype=np.int64)
            b[: a.shape[0]] = a
            setattr(self, name, b)

    def apply(self, updates: np.ndarray, depth: int = 1, n_groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``updates int64[m, 4]`` (group ids 0..G-1 ascending); returns ``(tops int64[G, 4*depth],
        deltas int64[m])``. Groups with no rows keep zero rows in ``tops``."""
        upd = np.ascontiguousarray(updates, dtype=np.int64)
        g = int(n_groups if n_groups is not None else (upd[-1, 0] + 1 if len(upd) else 0))
        tops = np.zeros((g, 4 * depth), dtype=np.int64)
        deltas = np.zeros(upd.shape[0], dtype=np.int64)
        start = 0
        while True:
            r = l2_apply_nb(self.bpx, self.bqty, self.apx, self.aqty, self.counts, upd[start:], depth, tops, deltas[start:])
            if r < 0:
                return tops, deltas
            start += int(r)
            self._grow()

    def best(self) -> tuple[int, int, int, int]:
        """(bid_px, bid_qty, ask_px, ask_qty); zeros for an empty side."""
        nb, na = int(self.counts[0]), int(self.counts[1])
        b = (int(self.bpx[nb - 1]), int(self.bqty[nb - 1])) if nb else (0, 0)
        a = (-int(self.apx[na - 1]), int(self.aqty[na - 1])) if na else (0, 0)
        return b[0], b[1], a[0], a[1]
