"""BiN-CTABL: bilinear normalisation + two bilinear layers + temporal-attention bilinear layer
(Tran et al. 2021, "Data normalization for bilinear structures in high-frequency financial time-series").

Input ``x``: ``(B, T=10, F)``; output ``(B, 3)`` **logits**. Layout of the reference
``BiN_CTABL(60, F, 10, 10, 120, 5, 3, 1)``: BiN(F, 10) -> BL ``F x 10 -> 60 x 10`` -> dropout 0.1 ->
BL ``60 x 10 -> 120 x 5`` -> dropout 0.1 -> TABL ``120 x 5 -> 3 x 1``. Before each bilinear layer its
weight matrices are rescaled to Frobenius norm <= 10 (max-norm constraint). 11,446 parameters for F=40,
17,894 for F=144.

Deviations from the reference: (1) it ends in ``softmax`` and is then trained with cross-entropy; this
module returns logits. (2) TABL's lambda is kept in [0, 1] by an in-place clamp; the reference
re-creates it as a ``.cuda()`` parameter (crashes on CPU and detaches it from the optimizer). (3) The
TABL diagonal mask is built on the input's device, not hard-wired to CUDA. (4) ``squeeze(-1)`` instead
of ``squeeze()`` so a batch of one keeps its batch axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from marketlab.models.layers import BiN


@dataclass(frozen=True)
class BiNCTABLConfig:
    """BiN-CTABL sizes: input ``num_features x seq_size`` -> ``d2 x t2`` -> ``d3 x t3`` -> ``classes x 1``."""

    num_features: int = 40
    seq_size: int = 10
    d2: int = 60
    t2: int = 10
    d3: int = 120
    t3: int = 5
    num_classes: int = 3
    dropout: float = 0.1
    max_norm: float = 10.0


class BilinearLayer(nn.Module):
    """``ReLU(W1 @ X @ W2 + B)``: ``(B, d1, t1) -> (B, d2, t2)``."""

    def __init__(self, d2: int, d1: int, t1: int, t2: int) -> None:
        super().__init__()
        self.W1 = nn.Parameter(torch.empty(d2, d1))
        self.W2 = nn.Parameter(torch.empty(t1, t2))
        self.B = nn.Parameter(torch.zeros(d2, t2))
        nn.init.kaiming_uniform_(self.W1, nonlinearity="relu")
        nn.init.kaiming_uniform_(self.W2, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        return torch.relu(self.W1 @ x @ self.W2 + self.B)


class TABLayer(nn.Module):
    """Temporal-attention bilinear layer ``(B, d1, t1) -> (B, d2, t2)`` (no output activation).

    ``X = W1 @ X``; attention ``A = softmax(X @ W)`` with ``diag(W) = 1/t1``; ``X = l*X + (1-l)*X*A``
    with ``l`` in [0, 1]; ``Y = X @ W2 + B``.
    """

    def __init__(self, d2: int, d1: int, t1: int, t2: int) -> None:
        super().__init__()
        self.t1 = t1
        self.W1 = nn.Parameter(torch.empty(d2, d1))
        self.W = nn.Parameter(torch.full((t1, t1), 1.0 / t1))
        self.W2 = nn.Parameter(torch.empty(t1, t2))
        self.B = nn.Parameter(torch.zeros(d2, t2))
        self.l = nn.Parameter(torch.full((1,), 0.5))
        nn.init.kaiming_uniform_(self.W1, nonlinearity="relu")
        nn.init.kaiming_uniform_(self.W2, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        with torch.no_grad():
            self.l.clamp_(0.0, 1.0)
        x = self.W1 @ x
        eye = torch.eye(self.t1, dtype=x.dtype, device=x.device)
        w = self.W - self.W * eye + eye / self.t1
        a = torch.softmax(x @ w, dim=-1)
        x = self.l * x + (1.0 - self.l) * x * a
        return x @ self.W2 + self.B


@torch.no_grad()
def _max_norm_(w: torch.Tensor, max_norm: float) -> None:
    # Without a host sync: scale = min(1, max_norm / norm).
    norm = torch.linalg.matrix_norm(w)
    w.mul_(torch.clamp(max_norm / (norm + 1e-8), max=1.0))


class BiNCTABL(nn.Module):
    """``forward(x: (B, T, F)) -> (B, num_classes)`` logits."""

    config_class = BiNCTABLConfig

    def __init__(self, config: BiNCTABLConfig | None = None) -> None:
        super().__init__()
        c = config or BiNCTABLConfig()
        self.config = c
        self.BiN = BiN(c.num_features, c.seq_size)
        self.BL = BilinearLayer(c.d2, c.num_features, c.seq_size, c.t2)
        self.BL2 = BilinearLayer(c.d3, c.d2, c.t2, c.t3)
        self.TABL = TABLayer(c.num_classes, c.d3, c.t3, 1)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        c = self.config
        x = self.BiN(x.transpose(1, 2))  # (B, F, T)
        if self.training:  # the constraint acts on the weights being trained
            for w in (self.BL.W1, self.BL.W2, self.BL2.W1, self.BL2.W2, self.TABL.W1, self.TABL.W2):
                _max_norm_(w.data, c.max_norm)
        x = self.dropout(self.BL(x))
        x = self.dropout(self.BL2(x))
        result: torch.Tensor = self.TABL(x).squeeze(-1)
        return result

    def config_dict(self) -> dict[str, Any]:
        """The model config as a plain dict (what checkpoints store)."""
        return asdict(self.config)
