"""Episodic memory of the hyper-agent (paper section 4.3; reference ``RL/util/memory.py``), vectorised.

A FIFO table of ``capacity`` entries: key k (the hyper-agent's encoding of the state), the state
(row index into the feature table + position, so keys can be re-encoded), the action and the value
v = r + gamma * max_a Q_hyper(s', a) estimated at insertion. A query (h, a) takes the ``k`` nearest
keys under the kernel 1 / (||h - k_i||^2 + eps), weights them by kernel / sum(kernel) over those k,
keeps the entries whose action equals a, renormalises and returns sum w_i v_i; NaN while the memory is
not full or when no neighbour shares the action (the caller then falls back to its own target).

The reference loops over all entries in Python at every step (O(capacity) interpreted work per query);
here one batched distance matrix + ``topk`` answers B queries at once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: (rows (N,), positions (N,)) -> keys (N, D): the hyper-agent's encoder over stored states.
EncodeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class EpisodicMemory:
    """FIFO memory of (key, row, position, action, value); see the module docstring."""

    def __init__(self, capacity: int, key_dim: int, *, k: int = 5, eps: float = 1e-3) -> None:
        self.capacity, self.k, self.eps = capacity, k, eps
        self.keys = torch.zeros(capacity, key_dim)
        self.rows = torch.zeros(capacity, dtype=torch.int64)
        self.positions = torch.zeros(capacity, dtype=torch.int64)
        self.actions = torch.zeros(capacity, dtype=torch.int64)
        self.values = torch.zeros(capacity)
        self.size = 0
        self.ptr = 0

    @property
    def full(self) -> bool:
        """True once ``capacity`` entries were added (lookups return NaN before)."""
        return self.size >= self.capacity

    def add(self, keys: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, actions: torch.Tensor,
            values: torch.Tensor) -> None:
        """Append B entries (keys (B, D), the rest (B,)), overwriting the oldest when full."""
        n = keys.shape[0]
        idx = (self.ptr + torch.arange(n)) % self.capacity
        self.keys[idx] = keys.detach().float()
        self.rows[idx] = rows
        self.positions[idx] = positions
        self.actions[idx] = actions
        self.values[idx] = values.detach().float()
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def lookup(self, query: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_M (B,) for queries (B, D) and actions (B,); NaN where undefined."""
        b = query.shape[0]
        if not self.full:
            return torch.full((b,), float("nan"))
        d2 = torch.cdist(query.detach().float(), self.keys).pow(2)  # (B, capacity)
        kern = 1.0 / (d2 + self.eps)
        top, idx = kern.topk(self.k, dim=1)
        w = top / top.sum(dim=1, keepdim=True)
        same = (self.actions[idx] == actions.view(-1, 1)).float()
        w = w * same
        total = w.sum(dim=1)
        q = (w * self.values[idx]).sum(dim=1) / total
        return torch.where(total > 0, q, torch.full_like(q, float("nan")))

    def reencode(self, encode: EncodeFn) -> None:
        """Recompute every stored key with the current encoder (after each update burst)."""
        if self.size:
            n = self.size
            with torch.no_grad():
                self.keys[:n] = encode(self.rows[:n], self.positions[:n]).float()

