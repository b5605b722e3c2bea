"""Frozen, typed configs loaded from TOML with unknown keys rejected.

A component declares ``@dataclass(frozen=True)`` configs, usually deriving from :class:`Spec`;
:func:`from_dict` builds one from a mapping, recursing into nested dataclass fields, checking types
(``Literal`` kinds, unions, lists) and value constraints declared with ``Annotated`` (:data:`PositiveInt`,
:data:`FiniteFloat`, :data:`Identifier`, :class:`Range` ...), and rejecting unknown keys with a
:class:`SpecError` that names the file and the dotted key. ``Spec.validate`` is the hook for rules that
tie several fields together (a split that must not overlap).
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from marketlab.core.errors import SpecError

T = TypeVar("T")

#: The one variable that names the folder of raw datasets; ``$MARKETLAB_DATA/...`` in a spec path starts there.
DATA_ENV = "MARKETLAB_DATA"
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


@dataclasses.dataclass(frozen=True)
class PathRef:
    """Marker for ``Annotated[str, PathRef()]`` (:data:`SpecPath`): a file or folder named in a spec. Loaded
    from a file, the value is resolved by :func:`resolve_spec_path` (against the spec file's folder, or the
    raw-data root for ``$MARKETLAB_DATA/...``), so every component gets the same answer from any cwd."""

    def check(self, value: Any) -> str | None:
        """Any string names a path (existence is checked by whoever opens it)."""
        return None


#: A path in a spec: relative to the spec file's folder; ``$MARKETLAB_DATA/...`` under the raw-data root.
SpecPath = Annotated[str, PathRef()]
PositiveInt = Annotated[int, Range(lo=1)]
NonNegativeInt = Annotated[int, Range(lo=0)]
PositiveFloat = Annotated[float, Range(lo=0.0, lo_open=True)]
NonNegativeFloat = Annotated[float, Range(lo=0.0)]
FiniteFloat = Annotated[float, Range()]
Fraction = Annotated[float, Range(lo=0.0, hi=1.0)]
#: Output names (datasets, runs, reports): letters, digits, '-', '_', '.'; no path separators, no '..'.
Identifier = Annotated[str, Pattern(r"(?!\.{1,2}$)[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", "an identifier (letters, digits, '-', '_', '.')")]


#: Set while :func:`from_dict` constructs a dataclass: its values are already checked.
_IN_FROM_DICT: contextvars.ContextVar[bool] = contextvars.ContextVar("marketlab_spec_from_dict", default=False)


class Spec:
    """Base of every spec/config dataclass: one way to load, one hook to validate.

    Subclasses are ``@dataclass(frozen=True)``. ``from_toml(path)`` and ``from_dict(mapping)`` both check
    keys, types and constraints, then call :meth:`validate`, which raises :class:`SpecError` for rules
    across fields. ``path`` is kept only for error messages and for resolving relative paths.

    A subclass with ``check_on_init = True`` is checked the same way when built directly in Python
    (``BacktestSpec(name=..., data={...})``): nested tables given as dicts become their spec classes, and a
    wrong type or value is a one-line :class:`SpecError` naming the key, instead of an ``AttributeError``
    later. Opt-in per class, so configs built in hot loops pay nothing.
    """

    check_on_init: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not type(self).check_on_init or _IN_FROM_DICT.get():
            return
        data = {f.name: _as_table(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        built = from_dict(type(self), data)
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, getattr(built, f.name))

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


def _as_table(value: Any) -> Any:
    """A nested spec instance -> its mapping (so :func:`from_dict` re-checks it); anything else as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _as_table(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolve_spec_path(value: str | Path, spec_file: str | Path | None, *, key: str | None = None) -> Path:
    """The one rule for a path written in a spec.

    ``$MARKETLAB_DATA/rest`` (or ``${MARKETLAB_DATA}/rest``) is ``rest`` under the raw-data root named by that
    variable (unset: a :class:`SpecError` naming the file and key); ``~`` is the home folder; an absolute path
    stays; a relative one is relative to the folder of ``spec_file`` (to the current directory only for a spec
    built in Python, ``spec_file`` None). The result is absolute whenever ``spec_file`` is."""
    text = str(value)
    for var in (f"${{{DATA_ENV}}}", f"${DATA_ENV}"):
        if text == var or text.startswith(var + "/"):
            root = os.environ.get(DATA_ENV)
            if not root:
                raise SpecError(spec_file, key, f"{text!r} starts with ${DATA_ENV}, which is not set "
                                                "(set it to the folder of raw datasets)")
            return Path(os.path.normpath(Path(root).expanduser().absolute() / text[len(var):].lstrip("/")))
    p = Path(text).expanduser()
    if p.is_absolute() or spec_file is None:
        return p
    return Path(os.path.normpath(Path(spec_file).absolute().parent / p))  # textual '..', as the user wrote it


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
            if isinstance(c, PathRef) and value and path is not None:  # one rule for every path in a spec file
                value = str(resolve_spec_path(value, path, key=key))
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
    token = _IN_FROM_DICT.set(True)
    try:
        obj = cls(**kwargs)
    finally:
        _IN_FROM_DICT.reset(token)
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


# --- documentation generated from the configs themselves (JSON Schema, commented TOML, key tables) -------------

def field_comments(cls: type) -> dict[str, str]:
    """Trailing ``# comment`` of each field line in the class body (``fee: Fraction = 0.0002  # per side``);
    a field the class inherits keeps the comment of the nearest base that declares it with one.

    Source is read with :mod:`inspect`; a class without source (built dynamically) has none."""
    import inspect

    out: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for klass in cls.__mro__ if isinstance(cls, type) else (cls,):
        if klass is object:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            m = re.match(r"\s+([A-Za-z_]\w*)\s*:[^#]*#\s*(.+)$", line)
            if m and m.group(1) in names and m.group(1) not in out:
                out[m.group(1)] = m.group(2).strip()
    return out


def _doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    return "" if doc.startswith(f"{cls.__name__}(") else " ".join(doc.split())  # dataclass auto-docs say nothing


def field_default(f: dataclasses.Field[Any]) -> tuple[bool, Any]:
    """(has a default, the default as plain data) of a dataclass field."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return False, None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return True, _plain(value)


def json_schema(tp: Any, *, title: str | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config type, derived from the same hints :func:`from_dict` checks.

    Dataclasses become closed objects (``additionalProperties: false``) with ``required`` keys and
    defaults; ``Literal`` an ``enum``; :class:`Range` ``minimum``/``maximum`` (exclusive when open);
    :class:`Pattern` a ``pattern``; ``X | None`` an ``anyOf`` with ``null``."""
    schema = _schema(tp)
    if title is not None:
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}
    return schema


def _schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *constraints = typing.get_args(tp)
        out = _schema(base)
        for c in constraints:
            if isinstance(c, Range):
                if math.isfinite(c.lo):
                    out["exclusiveMinimum" if c.lo_open else "minimum"] = c.lo
                if math.isfinite(c.hi):
                    out["exclusiveMaximum" if c.hi_open else "maximum"] = c.hi
            elif isinstance(c, Pattern):
                out["pattern"] = f"^{c.regex}$"
                out["description"] = c.what
            elif isinstance(c, PathRef):
                out["format"] = "path"
        return out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp, include_extras=True)
        comments = field_comments(tp)
        props: dict[str, Any] = {}
        required = []
        for f in dataclasses.fields(tp):
            p = _schema(hints[f.name])
            has, default = field_default(f)
            if has:
                p["default"] = default
            else:
                required.append(f.name)
            if f.name in comments:
                p["description"] = comments[f.name]
            props[f.name] = p
        out = {"type": "object", "title": tp.__name__, "properties": props, "additionalProperties": False}
        if _doc(tp):
            out["description"] = _doc(tp)
        if required:
            out["required"] = required
        return out
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp)]
        return {"anyOf": [{"type": "null"} if a is type(None) else _schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return {"type": "array", "items": _schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        return {"type": "object"}
    simple = {float: {"type": "number"}, int: {"type": "integer"}, bool: {"type": "boolean"}, str: {"type": "string"}}
    return dict(simple.get(tp, {}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else '"nan"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _type_words(tp: Any) -> str:
    """A short human name of a field type: ``integer >= 1``, ``one of "bars", "panel"``, ``list of string``."""
    s = _schema(tp)
    return _schema_words(s)


def _schema_words(s: dict[str, Any]) -> str:
    if "anyOf" in s:
        parts = [_schema_words(a) for a in s["anyOf"] if a.get("type") != "null"]
        return " or ".join(parts) + (" (optional)" if any(a.get("type") == "null" for a in s["anyOf"]) else "")
    if "enum" in s:
        return "one of " + ", ".join(_toml_value(v) for v in s["enum"])
    t = s.get("type", "any")
    if t == "array":
        return "list of " + _schema_words(s.get("items", {}))
    if t == "object":
        return "table " + s["title"] if "title" in s else "table"
    words = {"number": "number", "integer": "integer", "boolean": "true/false", "string": "string"}.get(t, t)
    bounds = []
    for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in s:
            v = s[key]
            bounds.append(f"{op} {int(v) if float(v).is_integer() else v}")
    if "pattern" in s:
        words = str(s.get("description", words))
    if s.get("format") == "path":
        words = "path"
    return str(words) + (" " + ", ".join(bounds) if bounds else "")


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the dataclass inside ``X`` / ``X | None`` / ``list[X]`` or None, whether it is a list of tables)."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(inner[0]) if len(inner) == 1 else (None, False)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if args and dataclasses.is_dataclass(args[0]):
            return args[0], True
        return None, False
    return (tp, False) if dataclasses.is_dataclass(tp) and isinstance(tp, type) else (None, False)


def toml_example(cls: type, *, header: str = "") -> str:
    """A commented TOML file with every key of ``cls`` and its default (required keys and keys whose default
    is none are commented out: TOML has no null). Nested configs become ``[tables]``, lists of them
    ``[[arrays of tables]]`` with one example entry."""
    out: list[str] = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    _toml_table(cls, "", out, commented=False, defaults=None)
    return "\n".join(out).strip("\n") + "\n"


def _toml_table(cls: type, prefix: str, out: list[str], *, commented: bool, defaults: dict[str, Any] | None,
                array: bool = False) -> None:
    """Append the lines of one table; ``defaults``: the enclosing field's default value (it may differ from
    the class's own field defaults, e.g. one layer's training settings), None to use the class's."""
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = field_comments(cls)
    c = "# " if commented else ""
    if prefix:
        out.append("")
        doc = _doc(cls)
        if doc:
            out.extend(f"# {ln}" for ln in _wrap(doc))
        out.append(f"{c}[[{prefix}]]" if array else f"{c}[{prefix}]")
    nested = []
    for f in dataclasses.fields(cls):
        inner, is_list = _unwrap(hints[f.name])
        has, default = _default_in(f, defaults)
        if inner is not None and (is_list or not isinstance(default, (list, tuple))):
            nested.append((f, inner, is_list, has, default))
            continue
        note = _type_words(hints[f.name])
        if f.name in comments:
            note += f"; {comments[f.name]}"
        if not has:
            out.append(f"# {f.name} = ...  # REQUIRED: {note}")
        elif default is None:
            out.append(f"# {f.name} =  # {note}; default: none")
        else:
            out.append(f"{c}{f.name} = {_toml_value(default)}  # {note}")
    for f, inner, is_list, has, default in nested:
        key = f"{prefix}.{f.name}" if prefix else f.name
        # a table that is off by default (None) or a list of tables is shown commented out, filled with defaults
        off = commented or is_list or (has and default is None)
        _toml_table(inner, key, out, commented=off, array=is_list, defaults=default if isinstance(default, dict) else None)


def _default_in(f: dataclasses.Field[Any], defaults: dict[str, Any] | None) -> tuple[bool, Any]:
    """(has a default, the default) of field ``f``, taken from the enclosing default when it has one."""
    if defaults is not None and f.name in defaults:
        return True, defaults[f.name]
    return field_default(f)


def _wrap(text: str, width: int = 108) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def key_rows(cls: type, prefix: str = "", defaults: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    """(dotted key, type in words, default as TOML or "required"/"none", description) of every key; a nested
    table gets a row of its own (``[key]``, ``[[key]]`` for a list of tables) before its keys."""
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = field_comments(cls)
    rows: list[tuple[str, str, str, str]] = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        inner, is_list = _unwrap(hints[f.name])
        has, default = _default_in(f, defaults)
        if inner is not None and (is_list or not isinstance(default, (list, tuple))):
            table = f"[[{key}]]" if is_list else f"[{key}]"
            rows.append((table, "list of tables" if is_list else "table", "none" if has and default is None else "",
                         comments.get(f.name, "") or _doc(inner)))
            rows.extend(key_rows(inner, key + ("[]." if is_list else "."), default if isinstance(default, dict) else None))
            continue
        shown = "required" if not has else "none" if default is None else _toml_value(default)
        rows.append((key, _type_words(hints[f.name]), shown, comments.get(f.name, "")))
    return rows
