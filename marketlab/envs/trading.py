"""``marketlab/Trading-v0``: trade one or many assets on bars with costs.

Time convention (shared with the batched env and the backtester): at decision step t the agent sees
features of bars <= t, its target is executed at ``close[t]`` (plus half spread and slippage, minus
commission), and the step's reward is the change of net value from ``close[t]`` to ``close[t+1]``.

The env is composed from a spec (:class:`~marketlab.envs.spec.TradingEnvConfig`): a
:class:`BarSimulator` (accounting, numba), a state interpreter (observations), an action interpreter
(actions -> target weights) and a reward, each chosen by ``kind``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.core.errors import SpecError
from marketlab.core.registry import resolve
from marketlab.envs.execution import rebalance_at_nb, same_nb, value_weights_at_nb
from marketlab.envs.interpreters import bar_features, normalize_features
from marketlab.envs.spec import TradingEnvConfig
from marketlab.market import CostSpec, MarketData, load_market_spec, market_from_frame


class BarSimulator:
    """Cash + share accounting over a (T, N) close matrix, executed by :func:`rebalance_nb`."""

    def __init__(self, close: np.ndarray, costs: CostSpec) -> None:
        self.close = np.ascontiguousarray(close, dtype=np.float64)
        self.fees = float(costs.commission)
        self.slippage = float(costs.price_slippage)
        self.init_cash = float(costs.init_cash)
        n = self.close.shape[1]
        self.shares = np.zeros(n)
        self.cash = self.init_cash
        self._active = np.ones(n, dtype=bool)

    def reset(self) -> None:
        """Start an episode (gymnasium API); returns (observation, info)."""
        self.shares[:] = 0.0
        self.cash = self.init_cash

    def value_weights(self, t: int) -> tuple[float, np.ndarray]:
        """Net value at close t (currency) and the weights (N,) = shares * close[t] / value."""
        return value_weights_at_nb(self.cash, self.shares, self.close, t)

    def rebalance(self, t: int, target: np.ndarray) -> tuple[float, float]:
        """Trade to target weights (N,) at close t; returns (fees paid, traded notional)."""
        self.cash, fees, traded = rebalance_at_nb(
            self.cash, self.shares, self.close, t, target, self._active, self.fees, self.slippage
        )
        return fees, traded



class TradingEnv(gym.Env):
    """Bar trading with target positions/weights, costs and a window of features (see module docstring).

    Args:
        config: a :class:`TradingEnvConfig`, a dict of the same shape (validated) or None.
        market: bars to trade; when omitted they are read from the store named in ``config.data`` (read
            only: ingesting is the spec runner's explicit step, :func:`marketlab.market.prepare_data`), or,
            when ``config.data.dataset`` is empty, made in memory by :func:`default_data`.
        store: a ``marketlab.store.Store`` (default: ``config.data.store`` or the default store).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 30}

    def __init__(
        self,
        config: TradingEnvConfig | dict[str, Any] | None = None,
        *,
        market: MarketData | None = None,
        store: Any = None,
        render_mode: str | None = None,
        spec_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        cfg = TradingEnvConfig.coerce(config, path=spec_path)
        self.render_mode = render_mode
        if market is None and not cfg.data.dataset:
            cfg, market = default_data(cfg)
        elif market is None:
            market = load_market_spec(cfg.data, store, key="env.data.dataset")
        self.config = cfg
        self.market = market
        win = cfg.observation.window
        split = market.index_of(cfg.data.test_start, default=market.n_steps, key="env.data.test_start")
        self.split = split
        self.t_lo, self.t_hi = period_bounds(cfg.period, split, market.n_steps, win, spec_path)
        # Signal columns aligned into the market (predictor probabilities, alphas) are observed too.
        names = list(cfg.observation.features) + [k for k in market.extra if k not in cfg.observation.features]
        feats = bar_features(market, names)
        if cfg.observation.normalize:
            feats, _, _ = normalize_features(feats, split)
        self.features = np.clip(feats, -cfg.observation.clip, cfg.observation.clip).astype(np.float32)
        n = market.n_assets
        self.sim = BarSimulator(market.close, cfg.costs)
        self.state_interp = resolve(cfg.observation.kind, kind="state", path=spec_path, key="env.observation.kind")(
            cfg.observation, self.features, n
        )
        self.action_interp = resolve(cfg.action.kind, kind="action", path=spec_path, key="env.action.kind")(cfg.action, n)
        self.reward_fn = resolve(cfg.reward.kind, kind="reward", path=spec_path, key="env.reward.kind")(cfg.reward, cfg.costs.init_cash)
        self.observation_space = self.state_interp.observation_space
        self.action_space = self.action_interp.action_space
        if cfg.episode_length > self.t_hi - self.t_lo:
            raise SpecError(
                spec_path,
                "env.episode_length",
                f"{cfg.episode_length} steps do not fit in the {cfg.period} period ({self.t_hi - self.t_lo} steps)",
            )
        self._zeros = np.zeros(n)
        self._trade_on_change = cfg.trade_on_change
        self._interval = cfg.decision_interval
        # reward -= turnover_penalty * traded notional / initial cash * scale (reward shaping only)
        self._turnover_k = cfg.reward.turnover_penalty * cfg.reward.scale / cfg.costs.init_cash
        self.t = self.t_lo
        self.start = self.t_lo
        self.end = self.t_hi
        self.value = self.sim.init_cash
        self._prev_target: np.ndarray = self._zeros
        self._weights = self._zeros

    # gymnasium API -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options={"start": t}`` pins the first decision step."""
        super().reset(seed=seed)
        length = self.config.episode_length
        if options and "start" in options:
            start = int(options["start"])
        elif self.config.random_start:
            last = self.t_hi - (length if length else 1)
            start = int(self.np_random.integers(self.t_lo, last + 1))
        else:
            start = self.t_lo
        if not self.t_lo <= start < self.t_hi:
            raise ValueError(f"start {start} outside the period [{self.t_lo}, {self.t_hi})")
        self.start = start
        self.end = min(start + length, self.t_hi) if length else self.t_hi
        self.t = start
        self.sim.reset()
        self.value = self.sim.init_cash
        self.reward_fn.reset(self.value)
        self._prev_target = self._zeros
        self._weights = self._zeros
        return self.state_interp.observe(self.t, self._weights), self._info(0.0, 0.0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` at the decision bar's close and run the market ``decision_interval`` bars (gymnasium API)."""
        target = self.action_interp.to_weights(action)
        t = self.t
        fees = traded = 0.0
        if not self._trade_on_change or not (target is self._prev_target or same_nb(target, self._prev_target)):
            fees, traded = self.sim.rebalance(t, target)
            self._prev_target = target
        prev_value = self.value
        t = min(t + self._interval, self.end)  # hold the shares for the decision interval
        self.t = t
        value, self._weights = self.sim.value_weights(t)
        self.value = value
        reward = self.reward_fn(prev_value, value) - self._turnover_k * traded
        terminated = t >= self.end or value <= 0
        return self.state_interp.observe(t, self._weights), float(reward), bool(terminated), False, self._info(fees, traded)

    def steps_per_year(self) -> float:
        """Env steps per year (bars per year / decision interval): the annualisation of per-step returns."""
        return float(self.market.periods_per_year()) / self.config.decision_interval

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The episode's state for a training checkpoint: (arrays, JSON-able scalars incl. the RNG state).
        :meth:`set_state` on an env of the same config continues the episode exactly."""
        arrays = {"shares": self.sim.shares.copy(), "prev_target": np.array(self._prev_target, dtype=np.float64),
                  "weights": np.array(self._weights, dtype=np.float64)}
        reward_state = getattr(self.reward_fn, "state", None)
        if isinstance(reward_state, np.ndarray):
            arrays["reward_state"] = reward_state.copy()
        scalars = {"t": self.t, "start": self.start, "end": self.end, "value": self.value, "cash": self.sim.cash,
                   "rng": self.np_random.bit_generator.state}
        return arrays, scalars

    def set_state(self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.sim.shares[:] = arrays["shares"]
        self._prev_target = np.array(arrays["prev_target"], dtype=np.float64)
        self._weights = np.array(arrays["weights"], dtype=np.float64)
        if "reward_state" in arrays:
            self.reward_fn.state[:] = arrays["reward_state"]
        self.t, self.start, self.end = int(scalars["t"]), int(scalars["start"]), int(scalars["end"])
        self.value, self.sim.cash = float(scalars["value"]), float(scalars["cash"])
        self.np_random.bit_generator.state = scalars["rng"]

    def _info(self, fees: float, traded: float) -> dict[str, Any]:
        return {"t": self.t, "value": self.value, "cash": self.sim.cash, "fees": fees, "traded": traded}

    def render(self) -> str | None:
        """An ANSI line of the current state (``render_mode = 'ansi'``), else None."""
        if self.render_mode != "ansi":
            return None
        return f"t={self.t} ts={self.market.ts[self.t]} value={self.value:.2f} weights={np.round(self._weights, 4)}"


#: Where the built-in data splits train from test when the config names no ``data.test_start``.
DEFAULT_TEST_START = "2023-01-02"


def default_data(cfg: TradingEnvConfig) -> tuple[TradingEnvConfig, MarketData]:
    """The data of a config that names no dataset: one symbol (``SYN000``) of marketlab's seeded synthetic
    daily panel (:func:`marketlab.store.synth.synth_daily`, seed 0: GARCH factor returns, fat tails, a
    suspension; 756 business days from 2021-01-04), made in memory, nothing ingested. Returns the config
    with ``data.test_start`` set to :data:`DEFAULT_TEST_START` when it gave none (train 2021-2022, test
    2023), and the market."""
    from marketlab.market.forkshare import fork_shared

    def make() -> MarketData:
        from marketlab.store.synth import synth_daily

        panel, _ = synth_daily(0, n_symbols=1)
        return market_from_frame(panel, source="built-in synthetic data")

    market = fork_shared(("default-trading-data",), make, what="built-in synthetic data")
    if cfg.data.test_start is None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, test_start=DEFAULT_TEST_START))
    return cfg, market


def period_bounds(period: str, split: int, n_steps: int, window: int, path: Any = None) -> tuple[int, int]:
    """Decision steps of a period: (first t, last valued t). Train: rows < split; test: rows >= split
    (its observation window may reach back into train data, which is the past); all: every row."""
    first = window - 1
    if period == "train":
        lo, hi = first, split - 1
    elif period == "test":
        lo, hi = max(split, first), n_steps - 1
    else:  # "all" (the spec's Literal allows nothing else)
        lo, hi = first, n_steps - 1
    if hi - lo < 1:
        raise SpecError(
            path, "env.period", f"the {period} period has no steps (rows {lo}..{hi} of {n_steps}, window {window})"
        )
    return lo, hi
