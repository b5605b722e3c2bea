"""Rule baselines that act in ``marketlab/Trading-v0`` through its action space.

Each baseline maps the env's state at decision step t (bars <= t of ``env.market``) to an action in the
env's action space, so agents and rules are compared under identical costs and accounting.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from marketlab.envs.trading import TradingEnv


class Baseline(Protocol):
    """A rule mapping the env's state at its current step to an action."""

    def act(self, env: TradingEnv) -> Any:
        """The action at decision step ``env.t``."""


def _action_for_weight(env: TradingEnv, weight: float) -> Any:
    """The action whose target weight is closest to ``weight`` on every asset."""
    space = env.action_space
    if env.action_interp.discrete:
        levels = np.asarray(env.config.action.levels)
        if env.market.n_assets > 1:
            levels = levels / env.market.n_assets
        k = int(np.argmin(np.abs(levels - weight)))
        return k if env.market.n_assets == 1 else np.full(env.market.n_assets, k)
    return np.full(space.shape, weight, dtype=np.float32)


class BuyAndHold:
    """Fully invested, equally weighted, from the first step (discrete: the highest level)."""

    def __init__(self, n_assets: int) -> None:
        self.n_assets = n_assets

    def act(self, env: TradingEnv) -> Any:
        """The highest level (discrete) or full investment split equally."""
        if env.action_interp.discrete:
            return _action_for_weight(env, float(max(env.config.action.levels)) / self.n_assets)
        return _action_for_weight(env, min(1.0, env.config.action.max_leverage) / self.n_assets)


class Flat:
    """Never trades (zero target)."""

    def act(self, env: TradingEnv) -> Any:
        """The action at decision step ``env.t``."""
        return _action_for_weight(env, 0.0)


class MACross:
    """Long (highest level) while SMA(fast) > SMA(slow) of the close up to t, else flat (or short when
    ``allow_short``)."""

    def __init__(self, fast: int = 10, slow: int = 50, allow_short: bool = False) -> None:
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be < slow ({slow})")
        self.fast, self.slow, self.allow_short = fast, slow, allow_short

    def act(self, env: TradingEnv) -> Any:
        """The action at decision step ``env.t``."""
        t = env.t
        close = env.market.close[: t + 1, 0]
        if close.shape[0] < self.slow:
            return _action_for_weight(env, 0.0)
        up = close[-self.fast :].mean() > close[-self.slow :].mean()
        top = float(max(env.config.action.levels)) if env.action_interp.discrete else 1.0
        return _action_for_weight(env, top if up else (-top if self.allow_short else 0.0))


def run_policy(policy: Baseline, env: TradingEnv, start: int | None = None) -> dict[str, np.ndarray]:
    """Run ``policy`` for one episode from ``start`` (default: the period start); returns ``value``
    (steps,) after each step and ``reward`` (steps,)."""
    env.reset(options={"start": env.t_lo if start is None else start})
    vals, rews = [], []
    done = False
    while not done:
        _, r, done, trunc, info = env.step(policy.act(env))
        done = done or trunc
        vals.append(info["value"])
        rews.append(r)
    return {"value": np.array(vals), "reward": np.array(rews)}
