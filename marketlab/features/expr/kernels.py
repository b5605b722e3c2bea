"""Torch kernels over ``[days, stocks]`` tensors: rolling (time-series) and cross-sectional operators.

Conventions shared by every kernel:

* input ``x`` is ``float32`` of shape ``[T, N]`` (rows = trading days, oldest first; columns = stocks);
  the output has the same shape and device;
* a rolling value at day ``t`` uses the window ``[t-w+1, t]`` and is NaN when any value in it is NaN
  (suspended / not-yet-listed days poison the windows that contain them, as in qlib and AlphaGen), and for
  the first ``w-1`` days;
* cross-sectional kernels work per row over the non-NaN stocks and keep NaN where the input is NaN.

Cost: Sum/Mean/Var/Std/Skew/Kurt/Cov/Corr/WMA use prefix sums, so each output costs O(1) whatever the
window (the NaN count is a prefix sum too). Max/Min use the van Herk / Gil-Werman block trick with
``cummax``: O(1) per output. EMA is a 1-D convolution, Med/Mad/Rank need the whole window (``unfold``).
Prefix sums are accumulated in float64 after subtracting a per-stock offset, because float32 cumulative
sums over 4,000 days of share volumes (1e8 each) lose every significant digit of a 20-day variance.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _nan_like(x: Tensor) -> Tensor:
    return torch.full_like(x, float("nan"))


def _pad_front(core: Tensor, w: int, total: int) -> Tensor:
    """Put ``core`` (the ``total-w+1`` complete-window rows) under ``w-1`` rows of NaN; cast to float32."""
    out = torch.full((total,) + tuple(core.shape[1:]), float("nan"), dtype=torch.float32, device=core.device)
    if total - w + 1 > 0:
        out[w - 1 :] = core.to(torch.float32)
    return out


def _prefix(x: Tensor) -> Tensor:
    """``[T+1, N]`` float64 cumulative sum with a leading zero row."""
    c = torch.zeros((x.shape[0] + 1, x.shape[1]), dtype=torch.float64, device=x.device)
    torch.cumsum(x, dim=0, dtype=torch.float64, out=c[1:])
    return c


def _wsum(c: Tensor, w: int) -> Tensor:
    """Window sums from a prefix sum: row ``k`` is the sum over days ``k .. k+w-1``; ``[T-w+1, N]``."""
    return c[w:] - c[:-w]


class _Windows:
    """Prefix-sum bookkeeping for one input: NaN counts and centred, NaN-zeroed values."""

    def __init__(self, x: Tensor, w: int, center: bool = True) -> None:
        self.T = x.shape[0]
        self.w = w
        nan = torch.isnan(x)
        self.bad = _wsum(_prefix(nan), w) > 0 if w <= self.T else None
        if center:
            # per-stock offset: variance-type statistics are shift invariant, and centring keeps the
            # float64 prefix sums of squares small enough to difference without cancellation
            off = torch.nanmean(x, dim=0, keepdim=True).nan_to_num(0.0)
            self.offset = off
            self.z = torch.where(nan, 0.0, x - off).to(torch.float64)
        else:
            self.offset = torch.zeros((1, x.shape[1]), dtype=x.dtype, device=x.device)
            self.z = torch.where(nan, 0.0, x).to(torch.float64)

    def moment(self, p: int) -> Tensor:
        """Window sum of ``(x - offset) ** p``; ``[T-w+1, N]`` float64."""
        return _wsum(_prefix(self.z if p == 1 else self.z**p), self.w)

    def finish(self, core: Tensor) -> Tensor:
        if self.bad is not None:  # None: the window is longer than the panel, nothing to mask
            core = torch.where(self.bad, torch.nan, core)
        return _pad_front(core, self.w, self.T)


def _too_short(x: Tensor, w: int) -> Tensor | None:
    return _nan_like(x) if w > x.shape[0] else None


def ts_sum(x: Tensor, w: int) -> Tensor:
    """Rolling sum over ``w`` days. O(1) per output (prefix sums)."""
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w, center=False)
    return win.finish(win.moment(1))


def ts_mean(x: Tensor, w: int) -> Tensor:
    """Rolling mean over ``w`` days. O(1) per output."""
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w)
    return win.finish(win.moment(1) / w + win.offset.to(torch.float64))


def ts_var(x: Tensor, w: int) -> Tensor:
    """Rolling unbiased (n-1) variance over ``w`` >= 2 days. O(1) per output."""
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w)
    s1, s2 = win.moment(1), win.moment(2)
    var = ((s2 - s1 * s1 / w) / (w - 1)).clamp_min(0.0)
    return win.finish(var)


def ts_std(x: Tensor, w: int) -> Tensor:
    """Rolling unbiased standard deviation over ``w`` >= 2 days. O(1) per output."""
    return ts_var(x, w).sqrt()


def _central(win: _Windows) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Window mean, E[z^2], E[z^3], population m2 and m3 of the centred values (float64)."""
    w = win.w
    m1 = win.moment(1) / w
    e2, e3 = win.moment(2) / w, win.moment(3) / w
    m2 = (e2 - m1 * m1).clamp_min(0.0)
    m3 = e3 - 3 * m1 * e2 + 2 * m1**3
    return m1, e2, e3, m2, m3


def ts_skew(x: Tensor, w: int) -> Tensor:
    """Rolling skewness ``m3 / m2**1.5`` with population moments, ``w`` >= 3. NaN for a flat window."""
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w)
    m1, e2, e3, m2, m3 = _central(win)
    flat = m2 <= 1e-12 * (m1 * m1 + 1e-12)
    sk = torch.where(flat, torch.nan, m3 / m2.clamp_min(1e-300) ** 1.5)
    return win.finish(sk)


def ts_kurt(x: Tensor, w: int) -> Tensor:
    """Rolling excess kurtosis ``m4 / var**2 - 3`` (m4 population, var unbiased), ``w`` >= 4."""
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w)
    m1, e2, e3, m2, _ = _central(win)
    e4 = win.moment(4) / w
    m4 = e4 - 4 * m1 * e3 + 6 * m1 * m1 * e2 - 3 * m1**4
    var = m2 * w / (w - 1)
    flat = m2 <= 1e-12 * (m1 * m1 + 1e-12)
    ku = torch.where(flat, torch.nan, m4 / var.clamp_min(1e-300) ** 2 - 3.0)
    return win.finish(ku)


def _paired(x: Tensor, y: Tensor, w: int) -> tuple[_Windows, _Windows, Tensor, Tensor]:
    """Windows over ``x`` and ``y`` with a day NaN in either masked in both, and their window sums."""
    both = torch.isnan(x) | torch.isnan(y)
    wx, wy = _Windows(torch.where(both, torch.nan, x), w), _Windows(torch.where(both, torch.nan, y), w)
    return wx, wy, wx.moment(1), wy.moment(1)


def ts_cov(x: Tensor, y: Tensor, w: int) -> Tensor:
    """Rolling unbiased covariance of ``x`` and ``y`` over ``w`` >= 2 days. O(1) per output."""
    if (r := _too_short(x, w)) is not None:
        return r
    wx, wy, sx, sy = _paired(x, y, w)
    sxy = _wsum(_prefix(wx.z * wy.z), w)
    return wx.finish((sxy - sx * sy / w) / (w - 1))


def ts_corr(x: Tensor, y: Tensor, w: int) -> Tensor:
    """Rolling Pearson correlation over ``w`` >= 2 days; NaN when either series is flat in the window."""
    if (r := _too_short(x, w)) is not None:
        return r
    wx, wy, sx, sy = _paired(x, y, w)
    sxx = (wx.moment(2) - sx * sx / w).clamp_min(0.0)
    syy = (wy.moment(2) - sy * sy / w).clamp_min(0.0)
    sxy = _wsum(_prefix(wx.z * wy.z), w) - sx * sy / w
    # flat relative to the level: a constant window has sxx ~ 1e-16 * level^2 of rounding noise
    mx = sx / w + wx.offset.to(torch.float64)
    my = sy / w + wy.offset.to(torch.float64)
    flat = (sxx <= 1e-10 * w * (mx * mx + 1e-20)) | (syy <= 1e-10 * w * (my * my + 1e-20))
    corr = torch.where(flat, torch.nan, sxy / (sxx * syy).sqrt().clamp_min(1e-300)).clamp(-1.0, 1.0)
    return wx.finish(corr)


def ts_wma(x: Tensor, w: int) -> Tensor:
    """Linearly weighted mean, weights 1..w from oldest to newest (qlib's WMA). O(1) per output.

    (The reference used weights 0..w-1, giving the oldest day zero weight; we keep every day in the window.)
    """
    if (r := _too_short(x, w)) is not None:
        return r
    win = _Windows(x, w)
    T = x.shape[0]
    j = torch.arange(T, dtype=torch.float64, device=x.device).unsqueeze(1)
    s1 = win.moment(1)
    sj = _wsum(_prefix(win.z * j), w)
    start = torch.arange(T - w + 1, dtype=torch.float64, device=x.device).unsqueeze(1)  # first day of window
    num = sj - (start - 1) * s1  # sum over window of (j - start + 1) * z_j
    val = num / (w * (w + 1) / 2) + win.offset.to(torch.float64)
    return win.finish(val)


def ts_ema(x: Tensor, w: int) -> Tensor:
    """Finite-window exponential mean (AlphaGen semantics): decay ``a = 1 - 2/(1+w)``, weight ``a**k`` for
    the value ``k-1`` days old, normalised over the ``w`` days. A 1-D convolution, O(w) per output."""
    if (r := _too_short(x, w)) is not None:
        return r
    a = 1.0 - 2.0 / (1.0 + w)
    # newest gets a^1, oldest a^w (reference ordering), normalised to sum to 1
    k = torch.arange(w, 0, -1, dtype=torch.float64, device=x.device)  # oldest .. newest exponents w..1
    wts = a**k
    wts = (wts / wts.sum()).to(torch.float32)
    nan = torch.isnan(x)
    z = torch.where(nan, 0.0, x)
    off = torch.nanmean(x, dim=0, keepdim=True).nan_to_num(0.0)
    z = torch.where(nan, 0.0, z - off)
    # conv1d over time: channels = stocks, weight [1, 1, w] (cross-correlation, oldest-first weights)
    core = F.conv1d(z.T.unsqueeze(1), wts.view(1, 1, w)).squeeze(1).T + off
    bad = _wsum(_prefix(nan), w) > 0
    return _pad_front(torch.where(bad, torch.nan, core), w, x.shape[0])


def _block_scan(x: Tensor, w: int, fill: float, fn) -> Tensor:
    """van Herk / Gil-Werman: window max/min from per-block prefix and suffix scans. O(1) per output."""
    T, N = x.shape
    nb = (T + w - 1) // w
    pad = nb * w - T
    xp = torch.cat([x, torch.full((pad, N), fill, dtype=x.dtype, device=x.device)]) if pad else x
    blocks = xp.view(nb, w, N)
    pre = fn(blocks, dim=1).values.reshape(nb * w, N)  # scan from each block start
    suf = fn(blocks.flip(1), dim=1).values.flip(1).reshape(nb * w, N)  # scan to each block end
    # window [t-w+1, t]: suffix at its start (within that block) combined with prefix at t
    lo = suf[: T - w + 1]
    hi = pre[w - 1 : T]
    return torch.maximum(lo, hi) if fn is torch.cummax else torch.minimum(lo, hi)


def ts_max(x: Tensor, w: int) -> Tensor:
    """Rolling maximum over ``w`` days. O(1) per output (block prefix/suffix maxima)."""
    if (r := _too_short(x, w)) is not None:
        return r
    nan = torch.isnan(x)
    core = _block_scan(torch.where(nan, -torch.inf, x), w, -float("inf"), torch.cummax)
    bad = _wsum(_prefix(nan), w) > 0
    return _pad_front(torch.where(bad, torch.nan, core), w, x.shape[0])


def ts_min(x: Tensor, w: int) -> Tensor:
    """Rolling minimum over ``w`` days. O(1) per output (block prefix/suffix minima)."""
    if (r := _too_short(x, w)) is not None:
        return r
    nan = torch.isnan(x)
    core = _block_scan(torch.where(nan, torch.inf, x), w, float("inf"), torch.cummin)
    bad = _wsum(_prefix(nan), w) > 0
    return _pad_front(torch.where(bad, torch.nan, core), w, x.shape[0])


# Window kernels that need every value: process the unfolded view in row chunks to bound memory.
_CHUNK_ELEMS = 1 << 23


def _unfold_apply(x: Tensor, w: int, fn) -> Tensor:
    T, N = x.shape
    out = torch.full_like(x, float("nan"))
    rows = max(1, _CHUNK_ELEMS // max(1, N * w))
    view = x.unfold(0, w, 1)  # [T-w+1, N, w], oldest first
    for s in range(0, T - w + 1, rows):
        out[w - 1 + s : w - 1 + s + rows] = fn(view[s : s + rows])
    return out  # NaN inside a window propagates through fn (sort puts NaN last; we mask below)


def _mask_windows(x: Tensor, w: int, out: Tensor) -> Tensor:
    bad = _wsum(_prefix(torch.isnan(x)), w) > 0
    out[w - 1 :] = torch.where(bad, torch.nan, out[w - 1 :])
    return out


def ts_med(x: Tensor, w: int) -> Tensor:
    """Rolling median over ``w`` days (mean of the two middle values when ``w`` is even). O(w log w)."""
    if (r := _too_short(x, w)) is not None:
        return r

    def med(v: Tensor) -> Tensor:
        if w % 2:
            return v.kthvalue(w // 2 + 1, dim=-1).values
        srt = v.sort(dim=-1).values
        return 0.5 * (srt[..., w // 2 - 1] + srt[..., w // 2])

    return _mask_windows(x, w, _unfold_apply(torch.where(torch.isnan(x), 0.0, x), w, med))


def ts_mad(x: Tensor, w: int) -> Tensor:
    """Rolling mean absolute deviation from the window mean. O(w) per output."""
    if (r := _too_short(x, w)) is not None:
        return r

    def mad(v: Tensor) -> Tensor:
        return (v - v.mean(-1, keepdim=True)).abs().mean(-1)

    return _mask_windows(x, w, _unfold_apply(torch.where(torch.isnan(x), 0.0, x), w, mad))


def ts_rank(x: Tensor, w: int) -> Tensor:
    """Percentile rank of today's value within its window: average rank / w, in (0, 1]. O(w) per output."""
    if (r := _too_short(x, w)) is not None:
        return r

    def rank(v: Tensor) -> Tensor:
        last = v[..., -1:]
        less = (v < last).sum(-1, dtype=torch.float32)
        eq = (v == last).sum(-1, dtype=torch.float32)
        return (less + (eq + 1) / 2) / w

    return _mask_windows(x, w, _unfold_apply(torch.where(torch.isnan(x), 0.0, x), w, rank))


def ts_ref(x: Tensor, d: int) -> Tensor:
    """Value ``d`` days earlier (``d < 0``: ``-d`` days later, for targets only)."""
    out = _nan_like(x)
    T = x.shape[0]
    if d == 0:
        return x.clone()
    if abs(d) >= T:
        return out
    if d > 0:
        out[d:] = x[:-d]
    else:
        out[:d] = x[-d:]
    return out


def ts_delta(x: Tensor, d: int) -> Tensor:
    """``x_t - x_{t-d}``."""
    return x - ts_ref(x, d)


def average_rank(x: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise average ranks (1-based, ties averaged) among non-NaN entries, and the count per row.

    ``x``: ``[T, N]``; returns ``ranks`` ``[T, N]`` (NaN where ``x`` is NaN) and ``n`` ``[T, 1]``.
    """
    nan = torch.isnan(x)
    filled = torch.where(nan, torch.inf, x).contiguous()
    srt = filled.sort(dim=1).values.contiguous()
    left = torch.searchsorted(srt, filled, right=False)
    right = torch.searchsorted(srt, filled, right=True)
    ranks = (left + right + 1).to(torch.float32) / 2
    n = (~nan).sum(dim=1, keepdim=True).to(torch.float32)
    return torch.where(nan, torch.nan, ranks), n


def cs_rank(x: Tensor) -> Tensor:
    """Cross-sectional percentile rank per day: average rank / number of valid stocks, in (0, 1]."""
    ranks, n = average_rank(x)
    return ranks / n


def cs_zscore(x: Tensor) -> Tensor:
    """Cross-sectional z-score per day over valid stocks (population std); NaN on flat days."""
    mean = torch.nanmean(x, dim=1, keepdim=True)
    dev = x - mean
    var = torch.nanmean(dev * dev, dim=1, keepdim=True)
    std = var.sqrt()
    return torch.where(std > 0, dev / std, torch.nan)


ROLLING = {
    "Sum": ts_sum,
    "Mean": ts_mean,
    "Std": ts_std,
    "Var": ts_var,
    "Skew": ts_skew,
    "Kurt": ts_kurt,
    "Max": ts_max,
    "Min": ts_min,
    "Med": ts_med,
    "Mad": ts_mad,
    "Rank": ts_rank,
    "WMA": ts_wma,
    "EMA": ts_ema,
    "Ref": ts_ref,
    "Delta": ts_delta,
}
PAIR_ROLLING = {"Cov": ts_cov, "Corr": ts_corr}


# ---- engine dispatch ------------------------------------------------------------------------------------
# One place picks the engine: numba loops for CPU tensors, the torch kernels above for CUDA (or when forced).


def _nb():
    from marketlab.features.expr import kernels_nb

    return kernels_nb


def _np(x: Tensor):
    return x.detach().contiguous().numpy()


_MOMENT_KIND = {"Sum": "SUM", "Mean": "MEAN", "Var": "VAR", "Std": "STD", "Skew": "SKEW", "Kurt": "KURT"}


def rolling(name: str, x: Tensor, w: int, engine: str = "auto") -> Tensor:
    """Apply rolling operator ``name`` with window ``w`` on the engine for ``x``'s device."""
    if engine == "torch" or (engine == "auto" and x.device.type != "cpu") or name in ("Ref", "Delta"):
        return ROLLING[name](x, w)
    if w > x.shape[0]:
        return _nan_like(x)
    nb = _nb()
    a = _np(x)
    if name in _MOMENT_KIND:
        from marketlab.features import rolling as rl

        r = rl.rolling_stat(a, w, getattr(rl, _MOMENT_KIND[name]), 1, rl.default_reanchor(w))
    elif name == "WMA":
        r = nb.rolling_wma(a, w)
    elif name == "EMA":
        dec = 1.0 - 2.0 / (1.0 + w)
        wts = dec ** np.arange(w, 0, -1, dtype=np.float64)
        r = nb.rolling_weighted(a, wts / wts.sum())
    elif name in ("Max", "Min"):
        r = nb.rolling_extreme(a, w, name == "Max")
    elif name == "Med":
        r = nb.rolling_median(a, w)
    elif name == "Mad":
        r = nb.rolling_mad(a, w)
    elif name == "Rank":
        r = nb.rolling_rank(a, w)
    else:  # pragma: no cover - every rolling op is listed above
        raise AssertionError(name)
    return torch.from_numpy(r)


def pair_rolling(name: str, x: Tensor, y: Tensor, w: int, engine: str = "auto") -> Tensor:
    """Apply ``Cov``/``Corr`` with window ``w`` on the engine for the inputs' device."""
    if engine == "torch" or (engine == "auto" and x.device.type != "cpu"):
        return PAIR_ROLLING[name](x, y, w)
    if w > x.shape[0]:
        return _nan_like(x)
    return torch.from_numpy(_nb().rolling_cov(_np(x), _np(y), w, name == "Corr"))


def cross_section(name: str, x: Tensor, engine: str = "auto") -> Tensor:
    """Apply ``CSRank``/``CSZScore`` per day on the engine for ``x``'s device."""
    if engine == "torch" or (engine == "auto" and x.device.type != "cpu"):
        return cs_rank(x) if name == "CSRank" else cs_zscore(x)
    nb = _nb()
    if name == "CSRank":
        return torch.from_numpy(nb.cs_average_rank(_np(x), True))
    return torch.from_numpy(nb.cs_zscore(_np(x)))
