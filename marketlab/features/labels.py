"""Trend labels for LOB predictors: FI-2010's shipped labels, DeepLOB's smoothed labels and TLOB's
horizon-bias-free labels.

Classes everywhere: ``0 = up``, ``1 = stationary``, ``2 = down``; ``-1`` marks a step whose label is
undefined (its window runs past the data). ``mid`` is a 1-D float array of mid-prices in any positive
unit (dollars, ticks); labels depend only on relative changes.

Information windows (tested in ``tests/unit/test_labels.py``):

* ``deeplob_labels(mid, k, alpha)[t]`` reads ``mid[t-k+1 : t+k+1]`` (past mean of ``k`` incl. ``t``,
  future mean of the next ``k``).
* ``tlob_labels(mid, h, alpha)[t]`` reads ``mid[t : t+λ]`` and ``mid[t+h : t+h+λ]``, ``λ = min(10, h)``.
  Aligned to model windows (:func:`tlob_window_label_index`), window ``x[i : i+T]`` gets the label at
  ``t = i + T - λ``: the "past" mean is the last λ steps of the input, the "future" mean starts
  ``h - λ + 1 >= 1`` steps after the window ends, so no input step leaks into the future average.

Deviation from the TLOB code: its α = mean|Δ|/2 is refitted on every split (test included). Here α is
fitted once on the training split (:func:`fit_tlob_alpha`) and passed to every split, so the test
split's class boundary uses no test information.
"""

from __future__ import annotations

import numpy as np

from marketlab.core.errors import DataError
from marketlab.features.rolling import rolling_mean as _trailing_mean

UP, STATIONARY, DOWN, UNDEFINED = 0, 1, 2, -1
TLOB_HORIZONS = (10, 20, 50, 100)
FI2010_HORIZON_ROWS = {1: 0, 2: 1, 3: 2, 5: 3, 10: 4}  # k (samples) -> index among the 5 label rows


def _as_mid(mid: np.ndarray, name: str = "mid") -> np.ndarray:
    m = np.asarray(mid, dtype=np.float64)
    if m.ndim != 1:
        raise DataError(None, f"{name} must be 1-D, got shape {m.shape}", field=name)
    bad = ~np.isfinite(m) | (m <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(None, "mid-prices must be finite and positive", field=name, row=i, value=float(m[i]))
    return m


def _classify(delta: np.ndarray, alpha: float) -> np.ndarray:
    out = np.full(delta.shape, STATIONARY, dtype=np.int8)
    out[delta > alpha] = UP
    out[delta < -alpha] = DOWN
    return out


def fi2010_labels(label_rows: np.ndarray, k: int) -> np.ndarray:
    """FI-2010's shipped label for horizon ``k`` samples, remapped ``1/2/3 -> 0/1/2`` (up/stat/down).

    ``label_rows``: ``(5, N)`` rows 145-149 of an FI-2010 file (k = 1, 2, 3, 5, 10). Returns ``(N,)`` int8.
    The labels are used as shipped (their α cannot be recovered from the z-scored files).
    """
    if k not in FI2010_HORIZON_ROWS:
        raise DataError(None, f"FI-2010 horizon k must be one of {sorted(FI2010_HORIZON_ROWS)}", field="k", value=k)
    row = np.asarray(label_rows)[FI2010_HORIZON_ROWS[k]]
    if not np.isin(row, (1.0, 2.0, 3.0)).all():
        bad = row[~np.isin(row, (1.0, 2.0, 3.0))][0]
        raise DataError(None, "FI-2010 labels must be 1, 2 or 3", field=f"label_k{k}", value=float(bad))
    return (row - 1).astype(np.int8)


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """``out[t] = mean(x[t : t+n])`` for ``t`` in ``0..len(x)-n`` (length ``len(x)-n+1``).

    The trailing-window kernel :func:`marketlab.features.rolling.rolling_mean` read from row ``n-1`` on:
    it runs forwards, so ``out[t]`` never depends on values after ``x[t+n-1]`` (not even through
    rounding), and it is exact on flat stretches.
    """
    return _trailing_mean(np.asarray(x, dtype=np.float64), n)[n - 1 :]


def deeplob_delta(mid: np.ndarray, k: int) -> np.ndarray:
    """DeepLOB's smoothed return ``(m+(t) - m-(t)) / m-(t)``, NaN where undefined. Shape ``(N,)``.

    ``m-(t) = mean(mid[t-k+1 : t+1])``, ``m+(t) = mean(mid[t+1 : t+k+1])``; defined for
    ``k-1 <= t <= N-k-1``.
    """
    m = _as_mid(mid)
    if k < 1:
        raise DataError(None, "horizon k must be >= 1", field="k", value=k)
    n = len(m)
    out = np.full(n, np.nan)
    if n < 2 * k:
        return out
    w = rolling_mean(m, k)  # w[s] = mean(m[s:s+k])
    t = np.arange(k - 1, n - k)
    past = w[t - k + 1]
    fut = w[t + 1]
    out[t] = (fut - past) / past
    return out


def deeplob_labels(mid: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """DeepLOB labels (smoothing window = horizon ``k``); ``-1`` where undefined. ``(N,)`` int8."""
    d = deeplob_delta(mid, k)
    out = np.full(d.shape, UNDEFINED, dtype=np.int8)
    ok = np.isfinite(d)
    out[ok] = _classify(d[ok], alpha)
    return out


def tlob_smoothing(h: int, smooth: int = 10) -> int:
    """TLOB's smoothing length ``λ = min(smooth, h)``."""
    return min(smooth, h)


def tlob_delta(mid: np.ndarray, h: int, smooth: int = 10) -> np.ndarray:
    """TLOB's ``Δ(t) = (w(t+h) - w(t)) / w(t)`` with ``w(t) = mean(mid[t : t+λ])``; NaN where undefined.

    Defined for ``0 <= t <= N - h - λ`` (the last ``h + λ - 1`` steps have no label).
    """
    m = _as_mid(mid)
    if h < 1:
        raise DataError(None, "horizon h must be >= 1", field="h", value=h)
    lam = tlob_smoothing(h, smooth)
    n = len(m)
    out = np.full(n, np.nan)
    if n < h + lam:
        return out
    w = rolling_mean(m, lam)  # length n - lam + 1
    t = np.arange(0, n - h - lam + 1)
    out[t] = (w[t + h] - w[t]) / w[t]
    return out


def fit_tlob_alpha(mid_train: np.ndarray, h: int, smooth: int = 10) -> float:
    """α = mean|Δ| / 2 over the **training** split's defined steps."""
    d = tlob_delta(mid_train, h, smooth)
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise DataError(None, f"training split too short for horizon {h}", field="mid", value=len(mid_train))
    return float(np.mean(np.abs(d)) / 2.0)


def tlob_labels(mid: np.ndarray, h: int, alpha: float, smooth: int = 10) -> np.ndarray:
    """TLOB horizon-bias-free labels at every step ``t`` (``-1`` where undefined). ``(N,)`` int8."""
    d = tlob_delta(mid, h, smooth)
    out = np.full(d.shape, UNDEFINED, dtype=np.int8)
    ok = np.isfinite(d)
    out[ok] = _classify(d[ok], alpha)
    return out


def tlob_window_label_index(starts: np.ndarray, seq_size: int, h: int, smooth: int = 10) -> np.ndarray:
    """Label index for windows ``x[s : s+T]``: ``s + T - λ`` (the TLOB reference alignment)."""
    return np.asarray(starts, dtype=np.int64) + seq_size - tlob_smoothing(h, smooth)


def class_shares(labels: np.ndarray) -> tuple[float, float, float]:
    """Shares of up / stationary / down among the defined labels."""
    lab = np.asarray(labels)
    lab = lab[lab >= 0]
    if lab.size == 0:
        return (0.0, 0.0, 0.0)
    counts = np.bincount(lab.astype(np.int64), minlength=3)[:3]
    return tuple(float(c) / lab.size for c in counts)  # type: ignore[return-value]
