"""LOB engine benchmark: numba L3 engine vs a pure-Python book of the same semantics (and hftbacktest).

Side by side in one process (single thread, so events/s are per core):

1. LOBSTER replay, GOOG 2012-06-21 level 10 (147,915 messages after the seed row): the engine's batch
   replay with a top-10 snapshot after every message vs :class:`marketlab.lob.pybook.PyOrderBook` fed the
   identical commands, taking the same top-10 snapshot each time; the snapshots are checked equal. The
   full verification kernel (replay + compare with the orderbook row + window rule) is timed as well.
2. Random order flow (limit GTC/IOC/FOK, market, cancel, modify around a moving mid), same comparison.
3. A simulated day of ~500k events driven one call at a time through the Python API (what an
   agent-based simulator does), plus the same stream as one batch.
4. Issue 21: the LOBSTER stream with and without 21 stub orders ~10^7 ticks away (far levels), the
   memory of a fresh book holding them, the kernel's commands/s.
5. hftbacktest (if importable; it is not a dependency — install it e.g. with
   ``pip install --no-deps --target /tmp/hbt hftbacktest`` and set HBT_PATH=/tmp/hbt) replaying the USD-M
   Binance capture vs our L2 rebuild of the same capture.

Appends a run (time, commit, hardware, load) to ``benchmarks/results/lob.json`` through
``benchmarks/runlog.py``. Run: ``.venv/bin/python benchmarks/lob.py [--quick] [--only far_stub_orders,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

from marketlab.lob import OrderBook  # noqa: E402
from marketlab.lob import kernels as K  # noqa: E402
from marketlab.lob.pybook import PyOrderBook  # noqa: E402
from marketlab.lob.commands import events_to_commands, seed_commands  # noqa: E402
from runlog import Run  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


CPU: dict[str, float] = {}  # smallest process CPU time of the last best_of call (see best_of)


def best_of(fn, repeats: int = 5) -> tuple[float, object]:
    """Smallest wall time of ``repeats`` runs (the machine is shared) and the last result.

    Also records the smallest process CPU time in ``CPU["last"]``: on a loaded machine wall time
    includes waiting for a core, while CPU time of this single-threaded work is what one core costs.
    """
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    CPU["last"] = cpu
    return best, out


def engine_batch(cmds: np.ndarray, seed: np.ndarray | None, tolerant: bool, depth: int = 10):
    ob = OrderBook(capacity=1 << 16, tolerant=tolerant)
    if seed is not None and len(seed):
        ob.process(seed)
    return ob.process(cmds, depth=depth)


def python_batch(cmds: np.ndarray, seed: np.ndarray | None, tolerant: bool, depth: int = 10) -> list[list[int]]:
    ref = PyOrderBook(tolerant=tolerant)
    if seed is not None:
        for c in seed.tolist():
            ref.process(*c)
    snaps = []
    proc, snap = ref.process, ref.snapshot
    for c in cmds.tolist():
        proc(*c)
        snaps.append(snap(depth))
    return snaps


def py_verify(m: np.ndarray, book: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Pure-Python port of :func:`marketlab.lob.verify_kernels.lobster_verify_nb` on :class:`PyOrderBook`
    (same rules, same top-L snapshot and comparison per row); returns (pre, post) match bits."""
    from bisect import bisect_left

    ref = PyOrderBook(tolerant=True)
    seed_row = book[0].copy()
    first_add = None
    if m[0, 1] == 1:
        off = 0 if m[0, 5] < 0 else 2
        for k in range(L):
            if seed_row[4 * k + off] == m[0, 4] and seed_row[4 * k + off + 1] >= m[0, 3]:
                seed_row[4 * k + off + 1] -= m[0, 3]
                first_add = m[0]
                break
    for c in seed_commands(seed_row, int(m[0, 0])).tolist():
        ref.process(*c)
    if first_add is not None:
        ref._add(int(first_add[2]), int(first_add[5]), int(first_add[4]), int(first_add[3]))

    def take_level(side: int, price: int, qty: int) -> None:
        sid = int(K.synthetic_id_nb(side, price))
        if sid in ref.orders:
            t = min(qty, ref.orders[sid][2])
            ref._reduce(sid, t)
            qty -= t
        if qty <= 0 or price not in ref.queues[side]:
            return
        for oid in list(ref.queues[side][price]):
            if ref.orders[oid][2] == qty:
                ref._reduce(oid, qty)
                return
        while qty > 0 and price in ref.queues[side]:
            oid = ref.queues[side][price][-1]
            t = min(qty, ref.orders[oid][2])
            ref._reduce(oid, t)
            qty -= t

    def in_row(row: list[int], s: int, price: int) -> int:
        off = 0 if s < 0 else 2
        for k in range(L):
            if row[4 * k + off] == price:
                return row[4 * k + off + 1]
        return -1

    def sync(row: list[int], side: int, lo: int, hi: int) -> bool:
        changed = False
        p = ref.prices[side]
        for px in p[bisect_left(p, lo):bisect_left(p, hi + 1)]:
            want = max(in_row(row, side, px), 0)
            if ref.level_qty[side].get(px, 0) != want:
                ref._set_level(0, side, px, want)
                changed = True
        off = 0 if side < 0 else 2
        for k in range(L):
            px = row[4 * k + off]
            if px > 0 and lo <= px <= hi and ref.level_qty[side].get(px, 0) != row[4 * k + off + 1]:
                ref._set_level(0, side, px, row[4 * k + off + 1])
                changed = True
        return changed

    def window(row: list[int], side: int) -> tuple[int, int]:
        big = 1 << 62
        if side < 0:
            pl_ = row[4 * (L - 1)]
            return 0, (pl_ if pl_ > 0 else big)
        pl_ = row[4 * (L - 1) + 2]
        return (pl_ if pl_ > 0 else 0), big

    def bits(snap: list[int], row: list[int]) -> int:
        return sum(1 << k for k in range(L) if snap[4 * k:4 * k + 4] == row[4 * k:4 * k + 4])

    n = m.shape[0]
    pre = np.zeros(n, dtype=np.int64)
    post = np.zeros(n, dtype=np.int64)
    rows = book.tolist()
    full = (1 << L) - 1
    for i, (ts, typ, oid, size, price, side) in enumerate(m.tolist()):
        if i == 0:
            continue
        if typ == 1:
            ref._add(oid, side, price, size)
        elif 2 <= typ <= 4:
            rest = size
            if oid in ref.orders:
                q = ref.orders[oid][2]
                if typ == 3:
                    ref._reduce(oid, q)
                    if size < q:
                        ref._set_level(ts, side, price, ref.level_qty[side].get(price, 0) + q - size)
                    rest = max(size - q, 0)
                else:
                    t = min(size, q)
                    ref._reduce(oid, t)
                    rest = size - t
            if rest > 0:
                take_level(side, price, rest)
        row, prev = rows[i], rows[i - 1]
        b = bits(ref.snapshot(L), row)
        pre[i] = b
        changed = False
        plo, phi = window(prev, -1)
        clo, chi = window(row, -1)
        if chi > phi:
            changed |= sync(row, -1, phi + 1, chi)
        plo, phi = window(prev, 1)
        clo, chi = window(row, 1)
        if clo < plo:
            changed |= sync(row, 1, clo, plo - 1)
        if changed:
            b = bits(ref.snapshot(L), row)
        post[i] = b
        if b != full:
            for sd in (-1, 1):
                lo, hi = window(row, sd)
                sync(row, sd, lo, hi)
    return pre, post


def lobster_goog():
    """The LOBSTER GOOG 2012-06-21 level-10 sample as engine input: (day, its messages with prices in ticks,
    seed commands of the first book row, commands of the other messages)."""
    from marketlab.store.ingest.lobster import read_lobster

    d = DATA / "lobster_sample_2012-06-21"
    stem = "GOOG_2012-06-21_34200000_57600000"
    day = read_lobster(d / f"{stem}_message_10.csv.gz", d / f"{stem}_orderbook_10.csv.gz")
    m = day.msgs.copy()
    m[:, 4] = np.where(m[:, 1] <= 4, m[:, 4] // day.grid, 0)
    row0 = day.book[0].copy()
    row0[0::2] //= day.grid
    return day, m, seed_commands(row0, int(m[0, 0])), events_to_commands(m[1:])


def lobster_section(quick: bool) -> dict:
    from marketlab.lob.lobster import verify_lobster

    day, m, seed, cmds = lobster_goog()
    n = cmds.shape[0]
    engine_batch(cmds[:1000], seed, True)  # JIT / cache load outside the timing
    t_eng, res = best_of(lambda: engine_batch(cmds, seed, True))
    c_eng = CPU["last"]
    n_py = n if not quick else 30_000
    t_py, py_snaps = best_of(lambda: python_batch(cmds[:n_py], seed, True), repeats=2)
    parity = bool(np.array_equal(res.snaps[:n_py], np.array(py_snaps, dtype=np.int64)))
    rep = verify_lobster(day.msgs, day.book, grid=day.grid)
    # full reconstruction (apply + top-10 snapshot + compare + window rule), numba vs pure Python
    bk = day.book.copy()
    bk[:, 0::2] //= day.grid
    n_pv = day.msgs.shape[0] if not quick else 30_000
    t_pv, (pre_py, post_py) = best_of(lambda: py_verify(m[:n_pv], bk[:n_pv], day.levels), repeats=1)
    verify_parity = bool(np.array_equal(post_py[1:n_pv], _verify_bits(day, n_pv)))
    return {
        "dataset": "LOBSTER GOOG 2012-06-21 level 10",
        "messages": int(n),
        "generic_replay_note": "generic tolerant replay (seed row 0, no orderbook help): without the level-10 "
                               "window rule it drifts from the file and rejects some messages; both books get "
                               "identical commands and produce identical snapshots",
        "engine_events_per_s": n / t_eng,
        "engine_events_per_cpu_s": n / c_eng,
        "pure_python_events_per_s": n_py / t_py,
        "speedup_vs_pure_python": (n / t_eng) / (n_py / t_py),
        "snapshots_identical": parity,
        "verify_kernel_events_per_s": rep.events_per_s,
        "verify_pure_python_events_per_s": (n_pv - 1) / t_pv,
        "verify_speedup_vs_pure_python": rep.events_per_s / ((n_pv - 1) / t_pv),
        "verify_match_bits_identical": verify_parity,
        "verify_match_rate_level1": rep.match_rate_level1,
        "verify_match_rate_all_levels": rep.match_rate_all_levels,
    }


def _verify_bits(day, n: int) -> np.ndarray:
    """Post-rule match bits of the numba verifier for the first n rows (rows 1..n-1)."""
    from marketlab.lob import lobster as LV

    # re-run the kernel on the prefix through the public function's internals
    rep_bits = LV.verify_bits(day.msgs[:n], day.book[:n], grid=day.grid)
    return rep_bits[1:]


def random_flow(n: int, seed: int = 7) -> np.ndarray:
    """``int64[n, 7]`` commands: 55% limit (10% IOC, 5% FOK), 7% market, 30% cancel, 8% modify; prices
    around a random-walk mid (geometric distance from it), sizes 1..20 lots; ts in ns."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    kind = np.where(u < 0.55, K.K_LIMIT, np.where(u < 0.62, K.K_MARKET, np.where(u < 0.92, K.K_CANCEL, K.K_MODIFY)))
    mid = 100_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=n))
    side = rng.choice([1, -1], size=n)
    dist = rng.geometric(0.25, size=n) - 1
    price = np.where(side > 0, mid - dist, mid + dist)
    size = rng.integers(1, 21, size=n)
    new = (kind == K.K_LIMIT) | (kind == K.K_MARKET)
    ids = np.cumsum(new)
    # cancel/modify target: a recent id (may already be gone -> counted rejection in both books)
    back = rng.geometric(0.002, size=n)
    target = np.maximum(ids - back, 1)
    oid = np.where(new, ids, target)
    tif = np.where(kind == K.K_LIMIT, rng.choice([0] * 17 + [1, 1, 2], size=n), 0)
    mod_px = np.where(rng.random(n) < 0.5, 0, price)
    price = np.where(kind == K.K_MODIFY, mod_px, np.where(kind == K.K_CANCEL, 0, price))
    size = np.where(kind == K.K_CANCEL, 0, size)
    ts = np.arange(n, dtype=np.int64) * 1000
    return np.stack([ts, kind, oid, side, price, size, tif], axis=1).astype(np.int64)


def random_section(quick: bool) -> dict:
    n = 100_000 if quick else 300_000
    cmds = random_flow(n)
    engine_batch(cmds[:1000], None, False)
    t_eng, res = best_of(lambda: engine_batch(cmds, None, False))
    c_eng = CPU["last"]
    n_py = min(n, 100_000)
    t_py, py_snaps = best_of(lambda: python_batch(cmds[:n_py], None, False), repeats=2)
    parity = bool(np.array_equal(res.snaps[:n_py], np.array(py_snaps, dtype=np.int64)))
    return {
        "commands": n,
        "fills": int(res.fills.shape[0]),
        "rejected": int((res.status != 0).sum()),
        "engine_events_per_s": n / t_eng,
        "engine_events_per_cpu_s": n / c_eng,
        "pure_python_events_per_s": n_py / t_py,
        "speedup_vs_pure_python": (n / t_eng) / (n_py / t_py),
        "snapshots_identical": parity,
    }


def simulated_day_section(quick: bool) -> dict:
    n = 100_000 if quick else 500_000
    cmds = random_flow(n, seed=11)
    ob = OrderBook()
    ob.submit_limit(10**12, 1, 1, 1, ts=0)  # warm the per-call path
    ob = OrderBook()
    methods = {K.K_LIMIT: ob.submit_limit, K.K_MARKET: ob.submit_market, K.K_CANCEL: ob.cancel, K.K_MODIFY: ob.modify}
    tifs = {0: "GTC", 1: "IOC", 2: "FOK"}
    rows = cmds.tolist()
    t0 = time.perf_counter()
    spread = 0
    for ts, kind, oid, side, price, size, tif in rows:
        if kind == K.K_LIMIT:
            methods[kind](oid, side, price, size, ts=ts, tif=tifs[tif])
        elif kind == K.K_MARKET:
            methods[kind](oid, side, size, ts=ts)
        elif kind == K.K_CANCEL:
            methods[kind](oid, ts=ts)
        else:
            methods[kind](oid, size=size, price=price or None, ts=ts)
        b, a = ob.quotes()  # an agent looks at the touch after each event
        if a is not None and b is not None:
            spread += a - b
    t_call = time.perf_counter() - t0
    t_batch, _ = best_of(lambda: engine_batch(cmds, None, False, depth=10), repeats=1)
    return {
        "events": n,
        "per_call_api_seconds": t_call,
        "per_call_api_events_per_s": n / t_call,
        "batch_with_top10_seconds": t_batch,
        "goal_under_10_s": t_call < 10.0,
    }


def one_command_section(quick: bool) -> dict:
    """Per-call cost (µs, process CPU time, best of 3) of each one-command API call on a resting book of
    ~1,000 orders (issue 21 goal: <= 2 µs for every command kind)."""
    n = 20_000 if quick else 100_000
    out: dict = {"calls_per_kind": n}

    def book() -> OrderBook:
        ob = OrderBook(capacity=1 << 18)
        for i in range(1, 1001):
            ob.submit_limit(i, 1 if i % 2 else -1, 1000 - 1 - i % 20 if i % 2 else 1001 + i % 20, 5, ts=0)
        return ob

    def timed(name: str, run, prepare=None) -> None:
        best = float("inf")
        for _ in range(3):
            ob = book()
            if prepare is not None:
                prepare(ob)
            c0 = time.process_time()
            run(ob)
            best = min(best, time.process_time() - c0)
        out[f"{name}_us"] = best / n * 1e6

    base = 10_000
    adds = np.array([(1, K.K_APPLY_ADD, base + i, 1, 900 + i % 50, 2, 0) for i in range(n)], dtype=np.int64)

    def rest_adds(ob: OrderBook) -> None:
        ob.process(adds)

    timed("submit_limit_resting", lambda ob: [ob.submit_limit(base + i, 1, 900 + i % 50, 1, ts=1) for i in range(n)])
    timed("apply_add", lambda ob: [ob.apply_add(base + i, -1, 1100 + i % 50, 1, ts=1) for i in range(n)])
    timed("cancel", lambda ob: [ob.cancel(base + i, ts=2) for i in range(n)], rest_adds)
    timed("apply_reduce", lambda ob: [ob.apply_reduce(base + i, 1, 900 + i % 50, 2, ts=2) for i in range(n)], rest_adds)
    timed("modify", lambda ob: [ob.modify(base + i, size=1, ts=2) for i in range(n)], rest_adds)
    timed("submit_market_1_lot", lambda ob: [ob.submit_market(base + i, 1 if i % 2 else -1, 1, ts=1) for i in range(min(n, 4000))])
    out["submit_market_1_lot_us"] *= n / min(n, 4000)
    out["goal_le_2_us"] = all(v <= 2.0 for k, v in out.items() if k.endswith("_us"))
    return out


STUB_BIDS = list(range(1, 11))  # 0.01 .. 0.10 at a 1-cent tick
STUB_ASKS = [9_999_999 - k for k in range(11)]  # 99,999.89 .. 99,999.99


def stub_commands(ts: int) -> np.ndarray:
    """21 stub orders far from the market (issue 21's crypto book: bids at cents, asks near 100,000),
    as ``apply_add`` commands with ids far above the recorded ones."""
    rows = [(ts, K.K_APPLY_ADD, 10**15 + k, 1, px, 1, 0) for k, px in enumerate(STUB_BIDS)]
    rows += [(ts, K.K_APPLY_ADD, 2 * 10**15 + k, -1, px, 1, 0) for k, px in enumerate(STUB_ASKS)]
    return np.array(rows, dtype=np.int64)


def far_stubs_section(quick: bool) -> dict:
    """Issue 21: the same LOBSTER stream replayed on a fresh book with and without 21 far stub orders.

    Timed end to end (fresh book, seed, stubs, replay with a top-10 snapshot per message) and as the
    kernel alone (replay without snapshots on a book already seeded). Memory: bytes held by a fresh book
    after the stubs (``OrderBook.nbytes``) and the tracemalloc peak of building it. Goals: stub/clean
    within 10 %, fresh book <= 64 MB, kernel >= 10M commands/s."""
    import tracemalloc

    _, m, seed, cmds = lobster_goog()
    if quick:
        cmds = cmds[:50_000]
    n = cmds.shape[0]
    stubs = stub_commands(int(m[0, 0]))
    pre = {"clean": seed, "stubs": np.concatenate([seed, stubs])}

    def replay(kind: str, depth: int = 10):
        ob = OrderBook(capacity=1 << 16, tolerant=True)
        ob.process(pre[kind])
        return ob, ob.process(cmds, depth=depth)

    replay("stubs", depth=10)  # JIT / cache load outside the timing
    out: dict = {"dataset": "LOBSTER GOOG 2012-06-21 level 10", "messages": int(n), "stub_orders": int(stubs.shape[0]),
                 "stub_prices_ticks": [min(STUB_BIDS), max(STUB_ASKS)]}

    def kernel_only(kind: str) -> float:
        book = OrderBook(capacity=1 << 16, tolerant=True)
        book.process(pre[kind])
        book.reserve(1 << 16, events=n + (1 << 16))
        c0 = time.process_time()
        book.process(cmds)
        return time.process_time() - c0

    # Clean and stub runs alternate (A B B A ...), so both see the same load; a run is ~20 ms of CPU, so the
    # minimum over many repeats and the median of the per-pair ratios are both reported.
    repeats = 5 if quick else 15
    cpu: dict[str, list[float]] = {"clean": [], "stubs": []}
    kern: dict[str, list[float]] = {"clean": [], "stubs": []}
    snaps, books = {}, {}
    for r in range(repeats):
        for kind in (("clean", "stubs") if r % 2 == 0 else ("stubs", "clean")):
            c0 = time.process_time()
            books[kind], res = replay(kind)
            cpu[kind].append(time.process_time() - c0)
            snaps[kind] = res.snaps
            kern[kind].append(kernel_only(kind))
    for kind in ("clean", "stubs"):
        out[f"{kind}_replay_cpu_seconds_min"] = min(cpu[kind])
        out[f"{kind}_replay_events_per_cpu_s"] = n / min(cpu[kind])
        out[f"{kind}_kernel_commands_per_cpu_s"] = n / min(kern[kind])
        out[f"{kind}_far_levels_after"] = list(books[kind].far_levels)
    ratios = [a / b for a, b in zip(cpu["stubs"], cpu["clean"], strict=True)]
    out["stub_over_clean_replay_cpu_min"] = min(cpu["stubs"]) / min(cpu["clean"])
    out["stub_over_clean_replay_cpu_median_of_pairs"] = float(np.median(ratios))
    out["stub_over_clean_kernel_cpu_min"] = min(kern["stubs"]) / min(kern["clean"])
    out["repeats"] = repeats
    # the stubs sit below/above every recorded level: the top-10 rows agree wherever a side has 10 levels
    full = (snaps["clean"][:, 0::4] > 0).all(axis=1) & (snaps["clean"][:, 2::4] > 0).all(axis=1)
    out["top10_identical_where_both_sides_have_10_levels"] = bool(np.array_equal(snaps["clean"][full], snaps["stubs"][full]))
    tracemalloc.start()
    fresh = OrderBook()
    fresh.process(stubs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["fresh_book_with_stubs_bytes"] = fresh.nbytes
    out["fresh_book_with_stubs_tracemalloc_peak_bytes"] = int(peak)
    t_fresh, _ = best_of(lambda: OrderBook().process(stubs), repeats=5)
    out["fresh_book_with_stubs_seconds"] = t_fresh
    out["goal_within_10_percent"] = max(out["stub_over_clean_replay_cpu_min"], out["stub_over_clean_kernel_cpu_min"]) <= 1.10
    out["goal_fresh_book_le_64_MB"] = max(fresh.nbytes, peak) <= 64 * 2**20
    out["goal_kernel_ge_10M_per_s"] = min(out["clean_kernel_commands_per_cpu_s"], out["stubs_kernel_commands_per_cpu_s"]) >= 10e6
    return out


def hftbacktest_section() -> dict:
    hbt_path = os.environ.get("HBT_PATH", "/tmp/hbt")
    if Path(hbt_path).is_dir():
        sys.path.append(hbt_path)
    try:
        from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
        from hftbacktest.data.utils import binancefutures
        from numba import njit
    except Exception as exc:  # noqa: BLE001 - optional competitor
        return {"skipped": f"hftbacktest not importable ({type(exc).__name__}); pip install --no-deps --target /tmp/hbt hftbacktest"}
    from marketlab.lob.l2 import L2Book
    from marketlab.store.ingest.binance_raw import read_capture

    path = DATA / "binance_btcusdt_raw_feed_2024-08-08" / "usdm_btcusdt_20240808.gz"
    data = binancefutures.convert(str(path), combined_stream=True, buffer_size=3_000_000)

    @njit
    def loop(hbt):
        n = 0
        acc = 0.0
        while hbt.elapse(1_000_000) == 0:  # 1 ms steps; read the touch at every step
            d = hbt.depth(0)
            acc += d.best_ask_tick - d.best_bid_tick
            n += 1
        return n

    def run():
        asset = (BacktestAsset().data([data]).linear_asset(1.0).constant_order_latency(0, 0)
                 .risk_adverse_queue_model().no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
                 .tick_size(0.1).lot_size(0.001))
        hbt = HashMapMarketDepthBacktest([asset])
        steps = loop(hbt)
        hbt.close()
        return steps

    run()  # compile
    t_hbt, steps = best_of(run, repeats=2)
    cap = read_capture(path)
    L2Book().apply(cap.updates[:1000], depth=10)
    t_ours, _ = best_of(lambda: L2Book().apply(cap.updates, depth=10, n_groups=len(cap.group_u)))
    return {
        "capture": path.name,
        "hftbacktest_rows": int(data.shape[0]),
        "hftbacktest_seconds": t_hbt,
        "hftbacktest_rows_per_s": data.shape[0] / t_hbt,
        "hftbacktest_steps_1ms": int(steps),
        "marketlab_level_updates": int(cap.updates.shape[0]),
        "marketlab_seconds_with_top10_per_diff": t_ours,
        "marketlab_updates_per_s": cap.updates.shape[0] / t_ours,
        "note": "hftbacktest replays its converted event rows (depth + trades, no REST snapshot) through a "
                "full backtester stepping every 1 ms; marketlab applies snapshot + diffs to an L2 book with a "
                "top-10 snapshot after each diff. Different work per event: indicative only.",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke)")
    ap.add_argument("--only", default="", help="comma-separated section names to run (default: all)")
    args = ap.parse_args()
    run = Run("lob")
    import numba

    out: dict = {"numba": numba.__version__,
                 "note": "2-core machine shared with other engineers while measuring (load averages at start "
                         "and end below); best of 5 repeats, single thread. events_per_s is wall time (includes "
                         "waiting for a core on the loaded machine); events_per_cpu_s uses the process CPU time "
                         "of the same runs, i.e. what one core does. Goals: >= 2M events/s L3 replay incl. "
                         "top-10 snapshot, >= 10x the pure-Python book, ~500k-event simulated day < 10 s; issue 21: "
                         "stub orders within 10 % of the clean replay, fresh book <= 64 MB, kernel >= 10M commands/s."}
    for name, fn in (("lobster_replay", lambda: lobster_section(args.quick)),
                     ("random_flow", lambda: random_section(args.quick)),
                     ("simulated_day", lambda: simulated_day_section(args.quick)),
                     ("one_command_calls", lambda: one_command_section(args.quick)),
                     ("far_stub_orders", lambda: far_stubs_section(args.quick)),
                     ("hftbacktest", hftbacktest_section)):
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.perf_counter()
        out[name] = fn()
        out[name]["section_seconds"] = time.perf_counter() - t0
        print(name, json.dumps(out[name], indent=1), flush=True)
    print("appended to", run.save(out))


if __name__ == "__main__":
    main()
