"""Model names -> (class, config class), reference configurations and construction from a dict.

The CLI and checkpoints name models by these ids; ``build_model(name, cfg_dict)`` rejects unknown keys
(through :func:`marketlab.core.config.from_dict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from marketlab.core.config import from_dict
from marketlab.core.errors import SpecError
from marketlab.models.binctabl import BiNCTABL, BiNCTABLConfig
from marketlab.models.deeplob import DeepLOB, DeepLOBConfig
from marketlab.models.mlplob import MLPLOB, MLPLOBConfig
from marketlab.models.tlob import TLOB, TLOBConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "tlob": (TLOB, TLOBConfig),
    "mlplob": (MLPLOB, MLPLOBConfig),
    "deeplob": (DeepLOB, DeepLOBConfig),
    "binctabl": (BiNCTABL, BiNCTABLConfig),
}


def model_names() -> list[str]:
    return sorted(MODELS)


def build_model(name: str, config: dict[str, Any] | None = None, *, path: str | Path | None = None) -> nn.Module:
    """Instantiate model ``name`` with config overrides ``config`` (unknown keys -> :class:`SpecError`)."""
    if name not in MODELS:
        raise SpecError(path, "model", f"unknown model {name!r} (known: {', '.join(model_names())})")
    cls, cfg_cls = MODELS[name]
    try:
        cfg = from_dict(cfg_cls, dict(config or {}), path=path, prefix="model.")
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(path, "model", str(exc)) from None
    return cls(cfg)


def model_input_spec(model: nn.Module) -> tuple[int, int]:
    """``(seq_size, num_features)`` a model expects for its ``(B, T, F)`` input."""
    c = model.config  # type: ignore[attr-defined]
    return int(c.seq_size), int(c.num_features)
