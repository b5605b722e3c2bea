"""MacroHFT training: phase 1 (six regime sub-agents) and phase 2 (hyper-agent with episodic memory).

Both loops step ``n_envs`` episodes side by side in blocks of ``block`` env steps. Because the only
policy-dependent part of a state is the position (the features of minute t do not depend on actions), each
block evaluates the network ONCE for every (row, position) pair of the block, then runs the env
arithmetic in NumPy; after a block come ``updates_per_block`` gradient updates (the reference's cadence:
10 updates per 100 env steps in phase 1, per 512 in phase 2). The replay buffer stores row indices into
the feature tables, not copies of states.

Deviations from the reference, on purpose: the dueling mean is per sample; Q* uses the env's fee; the
best epoch is deep-copied (the reference's "best" was silently the last); in phase 2 the memory is queried
and extended once per block (entries are at most ``block`` steps stale) instead of once per step; the
hyper-agent's macro context is causal. Seeded; on CPU with one torch thread runs are bit-for-bit repeatable.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch.nn import functional as F
from tqdm.auto import tqdm

from marketlab.agents.macrohft.config import MacroHFTConfig
from marketlab.agents.macrohft.dataset import REGIMES, Prepared, SplitArrays
from marketlab.agents.macrohft.memory import EpisodicMemory
from marketlab.agents.macrohft.nets import HyperAgentNet, SubAgentNet
from marketlab.agents.macrohft.supervisor import optimal_q
from marketlab.core.device import tensorboard_available
from marketlab.core.errors import DataError
from marketlab.core.jsonable import jsonable
from marketlab.envs.macrohft_env import transition_reward
from marketlab.models.checkpoint import load_json, save_json, save_tensors

EVAL_BATCH = 65_536


# ---------------------------------------------------------------------------------------------- helpers
class Replay:
    """Uniform FIFO replay of transitions as row indices + scalars (NumPy)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.row = np.zeros(capacity, np.int64)
        self.prev = np.zeros(capacity, np.int64)
        self.act = np.zeros(capacity, np.int64)
        self.rew = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.qstar = np.zeros((capacity, 2), np.float32)
        self.qmem = np.zeros(capacity, np.float32)
        self.size = 0
        self.ptr = 0

    def add(self, **cols: np.ndarray) -> None:
        """Append B transitions given as equal-length arrays named like the attributes."""
        n = len(cols["row"])
        idx = (self.ptr + np.arange(n)) % self.capacity
        for k, v in cols.items():
            getattr(self, k)[idx] = v
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``n`` transitions drawn uniformly with replacement, as tensors."""
        i = rng.integers(0, self.size, n)
        return {k: torch.from_numpy(getattr(self, k)[i]) for k in ("row", "prev", "act", "rew", "done", "qstar", "qmem")}


def epsilon(epoch: int, start: float, end: float, decay_epochs: int) -> float:
    """Linear epsilon from ``start`` to ``end`` over ``decay_epochs`` epochs, then ``end``."""
    return start + (end - start) * min(1.0, epoch / max(1, decay_epochs))


def soft_update(target: torch.nn.Module, net: torch.nn.Module, tau: float) -> None:
    """target <- tau * net + (1 - tau) * target."""
    with torch.no_grad():
        for pt, p in zip(target.parameters(), net.parameters(), strict=True):
            pt.mul_(1 - tau).add_(p, alpha=tau)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, net: torch.nn.Module, target: torch.nn.Module,
            tau: float) -> float:
    """One Double-DQN update: gradient step on ``loss`` (norm clipped at 1), then the soft target update."""
    opt.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    soft_update(target, net, tau)
    return loss.item()


def return_rate(close: np.ndarray, actions: np.ndarray, start_pos: int, fee: float, size: float) -> float:
    """Reference validation score final_balance / required_money for positions ``actions`` (L-1,) taken at
    close[0..L-2] from ``start_pos`` (bought at close[0] like the env); 0 when no money was ever needed."""
    pos = np.r_[start_pos, actions].astype(np.float64)
    notional = np.diff(pos) * size * close[:-1]
    cash0 = -start_pos * size * close[0] * (1 + fee)
    cash = cash0 - np.cumsum(notional + fee * np.abs(notional))
    required = max(0.0, -cash0, float((-cash).max()))
    bal = cash[-1] + pos[-1] * size * close[-1]
    return float(bal / required) if required > 0 else 0.0


def greedy_path(best: np.ndarray, start_pos: int) -> np.ndarray:
    """Positions (L,) of the greedy policy from ``best`` (L, n_pos): action at t given position at t."""
    table = best.tolist()
    out = np.empty(len(table), np.int64)
    pos = start_pos
    for t, row in enumerate(table):
        pos = row[pos]
        out[t] = pos
    return out


def sub_q_both(net: SubAgentNet, split: SplitArrays, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2 positions, 2 actions) Q of a sub-agent at ``rows`` for both current positions."""
    out = np.empty((len(rows), 2, 2), np.float32)
    with torch.no_grad():
        for lo in range(0, len(rows), EVAL_BATCH):
            r = torch.from_numpy(rows[lo:lo + EVAL_BATCH])
            s1, s2 = torch.from_numpy(split.s1)[r], torch.from_numpy(split.s2)[r]
            for p in (0, 1):
                out[lo:lo + len(r), p] = net(s1, s2, torch.full((len(r),), p, dtype=torch.int64)).numpy()
    return out


def sub_q_table(nets: list[SubAgentNet], split: SplitArrays) -> np.ndarray:
    """(T, 2 positions, n_agents, 2 actions) Q of every frozen sub-agent at every row of ``split``."""
    rows = np.arange(split.n)
    return np.stack([sub_q_both(n, split, rows) for n in nets], axis=2)


def hyper_q_both(net: HyperAgentNet, split: SplitArrays, subq: np.ndarray, rows: np.ndarray,
                 s12: torch.Tensor) -> np.ndarray:
    """(len(rows), 2 positions, 2 actions) Q_hyper at ``rows`` for both positions."""
    out = np.empty((len(rows), 2, 2), np.float32)
    with torch.no_grad():
        for lo in range(0, len(rows), EVAL_BATCH):
            r = torch.from_numpy(rows[lo:lo + EVAL_BATCH])
            s, c = s12[r], torch.from_numpy(split.ctx)[r]
            for p in (0, 1):
                pos = torch.full((len(r),), p, dtype=torch.int64)
                out[lo:lo + len(r), p] = net(s, pos, c, torch.from_numpy(subq[r.numpy(), p])).numpy()
    return out


def _states(split: SplitArrays) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([split.s1, split.s2], axis=1))


# ---------------------------------------------------------------------------------------------- phase 1
def validate_subagent(net: SubAgentNet, cfg: MacroHFTConfig, split: SplitArrays, chunks: list[tuple[int, int]]) -> float:
    """Mean return rate over ``chunks`` from positions 0 and 1 (the reference's sub-agent selection score)."""
    if not chunks:
        return float("nan")
    rows = np.concatenate([np.arange(lo, hi - 1) for lo, hi in chunks])
    best = sub_q_both(net, split, rows).argmax(axis=2)
    scores, k = [], 0
    for lo, hi in chunks:
        b = best[k:k + hi - 1 - lo]
        k += hi - 1 - lo
        for start in (0, 1):
            scores.append(return_rate(split.close[lo:hi], greedy_path(b, start), start, cfg.fee, cfg.size))
    return float(np.mean(scores))


def train_subagent(cfg: MacroHFTConfig, prep: Prepared, kind: str, label: int, *, progress: bool = True) -> tuple[SubAgentNet, dict[str, Any]]:
    """Train the sub-agent of regime (``kind``, ``label``) on its training chunks; return the best-val net."""
    sc = cfg.sub
    chunks = prep.decomposition["train"].chunks_for(kind, label, training=True)
    val_chunks = prep.decomposition["val"].chunks_for(kind, label)
    if not chunks:
        raise DataError(None, f"{prep.symbol}: no training chunks for regime {kind}={label}")
    alpha = (sc.alpha_slope if kind == "slope" else sc.alpha_vol)[label]
    seed = cfg.seed + 1000 * (REGIMES.index((kind, label)) + 1)
    net, meta = train_dqn(cfg, prep, chunks, val_chunks, alpha=alpha, seed=seed, adapter=sc.adapter,
                          desc=f"sub {kind}={label}", progress=progress)
    return net, {"kind": kind, "label": label, **meta}


def train_dqn(cfg: MacroHFTConfig, prep: Prepared, chunks: list[tuple[int, int]], val_chunks: list[tuple[int, int]], *,
              alpha: float, seed: int, adapter: bool = True, double: bool = True, max_chunks: int | None = None,
              desc: str = "dqn", progress: bool = True) -> tuple[SubAgentNet, dict[str, Any]]:
    """The phase-1 trainer on any set of training ``chunks`` (each ``cfg.chunk`` rows of the train split).

    A MacroHFT sub-agent is Double DQN (``double``) with the adaLN adapter and KL weight ``alpha`` toward Q*;
    the plain DQN / Double DQN baselines are the same network and loop with ``adapter=False, alpha=0`` on all
    chunks (``double=False``: the target is max_a Q_target(s', a) instead of Q_target(s', argmax_a Q(s', a))).
    ``max_chunks`` overrides ``cfg.sub.max_chunks`` (chunks per epoch; 0 = all). Returns the best-validation net
    and a summary (``history`` per epoch)."""
    sc = cfg.sub
    train, val = prep.splits["train"], prep.splits["val"]
    per_epoch = sc.max_chunks if max_chunks is None else max_chunks
    if sc.max_val_chunks and len(val_chunks) > sc.max_val_chunks:
        keep = np.linspace(0, len(val_chunks) - 1, sc.max_val_chunks).round().astype(int)
        val_chunks = [val_chunks[i] for i in keep]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SubAgentNet(train.s1.shape[1], train.s2.shape[1], 2, sc.hidden, adapter=adapter)
    target = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=sc.lr)
    qstar = {c: optimal_q(train.close[c[0]:c[1]], fee=cfg.fee, size=cfg.size, gamma=cfg.gamma).astype(np.float32)
             for c in chunks} if alpha else {}
    zero_q = np.zeros((cfg.chunk, 2, 2), np.float32)
    buf = Replay(sc.buffer_size)
    s1, s2 = torch.from_numpy(train.s1), torch.from_numpy(train.s2)
    best_score, best_state, history = -np.inf, copy.deepcopy(net.state_dict()), []
    n_updates, env_steps, t_start = 0, 0, time.perf_counter()

    def update() -> float:
        b = buf.sample(sc.batch_size, rng)
        row, prev, act = b["row"], b["prev"], b["act"]
        q = net(s1[row], s2[row], prev)
        q_sa = q.gather(1, act[:, None]).squeeze(1)
        with torch.no_grad():
            nxt = row + 1
            q_tgt = target(s1[nxt], s2[nxt], act)
            if double:
                q_next = q_tgt.gather(1, net(s1[nxt], s2[nxt], act).argmax(1, keepdim=True)).squeeze(1)
            else:
                q_next = q_tgt.max(1).values
            y = b["rew"] + cfg.gamma * (1 - b["done"]) * q_next
        loss = F.mse_loss(q_sa, y)
        if alpha:
            loss = loss + alpha * F.kl_div(F.log_softmax(q, 1), F.softmax(b["qstar"], 1), reduction="batchmean")
        return descend(opt, loss, net, target, sc.tau)

    for epoch in range(sc.epochs):
        eps = epsilon(epoch, sc.eps_start, sc.eps_end, sc.eps_decay_epochs)
        order = rng.permutation(len(chunks))
        if per_epoch:
            order = order[:per_epoch]
        losses: list[float] = []
        bar = tqdm(range(0, len(order), sc.n_envs), desc=f"{desc} ep{epoch}", disable=not progress, leave=False)
        for g in bar:
            group = [chunks[i] for i in order[g:g + sc.n_envs]]
            lo = np.array([c[0] for c in group])
            length = cfg.chunk
            pos = rng.integers(0, 2, len(group))
            qs = np.stack([qstar.get(c, zero_q) for c in group])  # (B, L, 2, 2)
            ar = np.arange(len(group))
            for t0 in range(0, length - 1, sc.block):
                steps = min(sc.block, length - 1 - t0)
                rows = lo[:, None] + t0 + np.arange(steps)[None, :]
                best = sub_q_both(net, train, rows.ravel()).argmax(axis=2).reshape(len(group), steps, 2)
                explore = rng.random((len(group), steps)) < eps
                rand_a = rng.integers(0, 2, (len(group), steps))
                for j in range(steps):
                    a = np.where(explore[:, j], rand_a[:, j], best[ar, j, pos])
                    r = rows[:, j]
                    rew = transition_reward(train.close[r], train.close[r + 1], pos, a, cfg.fee, cfg.size)
                    done = np.full(len(group), float(t0 + j == length - 2))
                    buf.add(row=r, prev=pos, act=a, rew=rew, done=done, qstar=qs[ar, t0 + j, pos])
                    pos = a
                env_steps += steps * len(group)
                if buf.size >= sc.warmup:
                    for _ in range(sc.updates_per_block):
                        losses.append(update())
                        n_updates += 1
        score = validate_subagent(net, cfg, val, val_chunks)
        history.append({"epoch": epoch, "eps": eps, "loss": float(np.mean(losses)) if losses else None, "val_return_rate": score})
        if np.isnan(score) or score > best_score:  # no val chunk of this label: keep the last epoch
            best_score = score if not np.isnan(score) else best_score
            best_state = copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net, {"alpha": alpha, "double": double, "adapter": adapter, "train_chunks": len(chunks), "val_chunks": len(val_chunks),
                 "updates": n_updates, "env_steps": env_steps, "seconds": time.perf_counter() - t_start,
                 "best_val_return_rate": best_score, "history": history}


# ---------------------------------------------------------------------------------------------- phase 2
@dataclass
class HyperInputs:
    """Per split: sub-agent Q table (T, 2, 6, 2) and states (T, F1 + F2)."""

    subq: np.ndarray
    states: torch.Tensor


def _streams(segments: list[tuple[int, int]], n: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``n`` stream starts and a common length; each stream lies inside one contiguous segment."""
    total = sum(hi - lo for lo, hi in segments)
    length = (steps or total) // n
    ok = [(lo, hi) for lo, hi in segments if hi - lo > length]
    if not ok:
        length = max(hi - lo for lo, hi in segments) - 1
        ok = [max(segments, key=lambda s: s[1] - s[0])]
    w = np.array([hi - lo - length for lo, hi in ok], np.float64)
    starts = []
    for _ in range(n):
        lo, hi = ok[int(rng.choice(len(ok), p=w / w.sum()))]
        starts.append(int(rng.integers(lo, hi - length)))
    return np.array(starts), length + 1  # length + 1 prices give ``length`` steps


def validate_hyper(net: HyperAgentNet, cfg: MacroHFTConfig, split: SplitArrays, inputs: HyperInputs) -> float:
    """Mean return rate of the greedy hyper-agent over the split's contiguous segments, starting flat."""
    scores = []
    for lo, hi in split.segments:
        if hi - lo < 2:
            continue
        best = hyper_q_both(net, split, inputs.subq, np.arange(lo, hi - 1), inputs.states).argmax(axis=2)
        scores.append(return_rate(split.close[lo:hi], greedy_path(best, 0), 0, cfg.fee, cfg.size))
    return float(np.mean(scores)) if scores else float("nan")


def train_hyper(cfg: MacroHFTConfig, prep: Prepared, subs: list[SubAgentNet], *, progress: bool = True,
                inputs: dict[str, HyperInputs] | None = None) -> tuple[HyperAgentNet, dict[str, Any]]:
    """Train the hyper-agent over the frozen ``subs`` (in :data:`REGIMES` order)."""
    hc = cfg.hyper
    train, val = hyper_splits(cfg, prep)
    inputs = inputs or {"train": HyperInputs(sub_q_table(subs, train), _states(train)),
                        "val": HyperInputs(sub_q_table(subs, val), _states(val))}
    tin = inputs["train"]
    seed = cfg.seed + 7
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_state = train.s1.shape[1] + train.s2.shape[1]
    net = HyperAgentNet(n_state, 2, len(subs), hc.hidden, adapter=hc.adapter)
    target = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=hc.lr)
    buf = Replay(hc.buffer_size)
    memory = EpisodicMemory(hc.memory_capacity, 2 * hc.hidden, k=hc.memory_k) if hc.memory else None
    states, ctx, subq_t = tin.states, torch.from_numpy(train.ctx), torch.from_numpy(tin.subq)
    best_score, best_state, history = -np.inf, copy.deepcopy(net.state_dict()), []
    n_updates, env_steps, t_start = 0, 0, time.perf_counter()

    def qh(model: HyperAgentNet, row: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q: torch.Tensor = model(states[row], pos, ctx[row], subq_t[row, pos])
        return q

    def update() -> float:
        b = buf.sample(hc.batch_size, rng)
        row, prev, act = b["row"], b["prev"], b["act"]
        q = qh(net, row, prev)
        q_sa = q.gather(1, act[:, None]).squeeze(1)
        with torch.no_grad():
            nxt = row + 1
            a_star = qh(net, nxt, act).argmax(1, keepdim=True)
            y = b["rew"] + cfg.gamma * (1 - b["done"]) * qh(target, nxt, act).gather(1, a_star).squeeze(1)
        loss = F.mse_loss(q_sa, y)
        if memory is not None and hc.alpha:
            loss = loss + hc.alpha * F.mse_loss(q_sa, b["qmem"])
        if hc.beta:
            loss = loss + hc.beta * F.kl_div(F.log_softmax(q, 1), F.softmax(b["qstar"], 1), reduction="batchmean")
        return descend(opt, loss, net, target, hc.tau)

    def encode(rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        key: torch.Tensor = net.encode(states[rows], pos)
        return key

    for epoch in range(hc.epochs):
        eps = epsilon(epoch, hc.eps_start, hc.eps_end, hc.eps_decay_epochs)
        starts, length = _streams(train.segments, hc.n_envs, hc.steps_per_epoch, rng)
        b_n = len(starts)
        ar = np.arange(b_n)
        qs = np.stack([optimal_q(train.close[s:s + length], fee=cfg.fee, size=cfg.size, gamma=cfg.gamma) for s in starts]).astype(np.float32)
        pos = rng.integers(0, 2, b_n)
        losses: list[float] = []
        for t0 in tqdm(range(0, length - 1, hc.block), desc=f"hyper ep{epoch}", disable=not progress, leave=False):
            steps = min(hc.block, length - 1 - t0)
            rows = starts[:, None] + t0 + np.arange(steps + 1)[None, :]  # + the next row for the memory value
            qb = hyper_q_both(net, train, tin.subq, rows.ravel(), states).reshape(b_n, steps + 1, 2, 2)
            best = qb.argmax(axis=3)
            explore = rng.random((b_n, steps)) < eps
            rand_a = rng.integers(0, 2, (b_n, steps))
            rec: dict[str, list[np.ndarray]] = {k: [] for k in ("row", "prev", "act", "rew", "done", "qstar", "v")}
            for j in range(steps):
                a = np.where(explore[:, j], rand_a[:, j], best[ar, j, pos])
                r = rows[:, j]
                rew = transition_reward(train.close[r], train.close[r + 1], pos, a, cfg.fee, cfg.size)
                done = np.full(b_n, float(t0 + j == length - 2))
                v = rew + cfg.gamma * (1 - done) * qb[ar, j + 1, a].max(axis=1)
                for k, val_ in (("row", r), ("prev", pos), ("act", a), ("rew", rew), ("done", done),
                                ("qstar", qs[ar, t0 + j, pos]), ("v", v)):
                    rec[k].append(val_)
                pos = a
            cols = {k: np.concatenate(v_) for k, v_ in rec.items()}
            value = cols.pop("v").astype(np.float32)
            qmem = value.copy()
            if memory is not None:
                with torch.no_grad():
                    keys = encode(torch.from_numpy(cols["row"]), torch.from_numpy(cols["prev"]))
                found = memory.lookup(keys, torch.from_numpy(cols["act"])).numpy()
                qmem = np.where(np.isnan(found), value, found).astype(np.float32)
                memory.add(keys, torch.from_numpy(cols["row"]), torch.from_numpy(cols["prev"]),
                           torch.from_numpy(cols["act"]), torch.from_numpy(value))
            buf.add(**cols, qmem=qmem)
            env_steps += len(value)
            if buf.size >= hc.warmup:
                for _ in range(hc.updates_per_block):
                    losses.append(update())
                    n_updates += 1
                if memory is not None and env_steps > hc.memory_capacity:
                    memory.reencode(encode)
        score = validate_hyper(net, cfg, val, inputs["val"])
        history.append({"epoch": epoch, "eps": eps, "loss": float(np.mean(losses)) if losses else None, "val_return_rate": score})
        if score > best_score:
            best_score, best_state = score, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net, {"updates": n_updates, "env_steps": env_steps, "seconds": time.perf_counter() - t_start,
                 "best_val_return_rate": best_score, "history": history}


def hyper_splits(cfg: MacroHFTConfig, prep: Prepared) -> tuple[SplitArrays, SplitArrays]:
    """Phase-2 train and validation rows: the whole splits, or the last ``train_minutes`` of train and the first
    ``val_minutes`` of validation under a reduced budget."""
    train, val = prep.splits["train"], prep.splits["val"]
    hc = cfg.hyper
    if hc.train_minutes and hc.train_minutes < train.n:
        train = train.window(train.n - hc.train_minutes, train.n)
    if hc.val_minutes and hc.val_minutes < val.n:
        val = val.window(0, hc.val_minutes)
    return train, val


def hyper_inputs(subs: list[SubAgentNet], prep: Prepared, names: tuple[str, ...]) -> dict[str, HyperInputs]:
    """Frozen sub-agent Q tables and state tensors for the named splits."""
    return {n: HyperInputs(sub_q_table(subs, prep.splits[n]), _states(prep.splits[n])) for n in names}


# ---------------------------------------------------------------------------------------------- runs
def _sub_dir(run: Path, kind: str, label: int) -> Path:
    return run / f"sub_{kind}_{label}"


def save_net(directory: Path, net: torch.nn.Module, meta: dict[str, Any]) -> None:
    """``model.safetensors`` + ``config.json`` (no pickle)."""
    save_tensors(directory / "model.safetensors", dict(net.state_dict()))
    save_json(directory / "config.json", meta)


def load_net(directory: Path, net: torch.nn.Module, fingerprint: str) -> dict[str, Any]:
    """Load weights into ``net``; a checkpoint written under another config is a one-line error."""
    meta = load_json(directory / "config.json")
    if meta.get("fingerprint") != fingerprint:
        raise DataError(directory / "config.json", f"checkpoint of another config (fingerprint {meta.get('fingerprint')!r}, "
                                                   f"this config {fingerprint!r})")
    net.load_state_dict(load_file(str(directory / "model.safetensors")))
    return meta


def new_subagent(cfg: MacroHFTConfig, prep: Prepared) -> SubAgentNet:
    """An untrained sub-agent shaped for ``prep``'s features."""
    return SubAgentNet(len(prep.scalers["s1"].columns), len(prep.scalers["s2"].columns), 2, cfg.sub.hidden,
                       adapter=cfg.sub.adapter)


def new_hyper(cfg: MacroHFTConfig, prep: Prepared) -> HyperAgentNet:
    """An untrained hyper-agent shaped for ``prep``'s features."""
    n_state = len(prep.scalers["s1"].columns) + len(prep.scalers["s2"].columns)
    return HyperAgentNet(n_state, 2, len(REGIMES), cfg.hyper.hidden, adapter=cfg.hyper.adapter)


def _log_history(writer: Any, tag: str, history: list[dict[str, Any]]) -> None:
    """Per-epoch scalars of one agent's history under ``tag/`` (loss, epsilon, validation return rate)."""
    for h in history:
        for k, v in h.items():
            if k != "epoch" and v is not None:
                writer.add_scalar(f"{tag}/{k}", float(v), int(h["epoch"]))
    writer.flush()


def train_run(cfg: MacroHFTConfig, prep: Prepared, run_dir: str | Path, *, resume: bool = True,
              progress: bool = True, phases: tuple[int, ...] = (1, 2), tensorboard: bool = True) -> dict[str, Any]:
    """Phase 1 then phase 2 into ``run_dir``; with ``resume`` finished sub-agents/hyper-agent are loaded, not retrained
    (an agent interrupted mid-training starts again). ``phases=(2,)`` loads the six sub-agents and retrains the hyper-agent.

    ``tensorboard``: each agent trained here logs its epochs to ``run_dir/tb`` (``sub_trend=0/loss``, ...,
    ``hyper/val_return_rate``) when the ``tensorboard`` package is installed; the path is in the summary."""
    run = Path(run_dir)
    fp = cfg.fingerprint()
    torch.set_num_threads(1)
    summary: dict[str, Any] = {"fingerprint": fp, "config": cfg.to_dict(), "fitted": prep.fitted(), "gaps": prep.gaps, "phase1": [], "phase2": None}
    (run).mkdir(parents=True, exist_ok=True)
    writer = None
    if tensorboard and tensorboard_available():
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run / "tb"))
        summary["tensorboard"] = str(run / "tb")
        if progress:
            tqdm.write(f"tensorboard --logdir {run / 'tb'}", file=sys.stderr)
    subs = []
    for kind, label in REGIMES:
        d = _sub_dir(run, kind, label)
        net = new_subagent(cfg, prep)
        if (resume or 1 not in phases) and (d / "config.json").is_file():  # phase 2 alone reuses phase 1
            meta = load_net(d, net, fp)
        elif 1 in phases:
            net, meta = train_subagent(cfg, prep, kind, label, progress=progress)
            if writer is not None:
                _log_history(writer, f"sub_{kind}={label}", meta["history"])
            meta["fingerprint"] = fp
            save_net(d, net, meta)
        else:
            raise DataError(d, "phase 1 checkpoint missing (train phase 1 first)")
        summary["phase1"].append({k: v for k, v in meta.items() if k != "history"} | {"history": meta.get("history")})
        subs.append(net.eval())
    if 2 in phases:
        d = run / "hyper"
        hyper = new_hyper(cfg, prep)
        if resume and (d / "config.json").is_file():
            meta = load_net(d, hyper, fp)
        else:
            hyper, meta = train_hyper(cfg, prep, subs, progress=progress)
            if writer is not None:
                _log_history(writer, "hyper", meta["history"])
            meta["fingerprint"] = fp
            save_net(d, hyper, meta)
        summary["phase2"] = meta
    if writer is not None:
        writer.close()
    save_json(run / "run.json", summary)
    return summary


def load_run(run_dir: str | Path, cfg: MacroHFTConfig, prep: Prepared) -> tuple[list[SubAgentNet], HyperAgentNet | None]:
    """The six sub-agents and (when trained) the hyper-agent of ``run_dir``, refusing another config's files."""
    run = Path(run_dir)
    fp = cfg.fingerprint()
    subs = []
    for kind, label in REGIMES:
        net = new_subagent(cfg, prep)
        load_net(_sub_dir(run, kind, label), net, fp)
        subs.append(net.eval())
    hyper = None
    if (run / "hyper" / "config.json").is_file():
        hyper = new_hyper(cfg, prep)
        load_net(run / "hyper", hyper, fp)
        hyper.eval()
    return subs, hyper


def dumps(obj: Any) -> str:
    """JSON with NaN/inf as null (for summaries)."""
    return json.dumps(jsonable(obj), indent=2)
