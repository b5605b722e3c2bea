"""TRADES decoding: the documented discard rules on hand-made books, and no invalid order ever reaches the engine."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.lob import OrderBook
from marketlab.simulators.trades.decode import REASONS, DecodeRules, Order, check_order, decode_one
from marketlab.simulators.trades.tokens import CANCEL, LIMIT, MARKET

G = 100  # store ticks per grid step


def _book(levels: int = 10, ask: int = 1_000_100, bid: int = 999_900) -> np.ndarray:
    b = np.zeros(4 * levels, dtype=np.int64)
    for i in range(levels):
        b[4 * i: 4 * i + 4] = [ask + G * i, 10, bid - G * i, 10]
    return b


NONE = np.zeros((0, 4), dtype=np.int64)


def f(dt: float = 0.01, size: float = 10, side: float = 1, depth: float = 0) -> np.ndarray:
    return np.array([dt, size, 0.0, side, depth])


def test_limit_prices_from_depth() -> None:
    book = _book()
    assert decode_one(f(side=1, depth=2), LIMIT, book, NONE, G) == Order(LIMIT, 1, 999_700, 10, 10_000_000)
    assert decode_one(f(side=-1, depth=0.4), LIMIT, book, NONE, G) == Order(LIMIT, -1, 1_000_100, 10, 10_000_000)
    # negative depth improves inside the spread; side 0 counts as a buy; sizes round
    assert decode_one(f(side=-0.2, depth=-1), LIMIT, book, NONE, G) == Order(LIMIT, -1, 1_000_000, 10, 10_000_000)
    assert decode_one(f(side=0.0, size=2.6, dt=-1.0), LIMIT, book, NONE, G) == Order(LIMIT, 1, 999_900, 3, 0)


@pytest.mark.parametrize("feats,kind,reason", [
    (f(size=0.4), LIMIT, "size_below_1"),
    (f(size=-5), MARKET, "size_below_1"),
    (f(size=1000.6), LIMIT, "size_above_max"),
    (f(depth=10), LIMIT, "depth_beyond_book"),  # the 10th level is 9 steps from the best
    (f(depth=np.nan), LIMIT, "non_finite"),
    (f(side=1, depth=20_000), CANCEL, "depth_beyond_book"),
])
def test_discard_rules(feats: np.ndarray, kind: int, reason: str) -> None:
    assert reason in REASONS
    assert decode_one(feats, kind, _book(), NONE, G) == reason


def test_depth_limit_falls_back_when_a_side_has_fewer_levels_and_price_must_be_positive() -> None:
    book = _book(levels=10)
    book[4 * 5:] = 0  # only 5 levels: the bound is max_depth
    assert isinstance(decode_one(f(depth=50), LIMIT, book, NONE, G, DecodeRules(max_depth=60)), Order)
    assert decode_one(f(depth=61), LIMIT, book, NONE, G, DecodeRules(max_depth=60)) == "depth_beyond_book"
    low = _book(levels=2, ask=300, bid=200)
    low[4:] = 0
    assert decode_one(f(side=1, depth=3), LIMIT, low, NONE, G, DecodeRules(levels=2, max_depth=5)) == "price_not_positive"


def test_market_orders_and_empty_sides() -> None:
    book = _book()
    assert decode_one(f(side=-1, size=7), MARKET, book, NONE, G) == Order(MARKET, -1, 0, 7, 10_000_000)
    one_sided = book.copy()
    one_sided[0::4] = 0
    one_sided[1::4] = 0  # no asks
    assert decode_one(f(side=1), MARKET, one_sided, NONE, G) == "market_empty_side"
    assert decode_one(f(side=1), LIMIT, np.zeros(40, np.int64), NONE, G) == "empty_book"
    # with a last known mid, an empty book anchors limit orders there (the bid at or below the mid)
    got = decode_one(f(side=-1, depth=1), LIMIT, np.zeros(40, np.int64), NONE, G, ref_mid=1_000_050.0)
    assert got == Order(LIMIT, -1, 1_000_200, 10, 10_000_000)
    assert decode_one(f(side=-1), MARKET, np.zeros(40, np.int64), NONE, G, ref_mid=1_000_050.0) == "empty_book"


def test_cancel_picks_the_nearest_resting_order() -> None:
    book = _book()
    resting = np.array([[5, 1, 999_800, 40], [6, 1, 999_800, 12], [7, 1, 999_500, 10], [8, -1, 1_000_100, 10]])
    # exact price: the closest size
    assert decode_one(f(side=1, depth=1, size=10), CANCEL, book, resting, G) == Order(CANCEL, 1, 999_800, 12, 10_000_000, 6)
    # no order at 999_700 (depth 2): the closest price (999_800), then the closest size
    assert decode_one(f(side=1, depth=2, size=39), CANCEL, book, resting, G) == Order(CANCEL, 1, 999_800, 40, 10_000_000, 5)
    # only own-side orders are candidates
    assert decode_one(f(side=-1, depth=7), CANCEL, book, resting, G).cancel_id == 8  # type: ignore[union-attr]
    assert decode_one(f(side=-1), CANCEL, book, resting[:3], G) == "cancel_no_resting_order"


def test_no_invalid_order_ever_reaches_the_engine() -> None:
    """Fuzz: wild samples of every kind, decoded against a live engine book; every decoded order passes the
    gate and the engine accepts it; every other sample is counted under a documented reason."""
    rng = np.random.default_rng(0)
    ob = OrderBook()
    oid = 1
    for i in range(10):
        ob.submit_limit(oid, -1, 1_000_100 + G * i, 50, ts=0)
        ob.submit_limit(oid + 1, 1, 999_900 - G * i, 50, ts=0)
        oid += 2
    ts = 0
    mid = 1_000_000.0
    counts: dict[str, int] = {}
    accepted = 0
    for _ in range(3000):
        feats = np.array([rng.normal(0, 1), rng.normal(50, 400), rng.normal(0, 30), rng.normal(), rng.normal(3, 15)])
        if rng.random() < 0.01:
            feats[rng.integers(5)] = np.inf
        kind = int(rng.integers(3))
        book = ob.snapshot(10)
        resting = ob.resting_orders()
        if book[0] > 0 and book[2] > 0:
            mid = (book[0] + book[2]) / 2
        got = decode_one(feats, kind, book, resting, G, ref_mid=mid)
        if isinstance(got, str):
            counts[got] = counts.get(got, 0) + 1
            continue
        live = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in resting}
        assert check_order(got, live, G) is None
        ts += got.dt_ns
        if got.kind == LIMIT:
            code = ob.submit_limit(oid, got.side, got.price, got.size, ts=ts)
            oid += 1
        elif got.kind == MARKET:
            code = ob.submit_market(oid, got.side, got.size, ts=ts)
            oid += 1
        else:
            code = ob.cancel(got.cancel_id, ts=ts)
        assert code == 0, (got, code)
        accepted += 1
    assert ob.rejections == {}
    assert accepted > 500, (accepted, counts)
    assert set(counts) <= set(REASONS) and sum(counts.values()) + accepted == 3000
