"""Market decomposition (paper section 4.1): chunks labelled by trend and by volatility, and macro context.

* Chunks: non-overlapping runs of ``chunk`` minutes inside contiguous segments (a chunk never crosses a
  data gap; a segment's tail shorter than ``chunk`` is dropped).
* Trend indicator of a chunk: smooth its close with a first-order Butterworth low-pass (N=1, Wn=0.05)
  applied forward and backward (``filtfilt``, zero phase; non-causal inside the chunk, which is fine for
  labelling training chunks only), then the least-squares slope of the smoothed close on 0..l-1, in
  price units per minute (not normalised, as in the code).
* Volatility indicator: the sample std (ddof 1) of the chunk's raw close-to-close returns.
* Bins fitted on TRAINING chunks only (:class:`RegimeBins`):
  ``scheme="paper"``: three equal quantile bins (tertiles), every training chunk used;
  ``scheme="code"``: the reference code's ``qcut`` at [.05, .35, .65, .95]; the 5 % tails of the
  training chunks train no sub-agent, and outside rows are merged into the nearest inner bin.
  Labels are 0 (bear / stable), 1 (medium), 2 (bull / volatile); bins are right-closed like ``pd.qcut``.
* Macro context for the hyper-agent (:func:`macro_context`): ``slope_360`` and ``vol_360``, both
  CAUSAL here (a causal Butterworth ``lfilter`` instead of the reference's whole-series smoothing, which
  would let the context read future prices).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.signal import butter, filtfilt, lfilter, lfilter_zi

BUTTER_ORDER = 1
BUTTER_WN = 0.05
Scheme = Literal["paper", "code"]
_QUANTILES: dict[str, tuple[float, ...]] = {"paper": (1 / 3, 2 / 3), "code": (0.05, 0.35, 0.65, 0.95)}


def chunk_bounds(segments: list[tuple[int, int]], chunk: int) -> list[tuple[int, int]]:
    """[lo, hi) of every full ``chunk``-row block inside the contiguous ``segments`` (in order)."""
    out: list[tuple[int, int]] = []
    for lo, hi in segments:
        out.extend((s, s + chunk) for s in range(lo, hi - chunk + 1, chunk))
    return out


def smoothed(close: np.ndarray) -> np.ndarray:
    """Zero-phase Butterworth(N=1, Wn=0.05) low-pass of ``close`` (needs more than 6 rows)."""
    b, a = butter(BUTTER_ORDER, BUTTER_WN, "low")
    return np.asarray(filtfilt(b, a, np.asarray(close, dtype=np.float64)))


def _ls_slope(y: np.ndarray) -> float:
    x = np.arange(len(y), dtype=np.float64)
    x -= x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def chunk_slope(close: np.ndarray) -> float:
    """Trend indicator: least-squares slope (price units / minute) of the smoothed close of one chunk."""
    return _ls_slope(smoothed(close))


def chunk_volatility(close: np.ndarray) -> float:
    """Volatility indicator: sample std (ddof 1) of one chunk's close-to-close returns."""
    c = np.asarray(close, dtype=np.float64)
    return float(np.std(c[1:] / c[:-1] - 1.0, ddof=1))


def chunk_indicators(close: np.ndarray, chunks: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(slope, volatility) arrays, one value per chunk of ``close``."""
    slope = np.array([chunk_slope(close[lo:hi]) for lo, hi in chunks])
    vol = np.array([chunk_volatility(close[lo:hi]) for lo, hi in chunks])
    return slope, vol


@dataclass(frozen=True)
class RegimeBins:
    """Bin edges of one indicator, fitted on training chunks. ``cuts`` split labels 0|1|2; ``tails`` (code
    scheme only) are the 5 % / 95 % training quantiles outside which training chunks are left unused."""

    scheme: str
    cuts: tuple[float, float]
    tails: tuple[float, float] | None = None

    @classmethod
    def fit(cls, train_values: np.ndarray, scheme: Scheme = "paper") -> RegimeBins:
        """Fit the cuts on the indicator values of TRAINING chunks only."""
        v = np.asarray(train_values, dtype=np.float64)
        if scheme not in _QUANTILES:
            raise ValueError(f"unknown regime scheme {scheme!r} (paper or code)")
        if len(v) < 3:
            raise ValueError(f"need at least 3 training chunks to fit regime bins, got {len(v)}")
        q = np.quantile(v, _QUANTILES[scheme])
        if scheme == "paper":
            return cls("paper", (float(q[0]), float(q[1])))
        return cls("code", (float(q[1]), float(q[2])), (float(q[0]), float(q[3])))

    def label(self, values: np.ndarray) -> np.ndarray:
        """Labels 0/1/2 for any chunks (right-closed bins; outside the tails merged inward)."""
        return np.searchsorted(np.asarray(self.cuts), np.asarray(values, dtype=np.float64), side="left").astype(np.int64)

    def trains(self, values: np.ndarray) -> np.ndarray:
        """Which TRAINING chunks a sub-agent learns from: all (paper) or those inside the tails (code)."""
        v = np.asarray(values, dtype=np.float64)
        if self.tails is None:
            return np.ones(len(v), dtype=bool)
        return (v > self.tails[0]) & (v <= self.tails[1])  # qcut bins 1..3: (q05, q95]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (checkpoints store the fitted bins)."""
        return {"scheme": self.scheme, "cuts": list(self.cuts), "tails": list(self.tails) if self.tails else None}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> RegimeBins:
        """Inverse of :meth:`to_dict`."""
        cuts = tuple(float(x) for x in d["cuts"])  # type: ignore[attr-defined]
        tails = d.get("tails")
        return cls(str(d["scheme"]), (cuts[0], cuts[1]), (float(tails[0]), float(tails[1])) if tails else None)  # type: ignore[index]

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())


def rolling_slope(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing least-squares slope of ``y`` over ``window`` rows (row t uses rows t-window+1..t); NaN before."""
    y = np.asarray(y, dtype=np.float64)
    out = np.full(len(y), np.nan)
    if len(y) < window:
        return out
    x = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    # sum_k x_k * y[t-window+1+k]: a correlation with x (mean of x is 0, so no mean of y is needed)
    out[window - 1:] = np.convolve(y, x[::-1], mode="valid") / np.dot(x, x)
    return out


_STD_BLOCK = 8192  # windows per block of rolling_std


def rolling_std(r: np.ndarray, window: int) -> np.ndarray:
    """Trailing sample std (ddof 1) of ``r`` over ``window`` rows; NaN before and where r is NaN."""
    r = np.asarray(r, dtype=np.float64)
    out = np.full(len(r), np.nan)
    if len(r) < window:
        return out
    w = np.lib.stride_tricks.sliding_window_view(r, window)
    # blocks of windows: numpy's std materialises (rows, window) temporaries, 1 GB for a year of minutes at 360;
    # each row is reduced on its own, so the blocks give the same bits as one call
    for lo in range(0, len(w), _STD_BLOCK):
        out[window - 1 + lo:window - 1 + lo + _STD_BLOCK] = w[lo:lo + _STD_BLOCK].std(axis=1, ddof=1)
    return out


def macro_context(close: np.ndarray, window: int = 360) -> np.ndarray:
    """(T, 2) causal ``[slope_360, vol_360]``: the trailing slope of the causally Butterworth-filtered close
    and the trailing std of close-to-close returns. NaN where the window is incomplete."""
    c = np.asarray(close, dtype=np.float64)
    b, a = butter(BUTTER_ORDER, BUTTER_WN, "low")
    filt = lfilter(b, a, c, zi=lfilter_zi(b, a) * c[0])[0] if len(c) else c  # starts at steady state
    ret = np.full(len(c), np.nan)
    ret[1:] = c[1:] / c[:-1] - 1.0
    return np.stack([rolling_slope(filt, window), rolling_std(ret, window)], axis=1)
