"""Closed-form and quadrature references for the BSDE benchmarks (the oracles of the research note, section 3).

These are formulas, not stored numbers: tests compare a trained solver against them and, where the note
quotes a value, check the formula reproduces it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats


def bs_call(s0: float, strike: float, r: float, sigma: float, T: float) -> float:
    """Black-Scholes call price (R1)."""
    if T <= 0:
        return max(s0 - strike, 0.0)
    sq = sigma * math.sqrt(T)
    d1 = (math.log(s0 / strike) + (r + 0.5 * sigma**2) * T) / sq
    return s0 * stats.norm.cdf(d1) - strike * math.exp(-r * T) * stats.norm.cdf(d1 - sq)


def bs_put(s0: float, strike: float, r: float, sigma: float, T: float) -> float:
    """Black-Scholes put price by parity."""
    return bs_call(s0, strike, r, sigma, T) - s0 + strike * math.exp(-r * T)


def hjb_lq_y0(dim: int = 100, T: float = 1.0, lam: float = 1.0) -> float:
    """u(0, 0) of the HJB-LQ equation by Cole-Hopf (R3).

    u(0,0) = -(1/lam) ln E[exp(-lam g(sqrt(2) W_T))], g(x) = ln((1+|x|^2)/2), |sqrt(2) W_T|^2 = 2T chi2_d:
    a one-dimensional integral against the chi-square density.
    """

    def integrand(u: float) -> float:
        g = math.log((1.0 + 2.0 * T * u) / 2.0)
        return math.exp(-lam * g) * stats.chi2.pdf(u, dim)

    lo, hi = stats.chi2.ppf(1e-14, dim), stats.chi2.ppf(1 - 1e-14, dim)
    val, _ = integrate.quad(integrand, lo, hi, limit=200, epsabs=0, epsrel=1e-12)
    return -math.log(val) / lam


def basket_call_mc(
    dim: int, s0: float, strike: float, r: float, sigma: float, T: float, n_paths: int, seed: int
) -> tuple[float, float]:
    """(price, standard error) of a basket call on ``dim`` independent GBMs by exact terminal sampling with the
    basket sum as control variate (its mean s0*dim*e^{rT} is known)."""
    rng = np.random.default_rng(seed)
    disc = math.exp(-r * T)
    pay, ctrl = [], []
    for chunk in np.array_split(np.arange(n_paths), max(1, n_paths // 50_000)):
        z = rng.standard_normal((chunk.size, dim))
        s = (s0 * np.exp((r - 0.5 * sigma**2) * T + sigma * math.sqrt(T) * z)).sum(1)
        pay.append(disc * np.maximum(s - strike, 0.0))
        ctrl.append(disc * s)
    p, c = np.concatenate(pay), np.concatenate(ctrl)
    cov = np.cov(p, c)
    beta = cov[0, 1] / cov[1, 1]
    adj = p - beta * (c - dim * s0)
    return float(adj.mean()), float(adj.std(ddof=1) / math.sqrt(adj.size))
