"""``XvaRun``: the four-layer deep xVA pipeline driven by a TOML spec (``marketlab xva <spec>``).

    run = XvaRun.from_spec("specs/xva/xva_forward_cva.toml")
    summary = run.run()          # dict: xVA per netting set (deep BSDE + outer MC +- SE), IM, exposures, plots

Order: L1 clean values (one multi-output deep BSDE, or analytic) -> exposures (EE/EPE/ENE/PFE) -> L2 IM by
quantile regression -> L3 CVA/DVA/MVA/ColVA (deep BSDE with change-of-measure mixture when a structural
party exists and ``run.change_of_measure``) -> L4 FVA (recursive). Upstream layers are frozen and evaluated
on the paths of the layer being trained.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from marketlab.core.device import get_device
from marketlab.pricing.bsde.equations import PathBatch
from marketlab.pricing.bsde.solver import DeepBSDESolver, SolverConfig
from marketlab.pricing.xva.exposure import outer_mc, plot_profiles, plot_xva, profiles
from marketlab.pricing.xva.layers import XVA_NAMES, CleanEquation, FvaEquation, QuantileIM, XvaEquation
from marketlab.pricing.xva.market import MarketModel
from marketlab.pricing.xva.portfolio import Portfolio
from marketlab.pricing.xva.spec import LayerTraining, XvaSpec


def solver_config(t: LayerTraining, *, seed: int, device: str, progress: bool, measures: tuple[int, ...] = (0,),
                  valid_size: int = 1024, tilt_trains_y0: bool = True) -> SolverConfig:
    """Map a spec's per-layer training table onto :class:`SolverConfig`."""
    return SolverConfig(
        network=t.network, hidden=tuple(t.hidden), activation=t.activation, precision=t.precision,
        batch_size=t.batch_size, iterations=t.iterations, lr_values=tuple(t.lr_values),
        lr_boundaries=tuple(t.lr_boundaries), log_every=max(1, t.iterations // 10), seed=seed, device=device,
        progress=progress, measures=measures, valid_size=valid_size, clip=None, y0_lr_factor=t.y0_lr_factor,
        tilt_trains_y0=tilt_trains_y0,
    )


class XvaRun:
    """One configured pipeline run; build with :meth:`from_spec` or from an :class:`XvaSpec`."""

    def __init__(self, spec: XvaSpec) -> None:
        self.spec = spec
        self.device = get_device(spec.run.device)
        self.dtype = torch.float64
        self.market = MarketModel(spec)
        self.portfolio = Portfolio(spec, self.market)
        self.K = self.portfolio.n_sets
        self.clean_solver: DeepBSDESolver | None = None
        self.im_model: QuantileIM | None = None
        self.xva_solver: DeepBSDESolver | None = None
        self.fva_solver: DeepBSDESolver | None = None

    @classmethod
    def from_spec(cls, path: str | Path, **overrides: Any) -> "XvaRun":
        """Load + validate a TOML spec; ``overrides`` replace fields of the ``[run]`` table (e.g. seed)."""
        spec = XvaSpec.from_toml(path)
        return cls(spec.with_run(**overrides) if overrides else spec)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "XvaRun":
        """Build from the nested mapping a spec file holds (tests, notebooks)."""
        return cls(XvaSpec.from_dict(data))

    # --- layer evaluation on arbitrary paths ---------------------------------------------------------
    def _gen(self, offset: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.spec.run.seed * 1000 + offset)

    @torch.no_grad()
    def clean_values(self, batch: PathBatch) -> Tensor:
        """Trade values ``[M, N+1, P]`` (deep rollout or analytic), zero after each maturity."""
        if self.clean_solver is not None:
            v = self.clean_solver.rollout(batch)
        else:
            v = self.portfolio.analytic_values(batch.x)
        return v * self.portfolio.alive_mask(self.market.N, v.dtype, v.device)

    def _netting_alive(self, v: Tensor) -> Tensor:
        mask = self.portfolio.alive_mask(self.market.N, v.dtype, v.device)  # [N+1, P]
        return (self.portfolio.netting(mask.unsqueeze(0)) > 0).to(v.dtype)  # [1, N+1, K]

    @torch.no_grad()
    def layer2(self, batch: PathBatch) -> dict[str, Tensor]:
        """V, C, IMFC, IMTC ``[M, N+1, K]`` on ``batch``."""
        v = self.portfolio.netting(self.clean_values(batch))
        alive = self._netting_alive(v)
        f = self.spec.funding
        if f.collateral == "vm":
            lag = f.mpr_steps
            c = torch.cat([v[:, :1].expand(-1, lag, -1), v[:, :-lag]], 1) * alive  # VM posted with an MPR lag
        else:
            c = torch.zeros_like(v)
        if self.im_model is not None:
            imfc, imtc = self.im_model.margins(batch.x, v, alive)
        else:
            imfc = imtc = torch.zeros_like(v)
        return {"V": v, "C": c, "imfc": imfc, "imtc": imtc}

    @torch.no_grad()
    def layer3(self, batch: PathBatch) -> dict[str, Tensor]:
        """Layer-2 outputs plus CVA/DVA/MVA/ColVA paths (forward-recursed deep BSDE) ``[M, N+1, K]``."""
        aux = self.layer2(batch)
        if self.xva_solver is None:
            zero = torch.zeros_like(aux["V"])
            aux.update({k: zero for k in XVA_NAMES})
            return aux
        b = PathBatch(batch.x, batch.dw, batch.measure, dict(aux), batch.exit_idx)
        y = self.xva_solver.rollout(b).view(batch.size, self.market.N + 1, self.K, 4)
        for j, name in enumerate(XVA_NAMES):
            aux[name] = y[..., j]
        return aux

    @torch.no_grad()
    def outer_estimates(self, paths: int, seed: int = 11, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
        """Outer-MC (value, SE) ``[K, 4]`` of (cva, dva, mva, colva) with the current clean/IM layers."""
        xeq = XvaEquation(self.market, self.K, self.spec.funding, self.layer2)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        b = xeq.attach_aux(self.market.sample(paths, gen, dtype=self.dtype, device=self.device))
        mc, se = outer_mc(xeq, b, rule=rule)
        return mc.reshape(self.K, 4), se.reshape(self.K, 4)

    # --- the pipeline ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train every configured layer and return the summary (numbers, exposures, timings, plot paths)."""
        spec, mk, K = self.spec, self.market, self.K
        rs = spec.run
        out: dict[str, Any] = {"spec": spec.path, "device": str(self.device), "steps": mk.N, "horizon": mk.T,
                               "paths": rs.paths, "netting_sets": self.portfolio.names, "seconds": {}}
        t0 = time.perf_counter()
        names = self.portfolio.names
        # L1 ------------------------------------------------------------------------------------------
        if rs.clean == "deep":
            eq = CleanEquation(mk, self.portfolio)
            if rs.warm_start:
                eq.y_init_values = eq.initial_guess(2048, torch.Generator().manual_seed(rs.seed + 17))
            else:
                eq.y_init_values = torch.zeros(len(self.portfolio))
            cfg = solver_config(spec.training.clean, seed=rs.seed, device=rs.device, progress=rs.progress)
            self.clean_solver = DeepBSDESolver(eq, cfg)
            res = self.clean_solver.train_model()
            out["clean"] = {"y0": res.y0, "valid_loss": res.valid_loss, "iterations": res.iterations}
        else:
            bad = [i for i, t in enumerate(self.portfolio.trades) if not t.has_analytic()]
            if bad:
                from marketlab.core.errors import SpecError

                raise SpecError(spec.path, "run.clean", f"trade {bad[0]} has no analytic value; use clean='deep'")
        out["seconds"]["clean"] = time.perf_counter() - t0
        x0 = mk.x0(1, self.dtype, torch.device("cpu"))
        out["clean_analytic_t0"] = [
            float(t.analytic_value(0.0, x0)[0]) if t.has_analytic() else None for t in self.portfolio.trades]
        # exposures on fresh paths under the pricing measure
        valid = mk.sample(rs.paths, self._gen(101), dtype=self.dtype, device=self.device)
        v_trades = self.clean_values(valid)
        v_sets = self.portfolio.netting(v_trades)
        D = mk.discount(valid.x)
        prof = profiles(v_sets, D)
        times = np.arange(mk.N + 1) * mk.dt
        out["exposure"] = {"t": times, **{k: v.T for k, v in prof.items()}}
        # L2 ------------------------------------------------------------------------------------------
        t1 = time.perf_counter()
        if "im" in rs.layers and spec.funding.im:
            tr = spec.training.im
            self.im_model = QuantileIM(mk, K, spec.funding, tuple(tr.hidden), torch.Generator().manual_seed(rs.seed),
                                       self.dtype).to(self.device)
            pool = mk.sample(max(1024, rs.paths // 2), self._gen(202), dtype=self.dtype, device=self.device)
            v_pool = self.portfolio.netting(self.clean_values(pool))
            info = self.im_model.fit(pool.x, v_pool, iterations=tr.iterations, batch_size=tr.batch_size,
                                     lr_values=tr.lr_values, lr_boundaries=tr.lr_boundaries, gen=self._gen(203),
                                     progress=rs.progress)
            aux = self.layer2(valid)
            out["im"] = {"imfc_0": aux["imfc"][0, 0].cpu().numpy(), "imtc_0": aux["imtc"][0, 0].cpu().numpy(),
                         "expected_imfc": aux["imfc"].mean(0).T.cpu().numpy(), **info}
        out["seconds"]["im"] = time.perf_counter() - t1
        # L3 ------------------------------------------------------------------------------------------
        t2 = time.perf_counter()
        table: dict[str, dict[str, float]] = {n: {} for n in names}
        if "xva" in rs.layers:
            xeq = XvaEquation(mk, K, spec.funding, self.layer2)
            xbatch = xeq.attach_aux(mk.sample(rs.paths, self._gen(303), dtype=self.dtype, device=self.device))
            mc, se = outer_mc(xeq, xbatch)
            mc_left, _ = outer_mc(xeq, xbatch, rule="left")
            xeq.y_init_values = torch.as_tensor(mc_left) if rs.warm_start else torch.zeros(xeq.n_out)
            measures = (0, 1) if (rs.change_of_measure and mk.structural) else (0,)
            cfg = solver_config(spec.training.xva, seed=rs.seed + 1, device=rs.device, progress=rs.progress,
                                measures=measures, tilt_trains_y0=rs.tilt_trains_y0)
            self.xva_solver = DeepBSDESolver(xeq, cfg)
            res = self.xva_solver.train_model()
            y0 = np.asarray(res.y0).reshape(K, 4)
            mc, se, mc_left = mc.reshape(K, 4), se.reshape(K, 4), mc_left.reshape(K, 4)
            out["xva"] = {"valid_loss": res.valid_loss, "iterations": res.iterations, "measures": list(measures),
                          "outer_mc": {}, "outer_mc_se": {}, "outer_mc_left": {}}
            for k, n in enumerate(names):
                for j, key in enumerate(XVA_NAMES):
                    # inactive terms (no such default / no IM / no collateral spread) are exactly 0
                    table[n][key] = float(y0[k, j]) if bool(xeq.active[k, j]) else 0.0
                out["xva"]["outer_mc"][n] = {key: float(mc[k, j]) for j, key in enumerate(XVA_NAMES)}
                out["xva"]["outer_mc_se"][n] = {key: float(se[k, j]) for j, key in enumerate(XVA_NAMES)}
                out["xva"]["outer_mc_left"][n] = {key: float(mc_left[k, j]) for j, key in enumerate(XVA_NAMES)}
        out["seconds"]["xva"] = time.perf_counter() - t2
        # L4 ------------------------------------------------------------------------------------------
        t3 = time.perf_counter()
        if "fva" in rs.layers:
            feq = FvaEquation(mk, K, spec.funding, self.layer3)
            cfg = solver_config(spec.training.fva, seed=rs.seed + 2, device=rs.device, progress=rs.progress)
            self.fva_solver = DeepBSDESolver(feq, cfg)
            res = self.fva_solver.train_model()
            out["fva"] = {"valid_loss": res.valid_loss, "iterations": res.iterations}
            for k, n in enumerate(names):
                table[n]["fva"] = float(res.y0[k])
        out["seconds"]["fva"] = time.perf_counter() - t3
        out["xva_table"] = table
        out["seconds"]["total"] = time.perf_counter() - t0
        if rs.plots and rs.out_dir:
            od = Path(rs.out_dir)
            out["plots"] = [str(plot_profiles(prof, times, names, od / "exposure.png"))]
            if any(table.values()):
                out["plots"].append(str(plot_xva(table, od / "xva.png")))
        return out
