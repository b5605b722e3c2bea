"""The numba Med (rolling median) and CSRank (cross-sectional average rank) kernels against pandas.

pandas is the outside reference: ``rolling(w).median()`` (min_periods = w, so a window holding a NaN is NaN)
and ``rank(axis=1, method="average", pct=True)``. The inputs are built to hit what the kernels special-case:
ties (integer values, whole flat stretches), NaN runs that enter and leave windows, all-NaN days, +-inf,
-0.0 next to +0.0, negative values, and windows of every parity from 1 to longer than a NaN-free stretch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from marketlab.features.expr import kernels as K
from marketlab.features.expr import kernels_nb as nb


def _awkward_panel(T: int = 120, N: int = 37, seed: int = 0, inf: bool = True) -> np.ndarray:
    """float32-exact values: ties, flat runs, NaN runs, signed zeros, infinities (``inf``), negatives."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 5, size=(T, N)).astype(np.float64)  # many ties
    x[:, :10] = np.round(rng.normal(0, 100, size=(T, 10)), 2).astype(np.float32)  # mostly distinct
    x[20:45, 3] = 7.0  # a flat stretch longer than every window
    x[rng.random((T, N)) < 0.06] = np.nan  # scattered NaNs
    x[60:64, 5] = np.nan  # a NaN run entering and leaving windows
    x[30, :] = np.nan  # a day with nothing
    x[31, :] = 1.5  # a day where every stock ties
    x[50, 11:14] = [-0.0, 0.0, -0.0]
    if inf:
        x[70, 15], x[71, 16], x[72, 15] = np.inf, -np.inf, np.inf
    return x.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("w", [1, 2, 3, 4, 5, 10, 20, 21, 40])
def test_rolling_median_equals_pandas(w: int) -> None:
    # no infinities here: pandas' rolling treats +-inf as missing, and the evaluator maps them to NaN before
    # any rolling kernel runs (the kernel itself orders them as values: see the known-answer test)
    x = _awkward_panel(inf=False)
    got = nb.rolling_median(x.astype(np.float32), w)
    want = pd.DataFrame(x).rolling(w).median().to_numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # odd w: a stored value, exact; even w: the float32 of the float64 mean of two float32 values
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=0, atol=0, equal_nan=True)


def test_rolling_median_known_answer_by_hand() -> None:
    x = np.array([[3.0], [1.0], [2.0], [np.nan], [5.0], [4.0], [4.0], [-1.0]], dtype=np.float32)
    got = nb.rolling_median(x, 3)[:, 0]
    want = [np.nan, np.nan, 2.0, np.nan, np.nan, np.nan, 4.0, 4.0]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))
    inf = np.array([[1.0], [np.inf], [2.0], [-np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(nb.rolling_median(inf, 3)[:, 0], np.array([np.nan, np.nan, 2.0, 2.0], dtype=np.float32))
    got2 = nb.rolling_median(x, 2)[:, 0]
    np.testing.assert_array_equal(got2, np.array([np.nan, 2.0, 1.5, np.nan, np.nan, 4.5, 4.0, 1.5], dtype=np.float32))


def test_rolling_median_window_longer_than_data_is_all_nan() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert np.isnan(nb.rolling_median(x, 7)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cs_average_rank_equals_pandas(seed: int) -> None:
    x = _awkward_panel(seed=seed)
    got = nb.cs_average_rank(x.astype(np.float32), True)
    want = pd.DataFrame(x).rank(axis=1, method="average", pct=True).to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
    raw = nb.cs_average_rank(x, False)  # 1-based average ranks (float64 input is ranked as float32)
    np.testing.assert_allclose(raw, pd.DataFrame(x).rank(axis=1, method="average").to_numpy(), rtol=1e-6, equal_nan=True)


def test_cs_average_rank_known_answer_and_signed_zero() -> None:
    x = np.array([[2.0, -0.0, np.nan, 0.0, -3.0, 2.0, np.inf]], dtype=np.float32)
    got = nb.cs_average_rank(x, False)[0]
    # sorted valid: -3 | -0 = +0 (tie, ranks 2,3 -> 2.5) | 2, 2 (ranks 4,5 -> 4.5) | inf (6)
    np.testing.assert_array_equal(got, np.array([4.5, 2.5, np.nan, 2.5, 1.0, 4.5, 6.0], dtype=np.float32))


def test_cs_rank_through_the_engine_dispatch_on_wide_days() -> None:
    # > 256 stocks: every radix digit pass runs with several buckets; values spanning signs and exponents
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((6, 800)) * 10.0 ** rng.integers(-3, 4, size=(6, 800))).astype(np.float32)
    x[:, ::7] = np.round(x[:, ::7])
    x[2, rng.random(800) < 0.3] = np.nan
    got = K.cross_section("CSRank", torch.from_numpy(x)).numpy()
    want = pd.DataFrame(x.astype(np.float64)).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("spread", [40, 3000])
def test_cs_average_rank_truncated_key_collisions_equal_pandas(spread: int) -> None:
    # The kernel sorts each value's key relative to the day's minimum, truncated to <= 22 bits, and re-orders
    # runs of colliding truncated keys by the full key afterwards. Far outliers (+-3e38) make the truncation
    # drop ~10 bits, so clusters of adjacent float32s collide: short runs (spread 3000 ulps: pairs, triples)
    # and runs longer than the insertion-sort limit (spread 40 ulps: ~25 values per key), with true ties
    # inside runs. 1,100 stocks: an 11-bit column index.
    rng = np.random.default_rng(spread)
    T, N = 8, 1100
    x = np.empty((T, N), dtype=np.float32)
    for t in range(T):
        base = np.float32(1.0 + t)
        x[t] = base + rng.integers(0, spread, N).astype(np.float32) * np.spacing(base)
        x[t, rng.integers(0, N, 2)] = [-3e38, 3e38]
        x[t, rng.random(N) < 0.05] = np.nan
    x[3] = x[3][::-1]  # a run arriving in descending column order
    got = nb.cs_average_rank(x, True)
    want = pd.DataFrame(x.astype(np.float64)).rank(axis=1, method="average", pct=True).to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
