"""TLOB: dual-attention transformer for LOB trend prediction (Berti & Kasneci 2025, arXiv 2502.15757).

Input ``x``: ``(B, T, F)`` float32 (z-scored LOB snapshots); output: ``(B, 3)`` **logits** for
(up, stationary, down). Pipeline: optional event-type embedding -> :class:`BiN` over ``(B, F, T)`` ->
``Linear(F -> hidden)`` -> + fixed sinusoidal positions -> ``num_layers`` blocks of [temporal attention
over the T snapshots, transpose, feature attention over the hidden channels, transpose]; the last block
shrinks to ``hidden/4 x T/4`` -> flatten -> shrinking MLP head.

Reference configurations (``TLOBConfig.fi2010()`` etc.) reproduce the parameter counts of the TLOB
repository (FI-2010: 2,656,724; LOBSTER F=46: 1,173,693; F=40: 1,135,974).

Deviations from the reference code: the LOBSTER event-type embedding is **trained** (the reference
detaches it); BiN's negative-weight reset works on any device; attention runs through
``F.scaled_dot_product_attention`` (see :mod:`marketlab.models.layers`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from marketlab.models.layers import (
    BiN,
    TransformerLayer,
    shrinking_head,
    sinusoidal_positions,
    split_event_type,
)


@dataclass(frozen=True)
class TLOBConfig:
    """TLOB hyper-parameters. ``event_type_index``: column holding LOBSTER's event type (0/1/2), or None."""

    num_features: int = 144
    seq_size: int = 128
    hidden_dim: int = 144
    num_layers: int = 4
    num_heads: int = 1
    sin_positions: bool = True
    event_type_index: int | None = None
    num_classes: int = 3

    @classmethod
    def fi2010(cls) -> "TLOBConfig":
        """The published FI-2010 configuration (all 144 features, T=128, hidden=144, 4 blocks)."""
        return cls()

    @classmethod
    def lobster(cls) -> "TLOBConfig":
        """The published LOBSTER configuration (40 book + 6 message features, event type at 41)."""
        return cls(num_features=46, hidden_dim=46, event_type_index=41)


class TLOB(nn.Module):
    """TLOB model; see the module docstring. ``forward(x: (B, T, F)) -> (B, num_classes)`` logits."""

    config_class = TLOBConfig

    def __init__(self, config: TLOBConfig | None = None) -> None:
        super().__init__()
        c = config or TLOBConfig()
        self.config = c
        # Always built (3 parameters) as in the reference, so the published counts match.
        self.order_type_embedder = nn.Embedding(3, 1)
        self.norm_layer = BiN(c.num_features, c.seq_size)
        self.emb_layer = nn.Linear(c.num_features, c.hidden_dim)
        if c.sin_positions:
            self.register_buffer("pos", sinusoidal_positions(c.seq_size, c.hidden_dim), persistent=False)
        else:
            self.pos = nn.Parameter(torch.randn(c.seq_size, c.hidden_dim))
        layers: list[nn.Module] = []
        for i in range(c.num_layers):
            last = i == c.num_layers - 1
            layers.append(TransformerLayer(c.hidden_dim, c.num_heads, c.hidden_dim // 4 if last else c.hidden_dim))
            layers.append(TransformerLayer(c.seq_size, c.num_heads, c.seq_size // 4 if last else c.seq_size))
        self.layers = nn.ModuleList(layers)
        self.head = shrinking_head((c.hidden_dim // 4) * (c.seq_size // 4), c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        x = split_event_type(x, self.config.event_type_index, self.order_type_embedder)
        x = self.norm_layer(x.transpose(1, 2)).transpose(1, 2)
        x = self.emb_layer(x) + self.pos
        for layer in self.layers:
            # temporal layers see (B, T, hidden); feature layers see (B, hidden, T)
            x = layer(x).transpose(1, 2)
        result: torch.Tensor = self.head(x.flatten(1))
        return result

    def config_dict(self) -> dict[str, Any]:
        """The model config as a plain dict (what checkpoints store)."""
        return asdict(self.config)
