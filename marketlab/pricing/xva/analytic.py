"""Closed-form exposures and xVA integrals for single-forward oracles (research note R1, R6, R10, R11).

Used by tests and benchmarks to produce the value a solver should reach ON ITS OWN GRID (left-point sums,
which is what the Euler deep BSDE converges to) and in the continuum (quadrature).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate
from scipy.stats import norm


def forward_epe(t: float, s0: float, strike: float, r: float, sigma: float, T: float) -> tuple[float, float]:
    """(EPE(t), ENE(t)) of a long forward V_t = S_t - K e^{-r(T-t)}: a BS call / put of maturity t on K e^{-rT}."""
    kk = strike * math.exp(-r * T)
    if t <= 0:
        v = s0 - kk
        return max(v, 0.0), max(-v, 0.0)
    sq = sigma * math.sqrt(t)
    d1 = (math.log(s0 / strike) + r * T + 0.5 * sigma**2 * t) / sq
    d2 = d1 - sq
    epe = s0 * norm.cdf(d1) - kk * norm.cdf(d2)
    ene = kk * norm.cdf(-d2) - s0 * norm.cdf(-d1)
    return float(epe), float(ene)


def forward_xva(
    s0: float, strike: float, r: float, sigma: float, T: float, lam_c: float, rec_c: float,
    lam_b: float = 0.0, rec_b: float = 0.4, N: int | None = None,
) -> tuple[float, float]:
    """(CVA, DVA) of a long forward with constant intensities, first-to-default discounting.

    N None: continuum (quadrature). N given: the left-point sum sum_{n<N} dt (...)(t_n) with the implicit
    Euler discount (1 + (lam_b+lam_c+r) dt)^{-n} e^{r t_n}... i.e. the fixed point of the deep BSDE's scheme.
    """
    lam = lam_b + lam_c

    def integrand(t: float) -> tuple[float, float]:
        epe, ene = forward_epe(t, s0, strike, r, sigma, T)
        return epe, ene

    if N is None:
        cva = integrate.quad(lambda t: math.exp(-lam * t) * integrand(t)[0], 0, T, epsabs=1e-12, limit=200)[0]
        dva = integrate.quad(lambda t: math.exp(-lam * t) * integrand(t)[1], 0, T, epsabs=1e-12, limit=200)[0]
    else:
        dt = T / N
        cva = dva = 0.0
        for n in range(N):
            # the Euler BSDE on Y = xVA pre-default: Y_n = E[Y_{n+1}] + dt (run_n - (r+lam) Y_n)
            # -> weight of run_n is dt / (1 + (r+lam) dt)^{n+1}; EPE already carries e^{-r t_n}
            w = dt * (1.0 + (r + lam) * dt) ** (-(n + 1)) * math.exp(r * n * dt)
            epe, ene = integrand(n * dt)
            cva += w * epe
            dva += w * ene
    return (1 - rec_c) * lam_c * cva, (1 - rec_b) * lam_b * dva


def first_passage_cdf(t: float, a0: float, barrier: float, r: float, sigma: float) -> float:
    """P(tau <= t) for a GBM asset (drift r) hitting ``barrier`` (continuous monitoring)."""
    if t <= 0:
        return 0.0
    nu, b = r - 0.5 * sigma**2, math.log(barrier / a0)
    s = sigma * math.sqrt(t)
    return float(norm.cdf((b - nu * t) / s) + math.exp(2 * nu * b / sigma**2) * norm.cdf((b + nu * t) / s))


def forward_im(s: float | np.ndarray, sigma: float, alpha: float, delta: float) -> tuple[object, object]:
    """(IMFC, IMTC) of a forward on S: S (e^{-s^2 d/2 + s sqrt(d) z_a} - 1), S (1 - e^{-s^2 d/2 - s sqrt(d) z_a})."""
    z = norm.ppf(alpha)
    up = np.exp(-0.5 * sigma**2 * delta + sigma * math.sqrt(delta) * z) - 1.0
    dn = 1.0 - np.exp(-0.5 * sigma**2 * delta - sigma * math.sqrt(delta) * z)
    return s * up, s * dn
