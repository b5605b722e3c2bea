"""Seeded synthetic price/volume panels shared by the expression tests."""

from __future__ import annotations

import numpy as np
import torch

PRICE_FEATURES = ("open", "high", "low", "close", "vwap")


def price_volume_panel(seed: int, T: int, N: int, sigma: float, nan_frac: float, log_volume: float,
                       zero_volume_frac: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``close [T, N]`` (GBM from 20 with daily log-vol ``sigma``, a ``nan_frac`` share of NaNs) and
    ``volume [T, N]`` (lognormal around ``exp(log_volume)``, a ``zero_volume_frac`` share of zeros).

    Draw order is fixed (returns, NaN mask, volume, zero mask) so each seed gives the same panel as before.
    """
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, sigma, (T, N)), 0))
    close[rng.random((T, N)) < nan_frac] = np.nan
    vol = rng.lognormal(log_volume, 1, (T, N))
    if zero_volume_frac:
        vol[rng.random((T, N)) < zero_volume_frac] = 0.0  # zeros: division by zero and Log(0) paths
    return close, vol


def feature_tensors(close: np.ndarray, vol: np.ndarray) -> dict[str, torch.Tensor]:
    """float32 features: the i-th of :data:`PRICE_FEATURES` is ``close * (1 + 0.01 i)``, plus ``volume``."""
    out = {k: torch.tensor(close * (1 + 0.01 * i), dtype=torch.float32) for i, k in enumerate(PRICE_FEATURES)}
    out["volume"] = torch.tensor(vol, dtype=torch.float32)
    return out
