"""Venue policies as data (issue 21): cancel/modify by id without a side, modify to 0 = cancel, crossing
adds rejected or rested, reduce sizes as "left the book" or "remaining"; bounded event buffers; the
per-call replay commands. Expected books are written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.core.errors import SpecError
from marketlab.lob import OrderBook, VenuePolicy
from marketlab.lob import kernels as K


def cmd(ts, kind, oid, side, price, size, aux=0):
    return (ts, kind, oid, side, price, size, aux)


def test_batch_cancel_and_modify_by_id_without_side():
    ob = OrderBook()
    res = ob.process(np.array([
        cmd(1, K.K_LIMIT, 1, 1, 100, 5),
        cmd(2, K.K_LIMIT, 2, -1, 103, 4),
        cmd(3, K.K_CANCEL, 1, 0, 0, 2),  # side 0: the order's own side is used
        cmd(4, K.K_MODIFY, 2, 0, 104, 4),  # re-priced by id alone
    ], dtype=np.int64))
    assert res.status.tolist() == [0, 0, 0, 0]
    assert ob.snapshot(1).tolist() == [104, 4, 100, 3]
    # a new order still needs a side
    assert ob.process(np.array([cmd(5, K.K_LIMIT, 3, 0, 99, 1)], dtype=np.int64)).status.tolist() == [K.R_SIDE]


def test_modify_to_zero_cancels():
    ob = OrderBook()
    ob.submit_limit(1, +1, 100, 5, ts=1)
    assert ob.modify(1, size=0, ts=2) == 0
    assert ob.order(1) is None and ob.best_bid is None
    ev = ob.last_events()
    assert (int(ev["type"][0]), int(ev["size"][0])) == (K.E_DELETE, 5)
    assert ob.modify(1, size=0, ts=3) == K.R_UNKNOWN_ID
    assert ob.modify(2, size=-1, ts=3) == K.R_SIZE


@pytest.mark.parametrize("policy,status,snap", [
    ("reject", K.R_CROSS, [101, 5, 99, 5]),
    ("rest", 0, [101, 5, 102, 3]),  # the taker's "order created" rests: the book is crossed until its fills
])
def test_crossing_add_policy(policy, status, snap):
    ob = OrderBook(policy=VenuePolicy(crossing_add=policy))
    ob.apply_add(1, -1, 101, 5, ts=1)
    ob.apply_add(2, +1, 99, 5, ts=1)
    assert ob.apply_add(3, +1, 102, 3, ts=2) == status
    assert ob.snapshot(1).tolist() == snap
    assert ob.is_crossed() == (policy == "rest")
    if policy == "rest":  # the feed's fill then uncrosses the book
        assert ob.apply_reduce(1, -1, 101, 3, event=K.E_EXECUTE, ts=3) == 0
        assert ob.apply_reduce(3, +1, 102, 3, event=K.E_EXECUTE, ts=3) == 0
        assert ob.snapshot(1).tolist() == [101, 2, 99, 5] and not ob.is_crossed()


def test_reduce_size_remaining_policy():
    ob = OrderBook(policy=VenuePolicy(reduce_size="remaining"))
    ob.apply_add(1, +1, 100, 10, ts=1)
    assert ob.apply_reduce(1, +1, 100, 6, event=K.E_CANCEL, ts=2) == 0  # 6 remain: 4 left the book
    ev = ob.last_events()
    assert (int(ev["type"][0]), int(ev["size"][0])) == (K.E_CANCEL, 4) and ob.level_size(+1, 100) == 6
    assert ob.apply_reduce(1, +1, 100, 6, ts=3) == K.R_OVERSIZE  # not a reduction
    assert ob.apply_reduce(1, +1, 100, 0, event=K.E_EXECUTE, ts=4) == 0  # nothing remains
    ev = ob.last_events()
    assert (int(ev["type"][0]), int(ev["size"][0])) == (K.E_EXECUTE, 6) and ob.order(1) is None
    # the default policy reads the same message as "6 left the book"
    left = OrderBook()
    left.apply_add(1, +1, 100, 10, ts=1)
    left.apply_reduce(1, +1, 100, 6, event=K.E_CANCEL, ts=2)
    assert left.level_size(+1, 100) == 4


def test_policy_is_validated_data():
    with pytest.raises(SpecError, match="crossing_add"):
        VenuePolicy.from_dict({"crossing_add": "defer_forever"})
    assert VenuePolicy.from_dict({"reduce_size": "remaining"}).reduce_size == "remaining"


def test_event_buffer_is_bounded_and_last_events_stay_right():
    ob = OrderBook(event_capacity=1000)
    for i in range(1, 20_001):
        ob.submit_limit(i, 1 if i % 2 else -1, 100 if i % 2 else 101, 1, ts=i)
        ob.cancel(i, ts=i)
        ev = ob.last_events()
        assert ev.shape[0] == 1 and int(ev["order_id"][0]) == i and int(ev["type"][0]) == K.E_DELETE
    assert ob._events.shape[0] <= 4096  # bounded: 40,000 events went through
    assert ob.events_discarded + ob.drain_events().shape[0] == 40_000
    # seq keeps counting across discards
    ob.submit_limit(50_000, 1, 100, 1, ts=30_000)
    assert int(ob.last_events()["seq"][0]) == 40_000
    unbounded = OrderBook(event_capacity=None)
    for i in range(1, 3001):
        unbounded.submit_limit(i, 1, 100, 1, ts=i)
    assert unbounded.drain_events().shape[0] == 3000 and unbounded.events_discarded == 0


def _defer_book() -> OrderBook:
    ob = OrderBook(policy=VenuePolicy(crossing_add="defer"))
    ob.apply_add(1, -1, 101, 5, ts=1)
    ob.apply_add(2, -1, 102, 4, ts=1)
    ob.apply_add(3, +1, 99, 5, ts=1)
    return ob


def test_deferred_crossing_add_waits_and_its_fills_reduce_it_silently():
    ob = _defer_book()
    assert ob.apply_add(4, +1, 102, 8, ts=2) == 0  # the taker's "order created" crosses both ask levels
    assert ob.n_deferred == 1 and ob.last_events().size == 0
    assert ob.snapshot(2).tolist() == [101, 5, 99, 5, 102, 4, 0, 0] and not ob.is_crossed()
    info = ob.order(4)
    assert info is not None and info.deferred and info.size == 8 and not info.synthetic
    assert [int(r[0]) for r in ob.resting_orders()] == [1, 2, 3]
    assert ob.apply_reduce(1, -1, 101, 5, event=K.E_EXECUTE, ts=3) == 0  # maker fill
    assert ob.apply_reduce(4, +1, 102, 5, event=K.E_EXECUTE, ts=3) == 0  # the taker's own fill: no book change
    assert ob.last_events().size == 0 and ob.n_deferred == 1 and ob.order(4).size == 3  # type: ignore[union-attr]
    assert ob.apply_reduce(2, -1, 102, 3, event=K.E_EXECUTE, ts=4) == 0
    assert ob.apply_reduce(4, +1, 102, 3, event=K.E_EXECUTE, ts=4) == 0  # fully filled while waiting: gone
    assert ob.n_deferred == 0 and ob.order(4) is None
    assert ob.snapshot(1).tolist() == [102, 1, 99, 5]
    assert ob.apply_reduce(4, +1, 102, 1, event=K.E_EXECUTE, ts=5) == K.R_UNKNOWN_ID


@pytest.mark.parametrize("taker_fill_first", [False, True])
def test_deferred_add_rests_what_is_left_once_uncrossed(taker_fill_first):
    ob = _defer_book()
    assert ob.apply_add(4, +1, 101, 8, ts=2) == 0
    fills = [(1, -1, 101, 5), (4, +1, 101, 5)]
    for oid, side, px, size in (fills[::-1] if taker_fill_first else fills):
        assert ob.apply_reduce(oid, side, px, size, event=K.E_EXECUTE, ts=3) == 0
    # the same book either way: the add rests at 101 with the 3 lots its fills left
    assert ob.snapshot(1).tolist() == [102, 4, 101, 3] and ob.n_deferred == 0
    assert ob.queue(+1, 101) == [4] and ob.order(4) == ob.order(4) and not ob.order(4).deferred  # type: ignore[union-attr]


def test_deferred_add_rests_on_the_command_that_uncrosses_and_emits_its_add_then():
    ob = _defer_book()
    ob.apply_add(4, +1, 101, 8, ts=2)
    assert ob.apply_reduce(1, -1, 101, 5, event=K.E_EXECUTE, ts=3) == 0
    ev = ob.last_events()
    assert [(int(e["type"]), int(e["order_id"]), int(e["price"]), int(e["size"]), int(e["ts"])) for e in ev] == [
        (K.E_EXECUTE, 1, 101, 5, 3), (K.E_ADD, 4, 101, 8, 3)]


def test_deferred_add_cancel_and_modify_by_id():
    ob = _defer_book()
    ob.apply_add(4, +1, 102, 8, ts=2)
    assert ob.modify(4, price=100, size=6, ts=3) == 0  # re-priced below the ask: rests at once
    assert ob.n_deferred == 0 and ob.snapshot(1).tolist() == [101, 5, 100, 6]
    ob.apply_add(5, -1, 99, 2, ts=4)  # an ask crossing the bid: deferred too
    assert ob.n_deferred == 1 and ob.cancel(5, ts=5) == 0 and ob.last_events().size == 0
    assert ob.n_deferred == 0 and ob.order(5) is None and ob.snapshot(1).tolist() == [101, 5, 100, 6]
