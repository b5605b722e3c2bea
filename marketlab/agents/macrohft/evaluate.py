"""Held-out roll-outs of trained MacroHFT policies and the paper's metrics.

A policy's positions over a split are computed greedily from position 0 inside every contiguous segment
(``positions[t]`` is the target decided with minute t's features, filled at close[t] and held to t+1; a
segment's last minute keeps the previous position). Policies: ``macrohft`` (the hyper-agent),
``uniform`` (ablation: the six frozen sub-agents mixed with equal weights, i.e. without the hyper-agent),
``sub_<kind>_<label>`` (one sub-agent alone), and the references ``buy_and_hold`` and ``flat``.

Metrics (paper section 5.2) over per-minute returns r with m = 525,600 minutes a year: TR, AVOL = std(r)
sqrt(m), MDD, ASR = mean/std sqrt(m), ACR = mean/MDD m, ASoR = mean/std(r | r < 0) sqrt(m), plus the number
of trades (position changes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marketlab.agents.macrohft.config import MacroHFTConfig
from marketlab.agents.macrohft.dataset import REGIMES, Prepared, SplitArrays, prepare_splits
from marketlab.agents.macrohft.nets import HyperAgentNet, SubAgentNet
from marketlab.agents.macrohft.train import HyperInputs, greedy_path, hyper_inputs, hyper_q_both, load_run, sub_q_both
from marketlab.core.errors import DataError
from marketlab.core.metrics import drawdown
from marketlab.envs.macrohft_env import transition_reward

MINUTES_PER_YEAR = 525_600
#: What ``marketlab rl eval`` reports for a MacroHFT run.
POLICIES: tuple[str, ...] = ("macrohft", "uniform", "buy_and_hold")


def segment_positions(split: SplitArrays, best: np.ndarray) -> np.ndarray:
    """Stitch greedy paths per segment, each from position 0; ``best`` (T, 2) greedy action per row and position."""
    pos = np.zeros(split.n, np.int64)
    for lo, hi in split.segments:
        if hi - lo < 2:
            continue
        path = greedy_path(best[lo:hi - 1], 0)
        pos[lo:hi - 1] = path
        pos[hi - 1] = path[-1]
    return pos


def policy_positions(policy: str, prep: Prepared, split_name: str, subs: list[SubAgentNet],
                     hyper: HyperAgentNet | None = None, cache: dict[str, HyperInputs] | None = None) -> np.ndarray:
    """Positions (T,) in {0, 1} of ``policy`` over ``split_name``. Pass the same ``cache`` dict to several calls
    to compute the frozen sub-agents' Q table of a split once."""
    split = prep.splits[split_name]
    if policy == "buy_and_hold":
        return np.ones(split.n, np.int64)
    if policy == "flat":
        return np.zeros(split.n, np.int64)
    cache = {} if cache is None else cache
    if split_name not in cache:
        cache[split_name] = hyper_inputs(subs, prep, (split_name,))[split_name]
    inp = cache[split_name]
    if policy.startswith("sub_"):
        kind, label = policy[4:].rsplit("_", 1)
        q = inp.subq[:, :, REGIMES.index((kind, int(label)))]  # (T, 2 positions, 2 actions)
        return segment_positions(split, q.argmax(axis=2))
    if policy == "uniform":
        q = inp.subq.mean(axis=2)  # equal weights 1/6: the hyper-agent at initialisation
        return segment_positions(split, q.argmax(axis=2))
    if policy == "macrohft":
        if hyper is None:
            raise ValueError("policy 'macrohft' needs a trained hyper-agent")
        with torch.no_grad():
            q = hyper_q_both(hyper, split, inp.subq, np.arange(split.n), inp.states)
        return segment_positions(split, q.argmax(axis=2))
    raise ValueError(f"unknown policy {policy!r}")


def net_positions(net: SubAgentNet, split: SplitArrays) -> np.ndarray:
    """Positions (T,) of one Q-network of the sub-agent's shape (a sub-agent, the DQN / DDQN baselines), greedy."""
    return segment_positions(split, sub_q_both(net, split, np.arange(split.n)).argmax(axis=2))


def env_pnl(close: np.ndarray, positions: np.ndarray, fee: float, size: float) -> np.ndarray:
    """Per-minute env rewards (T-1,) of holding ``positions`` (fixed ``size`` coins, starting flat)."""
    prev = np.r_[0, positions[:-2]]
    return transition_reward(close[:-1], close[1:], prev, positions[:-1], fee, size)


def allin_env_value(close: np.ndarray, positions: np.ndarray, fee: float, init: float) -> np.ndarray:
    """Account value (T,) after each minute's close of an all-in long trader, accumulated from the ENV reward.

    The env pays :func:`transition_reward` on a fixed holding; here the holding is re-sized at each entry to
    everything the account can buy, ``coins = value / (close * (1 + fee))``, and kept until the exit (the
    sizing of a vectorbt target-percent order of 1 with a proportional ``fee``). ``positions[t]`` is filled at
    close[t]; value[t] is marked at close[t] after that trade. So value[-1] - init is the env's P&L of the
    policy traded all-in, which the vectorbt backtest of the same positions must reproduce."""
    close = np.asarray(close, np.float64)
    pos = np.asarray(positions, np.int64)
    out = np.empty(len(close), np.float64)
    value, coins, prev = float(init), 0.0, 0
    for t in range(len(close)):
        if t > 0 and prev:  # carried the holding from close[t-1] to close[t]
            value += float(transition_reward(close[t - 1], close[t], 1, 1, fee, coins))
        a = int(pos[t])
        if a != prev:
            if a:  # entry: size the holding on the current value, pay the fee on it
                coins = value / (close[t] * (1 + fee))
            value += float(transition_reward(close[t], close[t], prev, a, fee, coins))
            prev = a
        out[t] = value
    return out


def paper_metrics(value: np.ndarray, positions: np.ndarray | None = None, init: float | None = None) -> dict[str, float]:
    """TR, AVOL, MDD, ASR, ACR, ASoR (paper section 5.2) of an equity curve ``value`` (T,) per minute.

    ``init``: the value before row 0 (e.g. the initial cash when row 0 already paid an entry fee)."""
    v = np.asarray(value, dtype=np.float64)
    if init is not None:
        v = np.r_[init, v]
    r = v[1:] / v[:-1] - 1.0
    m = MINUTES_PER_YEAR
    sd = float(r.std(ddof=1)) if len(r) > 1 else float("nan")
    mean = float(r.mean()) if len(r) else float("nan")
    neg = r[r < 0]
    dd = float(neg.std(ddof=1)) if len(neg) > 1 else float("nan")
    mdd = float(-drawdown(v).min())
    out = {
        "total_return": float(v[-1] / v[0] - 1.0),
        "annual_volatility": sd * np.sqrt(m),
        "max_drawdown": mdd,
        "sharpe": mean / sd * np.sqrt(m) if sd > 0 else float("nan"),
        "calmar": mean / mdd * m if mdd > 0 else float("nan"),
        "sortino": mean / dd * np.sqrt(m) if dd > 0 else float("nan"),
    }
    if positions is not None:
        out["trades"] = float(np.abs(np.diff(np.r_[0, positions])).sum())
    return out


def load_trained(run_dir: str | Path, splits: tuple[str, ...] = ("test",)
                 ) -> tuple[MacroHFTConfig, Prepared, list[SubAgentNet], HyperAgentNet | None]:
    """The config saved in ``run_dir/run.json``, the named ``splits`` prepared from the same source with the
    run's saved train-fitted statistics (:func:`prepare_splits`: only those months are read), and the trained
    networks; a missing or foreign run is a one-line :class:`DataError`."""
    run = Path(run_dir)
    summary = run / "run.json"
    if not summary.is_file():
        raise DataError(run, "not a MacroHFT run folder (run.json missing; train it with `marketlab rl train specs/agents/macrohft_btc.toml`)")
    saved = json.loads(summary.read_text())
    cfg = MacroHFTConfig.from_dict(saved["config"], path=summary)
    prep = prepare_splits(cfg, saved["fitted"], splits)
    subs, hyper = load_run(run, cfg, prep)
    return cfg, prep, subs, hyper


def evaluate_run(run_dir: str | Path, split_name: str = "test", policies: tuple[str, ...] = POLICIES,
                 init: float = 10_000.0) -> dict[str, Any]:
    """Paper metrics of each policy over ``split_name`` traded all-in long from ``init`` cash (env reward,
    :func:`allin_env_value`), plus the env P&L of the fixed holding ``cfg.size``."""
    cfg, prep, subs, hyper = load_trained(run_dir, (split_name,))
    split = prep.splits[split_name]
    cache: dict[str, HyperInputs] = {}
    out: dict[str, Any] = {"run": str(run_dir), "symbol": cfg.symbol, "split": split_name, "fee": cfg.fee,
                           "start": str(np.datetime64(int(split.ts[0]), "ns")), "end": str(np.datetime64(int(split.ts[-1]), "ns")),
                           "policies": {}}
    for pol in policies:
        if pol == "macrohft" and hyper is None:
            continue
        pos = policy_positions(pol, prep, split_name, subs, hyper, cache)
        m = paper_metrics(allin_env_value(split.close, pos, cfg.fee, init), pos, init=init)
        m["env_pnl_fixed_size"] = float(env_pnl(split.close, pos, cfg.fee, cfg.size).sum())
        out["policies"][pol] = m
    return out
