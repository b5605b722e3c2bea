"""One trainer for every LOB predictor: Adam, early stopping, LR halving on plateau, EMA weights,
resumable safetensors checkpoints, seeded CPU determinism, a tqdm progress bar, autocast/compile on GPU.

Resume protocol. ``<out>/state.safetensors`` is written atomically every ``checkpoint_every`` batches and
at the end of every epoch. It holds the raw and EMA weights, Adam's moments, the torch RNG and, in its
header, the epoch, the next batch index and what the run was started with (model, model config, training
settings, data spec; ``state.json`` is a readable copy). A resume with another model, config, data
(``--symbol``) or training setting is refused naming the key; ``epochs`` larger than a finished run's
extends it (the same schedule continues), smaller is refused. The order of windows in epoch ``e`` is a pure function of
``(seed, e)``, so a run that is interrupted (killed, or an exception from a callback) and restarted with
``resume=True`` replays exactly the batches it had not checkpointed and ends with the same weights as an
uninterrupted run (tested bit-for-bit on CPU).

The best model (lowest validation loss, EMA weights when EMA is on) is written to ``<out>/best/`` as
``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from marketlab.core.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Spec
from marketlab.core.device import get_device, seed_everything, tensorboard_available
from marketlab.core.errors import SpecError
from marketlab.models.checkpoint import load_json, load_tensors, save_json, save_model, save_tensors
from marketlab.models.datasets import WindowSet
from marketlab.models.metrics import classification_report


@dataclass(frozen=True)
class TrainConfig(Spec):
    """Training settings (``[train]`` table of a TOML config).

    ``patience``: epochs without a lower validation loss before stopping; ``lr_patience``: epochs
    without improvement before the learning rate is multiplied by ``lr_factor`` (TLOB halves it);
    ``ema_decay``: 0 disables EMA; ``max_train_windows``/``max_val_windows``: fixed random subsample
    (drawn once from ``seed``) for CPU-sized runs; ``amp``: autocast dtype on CUDA ("auto" = bf16 when
    supported); ``compile``: ``torch.compile`` the model ("auto" = on CUDA only).
    """

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-4
    weight_decay: NonNegativeFloat = 0.0
    patience: PositiveInt = 3
    lr_patience: NonNegativeInt = 0
    lr_factor: Annotated[float, Range(0.0, 1.0, lo_open=True)] = 0.5
    min_lr: NonNegativeFloat = 1e-6
    ema_decay: Annotated[float, Range(0.0, 1.0, hi_open=True)] = 0.999
    seed: NonNegativeInt = 0
    max_train_windows: PositiveInt | None = None
    max_val_windows: PositiveInt | None = None
    checkpoint_every: NonNegativeInt = 0
    grad_clip: PositiveFloat | None = None
    device: str = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    compile: Literal["auto", "on", "off"] = "off"
    progress: bool = True
    eval_batch_size: PositiveInt = 512
    tensorboard: bool = True  # scalars to <out>/tb when the tensorboard package is installed (extra [rl])


BatchCallback = Callable[["Trainer", int, int, float], None]

#: Training settings a resumed run may change: they do not change what is trained (``epochs`` is reconciled
#: on its own: a finished run extends to more epochs, and never silently shrinks).
RESUME_FREE_KEYS = frozenset({"epochs", "progress", "device", "amp", "compile", "eval_batch_size", "checkpoint_every",
                              "tensorboard"})


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def subsample(ws: WindowSet, n: int | None, seed: int) -> WindowSet:
    """A fixed random subset of ``n`` windows (kept in time order); the set itself when ``n`` is None/large."""
    if n is None or n >= len(ws):
        return ws
    idx = np.sort(np.random.default_rng([seed, 7919]).choice(len(ws), size=n, replace=False))
    return ws.subset(idx)


@torch.no_grad()
def predict_logits(model: nn.Module, ws: WindowSet, *, batch_size: int = 512,
                   device: torch.device | None = None, amp: torch.dtype | None = None,
                   progress: bool = False) -> np.ndarray:
    """Logits ``(M, C)`` float32 for every window of ``ws`` (model in eval mode)."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for b in tqdm(range(0, len(ws), batch_size), disable=not progress, desc="predict", leave=False):
        x, _ = ws.batch(np.arange(b, min(b + batch_size, len(ws))), device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out.append(model(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 3), np.float32)


def predict_proba(model: nn.Module, ws: WindowSet, **kw: Any) -> np.ndarray:
    """Class probabilities ``(M, C)`` = softmax of :func:`predict_logits`."""
    return torch.softmax(torch.from_numpy(predict_logits(model, ws, **kw)), dim=1).numpy()


def evaluate(model: nn.Module, ws: WindowSet, **kw: Any) -> dict[str, Any]:
    """Cross-entropy loss + :func:`classification_report` over every window of ``ws``."""
    logits = predict_logits(model, ws, **kw)
    y = ws.window_labels()
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)).item()) if len(y) else math.nan
    return {"loss": loss, **classification_report(y, logits.argmax(1))}


class Trainer:
    """Fits ``model`` (already built, seeded by the caller) on window sets; see the module docstring."""

    def __init__(self, model: nn.Module, name: str, cfg: TrainConfig, out_dir: str | Path,
                 callbacks: Sequence[BatchCallback] = (), meta: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.meta = dict(meta or {})  # recorded in the best checkpoint's config.json (e.g. the data spec)
        self.name = name
        self.out = Path(out_dir)
        self.device = get_device(cfg.device)
        self.model = model.to(self.device)
        self.amp = _amp_dtype(cfg, self.device)
        use_compile = cfg.compile == "on" or (cfg.compile == "auto" and self.device.type == "cuda")
        # compile a wrapper for the forward pass only; state_dicts stay those of the plain module
        self.forward = torch.compile(self.model) if use_compile else self.model
        self.ema = copy.deepcopy(self.model) if cfg.ema_decay > 0 else None
        if self.ema is not None:
            self.ema.requires_grad_(False)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.callbacks = list(callbacks)
        self.resumed_from_epoch: int | None = None  # epochs already trained when fit() resumed a run folder
        self.state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "best_val_loss": math.inf,
                                      "best_epoch": -1, "bad_epochs": 0, "lr_bad_epochs": 0,
                                      "lr": cfg.lr, "history": [], "stopped_early": False, "done": False,
                                      "epoch_loss_sum": 0.0, "epoch_loss_n": 0}

    # -- EMA ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def _ema_update(self) -> None:
        if self.ema is None:
            return
        step = self.state["step"]
        d = min(self.cfg.ema_decay, (1 + step) / (10 + step))  # warm-up so early EMA is not all init
        if not hasattr(self, "_ema_pairs"):  # state_dict tensors share storage with the modules
            self._ema_pairs = list(zip(self.ema.state_dict().values(), self.model.state_dict().values(), strict=True))
        for e, p in self._ema_pairs:
            if e.dtype.is_floating_point:
                e.lerp_(p, 1.0 - d)
            else:
                e.copy_(p)

    @property
    def eval_model(self) -> nn.Module:
        """The weights used for validation, test and the saved best model (EMA when enabled)."""
        return self.ema if self.ema is not None else self.model

    # -- checkpoints -------------------------------------------------------------------------------
    def _run_record(self) -> dict[str, Any]:
        """What the run folder was started with, as JSON round-trips it (tuples -> lists)."""
        rec = {"model": self.name, "config": self.model.config_dict(),  # type: ignore[operator]
               "train": asdict(self.cfg), "meta": self.meta}
        plain: dict[str, Any] = json.loads(json.dumps(rec, default=str))
        return plain

    def _save_state(self) -> None:
        t: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            t.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        for i, st in self.optim.state_dict()["state"].items():
            for k, v in st.items():
                t[f"optim.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        t["rng.torch"] = torch.get_rng_state()
        record = {**self.state, **self._run_record()}
        # the counters travel in the safetensors header: one atomic rename commits weights and counters together
        save_tensors(self.out / "state.safetensors", t, metadata={"state": json.dumps(record, default=str)})
        save_json(self.out / "state.json", record)  # readable copy; never read back

    def _check_same_run(self, saved: dict[str, Any], path: Path) -> None:
        """Refuse to resume a run folder started with another model, model config, data or training setting."""
        now = self._run_record()
        flat_saved, flat_now = _flatten(saved), _flatten(now)
        # inputs before what is derived from them (the label threshold alpha follows the data), so the error
        # names what the user changed
        for key in sorted(set(flat_saved) | set(flat_now), key=lambda k: (k.endswith(".alpha"), k)):
            if key.startswith("meta.") and "meta" not in saved:
                continue  # a run folder written before the data spec was recorded
            if key.removeprefix("train.") in RESUME_FREE_KEYS and key.startswith("train."):
                continue
            old, new = flat_saved.get(key, "<unset>"), flat_now.get(key, "<unset>")
            if old != new:
                shown = key.removeprefix("meta.").replace("config.", "model.", 1)
                raise SpecError(path, shown, f"the run folder was trained with {old!r}, now {new!r}; "
                                             "use --fresh or another --out")

    def _load_state(self) -> bool:
        path = self.out / "state.safetensors"
        if not path.is_file():
            return False
        t, header = load_tensors(path)
        meta = json.loads(header["state"]) if "state" in header else load_json(self.out / "state.json")
        self._check_same_run({k: meta[k] for k in ("model", "config", "train", "meta") if k in meta}, path)
        self.model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        if self.ema is not None:
            self.ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
        osd = self.optim.state_dict()
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in t.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v.to(self.device) if name != "step" else v
        osd["state"] = state
        self.optim.load_state_dict(osd)
        torch.set_rng_state(t["rng.torch"])
        self.state = {k: meta[k] for k in self.state}
        self._set_lr(self.state["lr"])
        self._set_epochs(path)
        return True

    def _set_epochs(self, path: Path) -> None:
        """Reconcile a resumed state with ``cfg.epochs``: extend a finished run, refuse to shrink or revive one."""
        st, want = self.state, self.cfg.epochs
        if want < st["epoch"]:
            raise SpecError(path, "train.epochs", f"the run folder already trained {st['epoch']} epochs, more than "
                                                  f"the {want} asked; use --fresh or another --out")
        if st["done"] and want > st["epoch"]:
            if st["stopped_early"]:
                raise SpecError(path, "train.epochs", f"the run stopped early at epoch {st['epoch']} (patience "
                                                      f"{self.cfg.patience}); more epochs would not train; use --fresh "
                                                      "or another --out")
            st["done"] = False  # extend deliberately: epochs e+1..want continue the same schedule
        self.resumed_from_epoch = st["epoch"]

    def _set_lr(self, lr: float) -> None:
        for g in self.optim.param_groups:
            g["lr"] = lr

    # -- training ----------------------------------------------------------------------------------
    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            loss = F.cross_entropy(self.forward(x).float(), y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optim.step()
        self.state["step"] += 1
        self._ema_update()
        return float(loss.detach())

    def fit(self, train: WindowSet, val: WindowSet, *, resume: bool = True) -> dict[str, Any]:
        """Train until ``epochs`` or early stopping; returns the state dict (history, best epoch...)."""
        cfg = self.cfg
        seed_everything(cfg.seed)
        resumed = resume and self._load_state()
        train = subsample(train, cfg.max_train_windows, cfg.seed)
        val = subsample(val, cfg.max_val_windows, cfg.seed + 1)
        n_batches = max(1, math.ceil(len(train) / cfg.batch_size))
        t0 = time.perf_counter()
        windows_seen = 0
        self._tb = self._open_tensorboard()
        while not self.state["done"] and self.state["epoch"] < cfg.epochs:
            epoch = self.state["epoch"]
            order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
            losses: list[float] = []
            bar = tqdm(total=n_batches, initial=self.state["batch"], disable=not cfg.progress,
                       desc=f"{self.name} epoch {epoch + 1}/{cfg.epochs}", leave=False)
            for b in range(self.state["batch"], n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x, y = train.batch(idx, self.device)
                losses.append(self._train_step(x, y))
                self.state["epoch_loss_sum"] += losses[-1]  # kept in the state so a resumed epoch's mean is exact
                self.state["epoch_loss_n"] += 1
                windows_seen += len(idx)
                self.state["batch"] = b + 1
                bar.update(1)
                if b % 20 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                    if self._tb is not None:
                        self._tb.add_scalar("train/loss", float(np.mean(losses[-20:])), epoch * n_batches + b)
                if cfg.checkpoint_every and (b + 1) % cfg.checkpoint_every == 0 and b + 1 < n_batches:
                    self._save_state()
                for cb in self.callbacks:
                    cb(self, epoch, b, losses[-1])
            bar.close()
            self._end_epoch(epoch, val)
            self._save_state()
            if self._tb is not None:
                for k, v in self.state["history"][-1].items():
                    if k != "epoch":
                        self._tb.add_scalar(f"epoch/{k}", v, epoch + 1)
                self._tb.flush()
        if self._tb is not None:
            self._tb.close()
        self.state["train_seconds"] = time.perf_counter() - t0
        self.state["train_windows_per_s"] = windows_seen / max(self.state["train_seconds"], 1e-9)
        self.state["resumed"] = resumed
        return self.state

    def _open_tensorboard(self) -> Any:
        """A ``SummaryWriter`` on ``<out>/tb`` (path on stderr when progress is shown), or None."""
        if not (self.cfg.tensorboard and tensorboard_available()):
            return None
        from torch.utils.tensorboard import SummaryWriter

        tb = self.out / "tb"
        if self.cfg.progress:
            tqdm.write(f"tensorboard --logdir {tb}", file=sys.stderr)
        self.state["tensorboard"] = str(tb)
        return SummaryWriter(str(tb))

    def _end_epoch(self, epoch: int, val: WindowSet) -> None:
        cfg = self.cfg
        ev = evaluate(self.eval_model, val, batch_size=cfg.eval_batch_size, device=self.device, amp=self.amp)
        st = self.state
        n = max(st["epoch_loss_n"], 1)
        st["history"].append({"epoch": epoch + 1, "train_loss": st["epoch_loss_sum"] / n,
                              "val_loss": ev["loss"], "val_macro_f1": ev["macro_f1"], "lr": st["lr"]})
        if ev["loss"] < st["best_val_loss"] - 1e-6:
            st["best_val_loss"], st["best_epoch"] = ev["loss"], epoch + 1
            st["bad_epochs"] = st["lr_bad_epochs"] = 0
            save_model(self.out / "best", self.eval_model, self.name,
                       {"epoch": epoch + 1, "val": {k: ev[k] for k in ("loss", "macro_f1", "accuracy")},
                        "train": asdict(cfg), **self.meta})
        else:
            st["bad_epochs"] += 1
            st["lr_bad_epochs"] += 1
            if st["lr_bad_epochs"] > cfg.lr_patience:
                st["lr"] = max(st["lr"] * cfg.lr_factor, cfg.min_lr)
                self._set_lr(st["lr"])
                st["lr_bad_epochs"] = 0
            if st["bad_epochs"] >= cfg.patience:
                st["stopped_early"] = True
                st["done"] = True
        st["epoch"] = epoch + 1
        st["batch"] = 0
        st["epoch_loss_sum"], st["epoch_loss_n"] = 0.0, 0
        if st["epoch"] >= cfg.epochs:
            st["done"] = True


def train_predictor(name: str, sets: dict[str, WindowSet], out_dir: str | Path, *,
                    model_config: dict[str, Any] | None = None, train_config: TrainConfig | None = None,
                    resume: bool = True, callbacks: Sequence[BatchCallback] = (),
                    meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Seed, build model ``name`` (its ``seq_size``/``num_features`` taken from the data unless given),
    train on ``sets["train"]``/``sets["val"]``, reload the best weights and evaluate ``sets["test"]``.

    Returns a JSON-able summary: parameters, history, test metrics, timings, checkpoint path.
    """
    from marketlab.models.checkpoint import load_model
    from marketlab.models.layers import count_parameters
    from marketlab.models.zoo import build_model

    cfg = train_config or TrainConfig()
    mc = dict(model_config or {})
    mc.setdefault("seq_size", sets["train"].seq_size)
    mc.setdefault("num_features", sets["train"].num_features)
    seed_everything(cfg.seed)
    model = build_model(name, mc)
    trainer = Trainer(model, name, cfg, out_dir, callbacks, meta)
    state = trainer.fit(sets["train"], sets["val"], resume=resume)
    device = trainer.device
    best, _ = load_model(Path(out_dir) / "best", device)
    summary: dict[str, Any] = {
        "model": name, "parameters": count_parameters(model), "model_config": model.config_dict(),  # type: ignore[operator]
        "train_config": asdict(cfg), "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
        "stopped_early": state["stopped_early"], "history": state["history"],
        "train_windows": min(len(sets["train"]), cfg.max_train_windows or len(sets["train"])),
        "train_seconds": state["train_seconds"], "train_windows_per_s": state["train_windows_per_s"],
        "checkpoint": str(Path(out_dir) / "best"), "device": str(device),
        "resumed_from_epoch": trainer.resumed_from_epoch,
    }
    if "test" in sets:
        t0 = time.perf_counter()
        ev = evaluate(best, sets["test"], batch_size=cfg.eval_batch_size, device=device, amp=trainer.amp)
        summary["test"] = ev
        summary["test_windows"] = len(sets["test"])
        summary["inference_windows_per_s"] = len(sets["test"]) / max(time.perf_counter() - t0, 1e-9)
    return summary
