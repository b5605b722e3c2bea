"""LSTM feature extractor over the token sequence, shared by MaskablePPO's actor and critic.

Like the reference ``LSTMSharedNet``: token embedding (+ a BEG token), sinusoidal positions, a multi-layer
LSTM over ``[BEG] + tokens``, mean-pooled over the real (non-padding) positions. Padding id 0 maps to a
zero embedding (``padding_idx=0``) and no real token uses id 0.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class LSTMTokenExtractor(BaseFeaturesExtractor):
    """``obs [B, L]`` token ids (0 = pad, 1..n_actions) -> features ``[B, d_model]``."""

    # buffers (register_buffer in __init__), typed for mypy
    pe: torch.Tensor

    def __init__(
        self, observation_space: gym.spaces.Box, n_actions: int, d_model: int = 64, n_layers: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__(observation_space, features_dim=d_model)
        self.max_len = int(observation_space.shape[0])
        self.beg_id = n_actions + 1
        self.embed = nn.Embedding(n_actions + 2, d_model, padding_idx=0)
        pos = torch.arange(self.max_len + 1).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(self.max_len + 1, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)
        self.lstm = nn.LSTM(d_model, d_model, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        ids = obs.long()
        B = ids.shape[0]
        beg = torch.full((B, 1), self.beg_id, dtype=torch.long, device=ids.device)
        seq = torch.cat([beg, ids], dim=1)
        valid = seq != 0
        # truncate to the longest real sequence in the batch: LSTM cost follows the actual lengths
        L = int(valid.sum(1).max())
        seq, valid = seq[:, :L], valid[:, :L]
        x = self.embed(seq) + self.pe[:L]
        h, _ = self.lstm(x)
        m = valid.unsqueeze(-1).to(h.dtype)
        pooled: torch.Tensor = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return pooled
