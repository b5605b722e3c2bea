"""The one dispatch table: registry ids -> implementations.

An id is ``"<kind>/<name>"``: ``"venue/abm-v1"``, ``"reward/diff-sharpe-v1"``, ``"predictor/tlob-v1"``,
``"ingest/lobster"``, ``"op/Corr"``. Specs name ids (or, where the kind is implied by the key, the bare
name); code asks :func:`resolve` and never imports a sibling package to find an implementation.

Two ways in:

* marketlab's own components are listed in :mod:`marketlab.core.builtin_ids` as lazy
  ``"marketlab.<module>:<attr>"`` strings, imported only when resolved (so ``import marketlab`` stays
  cheap and the layers stay visible);
* a user registers an object from Python: ``register("reward/my-v1", MyReward)`` or as a decorator,
  ``@register("reward/my-v1")``. Nothing read from a file can name an importable string: a lazy entry
  must point inside ``marketlab`` and can only be added by code.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from marketlab.core.errors import SpecError

T = TypeVar("T")

#: The kinds of component marketlab dispatches on. A new kind is a new line here, on purpose.
KINDS: frozenset[str] = frozenset(
    {
        "agent",  # RL agents and alpha miners (SB3 algorithms, alphagen, macrohft)
        "env",  # gymnasium environments (ids mirror gymnasium's "marketlab/<Name>-vN")
        "equation",  # BSDE equations
        "forecaster",  # OHLC price forecasters
        "ingest",  # store ingest formats
        "op",  # alpha-expression operators
        "predictor",  # LOB trend predictors
        "reward",  # env rewards
        "runner",  # runnable spec kinds of sweeps and fleets (backtest, simulate, ...)
        "signal",  # backtest signal sources
        "simulator",  # whole-day market simulators
        "venue",  # where an env's orders meet other order flow
        "action",  # env action interpreters
        "state",  # env state interpreters
    }
)

_LAZY_PREFIX = "marketlab."
_entries: dict[str, Any] = {}  # id -> object, or a lazy "marketlab.module:attr" string
_resolved: dict[str, Any] = {}


class _Lazy(str):
    """A lazy entry point; a distinct type so a user's registered *string object* is never imported."""


def _split(registry_id: str) -> tuple[str, str]:
    kind, sep, name = registry_id.partition("/")
    if not sep or not name or kind not in KINDS:
        raise ValueError(f"registry id {registry_id!r} must be '<kind>/<name>' with kind in {sorted(KINDS)}")
    return kind, name


def register(registry_id: str, obj: Any = None, *, replace: bool = False) -> Any:
    """Register ``obj`` under ``registry_id``; with ``obj`` omitted, return a decorator.

    Re-registering the identical object is a no-op; another object under a taken id raises
    ``ValueError`` unless ``replace=True`` (for a user who deliberately shadows a built-in).
    """
    _split(registry_id)
    if obj is None:

        def deco(target: T) -> T:
            register(registry_id, target, replace=replace)
            return target

        return deco
    old = _entries.get(registry_id)
    if old is not None and old is not obj and old != obj and not replace:
        raise ValueError(f"registry id {registry_id!r} is already registered ({_describe(old)})")
    _entries[registry_id] = obj
    _resolved.pop(registry_id, None)
    return obj


def register_lazy(registry_id: str, entry_point: str) -> None:
    """Register a built-in by ``"marketlab.module:attr"``; imported on first :func:`resolve`."""
    if not entry_point.startswith(_LAZY_PREFIX) or ":" not in entry_point:
        raise ValueError(f"lazy entry {entry_point!r} must be 'marketlab.<module>:<attr>'")
    register(registry_id, _Lazy(entry_point))


def _describe(obj: Any) -> str:
    if isinstance(obj, _Lazy):
        return str(obj)
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def qualify(kind: str, name: str) -> str:
    """``("reward", "diff-sharpe-v1")`` or ``("reward", "reward/diff-sharpe-v1")`` -> the full id."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}")
    return name if name.startswith(kind + "/") else f"{kind}/{name}"


def resolve(registry_id: str, *, kind: str | None = None, path: Any = None, key: str | None = None) -> Any:
    """The object registered under ``registry_id`` (a full id, or a bare name when ``kind`` is given).

    An unknown id is a :class:`SpecError` naming ``path``/``key`` (the spec file and key it came from)
    and listing the known ids of that kind.
    """
    if not isinstance(registry_id, str):
        raise SpecError(path, key, f"expected a registry id string, got {registry_id!r}")
    full = qualify(kind, registry_id) if kind is not None else registry_id
    if full in _resolved:
        return _resolved[full]
    if full not in _entries:
        k = full.partition("/")[0]
        known = ", ".join(ids(k)) if k in KINDS else ", ".join(sorted(KINDS))
        what = f"unknown {k} id" if k in KINDS else "unknown registry id"
        raise SpecError(path, key, f"{what} {registry_id!r} (known: {known or 'none'})")
    obj = _entries[full]
    if isinstance(obj, _Lazy):
        module, _, attr = obj.partition(":")
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
        obj = target
    _resolved[full] = obj
    return obj


def ids(kind: str | None = None) -> list[str]:
    """All registered ids (of ``kind`` when given), sorted."""
    prefix = "" if kind is None else kind + "/"
    return sorted(k for k in _entries if k.startswith(prefix))


def names(kind: str) -> list[str]:
    """The bare names registered under ``kind`` (``["diff-sharpe-v1", "pnl-v1", ...]``), sorted."""
    return [i.split("/", 1)[1] for i in ids(kind)]


def is_registered(registry_id: str) -> bool:
    """Whether ``registry_id`` has an entry."""
    return registry_id in _entries


def unregister(registry_id: str) -> None:
    """Remove an id (tests and users undoing their own registration)."""
    _entries.pop(registry_id, None)
    _resolved.pop(registry_id, None)


def _load_builtins() -> None:
    from marketlab.core.builtin_ids import BUILTIN_IDS

    for registry_id, entry in BUILTIN_IDS.items():
        register_lazy(registry_id, entry)


_load_builtins()
