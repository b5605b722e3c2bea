"""Rewards of the bar-trading envs: one numba kernel each, called by the single env per step and by the
batched env per row (inlined into its step loop, :func:`marketlab.envs.batched_nb.step_kernel`; the torch
engine uses :func:`rows_kernel`), so every reward is written once.

A kernel is ``kernel(state float64[S], prev_value, value, params float64[P]) -> float``: ``state`` is the
reward's per-episode memory (updated in place, zeroed at reset), ``params`` its constants. A reward class
(see :class:`KernelReward`) names its kernel, its state size and how a :class:`RewardConfig` becomes
``params``; a user registers one from Python (``register("reward/mine-v1", Mine)``) and names it in a
spec. A reward without a kernel (only ``reset`` and ``__call__``) works in the single env only.
The built-in kernels are ``inline="always"`` (the batched step inlines them at numba IR level; calls from
Python are unaffected); a user's kernel is inlined the same way from its ``py_func``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numba import njit

from marketlab.envs.spec import RewardConfig

LOG_FLOOR = math.log(1e-12)


@njit(cache=True, inline="always")
def pnl_kernel(state: np.ndarray, prev_value: float, value: float, params: np.ndarray) -> float:
    """(value - prev_value) * params[0], with params[0] = scale / init_cash."""
    return float((value - prev_value) * params[0])


@njit(cache=True, inline="always")
def log_return_kernel(state: np.ndarray, prev_value: float, value: float, params: np.ndarray) -> float:
    """params[0] * log(value / prev_value); log(1e-12) for a wiped-out account."""
    if value <= 0 or prev_value <= 0:
        return float(params[0] * LOG_FLOOR)
    return float(params[0] * math.log(value / prev_value))


@njit(cache=True, inline="always")
def diff_sharpe_kernel(state: np.ndarray, prev_value: float, value: float, params: np.ndarray) -> float:
    """Differential Sharpe ratio (Moody & Saffell 2001) of the simple return R_t = value / prev - 1:

    D_t = (B_{t-1} dA_t - A_{t-1} dB_t / 2) / (B_{t-1} - A_{t-1}^2)^{3/2}, dA_t = R_t - A_{t-1},
    dB_t = R_t^2 - B_{t-1}; then A_t = A_{t-1} + eta dA_t, B_t = B_{t-1} + eta dB_t. D_t = 0 while the
    variance estimate B - A^2 <= 1e-12. ``state`` = (A, B); ``params`` = (eta, scale); returns scale * D_t.
    """
    r = value / prev_value - 1.0 if prev_value > 0 else -1.0
    a = state[0]
    b = state[1]
    da = r - a
    db = r * r - b
    var = b - a * a
    d = (b * da - 0.5 * a * db) / var**1.5 if var > 1e-12 else 0.0
    state[0] = a + params[0] * da
    state[1] = b + params[0] * db
    return float(params[1] * d)


class KernelReward:
    """Base of a reward with a kernel: subclasses set ``kernel``, ``state_size`` and :meth:`make_params`.

    ``self.state`` (max(state_size, 1),) and ``self.params`` are the kernel's operands for one episode.
    """

    kernel: ClassVar[Any]
    state_size: ClassVar[int] = 0

    def __init__(self, config: RewardConfig, init_cash: float) -> None:
        self.params = np.ascontiguousarray(self.make_params(config, init_cash), dtype=np.float64)
        self.state = np.zeros(max(self.state_size, 1))
        self._kernel = type(self).kernel

    @classmethod
    def make_params(cls, config: RewardConfig, init_cash: float) -> list[float]:
        """The kernel's constant operands from the spec (default: ``[scale]``)."""
        return [config.scale]

    def reset(self, value: float) -> None:
        """Start of an episode: zero the kernel's state."""
        self.state[:] = 0.0

    def __call__(self, prev_value: float, value: float) -> float:
        """Reward for the step that took net value from ``prev_value`` to ``value``."""
        return float(self._kernel(self.state, prev_value, value, self.params))


class PnLReward(KernelReward):
    """Change in net value after costs, in units of the initial cash (so rewards are O(returns))."""

    kernel = pnl_kernel

    @classmethod
    def make_params(cls, config: RewardConfig, init_cash: float) -> list[float]:
        """The kernel's constant operands from the spec."""
        return [config.scale / init_cash]


class LogReturnReward(KernelReward):
    """log(V_t+1 / V_t) of net value; a wiped-out account gets log(1e-12)."""

    kernel = log_return_kernel


class DiffSharpeReward(KernelReward):
    """Differential Sharpe ratio with EMA rate ``eta`` (see :func:`diff_sharpe_kernel`)."""

    kernel = diff_sharpe_kernel
    state_size = 2

    @classmethod
    def make_params(cls, config: RewardConfig, init_cash: float) -> list[float]:
        """The kernel's constant operands from the spec."""
        return [config.eta, config.scale]


_ROWS: dict[Any, Callable[..., None]] = {}


def rows_kernel(kernel: Any) -> Callable[..., None]:
    """``rows(state (B, S), prev (B,), value (B,), params (P,), out (B,) float32)``: ``kernel`` per row.

    Compiled once per kernel and process (a closure over the kernel, so the call inside is direct)."""
    cached = _ROWS.get(kernel)
    if cached is None:

        @njit
        def rows(state: np.ndarray, prev: np.ndarray, value: np.ndarray, params: np.ndarray, out: np.ndarray) -> None:
            for i in range(prev.shape[0]):
                out[i] = kernel(state[i], prev[i], value[i], params)

        _ROWS[kernel] = cached = rows
    return cached
