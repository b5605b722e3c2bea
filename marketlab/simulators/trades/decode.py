"""Generated samples -> orders the matching engine accepts, with the reference's discard-and-resample rules.

Post-processing follows the reference world agent (``WorldAgent._postprocess_generated_TRADES``, paper
App. C), with the differences marked:

1. side = sign of the side feature (0 counts as buy); type = the nearest row of the fixed type embedding.
2. size, depth and dt are de-normalised; size and depth are rounded to integers (lots, grid steps).
3. **Discard** (the sampler is asked again) when: a feature is not finite; size < 1 lot after rounding
   (the reference: size < 0; a 0-lot order is one the engine rejects); size > ``max_size`` (1000); the
   depth of a limit or cancel order lies beyond the ``levels``-th level of its side (when that side has
   fewer levels: beyond ``max_depth`` grid steps); the price would not be positive; the book is empty
   (limit and cancel orders are then anchored on the last known mid when the caller passes one);
   a cancel finds no resting order of the generator on its side; a market order meets an empty side.
4. Limit price = best bid - depth * grid for buys, best ask + depth * grid for sells
   (:func:`~marketlab.simulators.trades.tokens.price_from_depth`; a negative depth improves inside the
   spread). Cancels remove the generator's resting order at that side and price with the closest size;
   when none rests there (~25% of the time in the paper), the order with the closest price, then size.
   Market orders walk the book for their size.
5. dt < 0 is clipped to 0 (not discarded).

Every rejected sample is counted by reason (:data:`REASONS`); :func:`check_order` is the last gate before
the engine so an invalid order never reaches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from marketlab.simulators.trades.tokens import CANCEL, LIMIT, MARKET, price_from_depth

REASONS = (
    "non_finite",
    "size_below_1",
    "size_above_max",
    "depth_beyond_book",
    "price_not_positive",
    "empty_book",
    "cancel_no_resting_order",
    "market_empty_side",
)


@dataclass(frozen=True)
class DecodeRules:
    """Discard thresholds: ``max_size`` lots (reference 1000), ``levels`` book levels a depth may reach,
    ``max_depth`` grid steps when the side has fewer levels."""

    max_size: int = 1000
    levels: int = 10
    max_depth: int = 100


@dataclass(frozen=True)
class Order:
    """A decoded order: ``kind`` 0 limit / 1 cancel / 2 market, ``side`` +1/-1, ``price`` store ticks (the
    cancelled order's price for cancels, 0 for market orders), ``size`` lots (the cancelled order's
    remaining size for cancels), ``dt_ns`` >= 0 delay after the previous order, ``cancel_id`` the resting
    order a cancel removes (0 otherwise)."""

    kind: int
    side: int
    price: int
    size: int
    dt_ns: int
    cancel_id: int = 0


def _max_depth(side: int, book: np.ndarray, rules: DecodeRules, grid: int) -> int:
    """Depth (grid steps from the own best) of the deepest allowed level of ``side``'s book."""
    px = book[2::4] if side > 0 else book[0::4]
    px = px[: rules.levels]
    present = px[px > 0]
    if present.size < rules.levels or present.size == 0:
        return rules.max_depth
    return int(abs(int(present[-1]) - int(present[0])) // grid)


def decode_one(feats: np.ndarray, kind: int, book: np.ndarray, resting: np.ndarray, grid: int,
               rules: DecodeRules = DecodeRules(), ref_mid: float | None = None) -> Order | str:
    """One de-normalised sample -> :class:`Order`, or the reason it is discarded (one of :data:`REASONS`).

    ``feats`` (5,) raw features (dt s, size, price vs mid, side, depth); ``book`` int64 (4L,) the current
    book (store ticks, 0 = empty); ``resting`` int64 (n, 4) the generator's own resting orders
    (order_id, side, price, size) that a cancel may target; ``ref_mid`` (store ticks) the last known mid,
    which anchors limit prices when the book is empty (else the sample is discarded as ``empty_book``).
    """
    if not np.isfinite(feats).all():
        return "non_finite"
    dt_s, size_f, _, side_f, depth_f = (float(v) for v in feats)
    side = 1 if side_f >= 0 else -1
    size = int(round(size_f))
    if size < 1:
        return "size_below_1"
    if size > rules.max_size:
        return "size_above_max"
    dt_ns = max(0, int(round(dt_s * 1e9))) if math.isfinite(dt_s) else 0
    ask, bid = int(book[0]), int(book[2])
    if ask <= 0 and bid <= 0:
        if ref_mid is None or kind == MARKET or not math.isfinite(ref_mid):
            return "empty_book"
        book = book.copy()  # anchor on the last mid: bid one grid step at or below it, ask one above
        book[2] = max(int(ref_mid // grid) * grid, grid)
        book[0] = book[2] + grid
    if kind == MARKET:
        if (ask if side > 0 else bid) <= 0:
            return "market_empty_side"
        return Order(MARKET, side, 0, size, dt_ns)
    depth = int(round(depth_f))
    if depth > _max_depth(side, book, rules, grid):
        return "depth_beyond_book"
    price = int(price_from_depth(np.array([kind]), np.array([side]), np.array([depth]), book[None, :], grid)[0])
    if price <= 0:
        return "price_not_positive"
    if kind == LIMIT:
        return Order(LIMIT, side, price, size, dt_ns)
    mine = resting[resting[:, 1] == side] if resting.size else resting
    if mine.shape[0] == 0:
        return "cancel_no_resting_order"
    # nearest price first, then nearest size, then the oldest id (rows come sorted by id)
    key = np.lexsort((np.abs(mine[:, 3] - size), np.abs(mine[:, 2] - price)))
    oid, _, px, left = (int(v) for v in mine[key[0]])
    return Order(CANCEL, side, px, left, dt_ns, cancel_id=oid)


def check_order(order: Order, book_orders: dict[int, tuple[int, int, int]], grid: int) -> str | None:
    """The last gate before the engine: None when valid, else the problem. ``book_orders`` maps live
    order ids to (side, price, size)."""
    if order.size < 1 or order.side not in (1, -1) or order.dt_ns < 0:
        return "bad size, side or dt"
    if order.kind == LIMIT:
        if order.price <= 0 or order.price % grid:
            return "price off the grid or not positive"
    elif order.kind == CANCEL:
        live = book_orders.get(order.cancel_id)
        if live is None or live[0] != order.side or live[1] != order.price:
            return "cancel of an order that does not rest there"
    elif order.kind != MARKET:
        return "unknown kind"
    return None
