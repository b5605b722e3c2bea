"""MacroHFT splits, train-only statistics and market decomposition (known answers from hand-made series)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from marketlab.agents.macrohft.data import contiguous_segments, gap_report
from marketlab.agents.macrohft.regimes import (
    RegimeBins,
    chunk_bounds,
    chunk_indicators,
    chunk_slope,
    chunk_volatility,
    macro_context,
    rolling_slope,
    rolling_std,
)
from marketlab.agents.macrohft.splits import Splits, Standardizer
from marketlab.core.errors import DataError, SpecError
from marketlab.core.timeutil import NS_PER_MIN, to_ns


def _minutes(start: str, end: str) -> np.ndarray:
    return np.arange(to_ns(start), to_ns(end), 60 * NS_PER_MIN, dtype=np.int64)  # hourly rows keep tests small


def _frame(seed: int = 0) -> pl.DataFrame:
    ts = _minutes("2022-01-01", "2024-01-01")
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"ts": ts, "x": rng.normal(size=len(ts)), "y": rng.normal(5, 2, size=len(ts))})


def test_paper_splits_are_disjoint_and_cover_the_calendar() -> None:
    parts = Splits().split(_frame())
    assert parts["train"]["ts"].max() < to_ns("2023-01-01") <= parts["val"]["ts"].min()
    assert parts["val"]["ts"].max() < to_ns("2023-05-01") <= parts["test"]["ts"].min()
    assert parts["test"]["ts"].max() < to_ns("2024-01-01")
    assert sum(p.height for p in parts.values()) == _frame().height


def test_statistics_come_from_train_rows_only() -> None:
    """Perturbing every validation/test row leaves the fitted scaler and regime bins unchanged."""
    f = _frame()
    later = pl.col("ts") >= to_ns(Splits().val_start)
    g = f.with_columns(pl.when(later).then(pl.col("x") * 1000 + 77).otherwise(pl.col("x")),
                       pl.when(later).then(-pl.col("y")).otherwise(pl.col("y")))
    fit_f = Standardizer.fit(Splits().split(f)["train"], ["x", "y"])
    fit_g = Standardizer.fit(Splits().split(g)["train"], ["x", "y"])
    assert fit_f == fit_g
    # the same for regime bins: chunk indicators of train rows only
    close_f = 100 + np.cumsum(f["x"].to_numpy())
    close_g = close_f.copy()
    close_g[g["ts"].to_numpy() >= to_ns(Splits().val_start)] *= 3.0
    n_train = Splits().split(f)["train"].height
    for scheme in ("paper", "code"):
        bins = [RegimeBins.fit(chunk_indicators(c, chunk_bounds([(0, n_train)], 24))[0], scheme) for c in (close_f, close_g)]
        assert bins[0] == bins[1]


def test_overlapping_or_empty_splits_are_refused() -> None:
    with pytest.raises(SpecError, match="overlapping"):
        Splits(val_start="2022-12-01").validate()
    with pytest.raises(SpecError, match="empty"):
        Splits(test_start="2023-06-01", test_end="2023-06-01").validate()
    with pytest.raises(DataError, match="test split"):
        Splits().split(_frame().filter(pl.col("ts") < to_ns("2023-05-01")), symbol="BTCUSDT")


def test_standardizer_uses_train_moments() -> None:
    train = pl.DataFrame({"a": [1.0, 2.0, 3.0, float("nan")]})
    s = Standardizer.fit(train, ["a"])
    assert s.mean == (2.0,) and s.std == pytest.approx((np.sqrt(2 / 3),))
    z = s.transform(pl.DataFrame({"a": [2.0, 2.0 + np.sqrt(2 / 3), float("nan")]}))
    np.testing.assert_allclose(z[:, 0], [0.0, 1.0, 0.0], atol=1e-6)
    assert Standardizer.from_json(s.to_json()) == s


def test_chunk_slope_recovers_a_linear_trend() -> None:
    """filtfilt is zero phase, so a ramp keeps its slope (price units per minute) up to the filter's edge
    transients (about 0.1 % over 360 minutes)."""
    for slope in (-2.5, 0.0, 0.7):
        close = 1000 + slope * np.arange(360)
        assert chunk_slope(close) == pytest.approx(slope, rel=2e-3, abs=1e-9)


def test_chunk_volatility_is_sample_std_of_returns() -> None:
    r = np.array([0.01, -0.02, 0.005, 0.0, 0.03])
    close = 100 * np.cumprod(np.r_[1.0, 1 + r])
    assert chunk_volatility(close) == pytest.approx(np.std(r, ddof=1))


def _hand_made(n_chunks: int = 30, chunk: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Chunk k has slope s_k (known) and zero noise; slopes are a shuffled arithmetic sequence."""
    slopes = np.random.default_rng(3).permutation(np.linspace(-3, 3, n_chunks))
    pieces, level = [], 10_000.0
    for s in slopes:
        pieces.append(level + s * np.arange(chunk))
        level = pieces[-1][-1]
    return np.concatenate(pieces), slopes


def test_paper_tertiles_label_known_slopes() -> None:
    close, slopes = _hand_made()
    chunks = chunk_bounds([(0, len(close))], 120)
    est, _ = chunk_indicators(close, chunks)
    np.testing.assert_allclose(est, slopes, atol=0.05)  # edge transients of filtfilt at the chunk joins are tiny
    bins = RegimeBins.fit(est, "paper")
    labels = bins.label(est)
    rank = np.argsort(np.argsort(slopes))  # 0..29, known from construction
    np.testing.assert_array_equal(labels, rank // 10)  # 10 bear, 10 medium, 10 bull
    assert bins.trains(est).all()


def test_code_bins_drop_the_training_tails() -> None:
    close, slopes = _hand_made(n_chunks=40)
    est, _ = chunk_indicators(close, chunk_bounds([(0, len(close))], 120))
    bins = RegimeBins.fit(est, "code")
    rank = np.argsort(np.argsort(slopes))  # 0..39
    # qcut at 5/35/65/95 %: the 2 lowest and 2 highest chunks train nothing; 12 / 12 / 12 in between
    np.testing.assert_array_equal(bins.trains(est), (rank >= 2) & (rank < 38))
    labels = bins.label(est)
    assert np.bincount(labels[bins.trains(est)]).tolist() == [12, 12, 12]
    # outside rows are merged inward: the extreme chunks get labels 0 and 2
    assert labels[rank == 0][0] == 0 and labels[rank == 39][0] == 2
    assert RegimeBins.from_dict(bins.to_dict()) == bins


def test_chunks_never_cross_a_gap() -> None:
    ts = np.r_[np.arange(100), np.arange(180, 400)] * NS_PER_MIN
    segs = contiguous_segments(ts)
    assert segs == [(0, 100), (100, 320)]
    assert chunk_bounds(segs, 50) == [(0, 50), (50, 100), (100, 150), (150, 200), (200, 250), (250, 300)]
    assert gap_report(ts)[0]["missing"] == 80


def test_rolling_slope_and_context_are_causal() -> None:
    y = np.random.default_rng(0).normal(size=800).cumsum() + 500
    rs = rolling_slope(y, 50)
    naive = np.polyfit(np.arange(50), y[100:150], 1)[0]
    assert rs[149] == pytest.approx(naive)
    ctx = macro_context(y, 60)
    z = y.copy()
    z[400:] += 50 * np.random.default_rng(1).normal(size=400)  # perturb the future
    ctx2 = macro_context(z, 60)
    np.testing.assert_array_equal(ctx[:400], ctx2[:400])
    assert np.isnan(ctx[:59]).all() and np.isfinite(ctx[60:]).all()


def test_rolling_std_in_blocks_is_a_naive_loop() -> None:
    """Three blocks of windows (plus a partial one) against a per-window loop: the same sample std everywhere."""
    r = np.random.default_rng(3).normal(0, 1e-3, 3 * 8192 + 500)
    r[0] = np.nan  # the first return of a series
    got = rolling_std(r, 360)
    want = np.full(len(r), np.nan)
    for t in range(359, len(r)):
        want[t] = np.std(r[t - 359:t + 1], ddof=1)
    np.testing.assert_array_equal(got, want)
