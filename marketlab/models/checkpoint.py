"""Checkpoints as safetensors + a JSON sidecar (never pickle; loading executes no code).

A checkpoint directory holds ``model.safetensors`` (weights; the EMA weights when EMA is on),
``config.json`` (model name + config + training metadata) and, for resumable training states,
``state.safetensors`` (raw weights, EMA shadow, optimizer moments, torch RNG, and in its header the
epoch, batch, best score, learning rate, counters and the config the run was started with) +
``state.json`` (a readable copy of that header; resume reads the header, so one atomic rename commits a
whole state). Every file is written to a temporary name and renamed into place; a truncated or corrupt
safetensors file is a one-line :class:`DataError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from marketlab.core.errors import DataError
from marketlab.core.files import atomic_write


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically write ``tensors`` (made contiguous, on CPU) and string ``metadata`` to ``path`` (safetensors)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, header metadata)`` of a safetensors file; missing, truncated or corrupt -> :class:`DataError`."""
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except SafetensorError as exc:
        raise DataError(path, f"not a readable safetensors file, truncated or corrupt ({exc})") from None
    return tensors, meta


def save_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write ``data`` as indented JSON (non-JSON values as ``str``)."""

    def w(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
    atomic_write(path, w)


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON checkpoint file; missing or invalid -> :class:`DataError` naming it."""
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON ({exc.msg})", row=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object")
    return data


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
    state, _ = load_tensors(wpath, device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(wpath, f"weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device), meta
