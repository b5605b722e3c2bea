"""The one rolling-moment kernel against a naive per-window computation on real BTC/ETH 1-minute closes.

The reference takes every window on its own (``sliding_window_view``: a two-pass mean/std per window, no
running or cumulative sums), so it cannot share the kernel's rounding. Cases: the real closes (BTC has
runs of up to 8 equal closes, so 5-bar windows include real flat ones), the same with a planted 450-bar
halt (flat), and at a 1e6 times larger price level. Every user of the kernel is checked: the backtester's
SMA / std / z-score, the labels' forward windows and the alpha language's Mean/Std/Sum/Var (float32).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from marketlab.backtests import signals as sg
from marketlab.features import labels
from marketlab.features.expr.kernels import rolling as expr_rolling

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def closes(shared_data) -> np.ndarray:
    """(44641, 2) BTC and ETH 1-minute closes of 2024-01, float64."""
    d = shared_data / "binance_spot_1m_btc_eth_2024_01"
    cols = [pl.read_csv(d / f"{s}USDT_1m_2024-01.csv.gz", columns=["close"])["close"].to_numpy() for s in ("BTC", "ETH")]
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float64)


def _cases(c: np.ndarray) -> dict[str, np.ndarray]:
    halted = c.copy()
    halted[20_000:20_450] = halted[19_999]  # an exchange halt: 451 equal closes
    return {"real": c, "halt": halted, "level_1e6": halted * 1e6}


def _naive(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-window mean, population std and flatness (all values equal), (T-w+1, N): each window on its own."""
    win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (T-w+1, N, w)
    mean = win.mean(axis=2)
    std = np.sqrt(((win - mean[..., None]) ** 2).mean(axis=2))
    return mean, std, win.min(axis=2) == win.max(axis=2)


@pytest.mark.parametrize("w", [5, 20, 390])
@pytest.mark.parametrize("case", ["real", "halt", "level_1e6"])
def test_backtest_sma_std_zscore_match_naive_windows(closes, case, w):
    x = _cases(closes)[case]
    mean, std, flat = _naive(x, w)
    got_m, got_s, got_z = sg.sma(x, w), sg.rolling_std(x, w), sg.zscore(x, w)
    assert np.isnan(got_m[: w - 1]).all() and np.isnan(got_z[: w - 1]).all()
    level = np.abs(x).max()
    np.testing.assert_allclose(got_m[w - 1 :], mean, rtol=1e-13, atol=0)
    # std: error relative to the price level (the scale rounding works at), and exact zeros on flat windows
    assert np.abs(got_s[w - 1 :] - std).max() <= 1e-13 * level
    if case != "real" or w == 5:
        assert flat.any(), "the case must contain flat windows"
    assert (got_s[w - 1 :][flat] == 0).all()
    # z: finite everywhere after warm-up, 0 on flat windows, equal to the naive z elsewhere
    z = got_z[w - 1 :]
    assert np.isfinite(z).all()
    assert (z[flat] == 0).all()
    ok = std > 1e-6 * level  # z of a window whose spread is below 1e-6 of the level is rounding-sensitive
    want = (x[w - 1 :] - mean) / np.where(flat, 1.0, std)
    np.testing.assert_allclose(z[ok], want[ok], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["real", "halt", "level_1e6"])
def test_label_windows_match_naive(closes, case):
    x = _cases(closes)[case][:, 0]
    for n in (3, 10):
        want = np.array([x[t : t + n].sum() / n for t in range(len(x) - n + 1)])  # plain loop per window
        got = labels.rolling_mean(x, n)
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
        flat = np.array([x[t : t + n].min() == x[t : t + n].max() for t in range(len(x) - n + 1)])
        assert (got[flat] == x[: len(x) - n + 1][flat]).all()  # a flat window's mean is its value, exactly


@pytest.mark.parametrize("case", ["real", "halt", "level_1e6"])
def test_expr_mean_std_sum_var_match_naive(closes, case):
    """The alpha language computes in float32: compare with the naive float64 windows of the float32 input."""
    x32 = _cases(closes)[case].astype(np.float32)
    x = x32.astype(np.float64)
    w = 20
    win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)
    mean, std1 = win.mean(axis=2), win.std(axis=2, ddof=1)
    flat = win.min(axis=2) == win.max(axis=2)
    t = torch.from_numpy(x32)
    got = {k: expr_rolling(k, t, w).numpy().astype(np.float64)[w - 1 :] for k in ("Mean", "Sum", "Std", "Var")}
    level = np.abs(x).max()
    np.testing.assert_allclose(got["Mean"], mean, rtol=1e-7, atol=0)
    np.testing.assert_allclose(got["Sum"], mean * w, rtol=1e-7, atol=0)
    # float32 output: rounding of the result only (6e-8 of the value), plus 1e-12 of the level
    assert (np.abs(got["Std"] - std1) <= 1.2e-7 * std1 + 1e-12 * level).all()
    assert (np.abs(got["Var"] - std1**2) <= 1.2e-7 * std1**2 + 1e-12 * level**2).all()
    assert flat.any() or case == "real"
    assert (got["Std"][flat] == 0).all()


def alphagen_from_pandas(skew: np.ndarray | None, kurt: np.ndarray | None, w: int) -> tuple:
    """pandas' bias-corrected rolling skew G1 / excess kurtosis G2 -> AlphaGen's definitions (the alpha
    language's): g1 = G1 (w-2) / sqrt(w(w-1)); g2 = (G2 (w-2)(w-3)/(w-1) - 6) / (w+1), then
    Kurt = m4 / var_unbiased**2 - 3 = (g2 + 3) ((w-1)/w)**2 - 3."""
    g1 = None if skew is None else skew * (w - 2) / np.sqrt(w * (w - 1))
    k = None
    if kurt is not None:
        g2 = (kurt * (w - 2) * (w - 3) / (w - 1) - 6.0) / (w + 1)
        k = (g2 + 3.0) * ((w - 1) / w) ** 2 - 3.0
    return g1, k


@pytest.mark.parametrize("case", ["real", "halt", "level_1e6"])
def test_skew_kurt_match_scipy_and_pandas(closes, case):
    """Skew/Kurt (AlphaGen conventions, see kernels_nb's docstring) against scipy per window (bias=True:
    population moments) and against pandas' rolling skew/kurt mapped through the closed-form conversion."""
    from scipy import stats

    from marketlab.features import rolling as rl

    x = _cases(closes)[case][:3000]  # scipy per window is slow: 3,000 bars
    w = 20
    got_s = rl.rolling(x, w, rl.SKEW)[w - 1 :]
    got_k = rl.rolling(x, w, rl.KURT)[w - 1 :]
    win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)
    flat = win.min(axis=2) == win.max(axis=2)
    # flat windows: skewness and kurtosis are undefined -> NaN (never inf)
    assert np.isnan(got_s[flat]).all() and np.isnan(got_k[flat]).all()
    assert np.isfinite(got_s[~flat]).all() and np.isfinite(got_k[~flat]).all()
    sc_s = stats.skew(win, axis=2, bias=True)
    sc_k = (stats.kurtosis(win, axis=2, fisher=False, bias=True)) * ((w - 1) / w) ** 2 - 3.0
    np.testing.assert_allclose(got_s[~flat], sc_s[~flat], rtol=0, atol=1e-7)
    np.testing.assert_allclose(got_k[~flat], sc_k[~flat], rtol=0, atol=1e-7)
    import pandas as pd

    df = pd.DataFrame(x)
    pd_s, pd_k = alphagen_from_pandas(df.rolling(w).skew().to_numpy()[w - 1 :], df.rolling(w).kurt().to_numpy()[w - 1 :], w)
    ok = ~flat & np.isfinite(pd_s) & np.isfinite(pd_k)
    np.testing.assert_allclose(got_s[ok], pd_s[ok], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_k[ok], pd_k[ok], rtol=0, atol=1e-6)
    # and the plain pandas numbers differ by the convention alone: +8.3% for skew at w = 20
    ratio = df.rolling(w).skew().to_numpy()[w - 1 :][ok] / got_s[ok]
    np.testing.assert_allclose(ratio[np.abs(got_s[ok]) > 0.1], np.sqrt(w * (w - 1)) / (w - 2), rtol=1e-5)


def test_expr_skew_kurt_float32_match_pandas(closes):
    """Through the alpha language (float32, numba engine) on BTC/ETH log returns."""
    r = np.diff(np.log(closes), axis=0)
    w = 20
    t = torch.from_numpy(r.astype(np.float32))
    import pandas as pd

    df = pd.DataFrame(r.astype(np.float32).astype(np.float64))
    want_s, want_k = alphagen_from_pandas(df.rolling(w).skew().to_numpy(), df.rolling(w).kurt().to_numpy(), w)
    for name, want in (("Skew", want_s), ("Kurt", want_k)):
        got = expr_rolling(name, t, w).numpy().astype(np.float64)
        both = np.isfinite(got) & np.isfinite(want)
        assert both.sum() > 0.99 * (len(r) - w + 1) * 2
        err = np.abs(got[both] - want[both]).max() / np.abs(want[both]).max()
        assert err < 1e-5, (name, err)
