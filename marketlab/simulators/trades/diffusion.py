"""Gaussian diffusion for TRADES: cosine schedule, IDDPM hybrid loss with learned variance, importance
sampling of t, EMA weights, DDPM and DDIM samplers.

Notation (Nichol & Dhariwal 2021, "Improved DDPM"): ``alpha_bar_t = f(t)/f(0)``,
``f(t) = cos^2(((t/T + s)/(1 + s)) * pi/2)``, s = 0.008, ``beta_t = 1 - alpha_bar_{t+1}/alpha_bar_t``
capped at 0.99 (the reference's cap; IDDPM uses 0.999). The model predicts epsilon and ``v`` in
[-1, 1]; the reverse variance is ``exp(frac * log beta_t + (1 - frac) * log beta~_t)`` with
``frac = (v + 1)/2``. Loss per sample: ``L = ||eps^ - eps||^2 / d + lambda * L_vlb`` with L_vlb the
KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) in bits (the Gaussian NLL of x_0 at t = 0), computed with the
predicted mean detached so L_vlb trains only the variance. The reference takes the unsquared norm
``torch.norm(eps^ - eps)`` for L_eps; we use the mean squared error of IDDPM.

All tensors are (B, ..., D); reductions are over every axis but the batch. Randomness comes only from
the ``torch.Generator`` / ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

ModelFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: Bounds for predicted x0 during sampling: a symmetric scalar, or (low, high) tensors broadcast to x.
Clip = float | tuple[torch.Tensor, torch.Tensor] | None


def clamp_x0(x0: torch.Tensor, clip: Clip) -> torch.Tensor:
    """x0 clamped to ``clip`` (None: unchanged)."""
    if clip is None:
        return x0
    if isinstance(clip, tuple):
        return torch.maximum(torch.minimum(x0, clip[1].to(x0)), clip[0].to(x0))
    return x0.clamp(-clip, clip)


def cosine_betas(steps: int, s: float = 0.008, max_beta: float = 0.99) -> np.ndarray:
    """(steps,) float64 betas of the cosine schedule."""
    def f(t: float) -> float:
        return math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2

    return np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(steps)], dtype=np.float64)


def _mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(dim=1)


def normal_kl(m1: torch.Tensor, lv1: torch.Tensor, m2: torch.Tensor, lv2: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(m1, e^lv1) || N(m2, e^lv2)) in nats."""
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


class GaussianDiffusion:
    """Schedule tables (float64 numpy, gathered into the model's dtype) and the diffusion maths."""

    def __init__(self, steps: int = 100, max_beta: float = 0.99) -> None:
        self.steps = int(steps)
        b = cosine_betas(self.steps, max_beta=max_beta)
        self.betas = b
        ac = np.cumprod(1.0 - b)
        self.alphas_cumprod = ac
        self.alphas_cumprod_prev = np.append(1.0, ac[:-1])
        self.sqrt_ac = np.sqrt(ac)
        self.sqrt_1m_ac = np.sqrt(1.0 - ac)
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1)
        pv = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - ac)
        self.posterior_variance = pv
        # log of 0 at t = 0: use the t = 1 value (IDDPM's clipping)
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:]))
        self.posterior_mean_coef1 = b * np.sqrt(self.alphas_cumprod_prev) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(1.0 - b) / (1.0 - ac)

    @staticmethod
    def _g(arr: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        out = torch.as_tensor(arr, dtype=like.dtype, device=like.device)[t]
        return out.reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
        return self._g(self.sqrt_ac, t, x0) * x0 + self._g(self.sqrt_1m_ac, t, x0) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clipped log variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._g(self.posterior_mean_coef1, t, xt) * x0 + self._g(self.posterior_mean_coef2, t, xt) * xt
        return mean, self._g(self.posterior_log_variance_clipped, t, xt).expand_as(xt)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0 from x_t and predicted epsilon."""
        return self._g(self.sqrt_recip_ac, t, xt) * xt - self._g(self.sqrt_recipm1_ac, t, xt) * eps

    def p_mean_variance(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, v: torch.Tensor,
                        clip_x0: Clip = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log variance of p(x_{t-1} | x_t) from the model outputs (eps, v)."""
        frac = (v + 1.0) / 2.0
        log_var = frac * self._g(np.log(self.betas), t, xt) + (1 - frac) * self._g(self.posterior_log_variance_clipped, t, xt)
        x0 = self.predict_x0(xt, t, eps)
        x0 = clamp_x0(x0, clip_x0)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, log_var

    def training_losses(self, fn: ModelFn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                        lambda_vlb: float = 0.01) -> dict[str, torch.Tensor]:
        """Per-sample losses (B,): ``loss`` = ``mse`` + lambda * ``vb``."""
        xt = self.q_sample(x0, t, noise)
        eps, v = fn(xt, t)
        mse = _mean_flat((eps - noise) ** 2)
        mean, log_var = self.p_mean_variance(xt, t, eps.detach(), v)
        true_mean, true_lv = self.q_posterior(x0, xt, t)
        kl = _mean_flat(normal_kl(true_mean, true_lv, mean, log_var)) / math.log(2.0)
        nll = _mean_flat(0.5 * (math.log(2 * math.pi) + log_var + (x0 - mean) ** 2 * torch.exp(-log_var))) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        return {"loss": mse + lambda_vlb * vb, "mse": mse, "vb": vb}

    # ------------------------------------------------------------------ samplers
    @torch.no_grad()
    def ddpm(self, fn: ModelFn, shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str = "cpu",
             clip_x0: Clip = None) -> torch.Tensor:
        """Ancestral sampling over all T steps with the learned variance."""
        x = torch.randn(shape, generator=generator, device=device)
        for i in range(self.steps - 1, -1, -1):
            t = torch.full((shape[0],), i, dtype=torch.long, device=device)
            eps, v = fn(x, t)
            mean, log_var = self.p_mean_variance(x, t, eps, v, clip_x0)
            x = mean + torch.exp(0.5 * log_var) * torch.randn(shape, generator=generator, device=device) if i > 0 else mean
        return x

    def ddim_timesteps(self, n: int) -> list[int]:
        """``n`` (1..T) descending steps from T-1 to 0, evenly spaced (n = 1: just T-1)."""
        if not 1 <= n <= self.steps:
            raise ValueError(f"DDIM steps must be in [1, {self.steps}], got {n}")
        if n == 1:
            return [self.steps - 1]
        return sorted({int(round(x)) for x in np.linspace(0, self.steps - 1, n)}, reverse=True)

    @torch.no_grad()
    def ddim(self, fn: ModelFn, shape: tuple[int, ...], generator: torch.Generator, steps: int = 10,
             device: torch.device | str = "cpu", eta: float = 0.0, clip_x0: Clip = None) -> torch.Tensor:
        """DDIM (Song et al. 2021) over :meth:`ddim_timesteps`; eta = 0 is deterministic given x_T."""
        x = torch.randn(shape, generator=generator, device=device)
        seq = self.ddim_timesteps(steps)
        for j, i in enumerate(seq):
            t = torch.full((shape[0],), i, dtype=torch.long, device=device)
            eps, _ = fn(x, t)
            ab = float(self.alphas_cumprod[i])
            ab_prev = float(self.alphas_cumprod[seq[j + 1]]) if j + 1 < len(seq) else 1.0
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            x0 = clamp_x0(x0, clip_x0)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
            x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
            if sigma > 0 and j + 1 < len(seq):
                x = x + sigma * torch.randn(shape, generator=generator, device=device)
        return x

    def sample(self, fn: ModelFn, shape: tuple[int, ...], generator: torch.Generator, *, method: str = "ddim",
               steps: int = 10, device: torch.device | str = "cpu", clip_x0: Clip = None) -> torch.Tensor:
        """``method`` "ddpm" (all T steps) or "ddim" (``steps`` steps, eta 0)."""
        if method == "ddpm":
            return self.ddpm(fn, shape, generator, device, clip_x0)
        if method == "ddim":
            return self.ddim(fn, shape, generator, steps, device, clip_x0=clip_x0)
        raise ValueError(f"unknown sampler {method!r} (ddpm, ddim)")


class LossSecondMomentSampler:
    """Importance sampling of t (IDDPM): p_t proportional to sqrt(E[L_t^2]) over the last ``history``
    losses per t, mixed with ``uniform`` of the uniform distribution; uniform until every t has a
    full history. :meth:`sample` returns t and the weights 1/(T p_t) that keep the loss unbiased."""

    def __init__(self, steps: int, history: int = 10, uniform: float = 0.001) -> None:
        self.steps, self.history, self.uniform = steps, history, uniform
        self.losses = np.zeros((steps, history), dtype=np.float64)
        self.counts = np.zeros(steps, dtype=np.int64)

    def probs(self) -> np.ndarray:
        """(T,) sampling probabilities."""
        if not (self.counts == self.history).all():
            return np.full(self.steps, 1.0 / self.steps)
        w = np.sqrt((self.losses**2).mean(axis=1))
        w = w / w.sum()
        return np.asarray(w * (1 - self.uniform) + self.uniform / self.steps, dtype=np.float64)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(t int64 (batch,), weights float64 (batch,))."""
        p = self.probs()
        t = rng.choice(self.steps, size=batch, p=p)
        return t.astype(np.int64), 1.0 / (self.steps * p[t])

    def update(self, t: np.ndarray, losses: np.ndarray) -> None:
        """Record the per-sample losses of steps ``t``."""
        for ti, li in zip(t.tolist(), losses.tolist(), strict=True):
            if self.counts[ti] == self.history:
                self.losses[ti, :-1] = self.losses[ti, 1:]
                self.losses[ti, -1] = li
            else:
                self.losses[ti, self.counts[ti]] = li
                self.counts[ti] += 1

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"losses": self.losses.tolist(), "counts": self.counts.tolist()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.losses = np.asarray(d["losses"], dtype=np.float64).reshape(self.steps, self.history)
        self.counts = np.asarray(d["counts"], dtype=np.int64).reshape(self.steps)


class EMA:
    """Exponential moving average of a module's parameters (decay 0.999 in the paper)."""

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().clone() for k, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """shadow = decay * shadow + (1 - decay) * current."""
        for k, p in module.named_parameters():
            self.shadow[k].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into ``module``."""
        for k, p in module.named_parameters():
            p.copy_(self.shadow[k])
