"""MacroHFT networks (reference ``model/net.py``): the sub-agent and the hyper-agent.

Sub-agent (Double DQN, dueling head, conditional adapter):
    h_s = LayerNorm_noaffine(Linear(n_single -> D)(s1))
    c = Linear(n_trend -> D)(s2) + Embedding(n_pos -> D)(position)          (the adaLN condition)
    [shift, scale] = Linear(D -> 2D)(SiLU(c));  h = h_s * (1 + scale) + shift
    Q = V(h) + A(h) - mean_a A(h)      (per sample; the reference's batch-wide mean is a bug)
with V, A = Linear(D -> 4D) -> GELU(tanh) -> Linear(4D -> 1 | n_actions). D = 64 gives 45,507 parameters
for 36 + 9 inputs, as the reference checkpoints. ``adapter=False`` (ablation) feeds c additively instead.

Hyper-agent: x = concat(Embedding(n_pos -> H)(position), Linear(n_single + n_trend -> H)(s)) (2H dims,
the memory key), LayerNorm_noaffine, adaLN from Linear(n_ctx -> H) -> SiLU -> Linear(H -> 4H) of the
macro context [slope_360, vol_360], then Linear(2H -> 4H) -> GELU -> Linear(4H -> n_agents) (zero init)
-> softmax weights w; Q_hyper = sum_i w_i Q_i.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SubAgentNet(nn.Module):
    """Q(s1, s2, position) -> (B, n_actions)."""

    def __init__(self, n_single: int, n_trend: int, n_actions: int = 2, hidden: int = 64, n_positions: int = 2,
                 adapter: bool = True) -> None:
        super().__init__()
        self.adapter = adapter
        self.embed_s = nn.Linear(n_single, hidden)
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.embed_c = nn.Linear(n_trend, hidden)
        self.embed_pos = nn.Embedding(n_positions, hidden)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.value = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(approximate="tanh"), nn.Linear(4 * hidden, 1))
        self.advantage = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(approximate="tanh"),
                                       nn.Linear(4 * hidden, n_actions))

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """s1 (B, n_single), s2 (B, n_trend) float32; pos (B,) int64 position index -> Q (B, n_actions)."""
        h = self.norm(self.embed_s(s1))
        c = self.embed_c(s2) + self.embed_pos(pos)
        if self.adapter:
            shift, scale = self.ada(c).chunk(2, dim=-1)
            h = h * (1 + scale) + shift
        else:
            h = h + c
        adv = self.advantage(h)
        q: torch.Tensor = self.value(h) + adv - adv.mean(dim=-1, keepdim=True)
        return q


class HyperAgentNet(nn.Module):
    """Softmax mixing weights (B, n_agents) over frozen sub-agents, conditioned on the macro context."""

    def __init__(self, n_state: int, n_ctx: int = 2, n_agents: int = 6, hidden: int = 32, n_positions: int = 2,
                 adapter: bool = True) -> None:
        super().__init__()
        self.adapter = adapter
        self.embed_pos = nn.Embedding(n_positions, hidden)
        self.embed_s = nn.Linear(n_state, hidden)
        self.norm = nn.LayerNorm(2 * hidden, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.Linear(n_ctx, hidden), nn.SiLU(), nn.Linear(hidden, 4 * hidden))
        last = nn.Linear(4 * hidden, n_agents)
        nn.init.zeros_(last.weight)  # uniform 1/n_agents mixing at the start
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Linear(2 * hidden, 4 * hidden), nn.GELU(approximate="tanh"), last)

    def encode(self, s: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Memory key: concat(position embedding, state embedding), (B, 2 * hidden), before the norm."""
        return torch.cat([self.embed_pos(pos), self.embed_s(s)], dim=-1)

    def weights(self, s: torch.Tensor, pos: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """s (B, n_state), pos (B,) int64, ctx (B, n_ctx) -> softmax weights (B, n_agents)."""
        h = self.norm(self.encode(s, pos))
        if self.adapter:
            shift, scale = self.ada(ctx).chunk(2, dim=-1)
            h = h * (1 + scale) + shift
        return F.softmax(self.head(h), dim=-1)

    def forward(self, s: torch.Tensor, pos: torch.Tensor, ctx: torch.Tensor, sub_q: torch.Tensor) -> torch.Tensor:
        """sub_q (B, n_agents, n_actions) from the frozen sub-agents -> Q_hyper (B, n_actions)."""
        w = self.weights(s, pos, ctx)
        return torch.bmm(w.unsqueeze(1), sub_q).squeeze(1)
