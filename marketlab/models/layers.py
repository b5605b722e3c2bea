"""Building blocks shared by the LOB predictors: BiN normalisation, the TLOB/MLPLOB MLP block, the
TLOB transformer layer (attention through ``F.scaled_dot_product_attention``), sinusoidal positions and
the shrinking classification head.

Shapes follow the references (TLOB repo ``models/bin.py``, ``models/tlob.py``, ``models/mlplob.py``):
``B`` batch, ``T`` time steps (snapshots), ``F`` features. Parameter layouts are kept identical to the
reference modules so the published parameter counts are reproduced exactly.

Deliberate deviations from the reference code (each keeps the parameter count):

* **BiN reset of the mixing weights** ``y1, y2``: the reference replaces a negative weight by a new
  ``torch.cuda.FloatTensor`` parameter, which crashes on CPU and also silently drops the new parameter
  from the optimizer (it is no longer the tensor the optimizer updates). Here the weight is clamped in
  place to 0.01 under ``no_grad`` -- same value, any device, still trained.
* **BiN feature branch** gets the same ``std < 1e-4 -> 1`` guard the temporal branch has; the reference
  divides by a zero std when all features of a snapshot are equal (NaN).
* **Attention**: the reference applies its own q/k/v ``Linear`` layers and then ``nn.MultiheadAttention``,
  whose in-projection projects again. The double projection is kept (same parameters, same function),
  but the attention product runs through ``F.scaled_dot_product_attention`` (flash / memory-efficient
  kernels on GPU) instead of ``nn.MultiheadAttention``'s materialised softmax.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BiN(nn.Module):
    """Bilinear normalisation (Tran et al. 2021) of ``x`` with shape ``(B, F, T)``.

    Temporal branch: z-score every feature over the ``T`` steps, then scale/shift per feature
    (``l2, B2`` of shape ``(F, 1)``). Feature branch: z-score every step over the ``F`` features, then
    scale/shift per step (``l1, B1`` of shape ``(T, 1)``). Output ``y1 * feature_branch + y2 *
    temporal_branch`` with learnable scalars initialised to 0.5. Parameters: ``2F + 2T + 2``.
    """

    def __init__(self, num_features: int, seq_size: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.seq_size = seq_size
        self.B1 = nn.Parameter(torch.zeros(seq_size, 1))
        self.l1 = nn.Parameter(torch.empty(seq_size, 1))
        nn.init.xavier_normal_(self.l1)
        self.B2 = nn.Parameter(torch.zeros(num_features, 1))
        self.l2 = nn.Parameter(torch.empty(num_features, 1))
        nn.init.xavier_normal_(self.l2)
        self.y1 = nn.Parameter(torch.full((1,), 0.5))
        self.y2 = nn.Parameter(torch.full((1,), 0.5))

    @torch.no_grad()
    def _keep_mix_positive(self) -> None:
        # Device-agnostic and optimizer-safe replacement of the reference's CUDA-only re-creation.
        for y in (self.y1, self.y2):
            y.copy_(torch.where(y < 0, torch.full_like(y, 0.01), y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, F, T)`` -> ``(B, F, T)``."""
        self._keep_mix_positive()
        # temporal branch: statistics over T for each feature (unbiased std, as torch.std in the reference)
        mean_t = x.mean(dim=2, keepdim=True)
        std_t = x.std(dim=2, keepdim=True)
        std_t = torch.where(std_t < 1e-4, torch.ones_like(std_t), std_t)
        x_temp = self.l2 * ((x - mean_t) / std_t) + self.B2  # (F,1) broadcasts over T
        # feature branch: statistics over F for each time step
        mean_f = x.mean(dim=1, keepdim=True)
        std_f = x.std(dim=1, keepdim=True)
        std_f = torch.where(std_f < 1e-4, torch.ones_like(std_f), std_f)
        x_feat = self.l1.transpose(0, 1) * ((x - mean_f) / std_f) + self.B1.transpose(0, 1)
        return self.y1 * x_feat + self.y2 * x_temp


class MLPBlock(nn.Module):
    """``fc(d -> hidden) -> GELU -> fc2(hidden -> out) [+ x if out == d] -> LayerNorm(out) -> GELU``.

    Acts on the last axis: ``(..., d) -> (..., out)``.
    """

    def __init__(self, start_dim: int, hidden_dim: int, final_dim: int) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(final_dim)
        self.fc = nn.Linear(start_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, final_dim)
        self.residual = start_dim == final_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        h = self.fc2(F.gelu(self.fc(x)))
        if self.residual:
            h = h + x
        return F.gelu(self.layer_norm(h))


class TransformerLayer(nn.Module):
    """Post-LN TLOB transformer layer over tokens of width ``d``: ``(B, N, d) -> (B, N, out)``.

    ``q, k, v = Linear(d, d*heads)(x)``; multi-head attention with its own in/out projections
    (``nn.MultiheadAttention``'s parameter layout); ``x = LayerNorm(x + w0(attn))``; then
    :class:`MLPBlock` ``(d -> 4d -> out)``.
    """

    def __init__(self, d: int, num_heads: int, final_dim: int) -> None:
        super().__init__()
        e = d * num_heads
        self.num_heads = num_heads
        self.q = nn.Linear(d, e)
        self.k = nn.Linear(d, e)
        self.v = nn.Linear(d, e)
        # same tensors as nn.MultiheadAttention(e, num_heads): in_proj (3e x e) + bias, out_proj (e x e)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * e, e))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * e))
        self.out_proj = nn.Linear(e, e)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        self.w0 = nn.Linear(e, d)
        self.norm = nn.LayerNorm(d)
        self.mlp = MLPBlock(d, 4 * d, final_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        b, n, _ = x.shape
        e = self.in_proj_weight.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3, dim=0)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3, dim=0)
        q = F.linear(self.q(x), w_q, b_q)
        k = F.linear(self.k(x), w_k, b_k)
        v = F.linear(self.v(x), w_v, b_v)
        hd = e // self.num_heads
        q, k, v = (t.view(b, n, self.num_heads, hd).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, hd)
        a = self.out_proj(a.transpose(1, 2).reshape(b, n, e))
        x = self.norm(x + self.w0(a))
        result: torch.Tensor = self.mlp(x)
        return result


def sinusoidal_positions(seq_size: int, dim: int) -> torch.Tensor:
    """Fixed sin/cos positional encoding ``(seq_size, dim)`` with base 10000 (Vaswani et al.)."""
    pos = torch.arange(seq_size, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(seq_size, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


def shrinking_head(total_dim: int, num_classes: int = 3) -> nn.Sequential:
    """The TLOB/MLPLOB head: while ``n > 128`` apply ``Linear(n -> n//4) + GELU``; then ``Linear(n -> classes)``.

    Outputs logits (the loss is cross-entropy).
    """
    layers: list[nn.Module] = []
    n = total_dim
    while n > 128:
        layers += [nn.Linear(n, n // 4), nn.GELU()]
        n //= 4
    layers.append(nn.Linear(n, num_classes))
    return nn.Sequential(*layers)


def split_event_type(
    x: torch.Tensor, index: int | None, embedding: nn.Embedding
) -> torch.Tensor:
    """Replace the integer event-type column ``index`` of ``x`` ``(B, T, F)`` by its trained embedding.

    The column is removed and the embedding (width 1) appended as the last feature, as in the TLOB
    reference -- but **not detached**, so the embedding is learned (the reference ``.detach()``-es it).
    """
    if index is None:
        return x
    rest = torch.cat([x[:, :, :index], x[:, :, index + 1 :]], dim=2)
    kind = x[:, :, index].round().long().clamp(0, embedding.num_embeddings - 1)
    return torch.cat([rest, embedding(kind)], dim=2)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
