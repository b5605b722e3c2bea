"""The TRADES denoiser: augmentation MLPs, embeddings, a post-LN transformer encoder, flatten heads.

Input (B batch, W window = N-1 conditioning orders + 1 noisy order, L book levels):

* ``cond_orders`` (B, W-1, 8) clean order tokens, ``x_t`` (B, 1, 8) the noisy order at step ``t``;
* ``book`` (B, W, 4L) the book before each of the W orders;
* ``t`` (B,) int64 diffusion steps in [0, T).

Orders go through Linear(8->a/2)->Linear(a/2->a) (no activation, as the reference), the book through
Linear(4L->a); the two are concatenated on the feature axis (width 2a), a sinusoidal position
embedding and a sinusoidal diffusion-step embedding are added, then LayerNorm and ``depth`` post-LN
blocks (bias-free q/k/v/out projections, MLP x4 with PReLU, dropout). The sequence is flattened and two
linears give epsilon and the variance interpolation ``v`` (B, width) each, de-augmented by
Linear(width->a)->Linear(a->8) to order space. Output: ``(eps, v)`` each (B, 1, 8).

Attention is real scaled-dot-product attention (``F.scaled_dot_product_attention``), so tokens mix.
``reference_einsum_attention=True`` reproduces the reference code's einsum, kept only for an ablation:
its scores are ``(sum_j q_lj)(sum_i k_ki)`` (an outer product of sums, not ``q k^T``) and its second
einsum takes the diagonal of the attention matrix, so token l's output is ``att[l, l] * v_l`` — tokens
never mix inside the blocks (see the research notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from marketlab.simulators.trades.tokens import ORDER_DIM


@dataclass(frozen=True)
class DenoiserShape:
    """Architecture of the denoiser. ``augment_dim`` a: the model width is 2a."""

    window: int = 64
    depth: int = 2
    augment_dim: int = 32
    heads: int = 2
    dropout: float = 0.1
    levels: int = 10
    steps: int = 100
    reference_einsum_attention: bool = False

    @property
    def width(self) -> int:
        """Token width after concatenating the order and book augmentations."""
        return 2 * self.augment_dim


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """(n, dim) float32 sinusoidal embedding: sin on even columns, cos on odd, frequencies 10000^(-2i/dim)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    out = torch.zeros(n, dim, dtype=torch.float64)
    out[:, 0::2] = torch.sin(pos * div)
    out[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return out.float()


class Block(nn.Module):
    """Post-LN transformer block: x = LN1(x + Att(x)); x = LN2(x + MLP(x))."""

    def __init__(self, width: int, heads: int, dropout: float, reference_einsum: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.width = width
        self.reference_einsum = reference_einsum
        self.to_q = nn.Linear(width, width, bias=False)
        self.to_k = nn.Linear(width, width, bias=False)
        self.to_v = nn.Linear(width, width, bias=False)
        self.to_out = nn.Linear(width, width, bias=False)
        self.ln1 = nn.LayerNorm(width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.PReLU(init=0.01), nn.Dropout(dropout),
                                 nn.Linear(4 * width, width))
        self.drop = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.width // self.heads).transpose(1, 2)

    def head_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, D) -> (per-head attention outputs, per-head values), each (B, H, N, D/H)."""
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(x))
        if self.reference_einsum:
            # The reference's formula in effect: scaled by 1/sqrt(d_model), not per head.
            q = q * (1.0 / self.width**0.5)
            e = torch.einsum("bhlj,bhki->bhlk", q, k)
            att = torch.nan_to_num(F.softmax(e, dim=-1))
            out = torch.diagonal(att, dim1=-2, dim2=-1)[..., None] * v  # == einsum('bhll,bhlj->bhlj')
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.drop if self.training else 0.0)
        return out, v

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D) attention output before the residual."""
        out, _ = self.head_outputs(x)
        b, h, n, d = out.shape
        res: torch.Tensor = self.to_out(out.transpose(1, 2).reshape(b, n, h * d))
        return res

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        x = self.ln1(x + self.attention(x))
        out: torch.Tensor = self.ln2(x + self.mlp(x))
        return out


class Core(nn.Module):
    """The part the reference calls ``TRADES``: embeddings + LayerNorm, blocks, flatten heads.

    Same parameter layout as the reference module except its encoder's unused final LayerNorm
    (``TransformerEncoder.layer_norm``, never called in ``forward``), which is left out.
    """

    def __init__(self, shape: DenoiserShape) -> None:
        super().__init__()
        w, n = shape.width, shape.window
        self.register_buffer("pos", sinusoidal_table(n, w), persistent=False)
        self.register_buffer("t_table", sinusoidal_table(shape.steps, w), persistent=False)
        self.layer_norm = nn.LayerNorm(w)
        self.blocks = nn.ModuleList(
            [Block(w, shape.heads, shape.dropout, shape.reference_einsum_attention) for _ in range(shape.depth)]
        )
        self.fc_noise = nn.Linear(w * n, w)
        self.fc_var = nn.Linear(w * n, w)

    def forward(self, h: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, W, width), t (B,) -> (noise, var) each (B, width)."""
        pos: torch.Tensor = self.pos  # type: ignore[assignment]
        table: torch.Tensor = self.t_table  # type: ignore[assignment]
        h = h + pos + table[t][:, None, :]
        h = self.layer_norm(h)
        for blk in self.blocks:
            h = blk(h)
        flat = h.reshape(h.shape[0], -1)
        return self.fc_noise(flat), self.fc_var(flat)


class Denoiser(nn.Module):
    """Augmenters + :class:`Core` + de-augmenters. See the module docstring for shapes."""

    def __init__(self, shape: DenoiserShape) -> None:
        super().__init__()
        a = shape.augment_dim
        self.shape = shape
        self.order_aug = nn.Sequential(nn.Linear(ORDER_DIM, a // 2), nn.Linear(a // 2, a))
        self.book_aug = nn.Linear(4 * shape.levels, a)
        self.core = Core(shape)
        self.noise_out = nn.Sequential(nn.Linear(shape.width, a), nn.Linear(a, ORDER_DIM))
        self.var_out = nn.Sequential(nn.Linear(shape.width, a), nn.Linear(a, ORDER_DIM))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond_orders: torch.Tensor,
                book: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t (B, 1, 8), t (B,), cond_orders (B, W-1, 8), book (B, W, 4L) -> (eps, v) each (B, 1, 8)."""
        orders = torch.cat([cond_orders, x_t], dim=1)
        h = torch.cat([self.order_aug(orders), self.book_aug(book)], dim=-1)
        noise, var = self.core(h, t)
        return self.noise_out(noise)[:, None, :], self.var_out(var)[:, None, :]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable + frozen parameters (buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


#: The paper's configuration (App. C): window 256, depth 8, augmentation 64 (width 128), dropout 0.1.
#: Heads: the paper's best is 2 (the reference code sets 1; the count of parameters does not depend on it).
PAPER = DenoiserShape(window=256, depth=8, augment_dim=64, heads=2, dropout=0.1, levels=10, steps=100)
#: A CPU configuration that trains in minutes on 2 cores.
CPU = DenoiserShape(window=32, depth=2, augment_dim=32, heads=2, dropout=0.1, levels=10, steps=100)
