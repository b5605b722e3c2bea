"""LOB predictors by name, through the core registry: ``predictor/<name>-v1`` -> the model class.

Each model class carries its config dataclass as ``config_class``; ``build_model(name, cfg_dict)``
resolves the class, checks the overrides against that config (unknown keys and bad values are a
:class:`SpecError` naming ``model.<key>``) and instantiates it. The CLI and checkpoints name models by
the bare name (``"tlob"``); a full versioned name (``"tlob-v1"``) is accepted as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from marketlab.core import registry
from marketlab.core.config import from_dict
from marketlab.core.errors import SpecError

_VERSION = "-v1"


def model_names() -> list[str]:
    """Bare names of the registered predictors (``binctabl``, ``deeplob``, ``mlplob``, ``tlob``), sorted."""
    return sorted(n.removesuffix(_VERSION) for n in registry.names("predictor"))


def model_class(name: str, *, path: str | Path | None = None) -> type[nn.Module]:
    """The class registered as ``predictor/<name>-v1`` (or ``predictor/<name>`` for a versioned name).

    An unknown name is a :class:`SpecError` naming ``path`` and key ``model`` and listing the known ids.
    """
    # a bare name means its -v1 id; an unknown one is looked up as given, so the error names what was asked
    full = name + _VERSION if registry.is_registered(f"predictor/{name}{_VERSION}") else name
    cls = registry.resolve(full, kind="predictor", path=path, key="model")
    if not hasattr(cls, "config_class"):
        raise SpecError(path, "model", f"predictor/{full} has no config_class")
    return cls


def build_model(name: str, config: dict[str, Any] | None = None, *, path: str | Path | None = None) -> nn.Module:
    """Instantiate model ``name`` with config overrides ``config`` (unknown keys -> :class:`SpecError`)."""
    cls = model_class(name, path=path)
    try:
        cfg = from_dict(cls.config_class, dict(config or {}), path=path, prefix="model.")  # type: ignore[attr-defined]
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(path, "model", str(exc)) from None
    return cls(cfg)
