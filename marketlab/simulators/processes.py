"""Exogenous processes of the agent-based market, drawn once per session on a time grid: the
:class:`Fundamental` value (mean-reverting OU with jumps, ABIDES' "oracle") and the trading
:class:`Activity` a(t) that paces the crowd, the value traders and the fundamental's variance."""

from __future__ import annotations

import numpy as np

from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.config import ActivityConfig, FundamentalConfig


class Fundamental:
    """Fundamental value path in ticks on a ``step_s`` grid over the session (ABIDES "oracle").

    Exact OU transition between grid points, x_{k+1} = a x_k + s_k eps_k with a = exp(-kappa dt) and
    s_k = sigma sqrt((1 - a^2) / (2 kappa)) * act_k^(activity_exponent/2) (``act_k`` the activity
    multiplier at grid point k, when ``activity`` is given), plus compound-Poisson jumps of random sign;
    r = r_bar + x. ``value(t_ns)`` returns the grid value at or before ``t_ns`` (float ticks).
    """

    def __init__(
        self,
        cfg: FundamentalConfig,
        rng: np.random.Generator,
        t0_ns: int,
        duration_s: float,
        r_bar: float,
        activity: Activity | None = None,
    ) -> None:
        from scipy.signal import lfilter

        n = int(np.ceil(duration_s / cfg.step_s)) + 2
        dt = cfg.step_s
        a = float(np.exp(-cfg.kappa * dt))
        s = cfg.sigma * (np.sqrt((1 - a * a) / (2 * cfg.kappa)) if cfg.kappa > 0 else np.sqrt(dt))
        shocks = s * rng.standard_normal(n)
        if activity is not None and cfg.activity_exponent > 0:
            grid_ns = t0_ns + np.arange(n, dtype=np.int64) * int(cfg.step_s * NS_PER_S)
            shocks *= activity.values(grid_ns) ** (cfg.activity_exponent / 2.0)
        jumps = rng.poisson(cfg.jump_rate * dt, n)
        sizes = np.abs(rng.normal(cfg.jump_mean, cfg.jump_std, n)) * rng.choice([-1.0, 1.0], n)
        shocks += jumps * sizes
        shocks[0] = 0.0
        self.path = r_bar + lfilter([1.0], [1.0, -a], shocks)
        self.r_bar = float(r_bar)
        self.t0_ns = int(t0_ns)
        self.step_ns = int(cfg.step_s * NS_PER_S)
        self.n_jumps = int(jumps.sum())

    def value(self, t_ns: int) -> float:
        """Value (ticks or multiplier) at the grid point at or before ``t_ns``."""
        k = (t_ns - self.t0_ns) // self.step_ns
        return float(self.path[min(max(k, 0), self.path.size - 1)])


class Activity:
    """Trading-activity multiplier a(t) = exp(x_t - sigma^2/2) on a ``step_s`` grid (see ActivityConfig).

    x is a stationary OU process (exact AR(1) transition), started from its stationary law.
    ``value(t_ns)`` is the multiplier at or before ``t_ns`` (mean 1).
    """

    def __init__(self, cfg: ActivityConfig, rng: np.random.Generator, t0_ns: int, duration_s: float) -> None:
        from scipy.signal import lfilter

        n = int(np.ceil(duration_s / cfg.step_s)) + 2
        a = float(np.exp(-cfg.step_s / cfg.tau_s))
        eps = rng.standard_normal(n) * cfg.sigma * np.sqrt(1 - a * a)
        eps[0] = rng.standard_normal() * cfg.sigma
        x = lfilter([1.0], [1.0, -a], eps)
        self.path = np.exp(x - cfg.sigma**2 / 2).tolist()
        self.t0_ns = int(t0_ns)
        self.step_ns = int(cfg.step_s * NS_PER_S)

    def value(self, t_ns: int) -> float:
        """Value (ticks or multiplier) at the grid point at or before ``t_ns``."""
        k = (t_ns - self.t0_ns) // self.step_ns
        v: float = self.path[min(max(k, 0), len(self.path) - 1)]
        return v

    def values(self, t_ns: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`value` over an int64 array of times (ns); float64, same shape."""
        k = np.clip((np.asarray(t_ns, dtype=np.int64) - self.t0_ns) // self.step_ns, 0, len(self.path) - 1)
        return np.asarray(self.path)[k]
