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


@njit(cache=True, inline="always")
def _pair_sums(ra, rb, ox, oy, sign, bad, sx, sy, sxx, syy, sxy):
    """Add (``sign`` 1) or take out (-1) one day's pair ``ra``, ``rb`` (N,), centred on ``ox``, ``oy``, in the
    running sums of :func:`rolling_cov`; a NaN in either input counts in ``bad`` instead. ``sign`` is a
    constant at each inlined call (multiplying by it is exact: a sign flip)."""
    for j in range(ra.shape[0]):
        a = ra[j]
        b = rb[j]
        nb_ = (a != a) | (b != b)
        za = 0.0 if nb_ else a - ox[j]
        zb = 0.0 if nb_ else b - oy[j]
        bad[j] += sign * nb_
        sx[j] += sign * za
        sy[j] += sign * zb
        sxx[j] += sign * za * za
        syy[j] += sign * zb * zb
        sxy[j] += sign * za * zb


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
            _pair_sums(x[t - w], y[t - w], ox, oy, -1, bad, sx, sy, sxx, syy, sxy)
        _pair_sums(x[t], y[t], ox, oy, 1, bad, sx, sy, sxx, syy, sxy)
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
    """Rolling median (mean of the two middle values for even ``w``), NaN where the window holds a NaN.

    Each stock keeps its window sorted in a column of ``b`` ``[w, N]`` (NaN and the days before the first
    stored as +inf, so the update is the same every day): the leaving value ``u`` sits at ``p`` = #(b < u), the
    entering ``v`` goes to ``r`` = #(b <= v) (less one when that is past ``p``), and the values between shift
    by one. Every step is a count or a select over the stocks with no data-dependent branch, so the stock loops
    run as SIMD: O(w) per output with a small constant (a binary-search insert branches unpredictably and ran
    ~3x slower at w = 20)."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    inf = np.float32(np.inf)
    b = np.full((w, N), inf, dtype=np.float32)
    nxt = np.empty((w, N), dtype=np.float32)
    p = np.empty(N, dtype=np.int32)
    r = np.empty(N, dtype=np.int32)
    u = np.full(N, inf, dtype=np.float32)
    v = np.empty(N, dtype=np.float32)
    bad = np.zeros(N, dtype=np.int32)
    half = w // 2
    for t in range(T):
        _inf_nan(x[t], v, bad, 1)
        if t >= w:
            _inf_nan(x[t - w], u, bad, -1)
        p[:] = 0
        r[:] = 0
        for k in range(w):
            bk = b[k]
            for j in range(N):
                e = bk[j]
                p[j] += np.int32(e < u[j])
                r[j] += np.int32(e <= v[j])
        for j in range(N):
            r[j] -= np.int32(r[j] > p[j])
        for k in range(w):
            bk = b[k]
            up = b[min(k + 1, w - 1)]
            dn = b[max(k - 1, 0)]
            nk = nxt[k]
            for j in range(N):
                rj = r[j]
                pj = p[j]
                e0 = bk[j]  # every load unconditional: the selects below then vectorise
                e1 = up[j]
                e2 = dn[j]
                vj = v[j]
                moved = e1 if rj > pj else e2
                res = moved if (min(pj, rj) <= k) & (k <= max(pj, rj)) else e0
                nk[j] = vj if k == rj else res
        b, nxt = nxt, b
        orow = out[t]
        hi = b[half]
        lo = b[max(half - 1, 0)]
        for j in range(N):
            m1 = hi[j]
            m2 = np.float32(0.5 * (np.float64(lo[j]) + np.float64(m1)))
            m = m1 if w % 2 == 1 else m2
            orow[j] = NAN if (bad[j] > 0) | (t < w - 1) else m
    return out


@njit(cache=True)
def _inf_nan(row, dst, bad, sign):
    """``dst`` = ``row`` with NaN as +inf; ``bad`` += ``sign`` per NaN (the window's NaN count)."""
    for j in range(row.shape[0]):
        a = row[j]
        isn = a != a
        bad[j] += np.int32(sign) * np.int32(isn)
        dst[j] = np.float32(np.inf) if isn else a


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


@njit(cache=True, inline="always")
def _window_pass(x, w, ref, rank, bad):
    """The O(w)-per-output loop of :func:`rolling_mad` (``rank`` False) and :func:`rolling_rank` (True), stock
    loop innermost: per day t >= w-1 and stock j, over the window days k = t-w+1..t,

    - mad: sum_k |x[k, j] - ref[t, j]| / w (``ref`` = the rolling mean; a NaN mean propagates);
    - rank: (#{x[k, j] < ref[t, j]} + (#{x[k, j] == ref[t, j]} + 1) / 2) / w with ``ref`` = x, NaN where
      ``bad[t, j]`` > 0 (a NaN in the window).

    ``rank`` is a constant at each (inlined) call site, so each operator compiles to its own loop."""
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    a = np.empty(N)
    b = np.empty(N)
    for t in range(T):
        if t < w - 1:
            out[t, :] = NAN
            continue
        m = ref[t]
        a[:] = 0.0
        if rank:
            b[:] = 0.0
        for k in range(t - w + 1, t + 1):
            r = x[k]
            if rank:
                for j in range(N):
                    a[j] += r[j] < m[j]
                    b[j] += r[j] == m[j]
            else:
                for j in range(N):
                    a[j] += abs(r[j] - m[j])
        for j in range(N):
            if rank:
                out[t, j] = NAN if bad[t, j] > 0 else (a[j] + (b[j] + 1.0) / 2.0) / w
            else:
                out[t, j] = a[j] / w
    return out


@njit(cache=True)
def rolling_mad(x, w):
    """Rolling mean absolute deviation from the window mean; O(w) per output (stock loop innermost)."""
    mean = rolling_stat(x, w, MEAN, 1, default_reanchor(w))
    return _window_pass(x, w, mean, False, np.zeros((0, 0), dtype=np.int32))


@njit(cache=True)
def rolling_rank(x, w):
    """Percentile rank of today's value inside its window: average rank / w; O(w) per output."""
    return _window_pass(x, w, x, True, _bad_counts(x, w))


@njit(cache=True, inline="always")
def _order_key(b):
    """float32 bits -> unsigned key with the same order (negatives bit-flipped, positives sign-set); -0.0 gets
    +0.0's key. Branch-free: a sign branch mispredicts on every other value of signed data."""
    b = np.uint32(0) if b == np.uint32(0x80000000) else b
    return np.uint32(b ^ (np.uint32(np.uint32(0xFFFFFFFF) * (b >> np.uint32(31))) | np.uint32(0x80000000)))


@njit(cache=True)
def _radix_pass(src, dst, n, counts, shift):
    """One stable counting-sort pass of ``src[:n]`` into ``dst`` by the 8-bit digit at ``shift``. A function
    of its own: inside the row function (``src``/``dst`` swap each pass) numba's loop compiled several times
    slower."""
    c = 0
    for d in range(256):
        h = counts[d]
        counts[d] = c
        c += h
    for i in range(n):
        k = src[i]
        d = (k >> shift) & np.uint32(255)
        slot = counts[d]
        counts[d] = slot + 1
        dst[np.uint64(slot)] = k


@njit(cache=True)
def _fix_collisions(srt, n, ib, bits, orow, eq, scale):
    """Re-rank runs of ``srt[:n]`` (sorted packed keys) whose truncated keys are equal: order each run by the
    full key (insertion sort: runs are short) and give equal full keys their average rank."""
    imask = np.uint32((1 << ib) - 1)
    sh = np.uint32(ib)
    for i in range(n - 1):
        eq[i] = np.uint8((srt[i] >> sh) == (srt[i + 1] >> sh))
    for i in range(max(n - 1, 0), eq.shape[0]):
        eq[i] = 0
    words = eq.view(np.uint64)  # eight flags at a time: most rows have no run at all
    nxt = 0
    for wi in range(words.shape[0]):
        if words[wi] == 0:
            continue
        for i in range(wi * 8, wi * 8 + 8):
            if eq[i] == 0 or i < nxt:
                continue
            e = i + 1
            while eq[e]:
                e += 1
            nxt = e + 1
            if e - i < 32:
                for a in range(i + 1, e + 1):  # insertion sort of srt[i..e] by full key
                    v = srt[a]
                    fv = _order_key(bits[v & imask])
                    b = a - 1
                    while b >= i and _order_key(bits[srt[b] & imask]) > fv:
                        srt[b + 1] = srt[b]
                        b -= 1
                    srt[b + 1] = v
            else:  # a long run (values packed within 2**s of each other next to a far outlier): O(r log r)
                full = np.empty(e - i + 1, dtype=np.uint64)
                for a in range(i, e + 1):
                    full[a - i] = (np.uint64(_order_key(bits[srt[a] & imask])) << np.uint64(32)) | np.uint64(srt[a])
                full.sort()
                for a in range(i, e + 1):
                    srt[a] = np.uint32(full[a - i] & np.uint64(0xFFFFFFFF))
            a = i
            while a <= e:
                fa = _order_key(bits[srt[a] & imask])
                b = a
                while b < e and _order_key(bits[srt[b + 1] & imask]) == fa:
                    b += 1
                r = np.float32(((a + b) / 2.0 + 1.0) * scale)  # average 1-based rank of the tie block
                for m in range(a, b + 1):
                    orow[srt[m] & imask] = r
                a = b + 1


@njit(cache=True)
def _row_ranks(row, keys, tmp, hist, eq, orow, pct, ib):
    """Average ranks of one day's non-NaN values into ``orow`` (NaN elsewhere) by an LSD radix sort of packed
    32-bit keys.

    Each value's order key (:func:`_order_key`) is made relative to the day's smallest, truncated to its top
    ``22`` or fewer significant bits (``32 - ib`` at most) and packed above the column index (``ib`` bits):
    three 8-bit passes sort it, a quarter fewer than for the full key with the index beside it, and each pass
    moves 4 bytes instead of 8. The sort is stable, so values whose truncated keys collide come out in column
    order next to each other; :func:`_fix_collisions` orders those few runs by the full key afterwards
    (0.1-3 per 750-stock day on prices and normal noise) and averages true ties."""
    n_col = row.shape[0]
    bits = row.view(np.uint32)
    kmin = np.uint32(0xFFFFFFFF)
    kmax = np.uint32(0)
    for j in range(n_col):  # branch-free (vectorised) min / max of the valid keys
        b = _order_key(bits[j])
        ok = row[j] == row[j]
        kmin = min(kmin, b if ok else np.uint32(0xFFFFFFFF))
        kmax = max(kmax, b if ok else np.uint32(0))
        orow[j] = NAN
    if kmin > kmax:  # no valid value
        return
    span = np.uint32(kmax - kmin)
    nbits = 0
    while nbits < 32 and (span >> np.uint32(nbits)) != np.uint32(0):
        nbits += 1
    kb = min(32 - ib, 24)
    s = np.uint32(nbits - kb if nbits > kb else 0)
    npass = max(1, (min(nbits, kb) + 7) // 8)  # bytes of the kept key (nbits - s bits)
    hist[:, :] = 0
    n = 0
    for j in range(n_col):
        if row[j] != row[j]:
            continue
        v = np.uint32((_order_key(bits[j]) - kmin) >> s)
        keys[n] = np.uint32((v << np.uint32(ib)) | np.uint32(j))
        hist[0, v & np.uint32(255)] += 1
        hist[1, (v >> np.uint32(8)) & np.uint32(255)] += 1
        hist[2, (v >> np.uint32(16)) & np.uint32(255)] += 1
        n += 1
    imask = np.uint32((1 << ib) - 1)
    scale = 1.0 / n if pct else 1.0
    src, dst = keys, tmp
    for p in range(npass):
        _radix_pass(src, dst, n, hist[p], np.uint32(ib + 8 * p))
        src, dst = dst, src
    # src holds the sorted keys: a value's rank is its slot + 1, exact unless its truncated key collides with a
    # neighbour's (_fix_collisions repairs those)
    for i in range(n):
        orow[np.uint64(src[i] & imask)] = np.float32((i + 1.0) * scale)
    _fix_collisions(src, n, ib, bits, orow, eq, scale)


def cs_average_rank(x, pct):
    """Per-day average ranks (1-based, ties averaged) over non-NaN stocks; ``pct`` divides by the count.
    Same result as pandas ``rank(axis=1, pct=pct)``; ``x`` ``[T, N]`` is ranked as float32."""
    return _cs_average_rank(np.ascontiguousarray(x, dtype=np.float32), pct)


@njit(cache=True)
def _cs_average_rank(x, pct):
    T, N = x.shape
    out = np.empty((T, N), dtype=np.float32)
    ib = 1  # bits of the column index packed under the key
    while (1 << ib) < N:
        ib += 1
    keys = np.empty(N, dtype=np.uint32)
    tmp = np.empty(N, dtype=np.uint32)
    hist = np.empty((3, 256), dtype=np.int32)
    eq = np.zeros(8 * (N // 8 + 2), dtype=np.uint8)
    for t in range(T):
        _row_ranks(x[t], keys, tmp, hist, eq, out[t], pct, ib)
    return out


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
