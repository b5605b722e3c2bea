"""L2Book against a naive dict book: tops after every group and per-row deltas, both sides, all depths."""

from __future__ import annotations

import numpy as np

from marketlab.lob.l2 import L2Book


def naive(updates: np.ndarray, depth: int, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    tops = np.zeros((n_groups, 4 * depth), dtype=np.int64)
    deltas = np.zeros(len(updates), dtype=np.int64)
    for r, (g, side, px, q) in enumerate(updates):
        book = bids if side > 0 else asks
        old = book.get(int(px), 0)
        if q == 0:
            book.pop(int(px), None)
        else:
            book[int(px)] = int(q)
        deltas[r] = q - old
        if r == len(updates) - 1 or updates[r + 1, 0] != g:
            a = sorted(asks.items())[:depth]
            b = sorted(bids.items(), reverse=True)[:depth]
            for k in range(depth):
                tops[g, 4 * k: 4 * k + 2] = a[k] if k < len(a) else (0, 0)
                tops[g, 4 * k + 2: 4 * k + 4] = b[k] if k < len(b) else (0, 0)
    return tops, deltas


def test_l2book_matches_a_naive_book_on_random_updates() -> None:
    rng = np.random.default_rng(7)
    rows = []
    g = 0
    for _ in range(3000):
        side = int(rng.choice([1, -1]))
        px = int(rng.integers(90, 100)) if side > 0 else int(rng.integers(100, 110))
        px += int(rng.integers(0, 3)) * 50 * side  # some far levels too
        rows.append((g, side, px, int(rng.integers(0, 4)) * int(rng.integers(1, 9))))
        g += int(rng.random() < 0.3)
    upd = np.array(rows, dtype=np.int64)
    n = int(upd[-1, 0]) + 1
    for depth in (1, 3, 7):
        got = L2Book(capacity=4).apply(upd, depth=depth, n_groups=n)  # tiny capacity: growth is exercised
        want = naive(upd, depth, n)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    book = L2Book()
    book.apply(upd, depth=1, n_groups=n)
    t = want[0][-1]
    assert book.best() == (t[2], t[3], t[0], t[1])
