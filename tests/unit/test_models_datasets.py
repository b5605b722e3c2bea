"""Window sets (strided views, index maps, segments), FI-2010 reader errors, LOBSTER preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.core.errors import DataError
from marketlab.models.datasets import (
    LobsterArrays,
    WindowSet,
    book_windowsets,
    lobster_features,
    lobster_normalise,
    lobster_windowsets,
    segments_of,
    volume_sample_mask,
    window_index,
)


def test_windows_are_views_and_batches_match_slices() -> None:
    x = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    y = torch.arange(20) % 3
    s, li = window_index([(0, 12), (12, 20)], 4, 3, y.numpy())
    ws = WindowSet(x, y, s, li, 4)
    assert ws.windows().data_ptr() == x.data_ptr()  # no copy of the dataset per window
    assert ws.windows().shape == (17, 4, 3)
    xb, yb = ws.batch(np.array([0, 5, len(ws) - 1]))
    for row, j in enumerate([0, 5, len(ws) - 1]):
        torch.testing.assert_close(xb[row], x[s[j] : s[j] + 4])
        assert yb[row] == y[li[j]]


@settings(max_examples=30, deadline=None)
@given(
    bounds=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    seq=st.integers(1, 12),
    offset_back=st.integers(0, 11),
)
def test_window_index_never_crosses_a_segment(bounds: list[int], seq: int, offset_back: int) -> None:
    edges = np.cumsum([0, *bounds])
    segs = list(zip(edges[:-1], edges[1:], strict=False))
    labels = np.zeros(edges[-1], np.int64)
    off = max(seq - 1 - offset_back, 0)
    s, li = window_index(segs, seq, off, labels)
    for a, b in zip(s, li, strict=False):
        seg = next((lo, hi) for lo, hi in segs if lo <= a < hi)
        assert a + seq <= seg[1] and seg[0] <= b < seg[1]
    assert len(s) == sum(max(hi - lo - seq + 1, 0) for lo, hi in segs)


def test_window_index_skips_undefined_labels() -> None:
    labels = np.array([0, 1, 2, -1, -1, 0])
    s, li = window_index([(0, 6)], 2, 1, labels)
    assert labels[li].min() >= 0 and list(s) == [0, 1, 4]


def test_segments_of_splits_on_any_key_change() -> None:
    day = np.array([1, 1, 1, 2, 2, 2])
    stock = np.array([0, 0, 1, 1, 1, 0])
    assert segments_of(day, stock) == [(0, 2), (2, 3), (3, 5), (5, 6)]


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 900), min_size=1, max_size=60), q=st.sampled_from([100, 500]))
def test_volume_sampling_keeps_each_crossing_of_q(sizes: list[int], q: int) -> None:
    size = np.array(sizes, dtype=float)
    keep = volume_sample_mask(size, q)
    c = np.cumsum(size)
    prev = c - size
    crossed = np.floor(c / q) > np.floor(prev / q)  # some multiple of q lies in (prev, c]
    assert (keep == crossed).all()


def _toy_lobster(n: int = 4000, seed: int = 0) -> LobsterArrays:
    rng = np.random.default_rng(seed)
    mid = 100 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))
    book = np.zeros((n, 40))
    for lvl in range(10):
        book[:, 4 * lvl] = mid + 0.01 * (lvl + 1)
        book[:, 4 * lvl + 1] = rng.integers(1, 50, n) * 100
        book[:, 4 * lvl + 2] = mid - 0.01 * (lvl + 1)
        book[:, 4 * lvl + 3] = rng.integers(1, 50, n) * 100
    typ = rng.choice([1, 2, 3, 4, 5], n, p=[0.5, 0.05, 0.35, 0.07, 0.03])
    t = 34_200 + np.cumsum(rng.exponential(0.5, n))
    return LobsterArrays(time=t, type=typ, size=rng.integers(1, 10, n) * 100.0, price=mid.copy(),
                         direction=rng.choice([-1.0, 1.0], n), book=book, day=np.zeros(n, np.int64),
                         ts=(t * 1e9).astype(np.int64), symbol="TOY")


def test_lobster_features_filter_sample_and_layout() -> None:
    a = _toy_lobster()
    f = lobster_features(a, q=500)
    assert f["features"].shape[1] == 46
    assert set(np.unique(f["features"][:, 41])) <= {0.0, 1.0, 2.0}  # event type code at column 41
    kept = np.isin(a.type, (1, 3, 4)).sum()
    assert len(f["mid"]) < kept  # sampling thinned the filtered stream
    assert (f["features"][:, 40] >= 0).all()  # inter-event times
    np.testing.assert_allclose(f["mid"], (f["features"][:, 0] + f["features"][:, 2]) / 2)


def test_lobster_normalise_pools_prices_and_sizes_with_train_stats() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(100, 46)) + 5
    test = rng.normal(size=(50, 46)) + 9
    tr, te = lobster_normalise(train, test)
    px = np.r_[0:40:2]
    assert abs(tr[:, px].mean()) < 1e-5 and abs(tr[:, px].std() - 1) < 1e-4  # pooled, not per column
    assert te[:, px].mean() > 2  # test keeps its shift: no test statistics used
    np.testing.assert_array_equal(tr[:, 41], train[:, 41].astype(np.float32))  # event type untouched


def test_lobster_windowsets_split_by_time_and_train_alpha() -> None:
    with pytest.raises(DataError, match="seq_size"):
        lobster_windowsets(_toy_lobster(600), horizon=10, seq_size=8, q=300)
    sets = lobster_windowsets(_toy_lobster(6000), horizon=10, seq_size=12, q=300)
    assert sets["train"].ts.max() < sets["val"].ts.min() <= sets["val"].ts.max() < sets["test"].ts.min()
    a = {k: v.meta["alpha"] for k, v in sets.items()}
    assert a["train"] == a["val"] == a["test"]
    for ws in sets.values():
        assert len(ws) > 0 and ws.window_labels().min() >= 0
        assert (ws.label_index == ws.starts + 12 - 10).all()  # i + T - λ


def _book_frame(n: int = 900, seed: int = 0):
    import polars as pl

    rng = np.random.default_rng(seed)
    mid = 100 + np.cumsum(rng.choice([-0.5, 0.0, 0.5], n))
    cols = {"ts": np.arange(n, dtype=np.int64) * 1_000_000, "symbol": ["BTC"] * n, "seq": np.arange(n)}
    for i in range(1, 11):
        cols[f"ask_px_{i}"] = mid + 0.5 * i
        cols[f"ask_sz_{i}"] = rng.uniform(0.1, 2, n)
        cols[f"bid_px_{i}"] = mid - 0.5 * i
        cols[f"bid_sz_{i}"] = rng.uniform(0.1, 2, n)
    return pl.DataFrame(cols)


def test_book_only_path_through_load_windowsets() -> None:
    """A level-change feed (no order ids, Binance-like) takes TLOB's book-only path."""
    import polars as pl

    from marketlab.models.sources import DataConfig, load_windowsets

    book = _book_frame()

    class FakeStore:  # the two Store methods load_windowsets uses
        def scan_book(self, dataset, symbols=None, *, as_float=False):
            return book.lazy()

        def scan_events(self, dataset, symbols=None, *, as_float=False):
            return pl.DataFrame({"ts": [0], "symbol": ["BTC"], "seq": [0], "type": [1], "order_id": [0],
                                 "side": [1], "price": [100.0], "size": [1.0]}).lazy()

    sets, spec = load_windowsets("binctabl", "btc", horizon=20, store=FakeStore(), dcfg=DataConfig(seq_size=10))
    assert spec["mode"] == "book" and spec["num_features"] == 40
    assert sets["train"].features.shape[1] == 40
    assert sets["train"].ts.max() < sets["test"].ts.min()
    assert (sets["test"].label_index == sets["test"].starts).all()  # T - λ = 10 - 10
    with pytest.raises(DataError, match="ask_px_10"):
        book_windowsets(book.drop("ask_px_10"), horizon=10, seq_size=10)
