"""Signals -> positions: rules, stored predictions and alphas, top-k portfolios and RL policy roll-outs.

Every function is arrays-first and causal: row t of an output uses rows <= t of its inputs only
(rolling windows look back; stored signals are aligned with a backward as-of join).

Outputs are either boolean (T, N) entry/exit masks for ``Portfolio.from_signals`` or float (T, N) target
weights for ``Portfolio.from_orders(size_type="targetpercent")`` where NaN means "no order at this bar".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketlab.features.rolling import rolling_mean
from marketlab.features.rolling import rolling_std as std_of


@dataclass
class Entries:
    """Boolean (T, N) masks: long entries/exits and (for direction "both") short entries/exits."""

    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray | None = None
    short_exits: np.ndarray | None = None


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Trailing simple moving average over ``n`` rows of (T, N) ``x``; NaN for the first n-1 rows and for
    windows holding a NaN (:func:`marketlab.features.rolling.rolling_mean`, exact on flat windows)."""
    return rolling_mean(np.asarray(x, dtype=np.float64), n)


def rolling_std(x: np.ndarray, n: int) -> np.ndarray:
    """Trailing population standard deviation over ``n`` rows (NaN for the first n-1); exactly 0 where the
    ``n`` values are equal."""
    return std_of(np.asarray(x, dtype=np.float64), n, ddof=0)


def _crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    prev = np.vstack([np.full((1, a.shape[1]), np.nan), a[:-1] - b[:-1]])
    now = a - b
    with np.errstate(invalid="ignore"):
        return np.asarray((now > 0) & (prev <= 0))


def ma_cross(close: np.ndarray, fast: int, slow: int) -> Entries:
    """Enter long when SMA(fast) crosses above SMA(slow), exit when it crosses below."""
    f, s = sma(close, fast), sma(close, slow)
    up = _crossed_above(f, s)
    down = _crossed_above(s, f)
    return Entries(up, down, down, up)


def momentum(close: np.ndarray, lookback: int, skip: int = 0) -> np.ndarray:
    """Scores (T, N): close[t-skip] / close[t-skip-lookback] - 1 (NaN where history is too short)."""
    out = np.full_like(close, np.nan, dtype=np.float64)
    k = lookback + skip
    if k < close.shape[0]:
        out[k:] = close[lookback : close.shape[0] - skip] / close[: close.shape[0] - k] - 1.0
    return out


def mean_reversion(close: np.ndarray, lookback: int, z_entry: float, z_exit: float) -> Entries:
    """z = (close - SMA) / std over ``lookback`` (population std); long entry z < -z_entry, long exit
    z > -z_exit; short entry z > z_entry, short exit z < z_exit. A flat window (all ``lookback`` closes
    equal: std exactly 0) has z = 0, the close sits on its mean; z is never infinite."""
    z = zscore(close, lookback)
    with np.errstate(invalid="ignore"):
        return Entries(z < -z_entry, z > -z_exit, z > z_entry, z < z_exit)


def zscore(x: np.ndarray, lookback: int) -> np.ndarray:
    """(T, N) ``(x - SMA) / std`` over ``lookback`` rows (population std): 0 on flat windows (std exactly
    0), NaN where the window is incomplete or holds a NaN."""
    m, s = sma(x, lookback), rolling_std(x, lookback)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, (x - m) / np.where(s > 0, s, 1.0), np.where(s == 0, 0.0, np.nan))


def scores_to_entries(scores: np.ndarray, threshold: float) -> Entries:
    """Long while score > threshold, short while score < -threshold (for single-series scores)."""
    with np.errstate(invalid="ignore"):
        up = scores > threshold
        down = scores < -threshold
    return Entries(up, ~up, down, ~down)


def class_positions(probs: list[np.ndarray]) -> np.ndarray:
    """Predictor class probabilities [p_down, p_flat, p_up] (each (T, N)) -> position -1/0/+1 by argmax;
    NaN where no prediction exists yet."""
    stack = np.stack(probs, axis=0)
    valid = np.isfinite(stack).all(axis=0)
    arg = np.argmax(np.nan_to_num(stack, nan=-np.inf), axis=0)
    pos = np.array([-1.0, 0.0, 1.0])[arg] if len(probs) == 3 else (arg * 2.0 - 1.0)
    return np.where(valid, pos, np.nan)


def topk_weights(
    scores: np.ndarray,
    tradable: np.ndarray,
    *,
    top_k: int,
    rebalance: int,
    long_short: bool = False,
    n_drop: int = 0,
    size: float = 1.0,
) -> np.ndarray:
    """Equal-weight top-k portfolio from cross-sectional ranks of ``scores`` (T, N).

    At rows 0, rebalance, 2*rebalance, ... (and only where scores exist) the long book is the ``top_k``
    highest scores among tradable symbols (each ``size / top_k``, or ``size / (2 top_k)`` per side when
    ``long_short``, with the ``top_k`` lowest shorted). With ``n_drop`` > 0 the book changes gradually
    (qlib TopkDropout): of the current names, at most ``n_drop`` of those ranked worst are replaced by
    the best-ranked names not held. Rows between rebalances are NaN (no orders), and so are symbols that
    cannot trade at a rebalance row (their position is left alone).
    """
    t_len, n = scores.shape
    w = np.full((t_len, n), np.nan)
    held_long: list[int] = []
    held_short: list[int] = []
    per = size / top_k / (2 if long_short else 1)
    for t in range(0, t_len, rebalance):
        s = scores[t]
        ok = np.isfinite(s) & tradable[t]
        if ok.sum() < (2 * top_k if long_short else top_k):
            continue
        cand = np.nonzero(ok)[0]
        order = cand[np.argsort(-s[cand], kind="mergesort")]  # best first
        held_long = _pick(order, held_long, top_k, n_drop)
        if long_short:
            held_short = _pick(order[::-1], held_short, top_k, n_drop)
        row = np.where(tradable[t], 0.0, np.nan)
        row[held_long] = per
        if long_short:
            row[held_short] = -per
        w[t] = row
    return w


def _pick(order: np.ndarray, held: list[int], k: int, n_drop: int) -> list[int]:
    """New book of k names from ``order`` (best first) given the current book ``held``."""
    if n_drop <= 0 or not held:
        return [int(i) for i in order[:k]]
    rank = {int(sym): r for r, sym in enumerate(order)}
    still = [h for h in held if h in rank]  # names that can still be ranked
    still.sort(key=lambda h: rank[h])
    outside = [h for h in still if rank[h] >= k]
    drop = set(outside[-n_drop:]) if outside else set()
    keep = [h for h in still if h not in drop][:k]
    fill = [int(i) for i in order if int(i) not in keep][: k - len(keep)]
    return keep + fill


def delay_rows(a: np.ndarray, delay: int, fill: float | bool) -> np.ndarray:
    """Shift (T, N) decisions down by ``delay`` rows: a decision at t trades at t + delay."""
    if delay == 0:
        return a
    out = np.full_like(a, fill)
    out[delay:] = a[:-delay]
    return out


def changes_only(weights: np.ndarray) -> np.ndarray:
    """Keep a target-weight row only where it differs from the previous decision (NaN elsewhere), the env's
    ``trade_on_change`` rule, so positions drift with prices between changes."""
    out = weights.copy()
    prev = np.zeros(weights.shape[1])
    for t in range(weights.shape[0]):
        row = weights[t]
        if np.isnan(row).all():
            continue
        cur = np.where(np.isnan(row), prev, row)
        if np.array_equal(cur, prev) and t > 0:
            out[t] = np.nan
        prev = cur
    return out
