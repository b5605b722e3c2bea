"""Checkpoints as safetensors + a JSON sidecar (never pickle; loading executes no code).

A checkpoint directory holds ``model.safetensors`` (weights; the EMA weights when EMA is on),
``config.json`` (model name + config + training metadata) and, for resumable training states,
``state.safetensors`` (raw weights, EMA shadow, optimizer moments, torch RNG) + ``state.json``
(epoch, batch, best score, learning rate, counters).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from marketlab.core.errors import DataError


def _atomic_write_bytes(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically write ``tensors`` (made contiguous, on CPU) to ``path`` in safetensors format."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write_bytes(path, lambda tmp: save_file(flat, tmp))


def save_json(path: Path, data: dict[str, Any]) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
    _atomic_write_bytes(path, w)


def load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON ({exc.msg})", row=exc.lineno) from None


def save_model(directory: str | Path, model: nn.Module, name: str, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (``{"model": name, "config": ..., **extra}``)."""
    d = Path(directory)
    state = {k: v for k, v in model.state_dict().items()}
    save_tensors(d / "model.safetensors", state)
    cfg = {"model": name, "config": model.config_dict(), **(extra or {})}  # type: ignore[operator]
    save_json(d / "config.json", cfg)
    return d


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from ``config.json`` and load ``model.safetensors``; returns ``(model, config)``."""
    from marketlab.models.zoo import build_model

    d = Path(directory)
    meta = load_json(d / "config.json")
    if "model" not in meta or "config" not in meta:
        raise DataError(d / "config.json", "missing 'model' or 'config'", field="model")
    model = build_model(meta["model"], meta["config"], path=d / "config.json")
    wpath = d / "model.safetensors"
    if not wpath.is_file():
        raise DataError(wpath, "checkpoint weights not found")
    state = load_file(str(wpath), device=str(device))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(wpath, f"weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device), meta
