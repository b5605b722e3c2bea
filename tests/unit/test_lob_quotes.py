"""Public cheap accessors of OrderBook: quotes() and n_last_fills (what simulators poll per event)."""

from __future__ import annotations

import numpy as np

from marketlab.lob import OrderBook
from marketlab.lob import kernels as K


def test_quotes_track_the_touch_and_empty_sides():
    ob = OrderBook()
    assert ob.quotes() == (None, None)
    ob.submit_limit(1, +1, 100, 5, ts=1)
    assert ob.quotes() == (100, None)
    ob.submit_limit(2, -1, 103, 5, ts=2)
    ob.submit_limit(3, +1, 101, 2, ts=3)
    assert ob.quotes() == (101, 103)
    assert ob.quotes() == (ob.best_bid, ob.best_ask)
    ob.submit_market(4, -1, 2, ts=4)  # takes the whole 101 level: the bid falls back to 100
    assert ob.quotes() == (100, 103)
    ob.cancel(2, ts=5)
    assert ob.quotes() == (100, None)
    # same values as the read-only scalars the simulators poll
    b, a = ob.quotes()
    assert (int(ob.scalars[K.S_BID]), int(ob.scalars[K.S_ASK])) == (b, 0)


def test_n_last_fills_counts_the_last_call_only():
    ob = OrderBook()
    for i, px in enumerate((100, 101, 102), start=1):
        ob.submit_limit(i, -1, px, 3, ts=i)
    assert ob.n_last_fills == 0
    ob.submit_limit(10, +1, 101, 5, ts=10)  # 3 @ 100 + 2 @ 101
    assert ob.n_last_fills == 2 == len(ob.last_fills())
    assert ob.n_last_fills == int(ob.scalars[K.S_NFILL]) - ob.fill_mark
    ob.submit_limit(11, +1, 90, 1, ts=11)  # rests, no fill
    assert ob.n_last_fills == 0 == len(ob.last_fills())
    ob.submit_market(12, +1, 4, ts=12)  # 1 @ 101, 3 @ 102
    assert ob.n_last_fills == 2
    ob.drain_fills()
    assert ob.n_last_fills == 0
    cmds = np.array([[13, K.K_LIMIT, 20, -1, 90, 2, K.TIF_GTC]], dtype=np.int64)
    res = ob.process(cmds)
    assert ob.n_last_fills == len(res.fills) == 1


def test_scalars_are_a_read_only_live_view():
    ob = OrderBook()
    sc = ob.scalars
    ob.submit_limit(1, +1, 100, 5, ts=1)
    assert int(sc[K.S_BID]) == 100  # a view: follows the book without re-reading the attribute
    try:
        sc[K.S_BID] = 7
    except ValueError:
        pass
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("scalars must be read-only")
    assert ob.best_bid == 100
