"""Training TRADES from the store: seeded, resumable, safetensors + JSON checkpoints, EMA weights.

>>> from marketlab.simulators.trades.train import TradesConfig, train_from_store   # doctest: +SKIP
>>> res = train_from_store("data/store", "lobster", "GOOG", TradesConfig.cpu(steps=2000), "runs/trades_goog")

Data: the symbol's tokens (:mod:`.tokens`) split by time 70/10/20 within the day; statistics from the
training split; a training window is W consecutive orders (W-1 conditioning + the target) and their W
books, all inside the training split. Validation windows have their target in the validation split
(their history may reach back into training data: the past, so no leakage).

Checkpoint directory: ``config.json`` (format, config, statistics, step, sampler state, losses),
``ema.safetensors`` (EMA weights, used for sampling), ``model.safetensors`` (raw weights) and
``optim.safetensors`` (Adam moments). Loading executes no code. Randomness per step is derived from
``(seed, step)``, so training N steps equals training k steps, saving, resuming and training N-k more.
AMP (bf16 autocast) and ``torch.compile`` are used only on CUDA.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from marketlab.core.config import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Spec
from marketlab.core.device import get_device
from marketlab.core.errors import DataError, SpecError
from marketlab.core.files import atomic_write
from marketlab.simulators.trades.diffusion import EMA, GaussianDiffusion, LossSecondMomentSampler
from marketlab.simulators.trades.model import Denoiser, DenoiserShape
from marketlab.simulators.trades.tokens import EncodedDay, OrderTokens, TokenStats, encode_day, tokens_from_store

FORMAT = "marketlab-trades-v1"


@dataclass(frozen=True)
class TradesConfig(Spec):
    """Model + training settings. :meth:`cpu` and :meth:`paper` give the two documented presets."""

    window: PositiveInt = 32
    depth: PositiveInt = 2
    augment_dim: PositiveInt = 32
    heads: PositiveInt = 2
    dropout: Fraction = 0.1
    levels: PositiveInt = 10
    diffusion_steps: PositiveInt = 100
    reference_einsum_attention: bool = False
    lambda_vlb: NonNegativeFloat = 0.01
    lr: PositiveFloat = 1e-3
    batch_size: PositiveInt = 64
    steps: PositiveInt = 1000
    ema_decay: Fraction = 0.999
    val_every: PositiveInt = 250
    val_batches: PositiveInt = 4
    checkpoint_every: NonNegativeInt = 0
    seed: int = 0
    amp: bool = True
    compile: bool = False

    @classmethod
    def cpu(cls, **kw: Any) -> TradesConfig:
        """Trains in minutes on 2 CPU cores: window 32, depth 2, width 64."""
        return cls.from_dict({**dict(window=32, depth=2, augment_dim=32, heads=2), **kw})

    @classmethod
    def paper(cls, **kw: Any) -> TradesConfig:
        """The paper's GPU configuration: window 256, depth 8, width 128, batch 256, lr 1e-3."""
        return cls.from_dict({**dict(window=256, depth=8, augment_dim=64, heads=2, batch_size=256), **kw})

    def shape(self) -> DenoiserShape:
        """The denoiser architecture of this config."""
        return DenoiserShape(window=self.window, depth=self.depth, augment_dim=self.augment_dim, heads=self.heads,
                             dropout=self.dropout, levels=self.levels, steps=self.diffusion_steps,
                             reference_einsum_attention=self.reference_einsum_attention)

    def validate(self, path: str | Path | None = None) -> None:
        """Cross-field rules."""
        if self.window < 2:
            raise SpecError(path, "window", f"must be >= 2 (conditioning + target), got {self.window}")
        if (2 * self.augment_dim) % self.heads:
            raise SpecError(path, "heads", f"width {2 * self.augment_dim} is not divisible by {self.heads} heads")


ARCH_KEYS = ("window", "depth", "augment_dim", "heads", "levels", "diffusion_steps", "reference_einsum_attention")


@dataclass
class TrainResult:
    """What a training run did: final step, mean training loss of the last interval, EMA validation loss,
    seconds, training windows per second, checkpoint directory."""

    step: int
    train_loss: float
    val_loss: float
    seconds: float
    windows_per_s: float
    out_dir: Path


# ------------------------------------------------------------------------------------------ windows
def window_targets(split: slice, window: int) -> np.ndarray:
    """Target rows of a split whose whole window lies at rows >= 0 (training: inside the split)."""
    lo = max(split.start, window - 1)
    return np.arange(lo, split.stop, dtype=np.int64)


def batch_windows(day: EncodedDay, targets: np.ndarray, window: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0 (B,1,8), cond (B,W-1,8), book (B,W,4L)) float32 tensors for target rows ``targets``."""
    rows = targets[:, None] + np.arange(-window + 1, 1)[None, :]
    orders = day.orders[rows]
    return (torch.from_numpy(orders[:, -1:, :].copy()), torch.from_numpy(orders[:, :-1, :].copy()),
            torch.from_numpy(day.book[rows].copy()))


# ------------------------------------------------------------------------------------------ checkpoints
def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(flat, tmp))


def _optim_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{i}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
    return out


def _load_optim(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        i, k = key.split(".", 1)
        state.setdefault(int(i), {})[k] = v
    sd = opt.state_dict()
    for g, saved in zip(sd["param_groups"], groups, strict=True):
        g.update({k: v for k, v in saved.items() if k != "params"})
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def save_checkpoint(out: Path, model: Denoiser, ema: EMA, opt: torch.optim.Optimizer, cfg: TradesConfig,
                    stats: TokenStats, step: int, sampler: LossSecondMomentSampler, meta: dict[str, Any]) -> None:
    """Write the checkpoint files (each atomically; ``config.json`` last, so a reader sees a whole one)."""
    out.mkdir(parents=True, exist_ok=True)
    _save_tensors(out / "model.safetensors", dict(model.state_dict()))
    _save_tensors(out / "ema.safetensors", ema.shadow)
    _save_tensors(out / "optim.safetensors", _optim_tensors(opt))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.state_dict()["param_groups"]]
    doc = {"format": FORMAT, "config": cfg.to_dict(), "stats": stats.to_dict(), "step": step,
           "sampler": sampler.state_dict(), "param_groups": groups, **meta}
    atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1, default=str)))


def read_config(ckpt: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``; missing or malformed is a one-line :class:`DataError`."""
    p = Path(ckpt) / "config.json"
    if not p.is_file():
        raise DataError(p, "TRADES checkpoint not found")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(p, f"invalid JSON ({exc.msg})", row=exc.lineno) from None
    if doc.get("format") != FORMAT:
        raise DataError(p, f"not a TRADES checkpoint (format {doc.get('format')!r}, expected {FORMAT!r})")
    return dict(doc)


def check_matches(doc: dict[str, Any], cfg: TradesConfig, path: str | Path) -> None:
    """A checkpoint whose architecture differs from ``cfg`` is a one-line :class:`SpecError` naming the key."""
    saved = doc["config"]
    for k in ARCH_KEYS:
        if saved.get(k) != getattr(cfg, k):
            raise SpecError(Path(path) / "config.json", k,
                            f"checkpoint has {saved.get(k)!r}, the spec asks for {getattr(cfg, k)!r}")


def load_checkpoint(ckpt: str | Path, *, expect: TradesConfig | None = None, ema: bool = True,
                    device: str | torch.device = "cpu") -> tuple[Denoiser, TokenStats, TradesConfig]:
    """(denoiser with the EMA weights (or raw ones), statistics, config) from a checkpoint directory."""
    doc = read_config(ckpt)
    cfg = TradesConfig.from_dict(doc["config"], path=Path(ckpt) / "config.json")
    if expect is not None:
        check_matches(doc, expect, ckpt)
    model = Denoiser(cfg.shape())
    w = load_file(str(Path(ckpt) / ("ema.safetensors" if ema else "model.safetensors")))
    model.load_state_dict(w, strict=True)
    return model.to(device).eval(), TokenStats.from_dict(doc["stats"]), cfg


# ------------------------------------------------------------------------------------------ training
def _step_rngs(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, step])
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    torch.manual_seed(int(rng.integers(2**62)))  # dropout reads the global generator
    return rng, g


def _losses(model: Denoiser, diff: GaussianDiffusion, x0: torch.Tensor, cond: torch.Tensor, book: torch.Tensor,
            t: torch.Tensor, noise: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    def fn(xt: torch.Tensor, tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = model(xt, tt, cond, book)
        return out

    return diff.training_losses(fn, x0, t, noise, lam)


def evaluate(model: Denoiser, day: EncodedDay, cfg: TradesConfig, split: str = "val", batches: int | None = None,
             device: str | torch.device = "cpu", seed: int = 12345) -> float:
    """Mean hybrid loss (uniform t) over ``batches`` seeded batches of the split's windows."""
    diff = GaussianDiffusion(cfg.diffusion_steps)
    targets = window_targets(day.splits[split], cfg.window)
    if targets.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for _ in range(batches or cfg.val_batches):
            idx = rng.choice(targets, size=min(cfg.batch_size, targets.size), replace=False)
            x0, cond, book = (a.to(device) for a in batch_windows(day, idx, cfg.window))
            t = torch.from_numpy(rng.integers(0, cfg.diffusion_steps, idx.size)).to(device)
            noise = torch.randn(x0.shape, generator=g).to(device)
            tot += float(_losses(model, diff, x0, cond, book, t, noise, cfg.lambda_vlb)["loss"].sum())
            n += idx.size
    return tot / n


def train_on_day(day: EncodedDay, cfg: TradesConfig, out_dir: str | Path, *, resume: bool = False,
                 device: str = "auto", meta: dict[str, Any] | None = None, progress: bool = False,
                 source: str = "data") -> TrainResult:
    """Train on encoded tokens (see :func:`train_from_store`); writes the checkpoint to ``out_dir``."""
    out = Path(out_dir)
    dev = get_device(device)
    targets = window_targets(day.splits["train"], cfg.window)
    if targets.size < 1:
        n = day.splits["train"].stop - day.splits["train"].start
        raise DataError(source, f"training split has {n} orders, too short for window {cfg.window} "
                                "(needs at least window orders)")
    torch.manual_seed(cfg.seed)  # initial weights (torch layers draw from the global generator)
    model = Denoiser(cfg.shape()).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ema = EMA(model, cfg.ema_decay)
    sampler = LossSecondMomentSampler(cfg.diffusion_steps)
    step0 = 0
    if resume and (out / "config.json").is_file():
        doc = read_config(out)
        check_matches(doc, cfg, out)
        model.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
        ema.shadow = {k: v.to(dev) for k, v in load_file(str(out / "ema.safetensors")).items()}
        _load_optim(opt, {k: v.to(dev) for k, v in load_file(str(out / "optim.safetensors")).items()},
                    doc["param_groups"])
        sampler.load_state_dict(doc["sampler"])
        step0 = int(doc["step"])
    diff = GaussianDiffusion(cfg.diffusion_steps)
    cuda = dev.type == "cuda"
    fwd = torch.compile(model) if (cuda and cfg.compile) else model
    bs = min(cfg.batch_size, targets.size)
    t_start = time.perf_counter()
    recent: list[float] = []
    val = float("nan")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step0, desc="train trades", unit="step")
    for step in range(step0, cfg.steps):
        rng, g = _step_rngs(cfg.seed, step)
        idx = rng.choice(targets, size=bs, replace=False)
        x0, cond, book = (a.to(dev) for a in batch_windows(day, idx, cfg.window))
        t_np, w_np = sampler.sample(bs, rng)
        noise = torch.randn(x0.shape, generator=g).to(dev)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and cfg.amp):
            losses = _losses(fwd, diff, x0, cond, book, torch.from_numpy(t_np).to(dev), noise,  # type: ignore[arg-type]
                             cfg.lambda_vlb)
        per = losses["loss"].float()
        loss = (per * torch.as_tensor(w_np, dtype=per.dtype, device=dev)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        sampler.update(t_np, per.detach().cpu().numpy())
        recent.append(loss.item())
        done = step + 1
        if bar is not None:
            bar.update(1)
        if done % cfg.val_every == 0 or done == cfg.steps:
            val = _ema_val(model, ema, day, cfg, dev)
        if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == cfg.steps:
            save_checkpoint(out, model, ema, opt, cfg, day.stats, done, sampler,
                            {**(meta or {}), "val_loss_ema": val, "train_loss": float(np.mean(recent[-50:]))})
    if bar is not None:
        bar.close()
    secs = time.perf_counter() - t_start
    n_steps = cfg.steps - step0
    return TrainResult(cfg.steps, float(np.mean(recent[-50:])) if recent else float("nan"), val, secs,
                       n_steps * bs / secs if secs > 0 else float("nan"), out)


def _ema_val(model: Denoiser, ema: EMA, day: EncodedDay, cfg: TradesConfig, dev: torch.device) -> float:
    raw = {k: p.detach().clone() for k, p in model.named_parameters()}
    ema.copy_to(model)
    try:
        return evaluate(model, day, cfg, "val", device=dev)
    finally:
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(raw[k])


def load_day(store: Any, dataset: str, symbol: str, levels: int = 10, stats: TokenStats | None = None,
             start: Any = None, end: Any = None) -> tuple[OrderTokens, EncodedDay]:
    """Tokens of one symbol from the store and their encoding (train-split statistics unless given)."""
    tokens = tokens_from_store(store, dataset, symbol, levels=levels, start=start, end=end)
    return tokens, encode_day(tokens, stats)


def train_from_store(store: Any, dataset: str, symbol: str, config: TradesConfig, out_dir: str | Path, *,
                     resume: bool = False, device: str = "auto", start: Any = None, end: Any = None,
                     progress: bool = False) -> TrainResult:
    """Train TRADES on ``symbol`` of ``dataset`` in ``store`` (a :class:`marketlab.store.Store` or its path).

    Bad input is a one-line :class:`~marketlab.core.errors.MarketlabError`: unknown dataset/symbol, a
    symbol without book data, a day too short for the window, NaN in the conditioning, a checkpoint in
    ``out_dir`` whose architecture differs from ``config`` (with ``resume``).
    """
    if not hasattr(store, "scan_events"):
        from marketlab.store import Store

        store = Store(store)
    _, day = load_day(store, dataset, symbol, config.levels, start=start, end=end)
    meta = {"data": {"dataset": dataset, "symbol": symbol, "orders": int(day.orders.shape[0]),
                     "splits": {k: [v.start, v.stop] for k, v in day.splits.items()}}}
    return train_on_day(day, config, out_dir, resume=resume, device=device, meta=meta, progress=progress,
                        source=f"dataset '{dataset}' symbol '{symbol}'")
