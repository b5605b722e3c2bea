"""Frozen, typed configs loaded from TOML with unknown keys rejected.

A component declares ``@dataclass(frozen=True)`` configs; :func:`from_dict` builds one from a mapping,
recursing into nested dataclass fields, checking simple types and rejecting unknown keys with a
:class:`SpecError` that names the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from marketlab.core.errors import SpecError

T = TypeVar("T")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error is a one-line :class:`SpecError`."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(p, None, "file not found")
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(p, None, f"invalid TOML: {exc}") from None


def _check_type(value: Any, tp: Any, path: str | Path | None, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SpecError(path, key, f"expected a table, got {type(value).__name__}")
        return from_dict(tp, value, path=path, prefix=key + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, path, key)
            except SpecError as exc:
                errors.append(str(exc))
        raise SpecError(path, key, f"value {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise SpecError(path, key, f"must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SpecError(path, key, f"expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_check_type(v, inner, path, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(path, key, f"expected a table, got {type(value).__name__}")
        return dict(value)
    if tp is Any or tp is typing.Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(path, key, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(path, key, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(path, key, f"expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(path, key, f"expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, path: str | Path | None = None, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`SpecError`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(path, prefix + unknown[0], f"unknown key (allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], path, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(path, prefix + name, "missing required key")
    return cls(**kwargs)


def load_config(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load ``cls`` from a TOML file (optionally one top-level ``section`` of it)."""
    data = load_toml(path)
    if section is not None:
        if section not in data:
            raise SpecError(path, section, "missing section")
        data = data[section]
    return from_dict(cls, data, path=path, prefix=f"{section}." if section else "")
