"""Unit tests of the numba matching engine (marketlab.lob.OrderBook)."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.lob import COMMAND_DTYPE, OrderBook
from marketlab.lob import kernels as K

BUY, SELL = 1, -1


def book_with_asks() -> OrderBook:
    b = OrderBook()
    assert b.submit_limit(1, SELL, 101, 5, ts=1) == 0
    assert b.submit_limit(2, SELL, 101, 3, ts=2) == 0
    assert b.submit_limit(3, SELL, 102, 4, ts=3) == 0
    return b


def test_price_time_priority_and_trade_price():
    b = book_with_asks()
    assert b.submit_limit(10, BUY, 102, 7, ts=4) == 0
    f = b.last_fills()
    # oldest order at the best price first, at the resting price
    assert [(r["maker_id"], r["price"], r["size"]) for r in f] == [(1, 101, 5), (2, 101, 2)]
    assert (f["taker_id"] == 10).all() and (f["aggressor"] == BUY).all()
    assert b.snapshot(2).tolist() == [101, 1, 0, 0, 102, 4, 0, 0]
    ev = b.last_events()
    assert ev["type"].tolist() == [4, 4]  # executions only: nothing of order 10 rests


def test_gtc_remainder_rests_and_events():
    b = book_with_asks()
    b.submit_limit(10, BUY, 101, 10, ts=4)
    assert b.best_bid == 101 and b.best_ask == 102
    ev = b.last_events()
    assert ev["type"].tolist() == [4, 4, 1]
    assert ev[-1]["order_id"] == 10 and ev[-1]["size"] == 2 and ev[-1]["price"] == 101
    assert not b.is_crossed()


def test_ioc_market_and_fok():
    b = book_with_asks()
    assert b.submit_limit(10, BUY, 101, 10, ts=4, tif="IOC") == 0
    assert b.best_bid is None  # IOC remainder cancelled
    assert b.last_fills()["size"].sum() == 8
    assert b.submit_limit(11, BUY, 102, 5, ts=5, tif="FOK") == K.R_FOK  # only 4 available
    assert b.last_fills().size == 0 and b.snapshot(1).tolist() == [102, 4, 0, 0]
    assert b.rejections["fok_killed"] == 1
    assert b.submit_limit(12, BUY, 102, 4, ts=6, tif="FOK") == 0
    assert b.best_ask is None
    assert b.submit_market(13, SELL, 3, ts=7) == 0  # empty book: nothing happens, nothing rests
    assert b.n_orders == 0


def test_market_sweeps_levels():
    b = book_with_asks()
    b.submit_market(9, BUY, 9, ts=5)
    f = b.last_fills()
    assert f["price"].tolist() == [101, 101, 102] and f["size"].tolist() == [5, 3, 1]
    assert b.snapshot(1).tolist() == [102, 3, 0, 0]


def test_cancel_partial_and_full():
    b = book_with_asks()
    assert b.cancel(1, 2, ts=5) == 0
    assert b.order(1).size == 3 and b.queue(SELL, 101) == [1, 2]  # partial keeps priority
    assert b.cancel(1, ts=6) == 0
    assert b.order(1) is None and b.queue(SELL, 101) == [2]
    assert b.cancel(1, ts=7) == K.R_UNKNOWN_ID
    assert b.last_events().size == 0


def test_modify_priority_rules():
    b = book_with_asks()
    assert b.modify(1, size=2, ts=5) == 0  # decrease: keeps priority
    assert b.queue(SELL, 101) == [1, 2] and b.level_size(SELL, 101) == 5
    assert b.modify(1, size=4, ts=6) == 0  # increase: back of the queue
    assert b.queue(SELL, 101) == [2, 1] and b.level_size(SELL, 101) == 7
    assert b.modify(2, price=102, size=3, ts=7) == 0  # price change: back of the new level
    assert b.queue(SELL, 102) == [3, 2] and b.queue(SELL, 101) == [1]
    b.submit_limit(20, BUY, 100, 5, ts=8)
    assert b.modify(20, price=102, size=5, ts=9) == 0  # re-priced into the book: trades
    assert [(r["maker_id"], r["size"]) for r in b.last_fills()] == [(1, 4), (3, 1)]


def test_rejections_leave_book_untouched():
    b = book_with_asks()
    assert b.submit_limit(40, BUY, 99, 1, ts=10) == 0
    before = b.snapshot(5).tolist()
    codes = [
        b.submit_limit(30, BUY, 100, 0, ts=10),
        b.submit_limit(31, BUY, 100, -3, ts=10),
        b.submit_limit(32, BUY, 0, 3, ts=10),
        b.submit_limit(33, BUY, 100.5, 3, ts=10),  # off the tick grid
        b.submit_limit(1, BUY, 100, 3, ts=10),  # duplicate id
        b.cancel(999, ts=10),
        b.modify(999, size=3, ts=10),
        b.submit_limit(34, BUY, 100, 3, ts=5),  # earlier than the last accepted ts (10)
        b.submit_limit(0, BUY, 100, 3, ts=10),
        b.submit_limit(35, 2, 100, 3, ts=10),
    ]
    assert codes == [K.R_SIZE, K.R_SIZE, K.R_PRICE, K.R_OFF_TICK, K.R_DUP_ID, K.R_UNKNOWN_ID, K.R_UNKNOWN_ID,
                     K.R_TS, K.R_ID, K.R_SIDE]
    assert b.snapshot(5).tolist() == before and b.n_orders == 4
    assert sum(b.rejections.values()) == len(codes)
    assert b.rejections["non_positive_size"] == 2 and b.rejections["price_off_tick_grid"] == 1
    assert len(b.rejection_log) == len(codes)


def test_hash_delete_keeps_every_later_id_of_a_probe_chain_findable():
    """The order-id hash (open addressing, linear probing, deletion by backward shift, no tombstones) against a
    dict: ids that share a home bucket form one probe chain, and deleting its head must leave the others
    findable. The engine keeps the table at most half full, so chains are short there and a delete that only
    empties its bucket broke nothing the book tests saw (mutant engine-hash-delete-no-backshift survived)."""
    hcap = 16
    htab = np.empty((hcap, 2), dtype=np.int64)  # the engine's layout: keys and slots interleaved
    htab[:, 0] = 0
    htab[:, 1] = -1
    hkeys, hvals = htab[:, 0], htab[:, 1]
    sc = np.zeros(K.N_SCALARS, dtype=np.int64)
    sc[K.S_HSHIFT] = 64 - 4  # 16 buckets

    def home(key: int) -> int:  # Fibonacci hashing, written out independently of the kernel
        return ((key * 11400714819323198485) % 2**64) >> 60

    chain = [k for k in range(1, 1000) if home(k) == home(1)][:3]
    for slot, k in enumerate(chain):
        K.hash_put_nb(hkeys, hvals, sc, k, slot)
    K.hash_del_nb(hkeys, hvals, sc, chain[0])
    assert [K.hash_get_nb(hkeys, hvals, sc, k) for k in chain] == [-1, 1, 2]

    rng = np.random.default_rng(0)
    ref = {chain[1]: 1, chain[2]: 2}  # still in the table
    for step in range(2000):  # random puts and deletes, the table at most half full like the engine's
        if ref and (len(ref) >= hcap // 2 or rng.random() < 0.5):
            k = int(rng.choice(sorted(ref)))
            K.hash_del_nb(hkeys, hvals, sc, k)
            del ref[k]
        else:
            k = int(rng.integers(1, 64))
            if k in ref:
                continue
            K.hash_put_nb(hkeys, hvals, sc, k, step)
            ref[k] = step
        assert {k: int(K.hash_get_nb(hkeys, hvals, sc, k)) for k in range(1, 64)} == {
            k: ref.get(k, -1) for k in range(1, 64)}, step
        assert sc[K.S_HCOUNT] == len(ref)


def test_growth_of_slots_hash_and_band():
    b = OrderBook(capacity=16)
    rng = np.random.default_rng(0)
    prices = rng.integers(1, 200_000, size=3000)  # far apart: the band re-bases and grows
    for i, p in enumerate(prices):
        side = BUY if p < 100_000 else SELL  # never crossing, so every order rests
        assert b.submit_limit(i + 1, side, int(p), 1 + i % 4, ts=i) == 0
    assert b.n_orders == 3000
    ro = b.resting_orders()
    assert ro[:, 0].tolist() == list(range(1, 3001))
    assert ro[:, 2].tolist() == prices.tolist()
    assert b.best_bid == int(prices[prices < 100_000].max()) and b.best_ask == int(prices[prices >= 100_000].min())
    for oid in (1, 1500, 3000):
        assert b.order(oid).price == int(prices[oid - 1])


def test_growth_keeps_exact_state():
    b = OrderBook(capacity=16)
    for i in range(500):
        assert b.submit_limit(i + 1, BUY, 1000 - (i % 50), 1 + i % 3, ts=i) == 0
    for i in range(500):
        assert b.submit_limit(1000 + i, SELL, 500_000 + (i % 7), 2, ts=1000 + i) == 0
    assert b.n_orders == 1000
    assert b.best_bid == 1000 and b.best_ask == 500_000
    assert b.level_size(BUY, 1000) == sum(1 + i % 3 for i in range(500) if i % 50 == 0)
    assert b.queue(BUY, 1000) == [i + 1 for i in range(500) if i % 50 == 0]


def test_price_beyond_the_window_rests_on_a_far_level():
    # issue 21: a price the dense window cannot reach is no longer rejected; it rests on a far level
    b = OrderBook(max_levels=1 << 12)
    assert b.submit_limit(1, BUY, 100_000, 1, ts=0) == 0
    assert b.submit_limit(2, SELL, 10_000_000, 3, ts=0) == 0
    assert b.submit_limit(3, SELL, 10_000_001, 1, ts=0) == 0
    assert b.far_levels == (0, 2) and b.best_ask == 10_000_000 and not b.rejections
    assert b.snapshot(2).tolist() == [10_000_000, 3, 100_000, 1, 10_000_001, 1, 0, 0]
    assert b.level_size(SELL, 10_000_000) == 3 and b.queue(SELL, 10_000_001) == [3]
    assert b.submit_market(4, BUY, 4, ts=1) == 0
    assert [(int(f["maker_id"]), int(f["price"]), int(f["size"])) for f in b.last_fills()] == [
        (2, 10_000_000, 3), (3, 10_000_001, 1)]
    assert b.far_levels == (0, 0) and b.best_ask is None


def test_batch_process_with_snapshots_matches_single_calls():
    rng = np.random.default_rng(3)
    n = 2000
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    cmds["ts"] = np.arange(n)
    cmds["kind"] = rng.choice([K.K_LIMIT, K.K_LIMIT, K.K_MARKET, K.K_CANCEL, K.K_MODIFY], size=n)
    cmds["order_id"] = np.where(np.isin(cmds["kind"], [K.K_CANCEL, K.K_MODIFY]), rng.integers(1, n, n), np.arange(1, n + 1))
    cmds["side"] = rng.choice([BUY, SELL], size=n)
    cmds["price"] = 1000 + rng.integers(-5, 6, size=n)
    cmds["size"] = rng.integers(1, 10, size=n)
    cmds["aux"] = np.where(cmds["kind"] == K.K_LIMIT, rng.choice([0, 0, 0, 1, 2], size=n), 0)
    a = OrderBook()
    res = a.process(cmds, depth=5)
    b = OrderBook()
    snaps = []
    for c in cmds:
        b._one_cmd(int(c["ts"]), int(c["kind"]), int(c["order_id"]), int(c["side"]), int(c["price"]), int(c["size"]), int(c["aux"]))
        snaps.append(b.snapshot(5))
    assert np.array_equal(res.snaps, np.array(snaps))
    fb = b.drain_fills()
    assert np.array_equal(res.fills, fb)
    assert a.rejections == b.rejections


def test_stop_on_reject_reports_row():
    cmds = np.array([[1, K.K_LIMIT, 1, BUY, 100, 5, 0], [2, K.K_CANCEL, 9, BUY, 0, 0, 0], [3, K.K_LIMIT, 2, BUY, 99, 5, 0]])
    b = OrderBook()
    res = b.process(cmds, stop_on_reject=True)
    assert res.status.tolist() == [0, K.R_UNKNOWN_ID, 0]
    assert b.n_orders == 1  # the batch stopped before row 2


def test_drain_resets_buffers():
    b = book_with_asks()
    b.submit_market(5, BUY, 6, ts=9)
    assert b.drain_fills().shape[0] == 2
    assert b.drain_fills().shape[0] == 0
    ev = b.drain_events()
    assert (np.diff(ev["seq"]) > 0).all()


@pytest.mark.parametrize("tif", ["GTC", "IOC", "FOK"])
def test_sell_side_symmetry(tif):
    b = OrderBook()
    b.submit_limit(1, BUY, 100, 5, ts=1)
    b.submit_limit(2, BUY, 99, 5, ts=2)
    code = b.submit_limit(3, SELL, 99, 7, ts=3, tif=tif)
    assert code == 0
    assert b.last_fills()["price"].tolist() == [100, 99]
    assert b.best_bid == 99 and b.level_size(BUY, 99) == 3


def test_single_and_batch_paths_share_one_compiled_engine():
    """``one_nb`` (per-call API) runs the same compiled ``process_nb`` as :meth:`OrderBook.process`: one
    signature, so the engine compiles once on a fresh numba cache (a literal ``0``/``False`` argument inside
    ``one_nb`` specialised a second copy and doubled the demo's first-run compile time). Run in a fresh
    interpreter, so other tests' calls cannot add signatures."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from marketlab.lob import OrderBook\n"
        "from marketlab.lob import kernels as K\n"
        "b = OrderBook()\n"
        "b.submit_limit(1, -1, 101, 5, ts=1); b.submit_market(2, 1, 2, ts=2)\n"
        "b.process(np.array([[3, K.K_LIMIT, 3, 1, 99, 5, 0]], dtype=np.int64), depth=2)\n"
        "b.process(np.array([[4, K.K_CANCEL, 3, 1, 0, 0, 0]], dtype=np.int64), stop_on_reject=True)\n"
        "print(len(K.process_nb.signatures))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert out.stdout.split() == ["1"]
