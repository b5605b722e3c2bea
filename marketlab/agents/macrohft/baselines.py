"""Baselines of the MacroHFT paper (section 5.3) in the SAME minute env, features and fee as MacroHFT.

Every baseline yields target positions (T,) in {0, 1} over a split, decided with minute t's data and filled
at close[t] (the convention of :mod:`marketlab.agents.macrohft.evaluate`), so all of them are traded by the
same vectorbt backtest and the same env reward.

* Rules (no training; their few parameters are chosen on the VALIDATION split by the Sharpe of the all-in
  long equity net of the fee, then applied unchanged to test):
  - ``macd``: long while the MACD line EMA_fast - EMA_slow is above its signal EMA (causal EMAs of close).
  - ``taker_flow``: long while the mean taker-flow imbalance (taker buy - taker sell) / volume over the last
    ``window`` minutes is above ``threshold`` (the kline analogue of the paper's Imbalance-Volume rule, whose
    book imbalance does not exist for these years).
* Value-based RL: ``dqn`` and ``ddqn`` are the phase-1 trainer (:func:`train.train_dqn`) with the sub-agent
  network (same size, hidden 64) on ALL training chunks, adapter off (the trend features are added, not
  adaLN-modulated) and no KL toward Q*; DQN bootstraps max_a Q_target(s', a), Double DQN
  Q_target(s', argmax_a Q(s', a)).
* Policy-based RL: ``ppo`` is Stable-Baselines3 PPO on :class:`ChunkEnv` (episodes = random training chunks of
  ``MinuteTradingEnv``, observation = the scaled features + the position), greedy on the held-out split.
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.signal import lfilter

from marketlab.agents.macrohft.config import MacroHFTConfig
from marketlab.agents.macrohft.dataset import Prepared, SplitArrays
from marketlab.agents.macrohft.nets import SubAgentNet
from marketlab.agents.macrohft.train import train_dqn
from marketlab.envs.macrohft_env import MinuteTradingEnv

MINUTES_PER_YEAR = 525_600
#: Validation grids of the rules: (fast, slow, signal) EMA spans in minutes, and (window, threshold).
MACD_GRID: tuple[tuple[int, int, int], ...] = ((12, 26, 9), (60, 130, 45), (240, 520, 180))
FLOW_GRID: tuple[tuple[int, float], ...] = tuple(itertools.product((15, 60, 240), (0.0, 0.05, 0.1)))


# ------------------------------------------------------------------------------------------- rules
def ema(x: np.ndarray, span: int) -> np.ndarray:
    """Causal exponential moving average (alpha = 2 / (span + 1), started at x[0]) of ``x`` (T,)."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return x.copy()
    a = 2.0 / (span + 1.0)  # y[t] = a x[t] + (1 - a) y[t-1], y[-1] = x[0]
    out: np.ndarray = lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * x[0]])[0]
    return out


def macd_positions(close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> np.ndarray:
    """(T,) int64: 1 while MACD(close) = EMA_fast - EMA_slow is above EMA_signal(MACD), else 0."""
    line = ema(close, fast) - ema(close, slow)
    return (line > ema(line, signal)).astype(np.int64)


def taker_flow_positions(flow: np.ndarray, window: int = 60, threshold: float = 0.0) -> np.ndarray:
    """(T,) int64: 1 while the mean of ``flow`` over the last ``window`` minutes (t included) exceeds ``threshold``.

    The first ``window - 1`` minutes average what exists so far (no look-ahead)."""
    c = np.cumsum(np.r_[0.0, np.asarray(flow, np.float64)])
    t = np.arange(1, len(flow) + 1)
    lo = np.maximum(t - window, 0)
    mean = (c[t] - c[lo]) / (t - lo)
    return (mean > threshold).astype(np.int64)


def allin_returns(close: np.ndarray, positions: np.ndarray, fee: float) -> np.ndarray:
    """Per-minute returns (T-1,) of an all-in long account holding ``positions`` (filled at close[t], fee per side)."""
    pos = np.asarray(positions, np.float64)
    turn = np.abs(np.diff(np.r_[0.0, pos[:-1]]))
    out: np.ndarray = pos[:-1] * (close[1:] / close[:-1] - 1.0) - fee * turn
    return out


def _sharpe(r: np.ndarray) -> float:
    sd = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    return float(r.mean() / sd * np.sqrt(MINUTES_PER_YEAR)) if sd > 0 else -np.inf


def tune_rules(val: SplitArrays, fee: float) -> dict[str, dict[str, Any]]:
    """The grid point of each rule with the best validation Sharpe (all-in long, net of ``fee``)."""
    if val.flow is None:
        raise ValueError("the split has no taker-flow column")
    flow = val.flow
    best: dict[str, dict[str, Any]] = {}
    for f, s, g in MACD_GRID:
        sh = _sharpe(allin_returns(val.close, macd_positions(val.close, f, s, g), fee))
        if "macd" not in best or sh > best["macd"]["val_sharpe"]:
            best["macd"] = {"fast": f, "slow": s, "signal": g, "val_sharpe": sh}
    for w, th in FLOW_GRID:
        sh = _sharpe(allin_returns(val.close, taker_flow_positions(flow, w, th), fee))
        if "taker_flow" not in best or sh > best["taker_flow"]["val_sharpe"]:
            best["taker_flow"] = {"window": w, "threshold": th, "val_sharpe": sh}
    return best


def rule_positions(name: str, params: dict[str, Any], split: SplitArrays) -> np.ndarray:
    """Positions (T,) of rule ``name`` (``macd`` | ``taker_flow``) with tuned ``params`` over ``split``."""
    if name == "macd":
        return macd_positions(split.close, params["fast"], params["slow"], params["signal"])
    if name == "taker_flow":
        if split.flow is None:
            raise ValueError("the split has no taker-flow column")
        return taker_flow_positions(split.flow, params["window"], params["threshold"])
    raise ValueError(f"unknown rule {name!r}")


# ------------------------------------------------------------------------------------------- DQN / DDQN
def train_value_baseline(cfg: MacroHFTConfig, prep: Prepared, *, double: bool, chunk_mult: int = 1,
                         progress: bool = False) -> tuple[SubAgentNet, dict[str, Any]]:
    """DQN (``double=False``) or Double DQN on every training chunk: the sub-agent net, adapter and KL off.

    Budget: ``chunk_mult`` x the sub-agent's ``max_chunks`` per epoch (same epochs, batch, cadence)."""
    d = prep.decomposition
    seed = cfg.seed + (90_001 if double else 90_000)
    per_epoch = cfg.sub.max_chunks * chunk_mult
    return train_dqn(cfg, prep, d["train"].chunks, d["val"].chunks, alpha=0.0, seed=seed, adapter=False, double=double,
                     max_chunks=per_epoch, desc="ddqn" if double else "dqn", progress=progress)


# ------------------------------------------------------------------------------------------- PPO (SB3)
class ChunkEnv(gym.Env):
    """Episodes of ``MinuteTradingEnv`` over random ``chunks`` of ``split`` (random initial position, as the
    sub-agents' training episodes). Observation: scaled s1, s2 and the position (float32)."""

    metadata = {"render_modes": []}

    def __init__(self, split: SplitArrays, chunks: list[tuple[int, int]], fee: float, size: float) -> None:
        self.split, self.chunks, self.fee, self.size = split, chunks, fee, size
        self.feats = np.concatenate([split.s1, split.s2], axis=1)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.feats.shape[1] + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.inner: MinuteTradingEnv | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a chunk and an initial position with the env's seeded generator."""
        super().reset(seed=seed)
        lo, hi = self.chunks[int(self.np_random.integers(len(self.chunks)))]
        self.inner = MinuteTradingEnv(self.split.close[lo:hi], self.feats[lo:hi], fee=self.fee, size=self.size,
                                      random_initial_position=True)
        return self.inner.reset(seed=int(self.np_random.integers(2**31)))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Delegate to the chunk's env."""
        assert self.inner is not None, "reset() first"
        return self.inner.step(action)


def train_ppo(cfg: MacroHFTConfig, prep: Prepared, *, timesteps: int, seed: int, n_envs: int = 4) -> Any:
    """SB3 PPO (actor and critic MLPs [64, 256], the sub-agent's widths) for ``timesteps`` env steps on
    :class:`ChunkEnv` episodes of the training split; CPU, seeded. Rewards are scaled to per-unit-price
    (divided by ``size * first close``) so PPO's value targets are O(1e-3), not dollars."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    train = prep.splits["train"]
    chunks = prep.decomposition["train"].chunks
    scale = 1.0 / (cfg.size * float(train.close[0]))

    def make(i: int) -> Any:
        def f() -> gym.Env:
            env = gym.wrappers.TransformReward(ChunkEnv(train, chunks, cfg.fee, cfg.size), lambda r: float(r) * scale)
            env.reset(seed=seed * 100 + i)
            return env
        return f

    torch.manual_seed(seed)
    venv = DummyVecEnv([make(i) for i in range(n_envs)])
    venv.seed(seed)
    model = PPO("MlpPolicy", venv, n_steps=512, batch_size=256, n_epochs=4, learning_rate=3e-4, gamma=cfg.gamma,
                ent_coef=0.01, policy_kwargs={"net_arch": [64, 256]}, seed=seed, device="cpu", verbose=0)
    model.learn(timesteps)
    return model


def ppo_best_actions(model: Any, split: SplitArrays) -> np.ndarray:
    """(T, 2) greedy action of ``model`` at every row for current position 0 and 1."""
    feats = np.concatenate([split.s1, split.s2], axis=1).astype(np.float32)
    out = np.empty((split.n, 2), np.int64)
    for p in (0, 1):
        obs = np.concatenate([feats, np.full((split.n, 1), p, np.float32)], axis=1)
        for lo in range(0, split.n, 65_536):
            out[lo:lo + 65_536, p] = model.predict(obs[lo:lo + 65_536], deterministic=True)[0]
    return out
