"""Trades and netting sets on the :class:`MarketModel` state, in the bank's MtM convention (asset > 0).

Each trade knows its payoff at maturity, its running cash-flow rate (swaps), its maturity step on the grid and,
where one exists, its analytic clean value (used by ``clean = "analytic"`` runs and by the tests).
``quantity`` > 0 means the bank is long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from marketlab.pricing.xva.market import MarketModel
from marketlab.pricing.xva.spec import TradeSpec, XvaSpec


def _ncdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def _npdf(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass
class Trade:
    """One trade: its spec, netting-set index and maturity step."""

    spec: TradeSpec
    netting_set: int
    step: int
    market: MarketModel

    @property
    def assets(self) -> list[int]:
        """Indices of the assets the trade depends on."""
        if self.spec.type in ("forward", "call", "put"):
            return [self.spec.asset]
        return list(self.spec.assets) if self.spec.assets is not None else list(range(self.market.n_assets))

    def underlying(self, x: Tensor) -> Tensor:
        """S (single asset) or the basket sum, ``[...]``."""
        return x[..., self.assets].sum(-1)

    def payoff(self, x: Tensor) -> Tensor:
        """Bank's payoff at maturity for states x ``[..., d]`` (swaps pay only running cash flows: 0)."""
        t, q = self.spec.type, self.spec.quantity
        if t == "swap":
            return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        s, k = self.underlying(x), self.spec.strike
        if t in ("forward", "basket_forward"):
            return q * (s - k)
        if t in ("call", "basket_call"):
            return q * torch.relu(s - k)
        return q * torch.relu(k - s)

    def cashflow_rate(self, x: Tensor) -> Tensor | float:
        """Cash received per year while alive (payer swap: notional (r - K))."""
        if self.spec.type != "swap":
            return 0.0
        return self.spec.quantity * self.spec.notional * (self.market.rate(x) - self.spec.fixed_rate)

    # --- analytic clean values ---------------------------------------------------------------------
    def has_analytic(self) -> bool:
        """Whether the trade has a closed-form clean value under the market model."""
        mk = self.market
        if self.spec.type in ("forward", "basket_forward", "swap"):
            return True
        if mk.rates is not None:
            return False
        if self.spec.type in ("call", "put"):
            return True
        return False

    def analytic_value(self, t: float, x: Tensor) -> Tensor:
        """Clean value at time t (years from valuation) on states x ``[M, d]``; 0 after maturity."""
        sp, mk = self.spec, self.market
        tau = self.step * mk.dt - t
        if tau < -1e-12:
            return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        tau = max(tau, 0.0)
        q, k = sp.quantity, sp.strike
        if sp.type == "swap":
            a, th, sr = mk.rates.a, mk.rates.theta, mk.rates.sigma  # type: ignore[union-attr]
            short_rate = x[:, mk.rate_col]
            ann = vasicek_annuity(a, th, sr, tau, short_rate)
            return q * sp.notional * (1.0 - vasicek_bond(a, th, sr, tau, short_rate) - sp.fixed_rate * ann)
        df = vasicek_bond(mk.rates.a, mk.rates.theta, mk.rates.sigma, tau, x[:, mk.rate_col]) \
            if mk.rates is not None else math.exp(-mk.r * tau)
        s = self.underlying(x)
        if sp.type in ("forward", "basket_forward"):
            return q * (s - k * df)  # S discounted is a martingale in both models (drift r S)
        if sp.type not in ("call", "put"):
            raise ValueError(f"no analytic value for {sp.type}")
        vol = float(mk.vol[sp.asset])
        r = mk.r
        if tau <= 1e-12:
            return self.payoff(x)
        if mk.model == "bachelier":
            if r != 0.0:
                raise ValueError("analytic Bachelier option values need r = 0")
            sd = vol * math.sqrt(tau)
            dd = (s - k) / sd
            call = (s - k) * _ncdf(dd) + sd * _npdf(dd)
            return q * (call if sp.type == "call" else call - (s - k))
        sq = vol * math.sqrt(tau)
        d1 = (torch.log(s / k) + (r + 0.5 * vol * vol) * tau) / sq
        call = s * _ncdf(d1) - k * df * _ncdf(d1 - sq)
        return q * (call if sp.type == "call" else call - s + k * df)


def vasicek_bond(a: float, theta: float, sigma: float, tau: float, r: Tensor) -> Tensor:
    """Zero-coupon bond P(t, t+tau) = A exp(-B r) under Vasicek."""
    B = (1.0 - math.exp(-a * tau)) / a
    lnA = (theta - sigma**2 / (2 * a * a)) * (B - tau) - sigma**2 * B * B / (4 * a)
    return torch.exp(lnA - B * r)


def vasicek_annuity(a: float, theta: float, sigma: float, tau: float, r: Tensor, n: int = 64) -> Tensor:
    """int_0^tau P(t, t+u) du by Gauss-Legendre (n nodes)."""
    if tau <= 0:
        return torch.zeros_like(r)
    nodes, weights = np.polynomial.legendre.leggauss(n)
    u = 0.5 * tau * (nodes + 1.0)
    total = torch.zeros_like(r)
    for ui, wi in zip(u, weights, strict=False):
        total = total + 0.5 * tau * wi * vasicek_bond(a, theta, sigma, float(ui), r)
    return total


class Portfolio:
    """All trades of a spec grouped into netting sets (one per counterparty)."""

    def __init__(self, spec: XvaSpec, market: MarketModel) -> None:
        self.names = [c.name for c in spec.counterparties]
        self.market = market
        self.trades: list[Trade] = []
        for t in spec.trades:
            step = int(round((t.maturity - spec.run.valuation_date) / market.dt))
            self.trades.append(Trade(t, self.names.index(t.counterparty), min(max(step, 1), market.N), market))
        self.n_sets = len(self.names)
        w = torch.zeros(len(self.trades), self.n_sets, dtype=torch.float64)
        for j, tr in enumerate(self.trades):
            w[j, tr.netting_set] = 1.0
        self.membership = w  # [P, K]

    def __len__(self) -> int:
        return len(self.trades)

    def analytic_values(self, x: Tensor) -> Tensor:
        """Clean values of all trades on paths x ``[M, N+1, d]`` -> ``[M, N+1, P]``."""
        N, dt = self.market.N, self.market.dt
        cols = []
        for tr in self.trades:
            cols.append(torch.stack([tr.analytic_value(n * dt, x[:, n]) for n in range(N + 1)], 1))
        return torch.stack(cols, -1)

    def alive_mask(self, N: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """``[N+1, P]``: 1 up to and including a trade's maturity step, 0 after it.

        At the maturity index the value is the payoff about to be paid, so EPE(T) = E[payoff^+] as in the
        closed-form exposure profiles; after payment the exposure is 0.
        """
        n = torch.arange(N + 1, device=device).unsqueeze(1)
        steps = torch.tensor([t.step for t in self.trades], device=device).unsqueeze(0)
        return (n <= steps).to(dtype)

    def netting(self, values: Tensor) -> Tensor:
        """Trade values ``[M, N+1, P]`` -> netting-set values ``[M, N+1, K]``."""
        return values @ self.membership.to(values.dtype).to(values.device)
