"""The four xVA layers as BSDE equations on the joint market/credit paths (bank-MtM convention).

Each layer is an :class:`~marketlab.pricing.bsde.equations.Equation` whose ``aux`` tensors ``[M, N+1, K]``
come from the frozen lower layers evaluated on the SAME simulated paths (``Upstream``):

- L1 :class:`CleanEquation`  -- all P trades at once (one multi-output network):
  ``-dV_j = (c_j(t, X) - r V_j) dt - Z dW``, V_j = payoff_j at maturity (c_j = swap cash flows).
- L2 :class:`QuantileIM` -- IM by deep quantile regression of the MtM change over the margin period of risk:
  IMFC = q_alpha(D V_{t+d} / D_t - V_t | t, X, V)^+, IMTC = (-q_{1-alpha}(...))^+ (pinball loss).
- L3 :class:`XvaEquation` -- per netting set k the outputs (CVA, DVA, MVA, ColVA):
  reduced form  f = (1-R_C) lam_C (V-C-IMFC)^+ , (1-R_B) lam_B (V-C+IMTC)^- , s_IM IMTC , (r_c - r) C
                    minus (r + lam_B + lam_C) y       (pre-default reduction, first-to-default);
  structural    the same running MVA/ColVA terms, discount r, and close-out values paid at the first exit
                (Brownian-bridge monitored) of the bank/counterparty asset: CVA_tau = (1-R_C)(V-C-IMFC)^+ ...
- L4 :class:`FvaEquation` -- recursive: with V_adj = V - CVA + DVA - MVA - FVA,
  f = (r_fb - r)(V_adj - C)^+ - (r_fl - r)(V_adj - C)^- - disc * FVA  (nonlinear when r_fb != r_fl).

Sign conventions: CVA, DVA, MVA >= 0 are costs/benefits as in V = V_clean - CVA + DVA - MVA - FVA;
ColVA = E int D (r_c - r) C dt is the cost of remunerating received collateral at r_c.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from marketlab.pricing.bsde.equations import Equation, PathBatch
from marketlab.pricing.xva.market import MarketModel
from marketlab.pricing.xva.portfolio import Portfolio
from marketlab.pricing.xva.spec import FundingSpec

Upstream = Callable[[PathBatch], dict[str, Tensor]]


class _MarketEquation(Equation):
    """Shared plumbing: grid, sampling and tilts come from the market model; aux from ``upstream``."""

    def __init__(self, market: MarketModel, upstream: Upstream | None = None) -> None:
        self.market = market
        self.dim = self.dim_w = market.dim
        self.T, self.N = market.T, market.N
        self.tilts = market.tilts
        self.upstream = upstream
        self.y_init_values: Tensor | None = None

    def sample(self, M: int, gen: torch.Generator, *, dtype: torch.dtype = torch.float64,
               device: torch.device | None = None, measure: int = 0) -> PathBatch:
        return self.market.sample(M, gen, dtype=dtype, device=device, measure=measure)

    def attach_aux(self, batch: PathBatch) -> PathBatch:
        if self.upstream is not None:
            batch.aux.update(self.upstream(batch))
        return batch

    def _rate(self, x: Tensor) -> Tensor | float:
        r = self.market.rate(x)
        return r.unsqueeze(-1) if isinstance(r, Tensor) else r


# ------------------------------------------------------------------------------------------------------
# Layer 1: clean values
# ------------------------------------------------------------------------------------------------------


class CleanEquation(_MarketEquation):
    """P linear BSDEs (one per trade), solved jointly by one network."""

    name = "clean_values"

    def __init__(self, market: MarketModel, portfolio: Portfolio) -> None:
        super().__init__(market)
        self.portfolio = portfolio
        self.n_out = len(portfolio)
        self.y_init_range = (0.0, 0.0)

    def initial_guess(self, M: int, gen: torch.Generator) -> Tensor:
        """Crude Monte Carlo of each trade's discounted cash flows ``[P]`` (y0 starting point)."""
        b = self.sample(M, gen)
        D = self.market.discount(b.x)
        out = []
        for tr in self.portfolio.trades:
            pv = D[:, tr.step] * tr.payoff(b.x[:, tr.step])
            if tr.spec.type == "swap":
                cf = torch.stack([torch.as_tensor(tr.cashflow_rate(b.x[:, n])) * D[:, n]
                                  for n in range(tr.step)], 1)
                pv = pv + cf.sum(1) * self.market.dt
            out.append(pv.mean())
        return torch.stack(out)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        cash = []
        for tr in self.portfolio.trades:
            c = tr.cashflow_rate(x) if n < tr.step else 0.0
            cash.append(torch.as_tensor(c, dtype=x.dtype, device=x.device).expand(x.shape[0]))
        return torch.stack(cash, -1) - self._rate(x) * y

    def terminal(self, batch: PathBatch) -> tuple[Tensor, Tensor]:
        """Terminal values of the layer for a path batch, and the steps they apply at."""
        M = batch.size
        idx = torch.tensor([tr.step for tr in self.portfolio.trades], device=batch.x.device).expand(M, -1)
        vals = torch.stack([tr.payoff(batch.x[:, tr.step]) for tr in self.portfolio.trades], -1)
        return idx, vals


# ------------------------------------------------------------------------------------------------------
# Layer 2: initial margin by deep quantile regression
# ------------------------------------------------------------------------------------------------------


def pinball(q: Tensor, target: Tensor, alpha: float | Tensor) -> Tensor:
    """Check loss kappa_alpha(q; x) = max(alpha (x - q), (alpha - 1)(x - q)), elementwise."""
    u = target - q
    return torch.maximum(alpha * u, (alpha - 1.0) * u)


class QuantileIM(nn.Module):
    """q_theta(t/T, x, V) -> (q_alpha, q_{1-alpha}) per netting set ``[..., K, 2]``; one net for all steps.

    Inputs are standardised with statistics of the training pool; the label of a pair (t_n, X_n, V_n) is the
    single-path look-ahead e^{-int r} V_{n+d} - V_n with d = min(mpr_steps, N - n): the pinball loss turns
    it into the conditional quantile without nested simulation.
    """

    # buffers (register_buffer in __init__), typed for mypy
    mu: Tensor
    sd: Tensor
    scale: Tensor

    def __init__(self, market: MarketModel, K: int, funding: FundingSpec, hidden: tuple[int, ...],
                 gen: torch.Generator, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.market, self.K, self.alpha, self.mpr = market, K, funding.alpha, funding.mpr_steps
        d_in = 1 + market.dim + K
        layers: list[nn.Module] = []
        sizes = [d_in, *hidden, 2 * K]
        for a, b in zip(sizes[:-1], sizes[1:], strict=False):
            lin = nn.Linear(a, b, dtype=dtype)
            bound = 1.0 / math.sqrt(a)
            with torch.no_grad():
                lin.weight.copy_((torch.rand(b, a, generator=gen, dtype=dtype) * 2 - 1) * bound)
                lin.bias.copy_((torch.rand(b, generator=gen, dtype=dtype) * 2 - 1) * bound)
            layers += [lin, nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])
        self.register_buffer("mu", torch.zeros(d_in, dtype=dtype))
        self.register_buffer("sd", torch.ones(d_in, dtype=dtype))
        self.register_buffer("scale", torch.ones(K, dtype=dtype))

    def features(self, x: Tensor, v: Tensor) -> Tensor:
        """x ``[M, N+1, d]``, v ``[M, N+1, K]`` -> inputs ``[M, N+1, 1+d+K]``."""
        M, n1 = x.shape[0], x.shape[1]
        t = torch.arange(n1, dtype=x.dtype, device=x.device) / (n1 - 1)
        return torch.cat([t.view(1, -1, 1).expand(M, -1, 1), x, v], -1)

    def labels(self, x: Tensor, v: Tensor) -> Tensor:
        """Discounted MtM change over the (truncated) MPR ``[M, N+1, K]`` (0 at the last step)."""
        N = x.shape[1] - 1
        D = self.market.discount(x)
        out = torch.zeros_like(v)
        for n in range(N):
            m = min(n + self.mpr, N)
            out[:, n] = (D[:, m] / D[:, n]).unsqueeze(-1) * v[:, m] - v[:, n]
        return out

    def forward(self, feats: Tensor) -> Tensor:
        """Forward pass (shapes in the class docstring)."""
        q = self.mlp((feats - self.mu) / self.sd)
        out: Tensor = q.view(*q.shape[:-1], self.K, 2) * self.scale.unsqueeze(-1)
        return out

    def fit(self, x: Tensor, v: Tensor, *, iterations: int, batch_size: int, lr_values: list[float],
            lr_boundaries: list[int], gen: torch.Generator, patience: int = 100,
            progress: bool = False) -> dict[str, float]:
        """Train on pooled (step, path) pairs with an 80/20 split and early stopping on the holdout."""
        from tqdm.auto import tqdm

        feats = self.features(x, v)[:, :-1].reshape(-1, self.mu.numel())
        lab = self.labels(x, v)[:, :-1].reshape(-1, self.K)
        with torch.no_grad():
            self.mu.copy_(feats.mean(0))
            sd = feats.std(0)
            self.sd.copy_(torch.where(sd > 1e-10, sd, torch.ones_like(sd)))
            s = lab.abs().mean(0)
            self.scale.copy_(torch.where(s > 1e-12, 3.0 * s, torch.ones_like(s)))
        perm = torch.randperm(feats.shape[0], generator=gen, device=gen.device).to(feats.device)
        cut = int(0.8 * feats.shape[0])
        tr, va = perm[:cut], perm[cut:]
        opt = torch.optim.Adam(self.parameters(), lr=lr_values[0])
        best, best_state, since = math.inf, None, 0
        levels = torch.tensor([self.alpha, 1.0 - self.alpha], dtype=feats.dtype, device=feats.device)

        def loss_of(idx: Tensor) -> Tensor:
            return pinball(self(feats[idx]), lab[idx].unsqueeze(-1), levels).mean()

        it = 0
        for it in tqdm(range(iterations), disable=not progress, desc="im quantile", leave=False):
            lr = lr_values[-1]
            for val, bnd in zip(lr_values, lr_boundaries, strict=False):
                if it < bnd:
                    lr = val
                    break
            for g in opt.param_groups:
                g["lr"] = lr
            pick = tr[torch.randint(0, tr.numel(), (batch_size,), generator=gen, device=gen.device).to(tr.device)]
            loss = loss_of(pick)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if it % 10 == 0:
                with torch.no_grad():
                    vl = float(loss_of(va))
                if vl < best - 1e-12:
                    best, since = vl, 0
                    best_state = {k: t.detach().clone() for k, t in self.state_dict().items()}
                else:
                    since += 10
                    if since >= patience:
                        break
        if best_state is not None:
            self.load_state_dict(best_state)
        return {"holdout_pinball": best, "iterations": it + 1}

    @torch.no_grad()
    def margins(self, x: Tensor, v: Tensor, alive: Tensor) -> tuple[Tensor, Tensor]:
        """(IMFC, IMTC) ``[M, N+1, K]``, zero at the last step and after the netting set expires."""
        q = self(self.features(x, v))
        imfc = torch.relu(q[..., 0]) * alive
        imtc = torch.relu(-q[..., 1]) * alive
        imfc[:, -1] = 0.0
        imtc[:, -1] = 0.0
        return imfc, imtc


# ------------------------------------------------------------------------------------------------------
# Layer 3: CVA, DVA, MVA, ColVA;  Layer 4: FVA
# ------------------------------------------------------------------------------------------------------

XVA_NAMES = ("cva", "dva", "mva", "colva")


class _CreditMixin:
    """Vectors of credit parameters per netting set, split by model (intensity vs structural)."""

    market: MarketModel

    def _setup_credit(self) -> None:
        mk = self.market
        cps = mk.counterparties
        self.lam_c = torch.tensor([c.credit.intensity if c.credit.model == "intensity" else 0.0 for c in cps])
        self.rec_c = torch.tensor([c.credit.recovery for c in cps])
        b = mk.bank.credit
        self.lam_b = b.intensity if b.model == "intensity" else 0.0
        self.rec_b = b.recovery
        self.bank_defaults = b.model != "none"
        self.cp_defaults = torch.tensor([c.credit.model != "none" for c in cps])
        self.bank_k = mk.entity_index(mk.bank)
        self.cp_k = [mk.entity_index(c) for c in cps]
        self.structural = bool(mk.structural)

    def _disc(self, x: Tensor, rate: Tensor | float) -> Tensor:
        lam = (self.lam_b + self.lam_c).to(x.dtype).to(x.device)
        return rate + lam  # [M, K] or [K]

    def default_steps(self, batch: PathBatch) -> tuple[Tensor, Tensor]:
        """(tau_B, tau_C) grid indices ``[M, K]`` of structural defaults (N+1 = none / not structural)."""
        M, K, N = batch.size, len(self.market.counterparties), self.market.N
        none = torch.full((M, K), N + 1, dtype=torch.long, device=batch.x.device)
        tb = none.clone()
        if self.bank_k is not None:
            tb = batch.exit_idx[:, self.bank_k].unsqueeze(1).expand(M, K)  # type: ignore[index]
        tc = none.clone()
        for k, ek in enumerate(self.cp_k):
            if ek is not None:
                tc[:, k] = batch.exit_idx[:, ek]  # type: ignore[index]
        return tb, tc


class XvaEquation(_MarketEquation, _CreditMixin):
    """Layer 3: outputs ``[M, 4K]`` laid out as (cva, dva, mva, colva) per netting set."""

    name = "xva"

    def __init__(self, market: MarketModel, K: int, funding: FundingSpec, upstream: Upstream) -> None:
        super().__init__(market, upstream)
        self.K, self.n_out = K, 4 * K
        self._setup_credit()
        r = market.r
        self.im_spread = funding.im_spread if funding.im_spread is not None else (
            (funding.r_fb - r) if funding.r_fb is not None else 0.0)
        self.r_c = funding.r_c if funding.r_c is not None else r
        self.y_init_range = (0.0, 0.0)
        # which of (cva, dva, mva, colva) can be non-zero per netting set; the others are reported as 0
        cols = []
        for k in range(K):
            cols.append([bool(self.cp_defaults[k]), self.bank_defaults,
                         bool(funding.im) and self.im_spread != 0.0,
                         funding.collateral == "vm" and self.r_c != r])
        self.active = torch.tensor(cols)  # [K, 4]

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        r = self._rate(x)
        v, c, imfc, imtc = aux["V"], aux["C"], aux["imfc"], aux["imtc"]
        lam_c = self.lam_c.to(x.dtype).to(x.device)
        cva = (1 - self.rec_c.to(x.dtype).to(x.device)) * lam_c * torch.relu(v - c - imfc)
        dva = (1 - self.rec_b) * self.lam_b * torch.relu(-(v - c + imtc))
        mva = self.im_spread * imtc
        rr = r if isinstance(r, float) else r
        colva = (self.r_c - rr) * c
        run = torch.stack([cva, dva, mva, colva], -1)  # [M, K, 4]
        disc = self._disc(x, r)
        yk = y.view(-1, self.K, 4)
        if isinstance(disc, Tensor) and disc.dim() == 2:
            disc = disc.unsqueeze(-1)
        elif isinstance(disc, Tensor):
            disc = disc.view(1, -1, 1)
        return (run - disc * yk).reshape(-1, self.n_out)

    def terminal(self, batch: PathBatch) -> tuple[Tensor, Tensor]:
        """Terminal values of the layer for a path batch, and the steps they apply at."""
        M, K, N = batch.size, self.K, self.N
        dev, dt = batch.x.device, batch.x.dtype
        if not self.structural:
            idx = torch.full((M, self.n_out), N, dtype=torch.long, device=dev)
            return idx, torch.zeros((M, self.n_out), dtype=dt, device=dev)
        tb, tc = self.default_steps(batch)
        tau = torch.minimum(tb, tc)
        stop = tau.clamp(max=N)  # [M, K]
        v, c = batch.aux["V"], batch.aux["C"]
        imfc, imtc = batch.aux["imfc"], batch.aux["imtc"]

        def at(a: Tensor) -> Tensor:
            return a.gather(1, stop.unsqueeze(1)).squeeze(1)

        rec_c = self.rec_c.to(dt).to(dev)
        c_first = (tc <= tb) & (tc <= N)
        b_first = (tb <= tc) & (tb <= N)
        cva = c_first.to(dt) * (1 - rec_c) * torch.relu(at(v) - at(c) - at(imfc))
        dva = b_first.to(dt) * (1 - self.rec_b) * torch.relu(-(at(v) - at(c) + at(imtc)))
        zero = torch.zeros_like(cva)
        vals = torch.stack([cva, dva, zero, zero], -1).reshape(M, self.n_out)
        idx = stop.unsqueeze(-1).expand(M, K, 4).reshape(M, self.n_out)
        return idx, vals


class FvaEquation(_MarketEquation, _CreditMixin):
    """Layer 4: FVA per netting set ``[M, K]`` (recursive, nonlinear for r_fb != r_fl)."""

    name = "fva"

    def __init__(self, market: MarketModel, K: int, funding: FundingSpec, upstream: Upstream) -> None:
        super().__init__(market, upstream)
        self.K = self.n_out = K
        self._setup_credit()
        self.r_fb = float(funding.r_fb)  # type: ignore[arg-type]
        self.r_fl = float(funding.r_fl)  # type: ignore[arg-type]
        self.y_init_range = (0.0, 0.0)

    def f(self, n: int, t: float, x: Tensor, y: Tensor, z: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Generator f(t_n, x, y, z) of the BSDE (shapes in :class:`Equation`)."""
        r = self._rate(x)
        v_adj = aux["V"] - aux["cva"] + aux["dva"] - aux["mva"] - y
        net = v_adj - aux["C"]
        run = (self.r_fb - r) * torch.relu(net) - (self.r_fl - r) * torch.relu(-net)
        disc = self._disc(x, r)
        return run - disc * y

    def terminal(self, batch: PathBatch) -> tuple[Tensor, Tensor]:
        """Terminal values of the layer for a path batch, and the steps they apply at."""
        M, N = batch.size, self.N
        dev = batch.x.device
        if not self.structural:
            idx = torch.full((M, self.K), N, dtype=torch.long, device=dev)
        else:
            tb, tc = self.default_steps(batch)
            idx = torch.minimum(tb, tc).clamp(max=N)
        return idx, torch.zeros((M, self.K), dtype=batch.x.dtype, device=dev)
