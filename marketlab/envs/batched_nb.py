"""Numba kernels of the batched bar-trading env: one fused loop over B episodes per step (the CPU engine).

The torch engine of :class:`~marketlab.envs.batched.BatchedTradingEnv` spends its time in ~100 small
tensor ops per step and in gathering the (B, window*K) observation; on a CPU one fused loop over the
batch does the same work with no temporaries. The accounting calls the single env's own kernels
(:func:`~marketlab.envs.execution.order_nb`, :func:`~marketlab.envs.execution.rebalance_nb`) in float64, so
every episode is the single env's arithmetic, operation for operation (the agreement test checks values to
1e-12 relative; they are in fact identical).

Shapes: B episodes, N assets, T bars, K = N * features per bar, W = window, D = W*K (+ N with weights).
All buffers are preallocated by the caller and written in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from marketlab.envs.execution import is_close_nb, order_nb, rebalance_nb
from marketlab.envs.rewards import diff_sharpe_kernel, log_return_kernel, pnl_kernel

#: The episodes' state the step and reset kernels share, in this order: cash (B,), shares (B, N),
#: prev_target (B, N), value (B,) float64; t, end (B,) int64 (current and last decision bar).
Episodes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: The env's constants for the step: close (T, N) float64 execution and valuation prices, flat (T, K)
#: float32 features, window, with_weights (append the position weights), bound (their clip), trade_on_change,
#: interval (bars per step, capped at each episode's end), fees, slippage.
StepSetup = tuple[np.ndarray, np.ndarray, int, bool, float, bool, int, float, float]
#: The reward's operands: state (B, S) float64 (per-episode memory), params (P,) float64, turnover_k.
RewardOps = tuple[np.ndarray, np.ndarray, float]
#: The step's outputs, (B,) each: obs (B, D) float32, reward float32, terminated bool, fees, traded, value,
#: t int64, final_value (NaN where the episode goes on) float64.
Outputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@njit(cache=True)
def targets_discrete_nb(actions: np.ndarray, levels: np.ndarray, cap: float, out: np.ndarray) -> int:
    """Discrete actions (B, N) int64 -> target weights ``out`` (B, N) float64: levels[a] (/ N when N > 1),
    clipped to [-cap, cap] (the position limit; inf for none).

    Returns -1, or the first row holding an action outside [0, len(levels)) (nothing is read out of bounds).
    """
    b, n = actions.shape
    n_levels = levels.shape[0]
    for i in range(b):
        for j in range(n):
            a = actions[i, j]
            if a < 0 or a >= n_levels:
                return i
            w = levels[a] if n == 1 else levels[a] / n
            out[i, j] = min(max(w, -cap), cap)
    return -1


@njit(cache=True)
def targets_weights_nb(actions: np.ndarray, low: float, max_leverage: float, cap: float, out: np.ndarray) -> None:
    """Continuous actions (B, N) float64 -> weights ``out`` (B, N): clipped to [low, 1], scaled to
    gross <= max_leverage, each clipped to [-cap, cap] (the single env's
    :class:`~marketlab.envs.interpreters.WeightsAction`)."""
    b, n = actions.shape
    for i in range(b):
        gross = 0.0
        for j in range(n):
            w = min(max(actions[i, j], low), 1.0)
            out[i, j] = w
            gross += abs(w)
        if gross > max_leverage:
            k = max_leverage / gross
            for j in range(n):
                out[i, j] = out[i, j] * k
        for j in range(n):
            out[i, j] = min(max(out[i, j], -cap), cap)


@njit(cache=True)
def _rebalance_one_nb(
    cash: float, pos: float, price: float, target: float, fees: float, slippage: float
) -> tuple[float, float, float, float]:
    """:func:`rebalance_nb` for one asset without its sort and scratch allocations (same operations in the
    same order); returns (cash, position, fees paid, traded notional)."""
    value = cash
    if pos != 0:
        value += pos * price
    if value <= 0:
        return cash, pos, 0.0, 0.0
    p0 = pos
    if is_close_nb(p0, 0.0):
        p0 = 0.0
    delta = target * value / price - p0
    cash, new_pos, filled, fee = order_nb(cash, p0, delta, price, fees, slippage)
    if filled != 0.0:
        return cash, new_pos, fee, abs(filled) * price * (1.0 + slippage if filled > 0 else 1.0 - slippage)
    return cash, pos, 0.0, 0.0


@njit(cache=True, inline="always")
def _write_obs_nb(src: np.ndarray, k: int, t: int, window: int, obs: np.ndarray, i: int, shares: np.ndarray,
                  close: np.ndarray, value: float, with_weights: bool, bound: float) -> None:
    """Row i of ``obs`` (B, D) float32: rows t-W+1..t of the (T, K) feature matrix, given flattened as
    ``src`` (T*K,) (a window is one contiguous slice), then the clipped weights shares[i] * close[t] /
    value (the single env's ``weights_at_nb`` + ``_window_obs_nb``).

    Why it looks like this: inlined at numba IR level with element indexing (a call with array arguments,
    a slice or a row view costs atomic reference-count updates per episode), and unsigned indices in the
    copy loop (signed ones carry negative-index wraparound checks that stop LLVM from vectorizing it);
    together 6x faster than the plain loop, at memcpy speed."""
    n_feat = window * k
    base = np.uint64((t - window + 1) * k)
    row = np.uint64(i)
    for m in range(np.uint64(n_feat)):
        obs[row, m] = src[base + m]
    if with_weights:
        for j in range(shares.shape[1]):
            w = shares[i, j] * close[t, j] / value if value > 0 else 0.0
            obs[i, n_feat + j] = min(max(w, -bound), bound)


@njit(inline="always")
def step_nb(reward_kernel: Any, target: np.ndarray, setup: StepSetup, episodes: Episodes, rewards: RewardOps,
            out: Outputs) -> int:
    """One step of every episode, in place, with ``reward_kernel`` (a reward's row kernel, see
    :mod:`marketlab.envs.rewards`) called per row; returns the number of episodes that ended.

    Not called directly: :func:`step_kernel` gives the compiled step for a reward kernel. Why: the reward
    is computed in the same pass as the accounting and the observation (a second pass over the batch
    re-reads state that the (B, D) observation write has evicted from the cache), and the kernel is
    inlined at numba IR level so its ``state[i]`` row view costs no reference counting per episode.

    Args:
        target: (B, N) float64 target weights (from ``targets_*_nb``).
        setup: the env's constants (:data:`StepSetup`). episodes: their state (:data:`Episodes`), updated.
        rewards: (state (B, S) float64, updated; params (P,) float64; turnover_k): the reward of row i is
            float32(kernel(state[i], value before, value after, params)) - float32(turnover_k * traded[i]).
        out: the outputs (:data:`Outputs`), overwritten: fees and traded notional and values in currency
            units; final_value is the value of episodes that ended, NaN elsewhere. The copies of value and t
            survive the reset of ended episodes.
    """
    close, flat, window, with_weights, bound, trade_on_change, interval, fees, slippage = setup
    cash, shares, prev_target, value, t, end = episodes
    state, params, turnover_k = rewards
    obs, reward, terminated, fees_out, traded_out, value_out, t_out, final_out = out
    b, n = target.shape
    k = flat.shape[1]
    src = flat.reshape(-1)
    active = np.ones(n, dtype=np.bool_)
    for i in range(b):
        ti = t[i]
        trade = True
        if trade_on_change:
            trade = False
            for j in range(n):
                if target[i, j] != prev_target[i, j]:
                    trade = True
                    break
        paid = 0.0
        traded = 0.0
        if trade:
            if n == 1:
                c, p, paid, traded = _rebalance_one_nb(cash[i], shares[i, 0], close[ti, 0], target[i, 0], fees, slippage)
                cash[i] = c
                shares[i, 0] = p
            else:
                c, paid, traded = rebalance_nb(cash[i], shares[i], close[ti], target[i], active, fees, slippage)
                cash[i] = c
            for j in range(n):
                prev_target[i, j] = target[i, j]
        fees_out[i] = paid
        traded_out[i] = traded
        prev = value[i]
        ti = min(ti + interval, end[i])
        t[i] = ti
        v = cash[i]  # portfolio_value_nb without the row views
        for j in range(n):
            if shares[i, j] != 0:
                v += shares[i, j] * close[ti, j]
        value[i] = v
        r = np.float32(reward_kernel(state[i], prev, v, params))
        if turnover_k != 0.0:  # float32 arithmetic, as the NumPy ``reward -= float32(k * traded)`` it replaces
            r = r - np.float32(turnover_k * traded)
        reward[i] = r
        value_out[i] = v
        t_out[i] = ti
        done_i = ti >= end[i] or v <= 0
        terminated[i] = done_i
        final_out[i] = v if done_i else np.nan
        _write_obs_nb(src, k, ti, window, obs, i, shares, close, v, with_weights, bound)
    done = 0
    for i in range(b):
        done += terminated[i]
    return done


# The step specialised to each built-in reward, cached on disk (numba caches module-level functions, not
# closures). numba checks only this file's timestamp: after editing a kernel in rewards.py, clear the cache.
_STEPS: dict[Any, Callable[..., int]] = {
    pnl_kernel: njit(cache=True)(lambda target, setup, eps, rw, out: step_nb(pnl_kernel, target, setup, eps, rw, out)),
    log_return_kernel: njit(cache=True)(lambda target, setup, eps, rw, out: step_nb(log_return_kernel, target, setup, eps, rw, out)),
    diff_sharpe_kernel: njit(cache=True)(lambda target, setup, eps, rw, out: step_nb(diff_sharpe_kernel, target, setup, eps, rw, out)),
}


def step_kernel(kernel: Any) -> Callable[..., int]:
    """The compiled step for reward ``kernel``: ``step(target, setup, episodes, rewards, out) -> int``
    (:func:`step_nb`). Built-in rewards' steps are cached on disk; a user's reward kernel is compiled into
    its own step once per process (no disk cache: numba cannot cache a closure)."""
    cached = _STEPS.get(kernel)
    if cached is not None:
        return cached
    inline = njit(inline="always")(kernel.py_func)  # inlined into the loop like the built-ins

    @njit
    def step(target: np.ndarray, setup: StepSetup, episodes: Episodes, rewards: RewardOps, out: Outputs) -> int:
        return step_nb(inline, target, setup, episodes, rewards, out)

    _STEPS[kernel] = step
    return step


@njit(cache=True)
def reset_rows_nb(
    rows: np.ndarray,
    starts: np.ndarray,
    length: int,
    t_hi: int,
    init_cash: float,
    flat: np.ndarray,
    window: int,
    with_weights: bool,
    episodes: Episodes,
    state: np.ndarray,
    obs: np.ndarray,
) -> None:
    """Start new episodes in ``rows`` (R,) int64 at decision steps ``starts`` (R,) int64 (flat, all cash,
    reward state (B, S) zeroed) and write their first observations (zero weights) into ``obs``."""
    cash, shares, prev_target, value, t, end = episodes
    k = flat.shape[1]
    n_feat = window * k
    src = flat.reshape(-1)
    for r in range(rows.shape[0]):
        i = rows[r]
        s = starts[r]
        t[i] = s
        end[i] = min(s + length, t_hi) if length else t_hi
        cash[i] = init_cash
        value[i] = init_cash
        for j in range(state.shape[1]):
            state[i, j] = 0.0
        for j in range(shares.shape[1]):
            shares[i, j] = 0.0
            prev_target[i, j] = 0.0
        base = (s - window + 1) * k
        for m in range(n_feat):
            obs[i, m] = src[base + m]
        if with_weights:
            for j in range(shares.shape[1]):
                obs[i, n_feat + j] = 0.0
