"""The swappable interpreters of the bar-trading env: features, state interpreter, action interpreter.

The env is ``simulator + state interpreter + action interpreter + reward`` (qlib's decomposition; rewards
are in :mod:`marketlab.envs.rewards`). Each part is a registry id named by the ``kind`` of its spec table
(``state/window-v1``, ``action/discrete-v1``, ``action/weights-v1``); a state interpreter is built with
``(ObservationConfig, features (T, N, F), n_assets)``, an action interpreter with ``(ActionConfig, n_assets)``.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from numba import njit

from marketlab.core.errors import SpecError
from marketlab.envs.spec import ActionConfig, ObservationConfig
from marketlab.market.data import MarketData

BAR_FEATURES = ("ret", "range", "body", "logvol")


def bar_features(market: MarketData, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Causal per-bar features, (T, N, F) float64: row t uses bars <= t only.

    ``ret`` log close-to-close return, ``range`` log(high/low), ``body`` log(close/open), ``logvol``
    change of log(1+volume); any other name is a column of ``market.extra`` (signals; NaN -> 0).
    """
    t, n = market.close.shape
    out = np.zeros((t, n, len(names)))
    for k, name in enumerate(names):
        if name == "ret":
            out[1:, :, k] = np.diff(np.log(market.close), axis=0)
        elif name == "range":
            out[:, :, k] = np.log(market.high / market.low)
        elif name == "body":
            out[:, :, k] = np.log(market.close / market.open)
        elif name == "logvol":
            out[1:, :, k] = np.diff(np.log1p(market.volume), axis=0)
        elif name in market.extra:
            out[:, :, k] = np.nan_to_num(market.extra[name], nan=0.0, posinf=0.0, neginf=0.0)
        else:
            known = list(BAR_FEATURES) + sorted(market.extra)
            raise SpecError(None, "env.observation.features", f"unknown feature {name!r} (known: {known})")
    return out


def normalize_features(x: np.ndarray, fit_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score (T, N, F) features with mean/std of the first ``fit_rows`` rows (the train split).

    Returns (normalized float32 (T, N, F), mean (N, F), std (N, F)).
    """
    fit = x[: max(fit_rows, 2)]
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (x - mean) / std
    return z.astype(np.float32), mean, std


class StateInterpreter(Protocol):
    """Observations of the env at decision step t given the current weights (N,)."""

    observation_space: gym.spaces.Space[Any]

    def observe(self, t: int, weights: np.ndarray) -> Any:
        """The observation at decision step ``t``."""


class WindowState:
    """Observation = the last ``window`` rows of the (T, N*F) feature matrix, flattened, then the current
    portfolio weights (N,). Shape (window * N * F + N,) float32 (without weights when not requested).

    Features are clipped to [-clip, clip] by the env; weights are clipped to the same bound, so the
    observation space is a finite box."""

    def __init__(self, config: ObservationConfig, features: np.ndarray, n_assets: int) -> None:
        t, n, f = features.shape
        self.window = config.window
        self.flat = np.ascontiguousarray(features.reshape(t, n * f), dtype=np.float32)
        self.include_position = config.include_position
        self.n_feat = self.window * n * f
        dim = self.n_feat + (n_assets if self.include_position else 0)
        self.bound = float(max(config.clip, 10.0))
        self.observation_space = gym.spaces.Box(-self.bound, self.bound, shape=(dim,), dtype=np.float32)

    def observe(self, t: int, weights: np.ndarray) -> np.ndarray:
        """Observation at decision step t (rows t-window+1 .. t); t >= window - 1."""
        return _window_obs_nb(self.flat, t, self.window, weights, self.bound, self.include_position)


@njit(cache=True)
def _window_obs_nb(flat: np.ndarray, t: int, window: int, weights: np.ndarray, bound: float, with_weights: bool) -> np.ndarray:
    """New (window * K [+ N],) float32 array: rows t-window+1..t of ``flat`` (T, K), then clipped weights.
    One numba call instead of slice/reshape/copy/clip in NumPy (the env step's hot path)."""
    k = flat.shape[1]
    n_feat = window * k
    out = np.empty(n_feat + (weights.shape[0] if with_weights else 0), dtype=np.float32)
    base = (t - window + 1) * k
    src = flat.reshape(-1)
    for i in range(n_feat):
        out[i] = src[base + i]
    if with_weights:
        for j in range(weights.shape[0]):
            out[n_feat + j] = min(max(weights[j], -bound), bound)
    return out


class ActionInterpreter(Protocol):
    """Actions -> target weights (N,). ``discrete`` says whether the action space is (Multi)Discrete."""

    action_space: gym.spaces.Space[Any]
    discrete: bool

    def to_weights(self, action: Any) -> np.ndarray:
        """Target weights (N,) for ``action``."""


class DiscreteAction:
    """Discrete target positions: one of ``levels`` (fractions of net value) per asset.

    One asset: ``Discrete(L)``; many: ``MultiDiscrete([L]*N)`` with each asset's weight level/N so the
    gross exposure stays within max |level|; weights are clipped to [-max_position, max_position]. Returned
    weight arrays are shared, read-only constants.
    """

    discrete = True

    def __init__(self, config: ActionConfig, n_assets: int) -> None:
        levels = np.asarray(config.levels, dtype=np.float64)
        if levels.size < 2:
            raise SpecError(None, "env.action.levels", "need at least two levels")
        if config.long_only and (levels < 0).any():
            raise SpecError(None, "env.action.levels", "negative level with long_only = true")
        self.n_assets = n_assets
        self.cap = position_cap(config)
        if n_assets == 1:
            self.action_space: gym.spaces.Space[Any] = gym.spaces.Discrete(levels.size)
            self._table = [np.array([min(max(lv, -self.cap), self.cap)]) for lv in levels]
            for a in self._table:
                a.flags.writeable = False
        else:
            self.action_space = gym.spaces.MultiDiscrete([levels.size] * n_assets)
        self.levels = levels

    def to_weights(self, action: Any) -> np.ndarray:
        """Target weights (N,) for ``action``."""
        if self.n_assets == 1:
            return self._table[int(action)]
        return np.clip(self.levels[np.asarray(action, dtype=np.int64)] / self.n_assets, -self.cap, self.cap)


class WeightsAction:
    """Continuous target weights: clipped to [-1, 1] ([0, 1] long-only), scaled so sum|w| <= max_leverage,
    then each clipped to [-max_position, max_position]."""

    discrete = False

    def __init__(self, config: ActionConfig, n_assets: int) -> None:
        low = 0.0 if config.long_only else -1.0
        self.low = low
        self.max_leverage = config.max_leverage
        self.cap = position_cap(config)
        self.action_space = gym.spaces.Box(low, 1.0, shape=(n_assets,), dtype=np.float32)

    def to_weights(self, action: Any) -> np.ndarray:
        """Target weights (N,) for ``action``."""
        w = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), self.low, 1.0)
        gross = np.abs(w).sum()
        if gross > self.max_leverage:
            w = w * (self.max_leverage / gross)
        return np.clip(w, -self.cap, self.cap) if self.cap < np.inf else w


def position_cap(config: ActionConfig) -> float:
    """The position limit |target weight| <= cap of each asset (``max_position``; inf when none)."""
    return float(config.max_position) if config.max_position is not None else float(np.inf)
