"""numba CPU kernels for the rolling and cross-sectional operators (same semantics as :mod:`.kernels`).

Why a second engine: on CPU, ``torch.cumsum`` along the day axis of a ``[4000, 751]`` tensor costs
13-23 ms, more than a whole pandas rolling mean, while a fused running-sum loop touches each value twice
and finishes in a few ms. :mod:`.kernels` (torch) stays the engine on CUDA; a parity test holds the two
together.

All kernels take C-contiguous ``float32`` arrays ``[T, N]`` (days x stocks) and return new ``float32``
``[T, N]`` arrays. Loops run day-outer, stock-inner so memory is read contiguously. A window containing a
NaN gives NaN, as do the first ``w-1`` days. Sum, Mean, Var, Std, Skew and Kurt are the one rolling-moment
kernel :func:`marketlab.features.rolling.rolling_stat` (re-anchored running sums, exact on flat windows),
shared with the backtester and the labels. Cov/Corr/WMA keep float64 running sums centred on a per-stock
offset (the stock's first valid value) so that ``s2 - s1**2/w`` does not cancel for large-magnitude series.

Skew and Kurt follow AlphaGen's definitions (``research/alphagen.md``), not pandas': Skew is the population
``m3 / m2**1.5`` (pandas multiplies it by ``sqrt(w(w-1)) / (w-2)``, +8.3% at w = 20) and Kurt is
``m4 / var**2 - 3`` with ``m4`` population and ``var`` unbiased (pandas gives the unbiased excess kurtosis
``((w+1) g2 + 6)(w-1) / ((w-2)(w-3))`` with ``g2 = m4 / m2**2 - 3``). Both are affine maps of pandas'
value for a given ``w``; ``tests/unit/test_rolling.py`` checks the kernels against pandas through them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from marketlab.features.rolling import MEAN, default_reanchor, first_valid, rolling_stat

NAN = np.float32(np.nan)


@njit(cache=True, inline="always")
def _count_nans(x, t, w, j, bad):
    """Update stock ``j``'s count of NaNs in its window as day ``t`` enters and day ``t - w`` leaves."""
    if x[t, j] != x[t, j]:
        bad[j] += 1
    if t >= w and x[t - w, j] != x[t - w, j]:
        bad[j] -= 1


@njit(cache=True)
def _finish_row(orow, vals, bad, ready):
    """Write one output row: NaN before the first full window or where the window holds a NaN."""
    if not ready:
        orow[:] = NAN
        return
    for j in range(orow.shape[0]):
        orow[j] = NAN if bad[j] > 0 else vals[j]


@njit(cache=True)
def rolling_cov(x, y, w, corr):
    """Rolling covariance (n-1) or Pearson correlation (``corr``) of ``x`` and ``y``; O(1) per output.
    A day where either input is NaN poisons the windows containing it; a flat window gives NaN."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    ox = first_valid(x)
    oy = first_valid(y)
    sx = np.zeros(N)
    sy = np.zeros(N)
    sxx = np.zeros(N)
    syy = np.zeros(N)
    sxy = np.zeros(N)
    bad = np.zeros(N, dtype=np.int64)
    val = np.empty(N)
    for t in range(T):
        if t >= w:
            ra = x[t - w]
            rb = y[t - w]
            for j in range(N):
                a = ra[j]
                b = rb[j]
                nb_ = (a != a) | (b != b)
                za = 0.0 if nb_ else a - ox[j]
                zb = 0.0 if nb_ else b - oy[j]
                bad[j] -= nb_
                sx[j] -= za
                sy[j] -= zb
                sxx[j] -= za * za
                syy[j] -= zb * zb
                sxy[j] -= za * zb
        ra = x[t]
        rb = y[t]
        for j in range(N):
            a = ra[j]
            b = rb[j]
            nb_ = (a != a) | (b != b)
            za = 0.0 if nb_ else a - ox[j]
            zb = 0.0 if nb_ else b - oy[j]
            bad[j] += nb_
            sx[j] += za
            sy[j] += zb
            sxx[j] += za * za
            syy[j] += zb * zb
            sxy[j] += za * zb
        if t >= w - 1:
            for j in range(N):
                cxy = sxy[j] - sx[j] * sy[j] / w
                if not corr:
                    val[j] = cxy / (w - 1)
                    continue
                cxx = sxx[j] - sx[j] * sx[j] / w
                cyy = syy[j] - sy[j] * sy[j] / w
                mx = sx[j] / w + ox[j]
                my = sy[j] / w + oy[j]
                flat = (cxx <= 1e-10 * w * (mx * mx + 1e-20)) | (cyy <= 1e-10 * w * (my * my + 1e-20))
                r = cxy / math.sqrt(max(cxx * cyy, 1e-300))
                val[j] = np.nan if flat else min(1.0, max(-1.0, r))
        _finish_row(out[t], val, bad, t >= w - 1)
    return out


@njit(cache=True)
def rolling_wma(x, w):
    """Linear weights 1..w (oldest..newest), normalised; O(1) per output via two running sums."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    off = first_valid(x)
    s = np.zeros(N)  # plain window sum (of centred values)
    ws = np.zeros(N)  # weighted window sum
    bad = np.zeros(N, dtype=np.int64)
    norm = w * (w + 1) / 2.0
    for t in range(T):
        for j in range(N):
            v = x[t, j]
            z = 0.0
            if v != v:
                bad[j] += 1
            else:
                z = v - off[j]
            # every weight drops by one (the leaving value had weight 1), the new value enters with weight w
            ws[j] += w * z - s[j]
            s[j] += z
            if t >= w:
                u = x[t - w, j]
                if u != u:
                    bad[j] -= 1
                else:
                    s[j] -= u - off[j]
            if t < w - 1 or bad[j] > 0:
                out[t, j] = NAN
            else:
                out[t, j] = ws[j] / norm + off[j]
    return out


@njit(cache=True)
def rolling_weighted(x, wts):
    """Window dot product with fixed weights ``wts`` (oldest first), O(w) per output; used by EMA."""
    T, N = x.shape
    w = wts.shape[0]
    out = np.empty((T, N), dtype=np.float32)
    acc = np.zeros(N)
    bad = np.zeros(N, dtype=np.int64)
    for t in range(T):
        for j in range(N):
            _count_nans(x, t, w, j, bad)
        if t < w - 1:
            out[t, :] = NAN
            continue
        acc[:] = 0.0
        for k in range(w):
            row = t - w + 1 + k
            wk = wts[k]
            for j in range(N):
                acc[j] += wk * x[row, j]
        for j in range(N):
            out[t, j] = NAN if bad[j] > 0 else acc[j]
    return out


@njit(cache=True, inline="always")
def _scan_row(x, acc, t, prev, restart, fill, is_max):
    """Row ``t`` of a running max/min scan (NaN read as ``fill``): ``acc[t] = x[t]`` when ``restart``, else
    the max/min of ``x[t]`` and ``acc[prev]`` (the row before for prefixes, after for suffixes)."""
    for j in range(x.shape[1]):
        v = x[t, j]
        if v != v:
            v = fill
        if restart:
            acc[t, j] = v
        else:
            p = acc[prev, j]
            acc[t, j] = max(p, v) if is_max else min(p, v)


@njit(cache=True)
def rolling_extreme(x, w, is_max):
    """Rolling max/min by van Herk / Gil-Werman block scans: O(1) per output, NaN-poisoned windows."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    pre = np.empty((T, N), dtype=np.float32)
    suf = np.empty((T, N), dtype=np.float32)
    fill = -np.inf if is_max else np.inf
    for t in range(T):
        _scan_row(x, pre, t, t - 1, t % w == 0, fill, is_max)
    for t in range(T - 1, -1, -1):
        _scan_row(x, suf, t, t + 1, (t % w == w - 1) or t == T - 1, fill, is_max)
    bad = np.zeros(N, dtype=np.int64)
    for t in range(T):
        for j in range(N):
            _count_nans(x, t, w, j, bad)
            if t < w - 1 or bad[j] > 0:
                out[t, j] = NAN
            else:
                a = suf[t - w + 1, j]
                b = pre[t, j]
                out[t, j] = max(a, b) if is_max else min(a, b)
    return out


@njit(cache=True)
def rolling_median(x, w):
    """Rolling median (mean of the two middle values for even ``w``) with a sorted window per stock:
    one O(w) insertion and deletion per output."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    buf = np.zeros((N, w + 1), dtype=np.float64)  # one spare slot: insert before delete
    cnt = np.zeros(N, dtype=np.int64)  # valid values held in buf
    bad = np.zeros(N, dtype=np.int64)
    for t in range(T):
        for j in range(N):
            v = x[t, j]
            if v != v:
                bad[j] += 1
            else:
                # insert keeping buf[j, :cnt] sorted
                c = cnt[j]
                k = c
                while k > 0 and buf[j, k - 1] > v:
                    buf[j, k] = buf[j, k - 1]
                    k -= 1
                buf[j, k] = v
                cnt[j] = c + 1
            if t >= w:
                u = x[t - w, j]
                if u != u:
                    bad[j] -= 1
                else:
                    c = cnt[j]
                    k = 0
                    while buf[j, k] != np.float64(u):
                        k += 1
                    while k < c - 1:
                        buf[j, k] = buf[j, k + 1]
                        k += 1
                    cnt[j] = c - 1
            if t < w - 1 or bad[j] > 0:
                out[t, j] = NAN
            elif w % 2 == 1:
                out[t, j] = buf[j, w // 2]
            else:
                out[t, j] = 0.5 * (buf[j, w // 2 - 1] + buf[j, w // 2])
    return out


@njit(cache=True)
def _bad_counts(x, w):
    """``[T, N]`` int: NaNs inside the window ending at each day (running count)."""
    T, N = x.shape
    bad = np.zeros((T, N), dtype=np.int32)
    cur = np.zeros(N, dtype=np.int32)
    for t in range(T):
        row = x[t]
        if t >= w:
            old = x[t - w]
            for j in range(N):
                cur[j] -= old[j] != old[j]
        for j in range(N):
            cur[j] += row[j] != row[j]
        bad[t] = cur
    return bad


@njit(cache=True)
def rolling_mad(x, w):
    """Rolling mean absolute deviation from the window mean; O(w) per output (stock loop innermost)."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    mean = rolling_stat(x, w, MEAN, 1, default_reanchor(w))
    acc = np.empty(N)
    for t in range(T):
        if t < w - 1:
            out[t, :] = NAN
            continue
        m = mean[t]
        acc[:] = 0.0
        for k in range(t - w + 1, t + 1):
            r = x[k]
            for j in range(N):
                acc[j] += abs(r[j] - m[j])
        for j in range(N):
            out[t, j] = acc[j] / w  # NaN mean (poisoned window) propagates
    return out


@njit(cache=True)
def rolling_rank(x, w):
    """Percentile rank of today's value inside its window: average rank / w; O(w) per output."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    bad = _bad_counts(x, w)
    less = np.empty(N)
    eq = np.empty(N)
    for t in range(T):
        if t < w - 1:
            out[t, :] = NAN
            continue
        last = x[t]
        less[:] = 0.0
        eq[:] = 0.0
        for k in range(t - w + 1, t + 1):
            r = x[k]
            for j in range(N):
                less[j] += r[j] < last[j]
                eq[j] += r[j] == last[j]
        for j in range(N):
            out[t, j] = NAN if bad[t, j] > 0 else (less[j] + (eq[j] + 1.0) / 2.0) / w
    return out


def _sort_keys(x):
    """Order-preserving uint64 keys ``(float bits << 32) | column`` per row; NaN sorts last.

    numpy's SIMD sort of uint64 rows is ~10x faster than ``argsort``, and the low 32 bits carry the column.
    """
    x = np.ascontiguousarray(x, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0 so they tie
    bits = x.view(np.uint32).astype(np.uint64)
    neg = (bits >> np.uint64(31)) == 1
    bits = np.where(neg, ~bits & np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))
    bits = np.where(np.isnan(x), np.uint64(0xFFFFFFFF), bits)
    keys = (bits << np.uint64(32)) | np.arange(x.shape[1], dtype=np.uint64)
    keys.sort(axis=1)
    return keys


@njit(cache=True)
def _ranks_from_keys(keys, x, pct):
    T, N = keys.shape
    out = np.empty((T, N), dtype=np.float32)
    mask = np.uint64(0xFFFFFFFF)
    for t in range(T):
        row = x[t]
        n = 0
        for j in range(N):
            n += row[j] == row[j]
        for j in range(N):
            out[t, j] = NAN
        i = 0
        while i < n:
            hi = keys[t, i] >> np.uint64(32)
            k = i
            while k + 1 < n and (keys[t, k + 1] >> np.uint64(32)) == hi:
                k += 1
            r = (i + k) / 2.0 + 1.0  # average 1-based rank of the tie block
            if pct:
                r /= n
            for m in range(i, k + 1):
                out[t, np.int64(keys[t, m] & mask)] = r
            i = k + 1
    return out


def cs_average_rank(x, pct):
    """Per-day average ranks (1-based, ties averaged) over non-NaN stocks; ``pct`` divides by the count.
    Same result as pandas ``rank(axis=1, pct=pct)``."""
    return _ranks_from_keys(_sort_keys(x), np.ascontiguousarray(x, dtype=np.float32), pct)


@njit(cache=True)
def cs_zscore(x):
    """Per-day z-score over non-NaN stocks (population std); NaN on flat days."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    for t in range(T):
        s = 0.0
        n = 0
        for j in range(N):
            v = x[t, j]
            if v == v:
                s += v
                n += 1
        m = s / n if n > 0 else 0.0
        ss = 0.0
        for j in range(N):
            v = x[t, j]
            if v == v:
                ss += (v - m) * (v - m)
        sd = math.sqrt(ss / n) if n > 0 else 0.0
        for j in range(N):
            v = x[t, j]
            out[t, j] = (v - m) / sd if (v == v and sd > 0) else NAN
    return out
