"""String ids -> implementations, resolved lazily from ``"module:attr"`` entry points.

Higher layers ask for ``"predictor/tlob-v1"`` or ``"sim/abm-v1"`` and never import sibling packages
directly; the entry point is imported only when the id is resolved.
"""

from __future__ import annotations

import importlib
from typing import Any

from marketlab.core.errors import SpecError

_ENTRIES: dict[str, str] = {}


def register(name: str, entry_point: str) -> None:
    """Register ``name`` -> ``"package.module:attribute"``. Re-registering the same pair is a no-op."""
    if name in _ENTRIES and _ENTRIES[name] != entry_point:
        raise ValueError(f"registry id {name!r} already points to {_ENTRIES[name]}")
    _ENTRIES[name] = entry_point


def resolve(name: str) -> Any:
    """Import and return the object registered under ``name``."""
    if name not in _ENTRIES:
        known = ", ".join(sorted(_ENTRIES)) or "none"
        raise SpecError(None, None, f"unknown registry id {name!r} (known: {known})")
    module, _, attr = _ENTRIES[name].partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def registered(prefix: str = "") -> list[str]:
    """All registered ids starting with ``prefix``, sorted."""
    return sorted(k for k in _ENTRIES if k.startswith(prefix))
