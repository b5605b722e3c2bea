"""Deep BSDE solver (Han-Jentzen-E) with a time-vectorised Z-network, training loop and persistence.

Scheme (code convention of :mod:`marketlab.pricing.bsde.equations`)::

    Y_0 = y0 (trainable [P]),  Z_0 = z0 (trainable [P, m]),  Z_n = net(t_n, X_n)  n = 1..N-1 (one batched call)
    Y_{n+1} = Y_n - dt f(t_n, X_n, Y_n, Z_n) + Z_n . dW_n
    loss = mean huber(Y_idx - target)      (idx, target) = equation.terminal(batch), huber clip 50 as the repo

Training measures: ``measures=(0, 1)`` splits each batch between the pricing measure and drift-tilted
measures (change of measure, research note section 4.5); y0 and the Z-network are shared and the generator
gains ``theta_k . Z`` on tilted paths. No likelihood-ratio weights are needed.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from marketlab.core.config import NonNegativeInt, PositiveFloat, PositiveInt, Spec
from marketlab.core.device import get_device
from marketlab.core.errors import SpecError
from marketlab.pricing.bsde.equations import Equation, PathBatch
from marketlab.pricing.bsde.nets import PerStepMLP, TimeMLP

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "autocast": torch.float32}


@dataclass(frozen=True)
class SolverConfig(Spec):
    """Settings of one deep-BSDE solve.

    network: ``"per_step"`` (one subnet per step, HJE) or ``"time"`` (one time-conditioned net).
    hidden: hidden widths; empty means ``(d+10, d+10)`` as the repo configs.
    out_scale: multiply the net output (None: 1/m for per_step as the repo's ``subnet(x)/dim``, 1 for time).
    precision: ``float64``; ``float32``; ``autocast`` (float32 paths and Y, Z-net under bfloat16 autocast).
    lr_values / lr_boundaries: piecewise-constant learning rate (len(values) == len(boundaries) + 1).
    tol: early stop when the relative change of y0 between validations stays below tol ``patience`` times.
    target / rtol: early stop when |y0 - target| <= rtol |target| (time-to-accuracy benchmarks).
    clip: Huber threshold of the loss (None: plain squared error).
    measures: training measures mixed in each batch (0 = pricing measure, k = equation.tilts[k-1]).
    """

    network: Literal["per_step", "time"] = "time"
    hidden: tuple[PositiveInt, ...] = ()
    activation: Literal["relu", "tanh", "silu"] = "relu"
    out_scale: float | None = None
    precision: Literal["float64", "float32", "autocast"] = "float64"
    batch_size: PositiveInt = 64
    valid_size: PositiveInt = 256
    iterations: PositiveInt = 2000
    lr_values: tuple[PositiveFloat, ...] = (1e-2,)
    lr_boundaries: tuple[NonNegativeInt, ...] = ()
    log_every: PositiveInt = 100
    tol: PositiveFloat | None = None
    patience: PositiveInt = 3
    target: float | None = None
    rtol: float | None = None
    target_patience: int = 1  # consecutive validations inside rtol before stopping (y0 may cross the band)
    clip: PositiveFloat | None = 50.0
    measures: tuple[NonNegativeInt, ...] = (0,)
    seed: NonNegativeInt = 0
    device: str = "auto"
    progress: bool = True
    pilot_size: PositiveInt = 1024
    y0_lr_factor: PositiveFloat = 1.0  # y0's learning rate relative to the network's (y0 is O(price), Z-net weights O(1))
    # False: tilted measures train only the Z-net (y0 detached there), so Z errors near the barrier, which
    # enter y0 through theta . Z under a tilt, cannot bias y0; the pricing measure alone anchors y0.
    tilt_trains_y0: bool = True

    def validate(self, path: str | Path | None = None) -> None:
        """The learning-rate schedule: one more value than boundaries, boundaries increasing."""
        if len(self.lr_values) != len(self.lr_boundaries) + 1:
            raise SpecError(path, "lr_values", f"needs one more entry than lr_boundaries "
                                               f"({len(self.lr_boundaries)}), got {len(self.lr_values)}")
        b = self.lr_boundaries
        if any(x >= y for x, y in zip(b, b[1:], strict=False)):
            raise SpecError(path, "lr_boundaries", f"must be increasing, got {list(b)}")


@dataclass
class TrainResult:
    """Outcome of :meth:`DeepBSDESolver.train`. ``history`` rows: step, y0 (list), loss, valid_loss, seconds."""

    y0: list[float]
    valid_loss: float
    iterations: int
    seconds: float
    stopped: str
    history: list[dict[str, float | list[float]]] = field(default_factory=list)


def huber(delta: Tensor, clip: float | None) -> Tensor:
    """Repo loss: delta^2 inside |delta| < clip, linear (2 clip |delta| - clip^2) outside."""
    if clip is None:
        return delta * delta
    a = delta.abs()
    return torch.where(a < clip, delta * delta, 2.0 * clip * a - clip * clip)


class DeepBSDESolver(nn.Module):
    """Trainable y0, z0 and Z-network for one :class:`Equation` (P outputs solved jointly)."""

    # buffers (register_buffer in __init__), typed for mypy
    z_scale: Tensor
    t_grid: Tensor

    def __init__(self, equation: Equation, config: SolverConfig | None = None) -> None:
        super().__init__()
        cfg = config or SolverConfig()
        if len(cfg.lr_values) != len(cfg.lr_boundaries) + 1:
            raise ValueError("lr_values must have exactly one more entry than lr_boundaries")
        self.eq, self.cfg = equation, cfg
        self.device = get_device(cfg.device)
        self.dtype = _DTYPES[cfg.precision]
        gen = torch.Generator().manual_seed(cfg.seed)  # parameter init on CPU: identical on every device
        P, m, d, K = equation.n_out, equation.dim_w, equation.dim, equation.N - 1
        lo, hi = equation.y_init_range
        y_init = lo + (hi - lo) * torch.rand(P, generator=gen, dtype=self.dtype)
        given = getattr(equation, "y_init_values", None)  # per-output initial guess (layered xVA equations)
        if given is not None:
            y_init = torch.as_tensor(given, dtype=self.dtype).reshape(P).clone()
        self.y0 = nn.Parameter(y_init)
        hidden = cfg.hidden or (d + 10, d + 10)
        if cfg.network == "per_step":
            scale = cfg.out_scale if cfg.out_scale is not None else 1.0 / m
            self.net: nn.Module = PerStepMLP(K, d, m, P, hidden, gen, self.dtype, cfg.activation, scale)
        else:
            scale = cfg.out_scale if cfg.out_scale is not None else 1.0
            self.net = TimeMLP(K, d, m, P, hidden, gen, self.dtype, cfg.activation, scale, equation.T)
        self.z0 = nn.Parameter((torch.rand(P, m, generator=gen, dtype=self.dtype) * 0.2 - 0.1) * scale)
        # Per-output Z scale, fitted on the pilot batch when out_scale is None (time net): a net whose raw
        # output is O(1) then only has to learn shape, not magnitude (Z of a forward on S=100 is ~25).
        self.register_buffer("z_scale", torch.ones(P, dtype=self.dtype))
        self._auto_scale = cfg.out_scale is None and cfg.network == "time"
        self.register_buffer("t_grid", torch.tensor(equation.times(), dtype=self.dtype))
        self.to(self.device)
        self._pilot_done = False

    # --- paths -------------------------------------------------------------------------------------
    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def sample(self, M: int, gen: torch.Generator, measure: int = 0) -> PathBatch:
        """Fresh paths on the solver's device and dtype, with upstream ``aux`` attached."""
        batch = self.eq.sample(M, gen, dtype=self.dtype, device=self.device, measure=measure)
        return self.eq.attach_aux(batch)

    def _fit_pilot(self) -> None:
        if self._pilot_done:
            return
        pilot = self.eq.sample(self.cfg.pilot_size, self._generator(self.cfg.seed + 7919), dtype=self.dtype,
                               device=self.device)
        self.net.norm.fit(pilot.x[:, 1:-1])  # type: ignore[union-attr, operator]
        if self._auto_scale:
            with torch.no_grad():
                _, target = self.eq.terminal(self.eq.attach_aux(pilot))
                sd = target.std(0) / (self.eq.T * self.eq.dim_w) ** 0.5
                self.z_scale.copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)))
        self._pilot_done = True

    # --- forward -----------------------------------------------------------------------------------
    def z_all(self, batch: PathBatch) -> Tensor:
        """Z on every step ``[M, N, P, m]`` (z0 at step 0, the network on steps 1..N-1)."""
        self._fit_pilot()
        M = batch.size
        ctx = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if self.cfg.precision == "autocast"
            else contextlib.nullcontext()
        )
        with ctx:
            zin = self.net(batch.x[:, 1:-1], self.t_grid[1:-1]) if self.eq.N > 1 else None
        # z0 lives in the same scaled units as the network output, so both train at comparable step sizes
        z0 = (self.z0 * self.z_scale.view(-1, 1)).expand(M, 1, *self.z0.shape)
        if zin is None:
            return z0
        zin = zin.to(self.dtype) * self.z_scale.view(1, 1, -1, 1)
        return torch.cat([z0, zin], dim=1)

    def rollout(self, batch: PathBatch, detach_y0: bool = False) -> Tensor:
        """Forward-recursed Y on every grid point ``[M, N+1, P]`` (the exposure paths of a clean-value layer)."""
        eq, dt = self.eq, self.eq.dt
        z = self.z_all(batch)
        y = (self.y0.detach() if detach_y0 else self.y0).expand(batch.size, -1)
        theta = None
        if batch.measure > 0:
            theta = eq.tilts[batch.measure - 1].to(self.device, self.dtype)
        ys = [y]
        for n in range(eq.N):
            t = n * dt
            aux_n = {k: v[:, n] for k, v in batch.aux.items()}
            zn = z[:, n]
            fn = eq.f(n, t, batch.x[:, n], y, zn, aux_n)
            if theta is not None:
                fn = fn + (zn * theta).sum(-1)  # Girsanov term of the tilted measure
            y = y - dt * fn + (zn * batch.dw[:, n].unsqueeze(1)).sum(-1)
            ys.append(y)
        return torch.stack(ys, dim=1)

    def loss(self, batch: PathBatch, detach_y0: bool = False) -> Tensor:
        """Mean Huber loss of the terminal mismatch (scalar)."""
        yh = self.rollout(batch, detach_y0)
        idx, target = self.eq.terminal(batch)
        y_end = yh.gather(1, idx.unsqueeze(1)).squeeze(1)
        return huber(y_end - target, self.cfg.clip).mean()

    # --- training ----------------------------------------------------------------------------------
    def _lr(self, step: int) -> float:
        for value, bound in zip(self.cfg.lr_values, self.cfg.lr_boundaries, strict=False):
            if step < bound:
                return value
        return self.cfg.lr_values[-1]

    def train_model(self) -> TrainResult:
        """Adam on fresh batches; validation on fixed paths every ``log_every`` steps; early stops."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self._fit_pilot()
        train_gen = self._generator(cfg.seed + 1)
        valid = self.sample(cfg.valid_size, self._generator(cfg.seed + 2))
        others = [p for name, p in self.named_parameters() if name != "y0"]
        opt = torch.optim.Adam([{"params": [self.y0], "factor": cfg.y0_lr_factor},
                                {"params": others, "factor": 1.0}], lr=cfg.lr_values[0], eps=1e-8)
        n_meas = len(cfg.measures)
        per = max(1, cfg.batch_size // n_meas)
        history: list[dict[str, float | list[float]]] = []
        start = time.perf_counter()
        stopped, calm, prev, inside = "iterations", 0, None, 0
        bar = tqdm(range(cfg.iterations + 1), disable=not cfg.progress, desc=f"bsde {self.eq.name}", leave=False)
        step = 0
        for step in bar:
            if step % cfg.log_every == 0 or step == cfg.iterations:
                with torch.no_grad():
                    vloss = float(self.loss(valid))
                y0 = [float(v) for v in self.y0.detach().cpu()]
                history.append({"step": step, "y0": y0, "valid_loss": vloss,
                                "seconds": time.perf_counter() - start})
                bar.set_postfix(y0=f"{y0[0]:.6g}", loss=f"{vloss:.3g}")
                if cfg.target is not None and cfg.rtol is not None:
                    inside = inside + 1 if abs(y0[0] - cfg.target) <= cfg.rtol * abs(cfg.target) else 0
                    if inside >= cfg.target_patience:
                        stopped = "target"
                        break
                if cfg.tol is not None and prev is not None:
                    rel = abs(y0[0] - prev) / max(abs(y0[0]), 1e-12)
                    calm = calm + 1 if rel < cfg.tol else 0
                    if calm >= cfg.patience:
                        stopped = "tol"
                        break
                prev = y0[0]
            if step == cfg.iterations:
                break
            for group in opt.param_groups:
                group["lr"] = self._lr(step) * group["factor"]
            losses = [self.loss(self.sample(per, train_gen, measure=k), detach_y0=k > 0 and not cfg.tilt_trains_y0)
                      for k in cfg.measures]
            loss = torch.stack(losses).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        bar.close()
        last = history[-1]
        return TrainResult(
            y0=list(last["y0"]),  # type: ignore[arg-type]
            valid_loss=float(last["valid_loss"]),  # type: ignore[arg-type]
            iterations=step,
            seconds=time.perf_counter() - start,
            stopped=stopped,
            history=history,
        )

    @torch.no_grad()
    def y0_value(self) -> list[float]:
        """Current y0 estimate per output."""
        return [float(v) for v in self.y0.detach().cpu()]

    # --- persistence: safetensors + JSON config (never pickle) ------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``<path>.safetensors`` (weights, buffers) and ``<path>.json`` (solver config + equation name)."""
        from safetensors.torch import save_file

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(p.with_suffix(".safetensors")))
        meta = {"config": asdict(self.cfg), "equation": self.eq.name, "dim": self.eq.dim, "N": self.eq.N}
        p.with_suffix(".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, equation: Equation) -> "DeepBSDESolver":
        """Rebuild a solver for ``equation`` from files written by :meth:`save`."""
        from safetensors.torch import load_file

        p = Path(path)
        meta = json.loads(p.with_suffix(".json").read_text())
        raw = meta["config"]
        for key in ("hidden", "lr_values", "lr_boundaries", "measures"):
            raw[key] = tuple(raw[key])
        solver = cls(equation, SolverConfig(**raw))
        solver.load_state_dict(load_file(str(p.with_suffix(".safetensors"))))
        solver._pilot_done = True
        return solver


def solve(equation: Equation, config: SolverConfig | None = None) -> tuple[DeepBSDESolver, TrainResult]:
    """Build a solver for ``equation``, train it and return both."""
    solver = DeepBSDESolver(equation, config)
    return solver, solver.train_model()


def relative_error(value: float, reference: float) -> float:
    """|value - reference| / |reference|."""
    return abs(value - reference) / abs(reference) if reference else math.inf
