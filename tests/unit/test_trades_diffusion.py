"""TRADES diffusion: schedule closed form, loss zero at the oracle, samplers (oracle, shapes, determinism),
importance sampler, EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from marketlab.simulators.trades.diffusion import EMA, GaussianDiffusion, LossSecondMomentSampler, cosine_betas
from marketlab.simulators.trades.model import Denoiser, DenoiserShape


def test_cosine_schedule_matches_the_closed_form() -> None:
    T, s = 100, 0.008
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    ab = np.cumprod(1 - cosine_betas(T))
    np.testing.assert_allclose(ab[:-1], [f[t + 1] / f[0] for t in range(T - 1)], rtol=1e-10)
    assert cosine_betas(T)[-1] == pytest.approx(0.99)  # the last beta (-> 1) is capped


def _oracle(d: GaussianDiffusion, x0: torch.Tensor, v: float = -1.0):
    """A perfect denoiser for a known x0: the exact epsilon, variance = the posterior's (v = -1)."""
    def fn(xt: torch.Tensor, t: torch.Tensor):
        ab = torch.as_tensor(d.alphas_cumprod, dtype=xt.dtype)[t].view(-1, 1, 1)
        return (xt - ab.sqrt() * x0) / (1 - ab).sqrt(), torch.full_like(xt, v)
    return fn


def test_hybrid_loss_is_zero_for_the_oracle_and_positive_otherwise() -> None:
    d = GaussianDiffusion(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 1, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 5, 20, 50, 80, 99])
    noise = torch.randn(6, 1, 8, generator=g, dtype=torch.float64)
    out = d.training_losses(_oracle(d, x0), x0, t, noise)
    assert out["mse"].abs().max() < 1e-12 and out["vb"].abs().max() < 1e-9
    # a wrong variance costs only through the vlb term, weighted by lambda
    wrong = d.training_losses(_oracle(d, x0, v=1.0), x0, t, noise, lambda_vlb=0.01)
    assert torch.all(wrong["vb"] > 0) and torch.allclose(wrong["loss"], 0.01 * wrong["vb"])


def test_samplers_recover_x0_with_the_oracle() -> None:
    d = GaussianDiffusion(100)
    x0 = torch.randn(3, 1, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fn = _oracle(d, x0)

    def fn32(xt, t):
        e, v = fn(xt.double(), t)
        return e.float(), v.float()

    for steps in (1, 2, 10):
        got = d.ddim(fn32, (3, 1, 8), torch.Generator().manual_seed(2), steps=steps)
        assert torch.allclose(got.double(), x0, atol=1e-3), steps
    got = d.ddpm(fn32, (3, 1, 8), torch.Generator().manual_seed(2))
    assert torch.allclose(got.double(), x0, atol=1e-3)


def test_ddim_timesteps() -> None:
    d = GaussianDiffusion(100)
    assert d.ddim_timesteps(1) == [99]
    assert d.ddim_timesteps(2) == [99, 0]
    assert len(d.ddim_timesteps(10)) == 10 and d.ddim_timesteps(10)[0] == 99
    for bad in (0, 101):
        with pytest.raises(ValueError, match="DDIM steps"):
            d.ddim_timesteps(bad)


@pytest.mark.parametrize("method,steps", [("ddim", 1), ("ddim", 5), ("ddpm", 100)])
def test_sampler_shapes_and_determinism(method: str, steps: int) -> None:
    shape = DenoiserShape(window=6, depth=1, augment_dim=8, heads=2, levels=2, steps=100)
    torch.manual_seed(0)
    m = Denoiser(shape).eval()
    cond = torch.randn(4, 5, 8)
    book = torch.randn(4, 6, 8)

    def fn(xt, t):
        return m(xt, t, cond, book)

    d = GaussianDiffusion(100)
    a = d.sample(fn, (4, 1, 8), torch.Generator().manual_seed(7), method=method, steps=steps)
    b = d.sample(fn, (4, 1, 8), torch.Generator().manual_seed(7), method=method, steps=steps)
    c = d.sample(fn, (4, 1, 8), torch.Generator().manual_seed(8), method=method, steps=steps)
    assert a.shape == (4, 1, 8) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_importance_sampler() -> None:
    s = LossSecondMomentSampler(4, history=2, uniform=0.0)
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(s.probs(), 0.25)  # uniform until every t has a full history
    s.update(np.array([0, 0, 1, 1, 2, 2, 3]), np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0]))
    np.testing.assert_allclose(s.probs(), 0.25)
    s.update(np.array([3]), np.array([3.0]))
    np.testing.assert_allclose(s.probs(), [1 / 6, 1 / 6, 1 / 6, 3 / 6])  # sqrt(E[L^2]) = 1,1,1,3
    t, w = s.sample(20_000, rng)
    assert np.mean(t == 3) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(w[t == 3], 1 / (4 * 0.5))  # unbiased reweighting
    s2 = LossSecondMomentSampler(4, history=2, uniform=0.0)
    s2.load_state_dict(s.state_dict())
    np.testing.assert_allclose(s2.probs(), s.probs())


def test_ema_update_is_the_known_average() -> None:
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay=0.9)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update(lin)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    ema.copy_to(lin)
    assert torch.allclose(lin.weight, torch.full((1, 2), 1.2))


def test_posterior_is_the_bayes_combination_of_prior_and_one_step_likelihood() -> None:
    d = GaussianDiffusion(100)
    x0, xt = torch.tensor([[0.7]], dtype=torch.float64), torch.tensor([[-0.4]], dtype=torch.float64)
    for step in (1, 10, 50, 98):
        ab_prev = float(np.prod(1 - cosine_betas(100)[:step]))  # alpha_bar_{t-1}, from the betas directly
        beta = float(cosine_betas(100)[step])
        prec = 1 / (1 - ab_prev) + (1 - beta) / beta
        mean = (math.sqrt(ab_prev) * 0.7 / (1 - ab_prev) + math.sqrt(1 - beta) * -0.4 / beta) / prec
        m, lv = d.q_posterior(x0, xt, torch.tensor([step]))
        assert float(m) == pytest.approx(mean, rel=1e-9)
        assert math.exp(float(lv)) == pytest.approx(1 / prec, rel=1e-9)
