"""Trend labels: formulas, alignment, train-only α, and that no label reads outside its stated window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.core.errors import DataError
from marketlab.features.labels import (
    DOWN,
    STATIONARY,
    UNDEFINED,
    UP,
    class_shares,
    deeplob_delta,
    deeplob_labels,
    fi2010_labels,
    fit_tlob_alpha,
    tlob_delta,
    tlob_labels,
    tlob_smoothing,
    tlob_window_label_index,
)


def _mid(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))


def test_tlob_delta_matches_direct_formula() -> None:
    m = _mid(300, 0)
    for h in (10, 20, 50, 100):
        lam = min(10, h)
        d = tlob_delta(m, h)
        for t in (0, 7, 300 - h - lam):
            w0, w1 = m[t : t + lam].mean(), m[t + h : t + h + lam].mean()
            assert d[t] == pytest.approx((w1 - w0) / w0, rel=1e-9)
        assert np.isnan(d[300 - h - lam + 1 :]).all() and np.isfinite(d[: 300 - h - lam + 1]).all()


def test_tlob_small_horizon_uses_lambda_equal_h() -> None:
    assert tlob_smoothing(5) == 5 and tlob_smoothing(10) == 10 and tlob_smoothing(100) == 10


def test_deeplob_delta_matches_direct_formula() -> None:
    m = _mid(200, 1)
    k = 5
    d = deeplob_delta(m, k)
    for t in (k - 1, 50, 200 - k - 1):
        past, fut = m[t - k + 1 : t + 1].mean(), m[t + 1 : t + k + 1].mean()
        assert d[t] == pytest.approx((fut - past) / past, rel=1e-9)
    assert np.isnan(d[: k - 1]).all() and np.isnan(d[200 - k :]).all()


def test_classes_and_alpha() -> None:
    m = np.array([100.0] * 10 + [101.0] * 10 + [100.0] * 10 + [99.0] * 20)
    lab = tlob_labels(m, 10, alpha=1e-3)
    assert lab[0] == UP  # window [0,10) = 100 vs [10,20) = 101
    assert lab[10] == DOWN  # 101 -> 100
    assert lab[30] == STATIONARY
    assert (lab[-19:] == UNDEFINED).all()


@settings(max_examples=40, deadline=None)
@given(
    h=st.sampled_from([10, 20, 50, 100]),
    t=st.integers(0, 150),
    j=st.integers(0, 399),
    bump=st.floats(0.5, 3.0),
    seed=st.integers(0, 10_000),
)
def test_tlob_label_reads_only_its_windows(h: int, t: int, j: int, bump: float, seed: int) -> None:
    """Changing any price outside [t, t+λ) ∪ [t+h, t+h+λ) never changes Δ(t) (hence label t)."""
    m = _mid(400, seed)
    lam = min(10, h)
    inside = (t <= j < t + lam) or (t + h <= j < t + h + lam)
    m2 = m.copy()
    m2[j] += bump
    d1, d2 = tlob_delta(m, h)[t], tlob_delta(m2, h)[t]
    if not np.isfinite(d1):
        return
    if inside:
        assert d1 != d2
    else:
        assert d1 == d2  # bit-for-bit: the label cannot see this price


@settings(max_examples=40, deadline=None)
@given(k=st.sampled_from([1, 2, 5, 10]), t=st.integers(10, 150), j=st.integers(0, 199), seed=st.integers(0, 10_000))
def test_deeplob_label_reads_only_its_window(k: int, t: int, j: int, seed: int) -> None:
    m = _mid(200, seed)
    m2 = m.copy()
    m2[j] *= 1.01
    d1, d2 = deeplob_delta(m, k)[t], deeplob_delta(m2, k)[t]
    if t - k + 1 <= j <= t + k:
        assert d1 != d2
    else:
        assert d1 == d2  # bit-for-bit: the label cannot see this price


@pytest.mark.parametrize("h", [10, 20, 50, 100])
@pytest.mark.parametrize("seq", [32, 128])
def test_window_alignment_past_in_window_future_after_it(h: int, seq: int) -> None:
    starts = np.arange(0, 50)
    li = tlob_window_label_index(starts, seq, h)
    lam = tlob_smoothing(h)
    # the past average [li, li+λ) is the last λ steps of the window [s, s+T)
    assert (li == starts + seq - lam).all()
    assert (li + lam == starts + seq).all()
    # the future average starts at li+h >= s+T: strictly after the window's last step
    assert (li + h >= starts + seq).all()


def test_alpha_is_fitted_on_training_split_only() -> None:
    train, _test = _mid(500, 2), _mid(500, 3) * 1.0
    a = fit_tlob_alpha(train, 10)
    d = tlob_delta(train, 10)
    assert a == pytest.approx(np.nanmean(np.abs(d)) / 2)
    # the test labels use the given α: rescaling test volatility does not move the boundary
    wild = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 1e-2, 500)))
    lab = tlob_labels(wild, 10, a)
    assert class_shares(lab)[1] < 0.2  # most moves exceed the calm training α
    assert fit_tlob_alpha(wild, 10) > 5 * a


def test_fi2010_labels_remap_and_reject() -> None:
    rows = np.array([[1, 2, 3], [2, 2, 2], [3, 3, 3], [1, 1, 1], [3, 2, 1]], dtype=float)
    assert fi2010_labels(rows, 1).tolist() == [0, 1, 2]
    assert fi2010_labels(rows, 10).tolist() == [2, 1, 0]
    with pytest.raises(DataError, match="k must be one of"):
        fi2010_labels(rows, 4)
    rows[0, 1] = 0.0
    with pytest.raises(DataError, match="label_k1"):
        fi2010_labels(rows, 1)


def test_bad_mid_prices_name_the_row() -> None:
    with pytest.raises(DataError, match="row 2"):
        tlob_labels(np.array([1.0, 2.0, -1.0, 3.0]), 1, 0.1)
    with pytest.raises(DataError, match="1-D"):
        tlob_delta(np.ones((3, 3)), 1)
    with pytest.raises(DataError, match="horizon"):
        deeplob_labels(np.ones(5), 0, 0.1)
    with pytest.raises(DataError, match="too short"):
        fit_tlob_alpha(np.ones(5), 10)
