"""Z-networks. Both forms map the states of all interior time steps to Z in ONE batched call.

For a decoupled FBSDE, Z_n = net_n(X_n) does not depend on Y, so the network is evaluated for every step at
once and only the cheap element-wise Y recursion is sequential (research note section 4.2).

- :class:`PerStepMLP` -- one sub-network per interior step (Han-Jentzen-E), weights stacked ``[K, in, out]``
  and applied with one ``bmm`` per layer.
- :class:`TimeMLP` -- one network shared across steps with time as an input (Multi-Layer deep xVA).

Inputs are standardised per time step with statistics from a pilot batch (frozen buffers). This replaces the
input BatchNorm of the original code: BatchNorm makes train and eval mode differ, which silently biased the
exposure paths of the Deep-xVA code. Parameters are initialised from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_ACT = {"relu": torch.relu, "tanh": torch.tanh, "silu": nn.functional.silu}


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter((torch.rand(shape, generator=gen, dtype=dtype) * 2.0 - 1.0) * bound)


class _Standardise(nn.Module):
    """Per-step affine input normalisation ``(x - mean_n) / std_n`` with frozen statistics ``[K, d]``."""

    # buffers (register_buffer in __init__), typed for mypy
    mean: Tensor
    std: Tensor

    def __init__(self, K: int, d: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(K, d, dtype=dtype))
        self.register_buffer("std", torch.ones(K, d, dtype=dtype))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """x ``[M, K, d]`` pilot states of the interior steps."""
        self.mean.copy_(x.mean(0))
        std = x.std(0)
        # A coordinate that does not move (e.g. a frozen factor) keeps unit scale instead of dividing by ~0.
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class _ZNet(nn.Module):
    """What both Z-networks share: per-step input standardisation, the activation and the layer parameters
    ``d (+1 for TimeMLP's time input) -> hidden... -> P*m``, drawn U(-1/sqrt(in), 1/sqrt(in)) from ``gen``
    in layer order (weight, then bias). ``T`` (years) scales the time input of :class:`TimeMLP`."""

    per_step: bool = False  # True: one weight set per interior step, stacked [K, in, out]

    def __init__(
        self,
        K: int,
        d: int,
        m: int,
        P: int,
        hidden: tuple[int, ...],
        gen: torch.Generator,
        dtype: torch.dtype = torch.float64,
        activation: str = "relu",
        out_scale: float = 1.0,
        T: float = 1.0,
    ) -> None:
        super().__init__()
        self.K, self.m, self.P, self.out_scale, self.T = K, m, P, out_scale, T
        self.norm = _Standardise(K, d, dtype)
        self.act = _ACT[activation]
        sizes = [d + (0 if self.per_step else 1), *hidden, P * m]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=False):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(_uniform((K, a, b) if self.per_step else (a, b), bound, gen, dtype))
            self.biases.append(_uniform((K, 1, b) if self.per_step else (b,), bound, gen, dtype))


class PerStepMLP(_ZNet):
    """K independent MLPs ``d -> hidden... -> P*m`` (one per interior step), evaluated with ``bmm``.

    forward(x ``[M, K, d]``, t ``[K]``) -> Z ``[M, K, P, m]``.
    """

    per_step = True

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Forward pass (shapes in the class docstring)."""
        M = x.shape[0]
        h = self.norm(x).transpose(0, 1)  # [K, M, d]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        out: Tensor = (h * self.out_scale).transpose(0, 1).reshape(M, self.K, self.P, self.m)
        return out


class TimeMLP(_ZNet):
    """One MLP on ``(t/T, standardised x)`` shared by all steps.

    forward(x ``[M, K, d]``, t ``[K]`` in years) -> Z ``[M, K, P, m]``.
    """

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Forward pass (shapes in the class docstring)."""
        M = x.shape[0]
        tt = (t / self.T).to(x.dtype).view(1, -1, 1).expand(M, -1, 1)
        h = torch.cat([tt, self.norm(x)], dim=-1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            h = torch.addmm(b, h.reshape(-1, h.shape[-1]), w).reshape(M, self.K, -1)
            if i < last:
                h = self.act(h)
        return (h * self.out_scale).reshape(M, self.K, self.P, self.m)
