"""The rolling-moment kernel's semantics on small hand-made arrays (real-data accuracy: integration)."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.features import rolling as rl


def test_nan_poisons_only_the_windows_that_hold_it():
    x = np.arange(10.0)
    x[4] = np.nan
    got = rl.rolling_mean(x, 3)
    want = np.array([np.nan, np.nan, 1.0, 2.0, np.nan, np.nan, np.nan, 6.0, 7.0, 8.0])
    np.testing.assert_array_equal(got, want)  # a cumulative sum would stay NaN after row 4


def test_shapes_dtypes_and_short_series():
    x32 = np.ones((6, 3), dtype=np.float32)
    assert rl.rolling(x32, 2, rl.STD).dtype == np.float32
    assert rl.rolling(np.arange(5), 2, rl.MEAN).dtype == np.float64
    assert np.isnan(rl.rolling_mean(np.arange(3.0), 4)).all()
    with pytest.raises(ValueError):
        rl.rolling_mean(np.arange(3.0), 0)


def test_flat_windows_are_exact_and_moments_undefined():
    x = np.array([0.1, 0.7, 0.3, 0.3, 0.3, 0.3, 0.2])
    assert rl.rolling_mean(x, 4)[5] == 0.3 and rl.rolling_std(x, 4)[5] == 0.0
    assert np.isnan(rl.rolling(x, 4, rl.SKEW)[5]) and np.isnan(rl.rolling(x, 4, rl.KURT)[5])
    assert rl.rolling(x, 4, rl.SUM)[5] == 4 * 0.3


def test_known_answers_by_hand():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(rl.rolling(x, 3, rl.VAR)[2:], [7 / 3, 28 / 3])  # unbiased var of 1,2,4 / 2,4,8
    np.testing.assert_allclose(rl.rolling_std(x, 3, ddof=0)[2], np.sqrt(14 / 9))
    # skew of (1, 2, 4): deviations -4/3, -1/3, 5/3 -> m2 = 14/9, m3 = 20/27
    np.testing.assert_allclose(rl.rolling(x, 3, rl.SKEW)[2], (20 / 27) / (14 / 9) ** 1.5)
