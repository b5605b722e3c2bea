"""Information coefficients of factors against targets over ``[days, stocks]`` tensors.

* ``daily_ic``: per-day cross-sectional Pearson correlation over stocks where both inputs are finite (and
  the optional mask holds); NaN on days with fewer than ``min_stocks`` such stocks or zero variance.
* ``daily_rank_ic``: the same on per-day average ranks of the jointly valid stocks (Spearman).
* ``ic_summary``: IC, RankIC (means over days with a value), ICIR = mean / std of the daily IC, coverage.
* Pool algebra: ``normalize_by_day`` (z-score per day, zero where missing) and ``day_inner``, the mean over
  days of the per-stock average product of two normalised tensors. Because ``day_inner`` is an average of
  inner products, the mutual matrix ``M_ij = day_inner(z_i, z_j)`` is a Gram matrix (positive
  semi-definite), so ``pool_ic_from_cache`` — ``w·ic / sqrt(wᵀ M w · M_yy)`` — is a true correlation of the
  combination with the target, in [-1, 1]. (A matrix of *mean daily correlations* is not PSD once alphas
  have different missing days, and the combination IC computed from it can exceed 1, which a search then
  exploits.)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from marketlab.features.expr import kernels as K

Tensor = torch.Tensor


def daily_ic(a: Tensor, b: Tensor, mask: Tensor | None = None, min_stocks: int = 3) -> Tensor:
    """Per-day Pearson correlation of ``a`` and ``b`` (``[T, N]``) over jointly finite (masked) stocks -> ``[T]``."""
    ok = torch.isfinite(a) & torch.isfinite(b)
    if mask is not None:
        ok &= mask
    n = ok.sum(1).to(torch.float64)
    x = torch.where(ok, a, 0.0).to(torch.float64)
    y = torch.where(ok, b, 0.0).to(torch.float64)
    nn_ = n.clamp_min(1.0).unsqueeze(1)
    x = torch.where(ok, x - x.sum(1, keepdim=True) / nn_, 0.0)
    y = torch.where(ok, y - y.sum(1, keepdim=True) / nn_, 0.0)
    sxy = (x * y).sum(1)
    sxx = (x * x).sum(1)
    syy = (y * y).sum(1)
    den = (sxx * syy).sqrt()
    good = (n >= min_stocks) & (den > 1e-12 * (sxx.abs().max() * syy.abs().max()).sqrt().clamp_min(1e-300))
    return torch.where(good, sxy / den.clamp_min(1e-300), torch.nan).to(torch.float32)


def daily_rank_ic(a: Tensor, b: Tensor, mask: Tensor | None = None, min_stocks: int = 3) -> Tensor:
    """Per-day Spearman correlation (Pearson of average ranks over the jointly valid stocks) -> ``[T]``."""
    ok = torch.isfinite(a) & torch.isfinite(b)
    if mask is not None:
        ok &= mask
    ra = K.cross_section("CSRank", torch.where(ok, a, torch.nan))
    rb = K.cross_section("CSRank", torch.where(ok, b, torch.nan))
    return daily_ic(ra.to(a.device), rb.to(a.device), None, min_stocks)


def summarize(daily: Tensor) -> tuple[float, float, int]:
    """Mean, ICIR (mean / std, ddof 1) and number of days of a daily IC series, NaN days skipped."""
    v = daily[torch.isfinite(daily)].to(torch.float64)
    if v.numel() == 0:
        return float("nan"), float("nan"), 0
    mean = float(v.mean())
    std = float(v.std()) if v.numel() > 1 else float("nan")
    return mean, (mean / std if std and std > 0 else float("nan")), int(v.numel())


def ic_summary(
    factor: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    rows: slice | None = None,
    *,
    rank: bool = True,
) -> dict[str, float]:
    """IC statistics of ``factor`` vs ``target`` over the day ``rows``.

    Returns ``ic``, ``icir``, ``rank_ic``, ``rank_icir``, ``days`` (days with an IC) and ``coverage``
    (share of masked, target-valid stock-days where the factor has a value).
    """
    rows = rows or slice(None)
    f, t = factor[rows], target[rows]
    m = mask[rows] if mask is not None else None
    ic_d = daily_ic(f, t, m)
    ic, icir, days = summarize(ic_d)
    out = {"ic": ic, "icir": icir, "days": days}
    if rank:
        ric, ricir, _ = summarize(daily_rank_ic(f, t, m))
        out.update(rank_ic=ric, rank_icir=ricir)
    base = torch.isfinite(t) & (m if m is not None else True)
    denom = int(base.sum())
    out["coverage"] = float((base & torch.isfinite(f)).sum()) / denom if denom else float("nan")
    return out


def normalize_by_day(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-day z-score over finite (masked) entries; every other entry becomes 0 (the day's mean).

    This is the pool's view of an alpha: a full cross-section every day, missing stocks neutral.
    """
    ok = torch.isfinite(x)
    if mask is not None:
        ok &= mask
    n = ok.sum(1, keepdim=True).clamp_min(1).to(torch.float32)
    v = torch.where(ok, x, 0.0)
    mean = v.sum(1, keepdim=True) / n
    dev = torch.where(ok, v - mean, 0.0)
    std = ((dev * dev).sum(1, keepdim=True) / n).sqrt()
    return torch.where(std > 1e-12, dev / std.clamp_min(1e-12), 0.0)


def corr_days(za: Tensor, zb: Tensor) -> Tensor:
    """Per-day correlation of two :func:`normalize_by_day` tensors (zero-mean rows) -> ``[T]`` (NaN if flat)."""
    num = (za * zb).sum(1)
    den = ((za * za).sum(1) * (zb * zb).sum(1)).sqrt()
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.nan)


def mean_corr(za: Tensor, zb: Tensor) -> float:
    """Mean over days of :func:`corr_days` (days with a flat side skipped); NaN if none."""
    c = corr_days(za, zb)
    c = c[torch.isfinite(c)]
    return float(c.mean()) if c.numel() else float("nan")


def day_inner(za: Tensor, zb: Tensor, n: Tensor | None = None) -> float:
    """Mean over days of ``sum_j za[t, j] * zb[t, j] / n_t`` for normalised ``[T, N]`` tensors.

    ``n``: ``[T]`` stocks that count each day (default: stocks where either tensor is non-zero); days with
    ``n_t = 0`` are skipped. With ``za == zb`` this is the coverage (share of valid stock-days).
    """
    prod = (za * zb).sum(1, dtype=torch.float64)
    if n is None:
        n = ((za != 0) | (zb != 0)).sum(1)
    n = n.to(torch.float64)
    ok = n > 0
    if not bool(ok.any()):
        return float("nan")
    return float((prod[ok] / n[ok]).mean())


def pool_ic_from_cache(
    weights: np.ndarray, single_ics: np.ndarray, mutual: np.ndarray, target_sq: float = 1.0
) -> float:
    """Correlation of ``sum_i w_i z_i`` with the target from cached statistics:
    ``w·ic / sqrt(wᵀ M w · target_sq)`` (``ic_i = day_inner(z_i, y)``, ``M_ij = day_inner(z_i, z_j)``,
    ``target_sq = day_inner(y, y)``). 0 for an empty or all-zero pool."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return 0.0
    var = float(w @ np.asarray(mutual, dtype=np.float64) @ w) * float(target_sq)
    if var <= 0 or not math.isfinite(var):
        return 0.0
    return float(w @ np.asarray(single_ics, dtype=np.float64)) / math.sqrt(var)
