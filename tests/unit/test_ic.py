"""IC, RankIC, ICIR and the pool algebra against numpy/scipy references."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from marketlab.features.ic import (
    daily_ic,
    day_inner,
    daily_rank_ic,
    ic_summary,
    normalize_by_day,
    pool_ic_from_cache,
)


def _rand(T=30, N=25, seed=0, nan=0.1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(T, N))
    b = 0.3 * a + rng.normal(size=(T, N))
    a[rng.random((T, N)) < nan] = np.nan
    b[rng.random((T, N)) < nan] = np.nan
    return a, b


def test_daily_ic_and_rank_ic_match_scipy():
    a, b = _rand()
    ic = daily_ic(torch.tensor(a), torch.tensor(b)).numpy()
    ric = daily_rank_ic(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)).numpy()
    for t in range(a.shape[0]):
        ok = np.isfinite(a[t]) & np.isfinite(b[t])
        assert abs(ic[t] - stats.pearsonr(a[t, ok], b[t, ok])[0]) < 1e-5
        assert abs(ric[t] - stats.spearmanr(a[t, ok], b[t, ok])[0]) < 1e-5


def test_summary_icir_and_coverage():
    a, b = _rand(seed=1)
    s = ic_summary(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
    d = daily_ic(torch.tensor(a), torch.tensor(b)).numpy()
    assert abs(s["ic"] - d.mean()) < 1e-6 and abs(s["icir"] - d.mean() / d.std(ddof=1)) < 1e-4
    assert s["ic"] > 0.1 and 0.8 < s["coverage"] < 1.0 and s["days"] == a.shape[0]


def test_constant_day_gives_nan_not_error():
    a = torch.ones(3, 10)
    b = torch.randn(3, 10)
    assert torch.isnan(daily_ic(a, b)).all()


def test_pool_ic_from_cache_is_the_exact_pooled_correlation_and_bounded():
    rng = np.random.default_rng(2)
    T, N = 40, 50
    y = torch.tensor(rng.normal(size=(T, N)), dtype=torch.float32)
    xs = [y * c + torch.tensor(rng.normal(size=(T, N)), dtype=torch.float32) for c in (0.2, -0.1, 0.05)]
    # members with very different missing days: the case where mean daily correlations are not PSD
    xs[1][rng.random((T, N)) < 0.6] = float("nan")
    xs[2][:30] = float("nan")
    yz = normalize_by_day(y)
    n = torch.full((T,), N)
    zs = [normalize_by_day(x) for x in xs]
    ics = np.array([day_inner(z, yz, n) for z in zs])
    M = np.array([[day_inner(a, b, n) for b in zs] for a in zs])
    tsq = day_inner(yz, yz, n)
    assert np.linalg.eigvalsh(M).min() > -1e-9  # Gram matrix
    for w in (np.array([0.7, -0.4, 0.2]), rng.normal(size=3)):
        combo = sum(float(wi) * z for wi, z in zip(w, zs, strict=False))
        direct = day_inner(combo, yz, n) / np.sqrt(day_inner(combo, combo, n) * tsq)
        got = pool_ic_from_cache(w, ics, M, tsq)
        assert abs(got - direct) < 1e-6 and abs(got) <= 1.0
    assert pool_ic_from_cache(np.zeros(0), np.zeros(0), np.zeros((0, 0))) == 0.0
