"""Decoupled forward-backward SDEs in the deep-BSDE code convention.

Convention (Han-Jentzen-E ``solver.py``): the backward process is stepped forward in time as

    Y_{n+1} = Y_n - dt * f(t_n, X_n, Y_n, Z_n) + Z_n . dW_n ,   Y at the terminal index = g(X)

i.e. ``-dY = f dt - Z dW`` and ``Y_0 = E[ sum_n f dt + g ]`` for linear f.  ``Z = sigma^T grad u`` (not grad u).

Shapes (M paths, N steps, d state dims, m Brownian dims, P outputs solved jointly):
``x [M, N+1, d]``, ``dw [M, N, m]``, ``y [M, P]``, ``z [M, P, m]``, ``f -> [M, P]``, terminal value ``[M, P]``.

An equation samples its own forward paths (exact where the law is known, Euler otherwise) from an explicit
``torch.Generator``; nothing here touches global RNG state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from marketlab.core import registry
from marketlab.core.errors import SpecError


@dataclass
class PathBatch:
    """Simulated forward paths and everything a generator needs on them.

    ``x [M, N+1, d]`` states on the grid, ``dw [M, N, m]`` the Brownian increments that enter ``Z . dW``
    (standard under the simulation measure), ``measure`` the index of the drift tilt used (0 = untilted),
    ``aux`` tensors ``[M, N+1, k]`` computed from frozen upstream models on the same paths, ``exit_idx [M]``
    the grid index at which a path left the domain (N when it did not; None for unbounded problems).
    """

    x: Tensor
    dw: Tensor
    measure: int = 0
    aux: dict[str, Tensor] = field(default_factory=dict)
    exit_idx: Tensor | None = None

    @property
    def size(self) -> int:
        """Number of members."""
        return int(self.x.shape[0])


def normal_increments(
    shape: tuple[int, ...], dt: float, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """``sqrt(dt) * N(0, 1)`` increments drawn from ``gen`` (the generator must live on ``device``)."""
    return torch.randn(shape, generator=gen, dtype=dtype, device=device) * math.sqrt(dt)


def tilted_increments(
    shape: tuple[int, int, int],
    dt: float,
    tilts: tuple[Tensor, ...],
    measure: int,
    gen: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Increments ``dw [M, N, m]`` (standard under the simulation measure) and the drive of X under training
    measure ``measure``: ``dw - theta dt`` with ``theta = tilts[measure - 1]`` ``[m]``, or ``dw`` itself for 0."""
    dw = normal_increments(shape, dt, gen, dtype, device)
    if measure == 0:
        return dw, dw
    return dw, dw - tilts[measure - 1].to(dtype=dtype, device=device) * dt


class Equation:
    """Base class: a forward SDE plus generator ``f`` and terminal condition ``g``.

    Subclasses set ``dim`` (state), ``dim_w`` (Brownian), ``n_out`` (P), ``T``, ``N`` and implement
    :meth:`x0`, :meth:`step` (or override :meth:`sample`), :meth:`f` and :meth:`g`.  ``scheme`` selects
    ``"exact"`` sampling (when a subclass has it) or ``"euler"``.  ``y_init_range`` is the interval the
    solver draws y0 from; ``reference`` an oracle for tests (None when unknown).
    """

    name: str = "equation"
    dim: int = 1
    dim_w: int = 1
    n_out: int = 1
    T: float = 1.0
    N: int = 20
    scheme: str = "exact"
    y_init_range: tuple[float, float] = (0.0, 1.0)
    reference: float | None = None
    # One drift tilt per extra training measure (index k-1 for measure k): X is driven by dW_hat - theta dt,
    # and the generator gains + theta . Z (Girsanov, see research note section 4.5).  Shape [m] each.
    tilts: tuple[Tensor, ...] = ()

    @property
    def dt(self) -> float:
        """Time step in years."""
        return self.T / self.N

    def times(self) -> list[float]:
        """Grid t_0..t_N in years."""
        return [n * self.dt for n in range(self.N + 1)]

    # --- forward process -------------------------------------------------------------------------
    def x0(self, M: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Initial states ``[M, d]``."""
        raise NotImplementedError

    def drift(self, t: float, x: Tensor) -> Tensor:
        """mu(t, x) ``[M, d]`` (used by the Euler scheme)."""
        return torch.zeros_like(x)

    def diffusion(self, t: float, x: Tensor, dw: Tensor) -> Tensor:
        """sigma(t, x) dw ``[M, d]`` (used by the Euler scheme)."""
        raise NotImplementedError

    def step(self, t: float, x: Tensor, dt: float, dw: Tensor) -> Tensor:
        """One forward step. Default Euler-Maruyama; subclasses override with exact transitions."""
        return x + self.drift(t, x) * dt + self.diffusion(t, x, dw)

    def sample(self, M: int, gen: torch.Generator, *, dtype: torch.dtype = torch.float64,
               device: torch.device | None = None, measure: int = 0) -> PathBatch:
        """Simulate ``M`` paths under training measure ``measure`` (0 = the pricing measure)."""
        device = device or torch.device("cpu")
        dw, drive = tilted_increments((M, self.N, self.dim_w), self.dt, self.tilts, measure, gen, dtype, device)
        xs = [self.x0(M, dtype, device)]
        for n in range(self.N):
            xs.append(self.step(n * self.dt, xs[-1], self.dt, drive[:, n]))
        return PathBatch(x=torch.stack(xs, dim=1), dw=dw, measure=measure)

    # --- backward part ---------------------------------------------------------------------------
    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator in code convention. x ``[M,d]``, y ``[M,P]``, z ``[M,P,m]``, aux slices ``[M,k]``."""
        raise NotImplementedError

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition ``[M, P]`` at x ``[M, d]``."""
        raise NotImplementedError

    def terminal(self, batch: PathBatch) -> tuple[Tensor, Tensor]:
        """(index ``[M, P]`` long, value ``[M, P]``): where and to what Y is matched. Default: g(X_N) at N."""
        value = self.g(batch.x[:, -1])
        idx = torch.full(value.shape, self.N, dtype=torch.long, device=value.device)
        return idx, value

    def attach_aux(self, batch: PathBatch) -> PathBatch:
        """Fill ``batch.aux`` from frozen upstream models (layered xVA); identity for plain equations."""
        return batch


# ----------------------------------------------------------------------------------------------------
# Benchmark equations of the deep BSDE literature (PNAS 2018; Comm. Math. Stat. 2017)
# ----------------------------------------------------------------------------------------------------


class _ScaledBrownian(Equation):
    """X = x0 + s W (exact for any step)."""

    s: float = 1.0
    x_start: float = 0.0

    def x0(self, M: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        return torch.full((M, self.dim), self.x_start, dtype=dtype, device=device)

    def diffusion(self, t: float, x: Tensor, dw: Tensor) -> Tensor:
        return self.s * dw


class HJBLQ(_ScaledBrownian):
    """HJB of a linear-quadratic control problem (PNAS): X = sqrt(2) W, f = -lambda |z|^2 / 2.

    g(x) = ln((1 + |x|^2) / 2); exact u(0,0) by Cole-Hopf (:func:`marketlab.pricing.bsde.reference.hjb_lq_y0`).
    """

    name = "hjb_lq"

    def __init__(self, dim: int = 100, T: float = 1.0, N: int = 20, lam: float = 1.0) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N, self.lam = T, N, lam
        self.s = math.sqrt(2.0)
        self.y_init_range = (0.0, 1.0)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        # z = sqrt(2) grad u, so lambda |grad u|^2 = lambda |z|^2 / 2.
        return -0.5 * self.lam * (z * z).sum(-1)

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return torch.log((1.0 + (x * x).sum(-1, keepdim=True)) / 2.0)


class AllenCahn(_ScaledBrownian):
    """Allen-Cahn (PNAS): X = sqrt(2) W, f = y - y^3, g = 0.5 / (1 + 0.2 |x|^2)."""

    name = "allen_cahn"

    def __init__(self, dim: int = 100, T: float = 0.3, N: int = 20) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N = T, N
        self.s = math.sqrt(2.0)
        self.y_init_range = (0.3, 0.6)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        return y - y**3

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return 0.5 / (1.0 + 0.2 * (x * x).sum(-1, keepdim=True))


class _DiagonalGBM(Equation):
    """d independent GBMs dX = mu X dt + sigma X dW from x_start; exact (log-Euler) or Euler steps."""

    mu: float = 0.0
    sigma: float = 0.2
    x_start: float = 100.0

    def x0(self, M: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        return torch.full((M, self.dim), self.x_start, dtype=dtype, device=device)

    def drift(self, t: float, x: Tensor) -> Tensor:
        return self.mu * x

    def diffusion(self, t: float, x: Tensor, dw: Tensor) -> Tensor:
        return self.sigma * x * dw

    def step(self, t: float, x: Tensor, dt: float, dw: Tensor) -> Tensor:
        if self.scheme == "euler":
            return x * (1.0 + self.mu * dt + self.sigma * dw)
        return x * torch.exp((self.mu - 0.5 * self.sigma**2) * dt + self.sigma * dw)


class PricingDefaultRisk(_DiagonalGBM):
    """Nonlinear Black-Scholes with default risk (PNAS), d=100, payoff min_i x_i.

    f = -(1 - delta) Q(y) y - R y with Q piecewise linear from gamma_h (y <= v_h) to gamma_l (y >= v_l).
    ``scheme="euler"`` reproduces the repo sampler (same-grid reference 57.062 at N=40); ``"exact"`` converges
    to the continuum value (about 57.29).
    """

    name = "pricing_default_risk"

    def __init__(self, dim: int = 100, T: float = 1.0, N: int = 40, scheme: str = "euler") -> None:
        self.dim = self.dim_w = dim
        self.T, self.N, self.scheme = T, N, scheme
        self.mu, self.sigma, self.x_start = 0.02, 0.2, 100.0
        self.rate, self.delta = 0.02, 2.0 / 3.0
        self.gamma_h, self.gamma_l, self.v_h, self.v_l = 0.2, 0.02, 50.0, 70.0
        self.y_init_range = (40.0, 50.0)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        slope = (self.gamma_h - self.gamma_l) / (self.v_h - self.v_l)  # negative
        q = torch.relu(torch.relu(y - self.v_h) * slope + self.gamma_h - self.gamma_l) + self.gamma_l
        return (-(1.0 - self.delta) * q - self.rate) * y

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return x.min(-1, keepdim=True).values


class PricingDiffRate(_DiagonalGBM):
    """Black-Scholes with different borrowing / lending rates (CMS 2017 section 4.4), exact GBM, d=100."""

    name = "pricing_diff_rate"

    def __init__(self, dim: int = 100, T: float = 0.5, N: int = 20) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N, self.scheme = T, N, "exact"
        self.mu, self.sigma, self.x_start = 0.06, 0.2, 100.0
        self.r_l, self.r_b = 0.04, 0.06
        self.y_init_range = (15.0, 18.0)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        s = z.sum(-1) / self.sigma
        return -self.r_l * y - (self.mu - self.r_l) * s + (self.r_b - self.r_l) * torch.relu(s - y)

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        m = x.max(-1, keepdim=True).values
        return torch.relu(m - 120.0) - 2.0 * torch.relu(m - 150.0)


class BurgersType(_ScaledBrownian):
    """Multidimensional Burgers-type PDE (CMS 2017 section 4.5), X = d W; exact u(0,0) = 0.5."""

    name = "burgers_type"

    def __init__(self, dim: int = 50, T: float = 0.2, N: int = 30) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N = T, N
        self.s = float(dim)
        self.y_init_range = (0.3, 0.7)
        self.reference = 0.5

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        return (y - (2.0 + self.dim) / (2.0 * self.dim)) * z.sum(-1)

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return 1.0 - 1.0 / (1.0 + torch.exp(self.T + x.sum(-1, keepdim=True) / self.dim))

    def exact(self, t: float, x: Tensor) -> Tensor:
        """u(t, x) ``[M, 1]``."""
        return 1.0 - 1.0 / (1.0 + torch.exp(t + x.sum(-1, keepdim=True) / self.dim))


class QuadraticGradient(_ScaledBrownian):
    """PDE with quadratically growing gradient term (CMS 2017 section 4.6); exact u = sin((T-t+|x|^2/d)^a)."""

    name = "quadratic_gradient"

    def __init__(self, dim: int = 100, T: float = 1.0, N: int = 30, alpha: float = 0.4) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N, self.alpha = T, N, alpha
        self.s = 1.0
        self.y_init_range = (0.5, 1.0)
        self.reference = math.sin(T**alpha)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        a, d = self.alpha, self.dim
        x2 = (x * x).sum(-1, keepdim=True)
        base = self.T - t + x2 / d
        ba = base**a
        deriv = a * base ** (a - 1) * torch.cos(ba)
        term1 = (z * z).sum(-1)
        term2 = -4.0 * deriv**2 * x2 / d**2
        term4 = -0.5 * (
            2.0 * deriv
            + 4.0 / d**2 * x2 * a * ((a - 1) * base ** (a - 2) * torch.cos(ba) - a * base ** (2 * a - 2) * torch.sin(ba))
        )
        return term1 + term2 + deriv + term4

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return torch.sin(((x * x).sum(-1, keepdim=True) / self.dim) ** self.alpha)


class ReactionDiffusion(_ScaledBrownian):
    """Time-dependent reaction-diffusion PDE (CMS 2017 section 4.7); exact u(0,0) = 1 + kappa."""

    name = "reaction_diffusion"

    def __init__(self, dim: int = 100, T: float = 1.0, N: int = 30, kappa: float = 0.6) -> None:
        self.dim = self.dim_w = dim
        self.T, self.N, self.kappa = T, N, kappa
        self.lam = 1.0 / math.sqrt(dim)
        self.s = 1.0
        self.y_init_range = (1.0, 2.0)
        self.reference = 1.0 + kappa

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        e = math.exp(self.lam**2 * self.dim * (t - self.T) / 2.0)
        tmp = y - self.kappa - 1.0 - torch.sin(self.lam * x.sum(-1, keepdim=True)) * e
        return torch.clamp(tmp * tmp, max=1.0)

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        return 1.0 + self.kappa + torch.sin(self.lam * x.sum(-1, keepdim=True))


class BlackScholesLinear(_DiagonalGBM):
    """Linear BSDE f = -r y for a European claim on d independent GBMs under Q (mu = r).

    ``payoff``: ``"call"`` (max(sum x - K, 0)), ``"put"``, ``"forward"`` (sum x - K); d=1 gives the vanilla
    call/forward of reference case R1, d=100 with K=10 000 the basket call of R2.
    """

    def __init__(
        self,
        payoff: str = "call",
        dim: int = 1,
        s0: float = 100.0,
        strike: float = 100.0,
        r: float = 0.01,
        sigma: float = 0.25,
        T: float = 1.0,
        N: int = 20,
        scheme: str = "exact",
    ) -> None:
        if payoff not in ("call", "put", "forward"):
            raise ValueError(f"payoff must be call, put or forward, got {payoff!r}")
        self.name = f"bs_{payoff}" if dim == 1 else f"basket_{payoff}"
        self.payoff, self.strike, self.r = payoff, strike, r
        self.dim = self.dim_w = dim
        self.T, self.N, self.scheme = T, N, scheme
        self.mu, self.sigma, self.x_start = r, sigma, s0
        intrinsic = max(dim * s0 - strike * math.exp(-r * T), 0.0)
        # time value of an ATM call ~ 0.4 sd of the basket at T; start y0 between intrinsic and that
        width = 0.4 * sigma * math.sqrt(T * dim) * s0
        lo = intrinsic if payoff == "call" else dim * s0 - strike * math.exp(-r * T) - 1.0
        self.y_init_range = (lo, lo + width) if payoff == "call" else (lo, lo + 2.0)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        return -self.r * y

    def g(self, x: Tensor) -> Tensor:
        """Terminal condition g(x) (shapes in :class:`Equation`)."""
        s = x.sum(-1, keepdim=True)
        if self.payoff == "call":
            return torch.relu(s - self.strike)
        if self.payoff == "put":
            return torch.relu(self.strike - s)
        return s - self.strike


def bs_call(**kwargs: Any) -> BlackScholesLinear:
    """Black-Scholes call as a linear BSDE (``equation/bs_call``)."""
    return BlackScholesLinear(payoff="call", **kwargs)


def bs_put(**kwargs: Any) -> BlackScholesLinear:
    """Black-Scholes put as a linear BSDE (``equation/bs_put``)."""
    return BlackScholesLinear(payoff="put", **kwargs)


def bs_forward(**kwargs: Any) -> BlackScholesLinear:
    """Forward contract under Black-Scholes (``equation/bs_forward``)."""
    return BlackScholesLinear(payoff="forward", **kwargs)


def basket_call(**kwargs: Any) -> BlackScholesLinear:
    """Call on a 100-asset basket (strike 10,000, vol 0.25, r 0.01 unless overridden) (``equation/basket_call``)."""
    kw: dict[str, Any] = {"dim": 100, "strike": 10_000.0, "sigma": 0.25, "r": 0.01, **kwargs}
    return BlackScholesLinear(payoff="call", **kw)


def equation_names() -> list[str]:
    """Names of the registered equations (``equation/<name>`` ids), sorted."""
    return registry.names("equation")


def make_equation(name: str, **kwargs: Any) -> Equation:
    """Build the equation registered as ``equation/<name>`` with constructor overrides ``kwargs``.

    An unknown name is a :class:`SpecError` (key ``equation``) listing the known ids.
    """
    build = registry.resolve(name, kind="equation", key="equation")
    eq = build(**kwargs)
    if not isinstance(eq, Equation):
        raise SpecError(None, "equation", f"equation/{name} did not build an Equation")
    return eq
