"""Rank IC, CSRank and rolling Rank on data with ties and tradable masks, against scipy and pandas.

Ties are the case that separates average ranks (the definition of Spearman's rho and of pandas'
``rank(method="average")``) from ``min``/``max``/``first`` ranks; the tradable mask must remove stocks
*before* ranking, so a masked-out stock cannot shift the ranks of the others. Both engines (numba on CPU,
torch as on CUDA) are checked against the same outside references.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from marketlab.features.expr import kernels as K
from marketlab.features.ic import daily_ic, daily_rank_ic, day_inner, ic_summary, normalize_by_day, pool_ic_from_cache

ENGINES = ["numba", "torch"]


def _tied_panel(T: int = 25, N: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer-valued factor and target (many ties per day), some NaNs, and a tradable mask (~70% true)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=(T, N)).astype(np.float64)
    b = np.round(0.5 * a + rng.integers(0, 4, size=(T, N)), 0)
    a[rng.random((T, N)) < 0.08] = np.nan
    b[rng.random((T, N)) < 0.08] = np.nan
    mask = rng.random((T, N)) < 0.7
    return a, b, mask


def _spearman_rows(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[0], np.nan)
    for t in range(a.shape[0]):
        ok = np.isfinite(a[t]) & np.isfinite(b[t]) & mask[t]
        if ok.sum() >= 3:
            out[t] = stats.spearmanr(a[t, ok], b[t, ok]).statistic
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_daily_rank_ic_with_ties_and_mask_matches_scipy_spearman(engine: str, monkeypatch) -> None:
    a, b, mask = _tied_panel()
    if engine == "torch":  # the CUDA code path, forced on CPU
        real = K.cross_section
        monkeypatch.setattr(K, "cross_section", lambda name, x, engine="auto": real(name, x, "torch"))
    got = daily_rank_ic(
        torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), torch.tensor(mask)
    ).numpy()
    want = _spearman_rows(a, b, mask)
    assert np.isfinite(want).sum() >= 20
    np.testing.assert_allclose(got, want, atol=2e-6, equal_nan=True)


def test_ic_summary_rank_ic_with_ties_and_mask_is_mean_of_scipy_spearman() -> None:
    a, b, mask = _tied_panel(seed=3)
    s = ic_summary(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), torch.tensor(mask))
    want = _spearman_rows(a, b, mask)
    want = want[np.isfinite(want)]
    assert s["rank_ic"] == pytest.approx(want.mean(), abs=2e-6)
    assert s["rank_icir"] == pytest.approx(want.mean() / want.std(ddof=1), rel=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_cs_rank_with_ties_and_nans_matches_pandas_average_pct(engine: str) -> None:
    a, _, _ = _tied_panel(seed=5)
    a[3, :] = 2.0  # one day where every stock ties
    a[4, :] = np.nan  # and one with nothing
    got = K.cross_section("CSRank", torch.tensor(a, dtype=torch.float32), engine).numpy()
    want = pd.DataFrame(a).rank(axis=1, method="average", pct=True).to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    assert np.allclose(got[3], 1.0 / 2 + 1.0 / (2 * a.shape[1]))  # (N + 1) / 2 / N


@pytest.mark.parametrize("engine", ENGINES)
def test_rolling_rank_with_ties_matches_pandas_rolling_average_pct(engine: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 4, size=(40, 6)).astype(np.float64)
    x[10, 2] = np.nan
    w = 5
    got = K.rolling("Rank", torch.tensor(x, dtype=torch.float32), w, engine).numpy()
    want = pd.DataFrame(x).rolling(w).rank(method="average", pct=True).to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_day_with_exactly_min_stocks_has_an_ic_and_one_fewer_has_none() -> None:
    a = np.full((2, 6), np.nan)
    b = np.full((2, 6), np.nan)
    a[0, :3], b[0, :3] = [1.0, 2.0, 4.0], [2.0, 1.0, 5.0]  # 3 jointly valid stocks
    a[1, :2], b[1, :2] = [1.0, 2.0], [1.0, 2.0]  # 2
    ric = daily_rank_ic(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), min_stocks=3)
    ic = daily_ic(torch.tensor(a), torch.tensor(b), min_stocks=3)
    assert ric[0].item() == pytest.approx(stats.spearmanr(a[0, :3], b[0, :3]).statistic, abs=1e-6)
    assert ic[0].item() == pytest.approx(stats.pearsonr(a[0, :3], b[0, :3]).statistic, abs=1e-6)
    assert np.isnan(ric[1].item()) and np.isnan(ic[1].item())


def test_pool_ic_with_a_partly_missing_target_is_the_plain_correlation() -> None:
    """With a fixed stock count per day, ``day_inner`` is a mean over all stock-days, so the pooled IC must equal
    ``sum(c*y) / sqrt(sum(c*c) * sum(y*y))`` over the flattened arrays; a target with missing stock-days makes
    ``sum(y*y)`` differ from the count, the case where forgetting ``target_sq`` shows."""
    rng = np.random.default_rng(11)
    T, N = 30, 40
    y = torch.tensor(rng.normal(size=(T, N)), dtype=torch.float32)
    xs = [y * c + torch.tensor(rng.normal(size=(T, N)), dtype=torch.float32) for c in (0.3, -0.2)]
    y[torch.tensor(rng.random((T, N)) < 0.4)] = float("nan")
    yz = normalize_by_day(y)
    zs = [normalize_by_day(x) for x in xs]
    n = torch.full((T,), N)
    tsq = day_inner(yz, yz, n)
    assert tsq < 0.7  # 40% of the target is missing
    ics = np.array([day_inner(z, yz, n) for z in zs])
    M = np.array([[day_inner(p, q, n) for q in zs] for p in zs])
    w = np.array([0.8, -0.5])
    c = (w[0] * zs[0] + w[1] * zs[1]).numpy().astype(np.float64).ravel()
    yv = yz.numpy().astype(np.float64).ravel()
    want = (c * yv).sum() / np.sqrt((c * c).sum() * (yv * yv).sum())
    assert pool_ic_from_cache(w, ics, M, tsq) == pytest.approx(want, abs=1e-5)
