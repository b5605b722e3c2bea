"""MLPLOB: an MLP-Mixer-style LOB predictor (Berti & Kasneci 2025, the TLOB paper's second model).

Input ``x``: ``(B, T, F)``; output ``(B, 3)`` logits. Pipeline: optional event-type embedding ->
:class:`BiN` -> ``Linear(F -> hidden)`` + GELU -> ``num_layers`` pairs of [feature MLP over the hidden
axis, temporal MLP over the T axis] with a transpose after every module; the last pair uses 2x expansion
and shrinks to ``hidden/4 x T/4`` -> flatten -> shrinking head.

The FI-2010 reference configuration (hidden 144, T 384, 3 layers) has 6,327,908 parameters, as the
TLOB repository's class does. Deviations: the event-type embedding is trained (the reference detaches
it); BiN's reset is device-agnostic (see :mod:`marketlab.models.layers`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marketlab.models.layers import BiN, MLPBlock, shrinking_head, split_event_type


@dataclass(frozen=True)
class MLPLOBConfig:
    """MLPLOB hyper-parameters."""

    num_features: int = 144
    seq_size: int = 384
    hidden_dim: int = 144
    num_layers: int = 3
    event_type_index: int | None = None
    num_classes: int = 3

    @classmethod
    def fi2010(cls) -> "MLPLOBConfig":
        """The published FI-2010 configuration."""
        return cls()

    @classmethod
    def lobster(cls) -> "MLPLOBConfig":
        """The published LOBSTER configuration."""
        return cls(num_features=46, hidden_dim=46, event_type_index=41)


class MLPLOB(nn.Module):
    """``forward(x: (B, T, F)) -> (B, num_classes)`` logits."""

    config_class = MLPLOBConfig

    def __init__(self, config: MLPLOBConfig | None = None) -> None:
        super().__init__()
        c = config or MLPLOBConfig()
        self.config = c
        self.order_type_embedder = nn.Embedding(3, 1)
        self.norm_layer = BiN(c.num_features, c.seq_size)
        self.first_layer = nn.Linear(c.num_features, c.hidden_dim)
        blocks: list[nn.Module] = []
        for i in range(c.num_layers):
            if i != c.num_layers - 1:
                blocks.append(MLPBlock(c.hidden_dim, 4 * c.hidden_dim, c.hidden_dim))
                blocks.append(MLPBlock(c.seq_size, 4 * c.seq_size, c.seq_size))
            else:
                blocks.append(MLPBlock(c.hidden_dim, 2 * c.hidden_dim, c.hidden_dim // 4))
                blocks.append(MLPBlock(c.seq_size, 2 * c.seq_size, c.seq_size // 4))
        self.blocks = nn.ModuleList(blocks)
        self.head = shrinking_head((c.hidden_dim // 4) * (c.seq_size // 4), c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        x = split_event_type(x, self.config.event_type_index, self.order_type_embedder)
        x = self.norm_layer(x.transpose(1, 2)).transpose(1, 2)
        x = F.gelu(self.first_layer(x))  # (B, T, hidden)
        for i, block in enumerate(self.blocks):
            # even blocks mix features (B, T, hidden); odd blocks mix time (B, hidden, T)
            x = block(x.transpose(1, 2) if i % 2 else x)
            if i % 2:
                x = x.transpose(1, 2)
        result: torch.Tensor = self.head(x.flatten(1))
        return result

    def config_dict(self) -> dict[str, Any]:
        """The model config as a plain dict (what checkpoints store)."""
        return asdict(self.config)
