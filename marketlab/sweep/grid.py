"""Grids of spec overrides: ``key=v1,v2`` strings -> the variants of a sweep, each a flat
``{dotted key: value}`` applied to the spec's TOML table before it is validated like a file.

A key is a dotted path to a leaf of the spec's dataclasses (``costs.commission``, ``signal.lookback``,
``seed``); an unknown key is a :class:`SpecError` that lists the spec's known keys. Values are TOML
scalars (``5`` int, ``0.5`` float, ``true``, ``"text"`` or a bare word as a string). The variants of a
grid are its Cartesian product in a fixed order (keys sorted, values as given), so a restart plans the
same variants.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from marketlab.core.errors import SpecError

Params = dict[str, Any]
Grid = dict[str, list[Any]]


def parse_value(token: str) -> Any:
    """A TOML scalar (int, float, bool, quoted string), else the bare token as a string."""
    token = token.strip()
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token


def parse_grid(items: Sequence[str] | Mapping[str, Sequence[Any]]) -> Grid:
    """``["costs.commission=0,0.001", "signal.lookback=5,10"]`` (or a mapping key -> values) -> Grid.

    An empty grid, a key without ``=`` or without values, a key or a value given twice is a
    :class:`SpecError`."""
    grid: Grid = {}
    pairs: list[tuple[str, list[Any]]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), list(v) if isinstance(v, (list, tuple, range)) else [v]) for k, v in items.items()]
    else:
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise SpecError(None, "--grid", f"expected key=v1,v2,... got {item!r}")
            pairs.append((key.strip(), [parse_value(v) for v in text.split(",") if v.strip()]))
    for key, values in pairs:
        if key in grid:
            raise SpecError(None, "--grid", f"key {key!r} given twice")
        if not values:
            raise SpecError(None, "--grid", f"key {key!r} has no values")
        if len({repr(v) for v in values}) < len(values):
            raise SpecError(None, "--grid", f"key {key!r}: a value is given twice")
        grid[key] = values
    if not grid:
        raise SpecError(None, "--grid", "empty grid: give at least one key=v1,v2,...")
    return grid


def expand(grid: Grid) -> list[Params]:
    """The Cartesian product of ``grid``: keys sorted, values in the order given."""
    keys = sorted(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def sample(variants: list[Params], n: int, seed: int) -> list[Params]:
    """Random search: ``n`` distinct variants drawn without replacement (NumPy generator seeded by ``seed``),
    kept in grid order, so the same ``n`` and ``seed`` pick the same variants on a restart."""
    if n < 1:
        raise SpecError(None, "--random", f"must be >= 1, got {n}")
    if n > len(variants):
        raise SpecError(None, "--random", f"{n} exceeds the grid's {len(variants)} variants")
    import numpy as np

    picked = np.sort(np.random.default_rng(seed).choice(len(variants), size=n, replace=False))
    return [variants[int(i)] for i in picked]


def known_keys(spec_class: type) -> list[str]:
    """Dotted paths of every leaf field of a spec dataclass (nested tables recursed, optional ones too).
    Fields holding free tables (``dict``) are listed as ``<key>.*``: any sub-key may be swept."""
    out: list[str] = []
    hints = typing.get_type_hints(spec_class, include_extras=True)
    for f in dataclasses.fields(spec_class):
        tp = _strip(hints[f.name])
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            out += [f"{f.name}.{k}" for k in known_keys(tp)]
        elif typing.get_origin(tp) is dict or tp is dict:
            out.append(f"{f.name}.*")
        else:
            out.append(f.name)
    return out


def _strip(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X (one non-None member)."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


def check_keys(grid: Mapping[str, Any], spec_class: type, path: str | Path | None) -> None:
    """Every grid key names a leaf of ``spec_class`` (or sits under a free table); else a SpecError
    naming the key and listing the known ones."""
    known = known_keys(spec_class)
    exact = set(known)
    free = tuple(k[:-1] for k in known if k.endswith(".*"))
    for key in grid:
        if key not in exact and not (key.startswith(free) and free):
            raise SpecError(path, key, f"unknown grid key; known keys: {', '.join(known)}")


def apply(raw: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """A deep copy of the TOML table ``raw`` with each dotted key of ``params`` set (tables created)."""
    out = copy.deepcopy(dict(raw))
    for key, value in params.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def variant_id(kind: str, spec_digest: str, params: Params, options: Mapping[str, Any] | None = None) -> str:
    """12 hex chars naming one variant: the runner kind, the spec file's bytes, the overrides and the
    runner options. A restart finds the same ids; an edited spec file makes new ones."""
    text = json.dumps({"kind": kind, "spec": spec_digest, "params": params, "options": dict(options or {})},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
