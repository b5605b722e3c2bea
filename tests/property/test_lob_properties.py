"""Property tests of the matching engine over random order streams (hypothesis).

Invariants: the book is never crossed after matching; quantity is conserved (submitted = resting +
filled + cancelled); fills, events, statuses and snapshots equal those of a pure-Python price-time
priority reference book; replaying the same stream twice gives identical books and fills.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketlab.lob import OrderBook
from marketlab.lob import kernels as K
from marketlab.lob.pybook import PyOrderBook

# one command: (kind, id selector, side, price offset, size, tif)
command = st.tuples(
    st.sampled_from([K.K_LIMIT, K.K_LIMIT, K.K_LIMIT, K.K_MARKET, K.K_CANCEL, K.K_MODIFY]),
    st.integers(0, 40),
    st.sampled_from([1, -1]),
    st.integers(-4, 4),
    st.integers(-1, 12),  # includes non-positive sizes: must be rejected
    st.sampled_from([K.TIF_GTC, K.TIF_GTC, K.TIF_IOC, K.TIF_FOK]),
)
streams = st.lists(command, min_size=1, max_size=120)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def to_cmds(stream: list[tuple[int, ...]]) -> np.ndarray:
    """Commands with fresh ids for new orders and existing/unknown ids for cancel/modify."""
    rows = []
    next_id = 1
    for t, (kind, sel, side, off, size, tif) in enumerate(stream):
        if kind in (K.K_LIMIT, K.K_MARKET):
            oid, next_id = next_id, next_id + 1
        else:
            oid = sel + 1  # may be unknown, filled or cancelled already
        price = 1000 + off if kind != K.K_MODIFY or off % 2 == 0 else 0  # modify: 0 keeps the price
        cancel_size = max(size, 0) if kind == K.K_CANCEL else size
        rows.append((t, kind, oid, side, price, cancel_size, tif if kind == K.K_LIMIT else 0))
    return np.array(rows, dtype=np.int64).reshape(-1, 7)


def run_engine(cmds: np.ndarray) -> tuple[OrderBook, list[int], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    b = OrderBook(capacity=16)
    status, snaps, fills, events = [], [], [], []
    for c in cmds:
        status.append(b._one_cmd(*(int(x) for x in c)))
        snaps.append(b.snapshot(6))
        fills.append(b.last_fills())
        events.append(b.last_events())
    return b, status, snaps, fills, events


@SETTINGS
@given(streams)
def test_engine_equals_reference_book(stream):
    cmds = to_cmds(stream)
    b, status, snaps, fills, events = run_engine(cmds)
    ref = PyOrderBook()
    for i, c in enumerate(cmds):
        nf, ne = len(ref.fills), len(ref.events)
        code = ref.process(*(int(x) for x in c))
        assert code == status[i], f"status of command {i}"
        exp_fills = [(f[1], f[2], f[3], f[4], f[5]) for f in ref.fills[nf:]]
        got = [(int(r["taker_id"]), int(r["maker_id"]), int(r["aggressor"]), int(r["price"]), int(r["size"])) for r in fills[i]]
        assert got == exp_fills, f"fills of command {i}"
        exp_ev = [(e[1], e[2], e[3], e[4], e[5]) for e in ref.events[ne:]]
        got_ev = [(int(r["type"]), int(r["order_id"]), int(r["side"]), int(r["price"]), int(r["size"])) for r in events[i]]
        assert got_ev == exp_ev, f"events of command {i}"
        assert snaps[i].tolist() == ref.snapshot(6), f"book after command {i}"
    # FIFO queues equal at every price
    for side in (1, -1):
        for price in range(990, 1011):
            assert b.queue(side, price) == ref.queue(side, price)


@SETTINGS
@given(streams)
def test_never_crossed_and_quantity_conserved(stream):
    cmds = to_cmds(stream)
    b, status, snaps, fills, events = run_engine(cmds)
    submitted = filled = cancelled = 0
    for i, c in enumerate(cmds):
        kind, size = int(c[1]), int(c[5])
        s = snaps[i]
        assert s[0] == 0 or s[2] == 0 or s[2] < s[0], "crossed book"
        taker = int(fills[i]["size"].sum())
        filled += 2 * taker  # a fill fills the maker and the taker
        ev = events[i]
        cancelled += int(ev["size"][(ev["type"] == K.E_CANCEL) | (ev["type"] == K.E_DELETE)].sum())
        if status[i] != 0:
            assert taker == 0 and ev.size == 0, "a rejected command changed the book"
            continue
        if kind in (K.K_LIMIT, K.K_MARKET):
            submitted += size
            rested = int(ev["size"][(ev["type"] == K.E_ADD) & (ev["order_id"] == c[2])].sum())
            cancelled += size - taker - rested  # IOC / market remainder
            if kind == K.K_LIMIT and c[6] == K.TIF_FOK:
                assert taker == size
        elif kind == K.K_MODIFY and (ev["type"] == K.E_DELETE).any():
            submitted += size  # re-entered with the new size
            rested = int(ev["size"][ev["type"] == K.E_ADD].sum())
            assert taker + rested == size
    resting = int(b.resting_orders()[:, 3].sum())
    assert submitted == resting + filled + cancelled


@SETTINGS
@given(streams)
def test_replay_twice_identical(stream):
    cmds = to_cmds(stream)
    r1 = OrderBook(capacity=16).process(cmds, depth=4)
    b2 = OrderBook(capacity=16)
    r2 = b2.process(cmds, depth=4)
    assert np.array_equal(r1.status, r2.status)
    assert np.array_equal(r1.snaps, r2.snaps)
    assert np.array_equal(r1.fills, r2.fills)
    assert np.array_equal(r1.events, r2.events)


def _fifo_reference(cmds: np.ndarray) -> list[tuple[int, int, int]]:
    """Tiny independent matcher for GTC limit orders only: (maker, price, size) of every fill."""
    bids: dict[int, deque] = {}
    asks: dict[int, deque] = {}
    out = []
    for c in cmds:
        oid, side, price, size = int(c[2]), int(c[3]), int(c[4]), int(c[5])
        book, opp = (bids, asks) if side > 0 else (asks, bids)
        while size > 0 and opp:
            best = min(opp) if side > 0 else max(opp)
            if (side > 0 and best > price) or (side < 0 and best < price):
                break
            q = opp[best]
            m = q[0]
            f = min(size, m[1])
            out.append((m[0], best, f))
            size -= f
            m[1] -= f
            if m[1] == 0:
                q.popleft()
                if not q:
                    del opp[best]
        if size > 0:
            book.setdefault(price, deque()).append([oid, size])
    return out


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(-3, 3), st.integers(1, 9)), min_size=1, max_size=150))
def test_fills_follow_price_time_priority(orders):
    cmds = np.array([(t, K.K_LIMIT, t + 1, s, 500 + o, q, K.TIF_GTC) for t, (s, o, q) in enumerate(orders)], dtype=np.int64)
    res = OrderBook().process(cmds)
    got = [(int(f["maker_id"]), int(f["price"]), int(f["size"])) for f in res.fills]
    assert got == _fifo_reference(cmds)


# ---------------------------------------------------------------- batch snapshots on deep, wandering books
# The batch path recomputes a snapshot row only when a level inside the previous row's top-`depth` window
# changed (kernels._touch / S_DIRTY) and copies the row otherwise. Books here hold more than `depth` levels
# per side and the mid wanders tens of ticks, so changes land at, just inside and just outside the window's
# worst price: exactly where an off-by-one in that shortcut would copy a stale row.
DEPTH = 4
deep_command = st.tuples(
    st.sampled_from([K.K_LIMIT] * 5 + [K.K_MARKET, K.K_CANCEL, K.K_CANCEL, K.K_MODIFY]),
    st.integers(0, 300),  # id selector for cancel/modify
    st.sampled_from([1, -1]),
    st.integers(-3, 3),  # mid drift per command (ticks)
    st.integers(0, 12),  # distance from the mid (ticks): inside, at and beyond the window edge
    st.integers(1, 9),
)


def _append_command(rows: list, cmd: tuple[int, ...], oid: int, adds: tuple[int, ...]) -> int:
    """Append the command row of a drawn ``(t, kind, sel, side, price, size)``: a kind in ``adds`` is a new
    GTC order with id ``oid``, a cancel (of all, or ``size`` when ``sel % 3 == 0``) or modify picks an
    earlier id by ``sel``. Returns the next free id."""
    t, kind, sel, side, price, size = cmd
    if kind in adds:
        rows.append((t, kind, oid, side, price, size, K.TIF_GTC))
        return oid + 1
    if kind == K.K_CANCEL:
        rows.append((t, kind, sel % oid + 1, side, 1, size if sel % 3 == 0 else 0, 0))
    else:
        rows.append((t, kind, sel % oid + 1, side, price if sel % 2 else 0, size, 0))
    return oid


def deep_cmds(stream: list[tuple[int, ...]]) -> np.ndarray:
    """A seed of 2*DEPTH+2 levels per side around 1000, then the stream with a wandering mid."""
    rows = []
    oid = 1
    for k in range(2 * DEPTH + 2):
        rows.append((0, K.K_LIMIT, oid, 1, 999 - 2 * k, 5 + k, K.TIF_GTC))
        rows.append((0, K.K_LIMIT, oid + 1, -1, 1001 + 2 * k, 5 + k, K.TIF_GTC))
        oid += 2
    mid = 1000
    for t, (kind, sel, side, drift, dist, size) in enumerate(stream, start=1):
        mid = min(max(mid + drift, 200), 1800)
        price = mid - side * dist if kind == K.K_LIMIT else mid + side * (dist % 4)
        oid = _append_command(rows, (t, kind, sel, side, price, size), oid, (K.K_LIMIT, K.K_MARKET))
    return np.array(rows, dtype=np.int64)


@SETTINGS
@given(st.lists(deep_command, min_size=20, max_size=250))
def test_batch_snapshots_equal_per_command_snapshots_on_deep_books(stream):
    cmds = deep_cmds(stream)
    batch = OrderBook(capacity=16).process(cmds, depth=DEPTH)
    ref = PyOrderBook()
    one = OrderBook(capacity=16)
    for i, c in enumerate(cmds.tolist()):
        assert ref.process(*c) == batch.status[i]
        one.process(np.array([c], dtype=np.int64))
        expect = ref.snapshot(DEPTH)
        assert one.snapshot(DEPTH).tolist() == expect, f"per-command snapshot after command {i}"
        assert batch.snaps[i].tolist() == expect, f"batch snapshot after command {i}"


# ---------------------------------------------------------------- far levels and a re-centring window
# Issue 21: prices the dense window cannot reach live on far levels (sorted side tables) and the window is
# re-centred on the live orders when a far table fills. A 64-level window with 1-row far tables makes both
# happen all the time: stub orders sit ~10^7 ticks away on both sides, and the mid wanders in steps of up to
# 40 ticks, so orders land inside the window, just past its edges and far away, and the touch itself moves
# between window and far levels. Everything must equal the reference book command by command.
far_command = st.tuples(
    st.sampled_from([K.K_LIMIT] * 5 + [K.K_MARKET, K.K_CANCEL, K.K_CANCEL, K.K_MODIFY, K.K_APPLY_ADD]),
    st.integers(0, 300),  # id selector for cancel/modify
    st.sampled_from([1, -1]),
    st.integers(-40, 40),  # mid drift per command (ticks): crosses a 64-level window within a few commands
    st.integers(0, 12),  # distance from the mid (ticks)
    st.integers(1, 9),
    st.sampled_from([0, 0, 0, 0, 0, 0, 1]),  # 1: a stub order far from the market instead
)
STUBS = [(1, 1, 3), (1, 2, 1), (-1, 10_000_000, 2), (-1, 9_999_999, 4)]  # (side, price, size)


def far_cmds(stream: list[tuple[int, ...]]) -> np.ndarray:
    """Stub orders at 1-2 and ~10^7 ticks, a few levels around 5000, then the stream (more stubs in it)."""
    rows = []
    oid = 1
    for side, price, size in STUBS:
        rows.append((0, K.K_LIMIT, oid, side, price, size, K.TIF_GTC))
        oid += 1
    for k in range(4):
        rows.append((0, K.K_LIMIT, oid, 1, 4999 - 2 * k, 5 + k, K.TIF_GTC))
        rows.append((0, K.K_LIMIT, oid + 1, -1, 5001 + 2 * k, 5 + k, K.TIF_GTC))
        oid += 2
    mid = 5000
    for t, (kind, sel, side, drift, dist, size, stub) in enumerate(stream, start=1):
        mid = min(max(mid + drift, 500), 9500)
        price = mid - side * dist if kind in (K.K_LIMIT, K.K_APPLY_ADD) else mid + side * (dist % 4)
        if stub:
            price = 3 + sel if side > 0 else 20_000_000 - sel
        oid = _append_command(rows, (t, kind, sel, side, price, size), oid, (K.K_LIMIT, K.K_MARKET, K.K_APPLY_ADD))
    return np.array(rows, dtype=np.int64)


@SETTINGS
@given(st.lists(far_command, min_size=20, max_size=200))
def test_far_levels_and_recentring_equal_the_reference_book(stream):
    cmds = far_cmds(stream)
    one = OrderBook(capacity=16, max_levels=64, far_levels=1)
    batch = OrderBook(capacity=16, max_levels=64, far_levels=1).process(cmds, depth=DEPTH)
    ref = PyOrderBook()
    for i, c in enumerate(cmds.tolist()):
        nf, ne = len(ref.fills), len(ref.events)
        code = ref.process(*c)
        assert one._one_cmd(*c) == code == batch.status[i], f"status of command {i}"
        got_f = [(int(r["taker_id"]), int(r["maker_id"]), int(r["price"]), int(r["size"])) for r in one.last_fills()]
        assert got_f == [(f[1], f[2], f[4], f[5]) for f in ref.fills[nf:]], f"fills of command {i}"
        got_ev = [(int(r["type"]), int(r["order_id"]), int(r["side"]), int(r["price"]), int(r["size"])) for r in one.last_events()]
        assert got_ev == [e[1:] for e in ref.events[ne:]], f"events of command {i}"
        expect = ref.snapshot(DEPTH)
        assert one.snapshot(DEPTH).tolist() == expect, f"per-command snapshot after command {i}"
        assert batch.snaps[i].tolist() == expect, f"batch snapshot after command {i}"
        assert not one.is_crossed(), f"crossed after command {i}"
    # every queue (FIFO order) and every resting order equal the reference's, far ones included
    for side in (1, -1):
        for price in ref.prices[side]:
            assert one.queue(side, price) == ref.queue(side, price), f"queue at {side} {price}"
    expect_orders = sorted((oid, o[0], o[1], o[2]) for oid, o in ref.orders.items())
    assert [tuple(r) for r in one.resting_orders().tolist()] == expect_orders
    assert one.n_orders == len(ref.orders)
