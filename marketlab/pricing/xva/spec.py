"""xVA run specification: frozen configs loaded from TOML, validated with one-line errors naming the key.

Layout of ``specs/xva/xva_*.toml``::

    [run]            seed, valuation_date, steps, paths, device, layers, clean ("deep" | "analytic"),
                     change_of_measure, tilt, bridge, out_dir, plots, progress, warm_start
    [market]         r, model ("gbm" | "bachelier"), n_assets, spot, vol (scalar or list), asset_rho,
                     correlation (optional full matrix over all factors), rates (optional Vasicek table)
    [bank]           credit of the bank (model "none" | "intensity" | "structural")
    [[counterparties]]  name + credit fields; each counterparty is one netting set
    [[trades]]       type, counterparty, quantity, strike, maturity, asset/assets, fixed_rate
    [funding]        r_fb, r_fl, collateral ("none" | "vm"), r_c, im, alpha, mpr_steps, im_spread
    [training]       solver settings per layer (iterations, batch_size, lr_values, lr_boundaries, network, hidden)

Times are in years; maturities are absolute dates on the same axis as ``valuation_date``. Load with
``XvaSpec.from_toml(path)`` or ``XvaSpec.from_dict(mapping)``; every error names the file and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np

from marketlab.core.config import (
    FiniteFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Spec,
    SpecPath,
    from_dict,
)
from marketlab.core.errors import SpecError

#: Most simulated paths a run may ask for: [paths, steps, factors] float64 tensors must fit in memory.
MAX_PATHS = 1 << 22
MAX_STEPS = 10_000


@dataclass(frozen=True)
class RunSpec:
    """``[run]``: seed, time grid, Monte Carlo size, which layers run and how."""

    seed: NonNegativeInt = 0
    valuation_date: FiniteFloat = 0.0
    steps: Annotated[int, Range(2, MAX_STEPS)] = 100
    paths: Annotated[int, Range(64, MAX_PATHS)] = 8192
    device: str = "auto"
    layers: tuple[str, ...] = ("clean", "im", "xva", "fva")
    clean: Literal["deep", "analytic"] = "deep"
    change_of_measure: bool = True
    tilt: FiniteFloat = 0.25
    tilt_trains_y0: bool = True  # False: tilted paths train only the Z-net (y0 anchored by the pricing measure)
    bridge: bool = True
    out_dir: SpecPath = ""
    plots: bool = True
    progress: bool = True
    warm_start: bool = False  # start y0 of L1/L3 at a crude Monte Carlo estimate instead of 0


@dataclass(frozen=True)
class RatesSpec:
    """Vasicek short rate dr = a (theta - r) dt + sigma dW."""

    a: float = 0.1
    theta: float = 0.03
    sigma: float = 0.01
    r0: float = 0.02


@dataclass(frozen=True)
class MarketSpec:
    """``[market]``: rate, asset model, spots, vols, correlations, optional Vasicek short rate."""

    r: float = 0.02
    model: Literal["gbm", "bachelier"] = "gbm"
    n_assets: PositiveInt = 1
    spot: float | list[float] = 100.0
    vol: float | list[float] = 0.25
    asset_rho: float = 0.0
    correlation: list[list[float]] | None = None
    rates: RatesSpec | None = None


@dataclass(frozen=True)
class CreditSpec:
    """Credit of one entity: constant intensity (reduced form) or first passage of an asset (structural)."""

    model: Literal["none", "intensity", "structural"] = "none"
    intensity: float = 0.0
    recovery: float = 0.4
    asset0: float = 1.0
    barrier: float = 0.6
    asset_vol: float = 0.25
    market_rho: float = 0.0  # correlation of the structural asset with every market asset (wrong-way risk)


@dataclass(frozen=True)
class CounterpartySpec(CreditSpec):
    """One ``[[counterparties]]`` entry: a name plus its credit; each counterparty is one netting set."""

    name: str = "C"


@dataclass(frozen=True)
class TradeSpec:
    """One ``[[trades]]`` entry; ``maturity`` in years on the valuation-date axis."""

    type: Literal["forward", "call", "put", "basket_call", "basket_forward", "swap"] = "forward"
    counterparty: str = "C"
    quantity: float = 1.0
    strike: float = 100.0
    maturity: float = 1.0
    asset: int = 0
    assets: list[int] | None = None
    fixed_rate: float = 0.0
    notional: float = 100.0


@dataclass(frozen=True)
class FundingSpec:
    """``[funding]``: borrowing/lending rates, collateral, initial margin settings."""

    r_fb: float | None = None
    r_fl: float | None = None
    collateral: Literal["none", "vm"] = "none"
    r_c: float | None = None
    im: bool = False
    alpha: float = 0.99
    mpr_steps: PositiveInt = 8
    im_spread: float | None = None


@dataclass(frozen=True)
class LayerTraining:
    """Solver settings of one layer; the learning rate is ``lr_values[i]`` before ``lr_boundaries[i]``."""

    iterations: PositiveInt = 600
    batch_size: PositiveInt = 256
    lr_values: list[PositiveFloat] = field(default_factory=lambda: [1e-2, 1e-3])
    lr_boundaries: list[PositiveInt] = field(default_factory=lambda: [400])
    network: Literal["per_step", "time"] = "time"
    hidden: list[PositiveInt] = field(default_factory=lambda: [32, 32])
    activation: Literal["relu", "tanh", "silu"] = "tanh"
    precision: Literal["float64", "float32", "autocast"] = "float64"
    y0_lr_factor: PositiveFloat = 1.0


@dataclass(frozen=True)
class TrainingSpec:
    """``[training]``: one :class:`LayerTraining` per layer."""

    clean: LayerTraining = LayerTraining()
    im: LayerTraining = LayerTraining(iterations=400, hidden=[16, 16, 16], activation="relu",
                                      lr_values=[1e-2, 1e-3], lr_boundaries=[300])
    xva: LayerTraining = LayerTraining()
    fva: LayerTraining = LayerTraining()


@dataclass(frozen=True)
class XvaSpec(Spec):
    """A whole xVA run (see the module docstring); ``path`` is the file it came from (messages, outputs)."""

    run: RunSpec = field(default_factory=RunSpec)
    market: MarketSpec = field(default_factory=MarketSpec)
    bank: CreditSpec = field(default_factory=CreditSpec)
    counterparties: tuple[CounterpartySpec, ...] = ()
    trades: tuple[TradeSpec, ...] = ()
    funding: FundingSpec = field(default_factory=FundingSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    path: ClassVar[str] = ""  # set per instance by from_dict; not a key of the file

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | Path | None = None,
                  section: str | None = None) -> XvaSpec:
        """Build and validate from the nested mapping a TOML file holds."""
        spec = super().from_dict(data, path=path, section=section)
        object.__setattr__(spec, "path", str(path) if path is not None else "")
        return spec

    def validate(self, path: str | Path | None = None) -> None:
        """Cross-field rules (see :func:`validate`)."""
        validate(self, path)

    def with_run(self, **overrides: Any) -> XvaSpec:
        """A copy with fields of ``[run]`` replaced (checked like the file's), keeping :attr:`path`."""
        run = from_dict(RunSpec, {**asdict(self.run), **overrides}, path=self.path or None, prefix="run.")
        spec = replace(self, run=run)
        object.__setattr__(spec, "path", self.path)
        return spec

    @property
    def horizon(self) -> float:
        """Years from the valuation date to the last maturity."""
        return max(t.maturity for t in self.trades) - self.run.valuation_date

    def vector(self, name: str) -> np.ndarray:
        """``spot`` or ``vol`` broadcast to ``[n_assets]``."""
        v = getattr(self.market, name)
        arr = np.full(self.market.n_assets, float(v)) if isinstance(v, (int, float)) else np.asarray(v, float)
        return arr


def _check(cond: bool, path: str | Path | None, key: str, problem: str) -> None:
    if not cond:
        raise SpecError(path, key, problem)


def _check_credit(c: CreditSpec, path: str | Path | None, key: str) -> None:
    if c.model == "intensity":
        _check(c.intensity > 0, path, f"{key}.intensity", f"intensity must be > 0, got {c.intensity}")
    if c.model != "none":
        _check(0.0 <= c.recovery <= 1.0, path, f"{key}.recovery", f"recovery must be in [0, 1], got {c.recovery}")
    if c.model == "structural":
        _check(c.asset_vol > 0, path, f"{key}.asset_vol", f"volatility must be > 0, got {c.asset_vol}")
        _check(c.asset0 > 0, path, f"{key}.asset0", f"asset value must be > 0, got {c.asset0}")
        _check(0 < c.barrier < c.asset0, path, f"{key}.barrier",
               f"barrier must lie in (0, asset0={c.asset0}), got {c.barrier}")
        _check(-1.0 <= c.market_rho <= 1.0, path, f"{key}.market_rho", f"must be in [-1, 1], got {c.market_rho}")


def _check_lr_schedule(t: LayerTraining, path: str | Path | None, key: str) -> None:
    _check(len(t.lr_values) == len(t.lr_boundaries) + 1, path, f"{key}.lr_values",
           f"needs one more entry than lr_boundaries ({len(t.lr_boundaries)}), got {len(t.lr_values)}")
    b = t.lr_boundaries
    _check(all(x < y for x, y in zip(b, b[1:], strict=False)), path, f"{key}.lr_boundaries",
           f"must be increasing, got {b}")


def validate(spec: XvaSpec, path: str | Path | None = None) -> XvaSpec:
    """Raise :class:`SpecError` naming the first offending key; return ``spec`` unchanged when valid."""
    p = path if path is not None else spec.path or None
    m = spec.market
    _check(m.n_assets >= 1, p, "market.n_assets", f"must be >= 1, got {m.n_assets}")
    for name in ("spot", "vol"):
        arr = spec.vector(name)
        _check(arr.size == m.n_assets, p, f"market.{name}", f"needs {m.n_assets} entries, got {arr.size}")
        bad = np.flatnonzero(~(arr > 0))
        what = "volatility" if name == "vol" else "spot"
        _check(bad.size == 0, p, f"market.{name}",
               f"{what} must be > 0, got {arr[bad[0]] if bad.size else ''}")
    _check(-1.0 <= m.asset_rho <= 1.0, p, "market.asset_rho", f"must be in [-1, 1], got {m.asset_rho}")
    if m.rates is not None:
        _check(m.rates.sigma > 0, p, "market.rates.sigma", f"volatility must be > 0, got {m.rates.sigma}")
        _check(m.rates.a > 0, p, "market.rates.a", f"mean reversion must be > 0, got {m.rates.a}")
    _check(spec.run.steps >= 2, p, "run.steps", f"must be >= 2, got {spec.run.steps}")
    _check(spec.run.paths >= 64, p, "run.paths", f"must be >= 64, got {spec.run.paths}")
    unknown_layers = set(spec.run.layers) - {"clean", "im", "xva", "fva"}
    _check(not unknown_layers, p, "run.layers", f"unknown layers {sorted(unknown_layers)}")
    _check_credit(spec.bank, p, "bank")
    _check(len(spec.counterparties) >= 1, p, "counterparties", "at least one counterparty is required")
    names = [c.name for c in spec.counterparties]
    _check(len(set(names)) == len(names), p, "counterparties.name", f"duplicate names in {names}")
    for i, c in enumerate(spec.counterparties):
        _check_credit(c, p, f"counterparties[{i}]")
    _check(len(spec.trades) >= 1, p, "trades", "at least one trade is required")
    for i, t in enumerate(spec.trades):
        key = f"trades[{i}]"
        _check(t.maturity > spec.run.valuation_date, p, f"{key}.maturity",
               f"maturity {t.maturity} is not after the valuation date {spec.run.valuation_date}")
        _check(t.counterparty in names, p, f"{key}.counterparty", f"unknown counterparty {t.counterparty!r}")
        if t.type in ("forward", "call", "put"):
            _check(0 <= t.asset < m.n_assets, p, f"{key}.asset", f"asset index {t.asset} out of range")
        if t.type in ("call", "put", "basket_call"):
            _check(t.strike > 0 or m.model == "bachelier", p, f"{key}.strike", f"must be > 0, got {t.strike}")
        if t.assets is not None:
            _check(all(0 <= a < m.n_assets for a in t.assets), p, f"{key}.assets", "asset index out of range")
        if t.type == "swap":
            _check(m.rates is not None, p, f"{key}.type", "a swap needs [market.rates] (Vasicek short rate)")
    f = spec.funding
    _check(0.5 < f.alpha < 1.0, p, "funding.alpha", f"quantile level must be in (0.5, 1), got {f.alpha}")
    _check(f.mpr_steps >= 1, p, "funding.mpr_steps", f"must be >= 1, got {f.mpr_steps}")
    if "fva" in spec.run.layers:
        _check(f.r_fb is not None and f.r_fl is not None, p, "funding.r_fb",
               "the fva layer needs funding.r_fb and funding.r_fl")
    for layer in ("clean", "im", "xva", "fva"):
        _check_lr_schedule(getattr(spec.training, layer), p, f"training.{layer}")
    corr = correlation_matrix(spec, p)
    eig = np.linalg.eigvalsh(corr)
    _check(bool(eig.min() >= -1e-10), p, "market.correlation",
           f"correlation matrix is not positive semi-definite (smallest eigenvalue {eig.min():.4g})")
    return spec


def factor_names(spec: XvaSpec) -> list[str]:
    """Names of the Brownian factors in state order: assets, short rate, structural credit assets."""
    names = [f"S{i}" for i in range(spec.market.n_assets)]
    if spec.market.rates is not None:
        names.append("r")
    if spec.bank.model == "structural":
        names.append("A_bank")
    names += [f"A_{c.name}" for c in spec.counterparties if c.model == "structural"]
    return names


def correlation_matrix(spec: XvaSpec, path: str | Path | None = None) -> np.ndarray:
    """Full factor correlation ``[m, m]``: the explicit matrix, or one built from asset_rho and market_rho."""
    m = len(factor_names(spec))
    given = spec.market.correlation
    p = path if path is not None else spec.path or None
    if given is not None:
        arr = np.asarray(given, dtype=float)
        _check(arr.shape == (m, m), p, "market.correlation",
               f"must be {m}x{m} over factors {factor_names(spec)}, got shape {arr.shape}")
        _check(bool(np.allclose(arr, arr.T)), p, "market.correlation", "matrix is not symmetric")
        _check(bool(np.allclose(np.diag(arr), 1.0)), p, "market.correlation", "diagonal entries must be 1")
        return arr
    n = spec.market.n_assets
    corr = np.eye(m)
    corr[:n, :n] = spec.market.asset_rho
    np.fill_diagonal(corr, 1.0)
    j = n + (1 if spec.market.rates is not None else 0)
    for c in [spec.bank, *spec.counterparties]:
        if c.model == "structural":
            corr[j, :n] = corr[:n, j] = c.market_rho
            j += 1
    return corr
