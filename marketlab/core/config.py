"""Frozen, typed configs loaded from TOML with unknown keys rejected.

A component declares ``@dataclass(frozen=True)`` configs, usually deriving from :class:`Spec`;
:func:`from_dict` builds one from a mapping, recursing into nested dataclass fields, checking types
(``Literal`` kinds, unions, lists) and value constraints declared with ``Annotated`` (:data:`PositiveInt`,
:data:`FiniteFloat`, :data:`Identifier`, :class:`Range` ...), and rejecting unknown keys with a
:class:`SpecError` that names the file and the dotted key. ``Spec.validate`` is the hook for rules that
tie several fields together (a split that must not overlap).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

from marketlab.core.errors import SpecError

T = TypeVar("T")
S = TypeVar("S", bound="Spec")


@dataclasses.dataclass(frozen=True)
class Range:
    """Value constraint for ``Annotated[float, Range(lo, hi)]``: lo <= v <= hi (strict with ``*_open``).
    Non-finite floats are always refused."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def check(self, value: Any) -> str | None:
        """None when ``value`` satisfies the range, else the problem in words."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        if (value <= self.lo if self.lo_open else value < self.lo) or (value >= self.hi if self.hi_open else value > self.hi):
            lb = "(" if self.lo_open else "["
            rb = ")" if self.hi_open else "]"
            return f"must be in {lb}{self.lo:g}, {self.hi:g}{rb}, got {value!r}"
        return None


@dataclasses.dataclass(frozen=True)
class Pattern:
    """String constraint for ``Annotated[str, Pattern(regex, what)]``."""

    regex: str
    what: str

    def check(self, value: Any) -> str | None:
        """None when ``value`` matches, else the problem in words."""
        return None if re.fullmatch(self.regex, value) else f"must be {self.what}, got {value!r}"


PositiveInt = Annotated[int, Range(lo=1)]
NonNegativeInt = Annotated[int, Range(lo=0)]
PositiveFloat = Annotated[float, Range(lo=0.0, lo_open=True)]
NonNegativeFloat = Annotated[float, Range(lo=0.0)]
FiniteFloat = Annotated[float, Range()]
Fraction = Annotated[float, Range(lo=0.0, hi=1.0)]
#: Output names (datasets, runs, reports): letters, digits, '-', '_', '.'; no path separators, no '..'.
Identifier = Annotated[str, Pattern(r"(?!\.{1,2}$)[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", "an identifier (letters, digits, '-', '_', '.')")]


class Spec:
    """Base of every spec/config dataclass: one way to load, one hook to validate.

    Subclasses are ``@dataclass(frozen=True)``. ``from_toml(path)`` and ``from_dict(mapping)`` both check
    keys, types and constraints, then call :meth:`validate`, which raises :class:`SpecError` for rules
    across fields. ``path`` is kept only for error messages and for resolving relative paths.
    """

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any], *, path: str | Path | None = None, section: str | None = None) -> S:
        """Build and validate from a mapping (``section`` selects one top-level table)."""
        if section is not None:
            if section not in data:
                raise SpecError(path, section, "missing section")
            data = data[section]
        return from_dict(cls, data, path=path, prefix=f"{section}." if section else "")

    @classmethod
    def from_toml(cls: type[S], path: str | Path, *, section: str | None = None) -> S:
        """Load and validate from a TOML file."""
        return cls.from_dict(load_toml(path), path=path, section=section)

    def validate(self, path: str | Path | None = None) -> None:
        """Cross-field rules; raise :class:`SpecError` naming ``path`` and the key. Default: none."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of the fields (tuples as lists), suitable for TOML/JSON."""
        fields: dict[str, Any] = _plain(dataclasses.asdict(self))  # type: ignore[call-overload]
        return fields


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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
    if origin is Annotated:
        base, *constraints = typing.get_args(tp)
        value = _check_type(value, base, path, key)
        for c in constraints:
            problem = c.check(value) if value is not None and hasattr(c, "check") else None
            if problem:
                raise SpecError(path, key, problem)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SpecError(path, key, f"expected a table, got {type(value).__name__}")
        return from_dict(tp, value, path=path, prefix=key + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[SpecError] = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, path, key)
            except SpecError as exc:
                errors.append(exc)
        if len(errors) == 1:  # an optional value (``X | None``): the one real type's own problem says more
            raise errors[0]
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
        if not math.isfinite(value):
            raise SpecError(path, key, f"must be a finite number, got {value!r}")
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
    if not isinstance(data, dict):
        raise SpecError(path, prefix.rstrip(".") or None, f"expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
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
    obj = cls(**kwargs)
    if isinstance(obj, Spec):
        obj.validate(path)
    return obj


def load_config(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load ``cls`` from a TOML file (optionally one top-level ``section`` of it)."""
    data = load_toml(path)
    if section is not None:
        if section not in data:
            raise SpecError(path, section, "missing section")
        data = data[section]
    return from_dict(cls, data, path=path, prefix=f"{section}." if section else "")
