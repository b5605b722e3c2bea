"""Vocabulary of the alpha expression language: features, constants, time deltas and operators.

Operators fall into five categories that fix their arity and what their operands may be:

* ``unary``        f(x)            x featured                         (Abs, Log, Sign, CSRank, CSZScore)
* ``binary``       f(x, y)         at least one of x, y featured      (Add, Sub, Mul, Div, Pow, Greater, Less)
* ``rolling``      f(x, d)         x featured, d a time delta         (Ref, Mean, Sum, ... WMA, EMA)
* ``pair_rolling`` f(x, y, d)      x and y featured, d a time delta   (Cov, Corr)

"Featured" means the sub-expression contains at least one feature, so it varies across stocks and days;
constant-only expressions are never legal operands where that would make the output constant.

Windows: each rolling operator has a minimum window. ``Ref`` and ``Delta`` accept 1 (yesterday's value,
one-day change); every statistic over a window needs at least 2 points (Skew 3, Kurt 4), which fixes the
reference implementation's fault where ``Std(x,1)``, ``EMA(x,1)``, ``WMA(x,1)``, ``Cov(x,y,1)`` silently
produced constant (all-NaN → zero) alphas.
"""

from __future__ import annotations

from marketlab.core import registry
from marketlab.features.expr.ops import OpSpec

FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")

# AlphaGen's constant set (both reference commits).
CONSTANTS: tuple[float, ...] = (-30.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.01, 0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

# AlphaGen @HEAD time deltas. 1 is kept because Ref/Delta use it; the grammar masks it for window stats.
DELTAS: tuple[int, ...] = (1, 5, 10, 20, 40)


# Every op/<Name> id of the registry, resolved once here: the parser and grammar read this dict, never the
# registry, so parsing stays a dict lookup.
OPERATORS: dict[str, OpSpec] = {spec.name: spec for spec in (registry.resolve(i) for i in registry.ids("op"))}

# The 22 operators AlphaGen's RL action set uses (Sign, Skew, Kurt, Rank, CSRank, Pow are parser-only there).
ALPHAGEN_OPERATORS: tuple[str, ...] = (
    "Abs", "Log", "Add", "Sub", "Mul", "Div", "Greater", "Less",
    "Ref", "Mean", "Sum", "Std", "Var", "Max", "Min", "Med", "Mad", "Delta", "WMA", "EMA",
    "Cov", "Corr",
)  # fmt: skip

# Case-insensitive lookup so "corr(...)" and "CORR(...)" parse; printing always uses the canonical name.
_OP_LOOKUP: dict[str, str] = {k.lower(): k for k in OPERATORS}


def lookup_operator(name: str) -> OpSpec | None:
    """Return the operator spec for ``name`` (case-insensitive) or None."""
    canon = _OP_LOOKUP.get(name.lower())
    return OPERATORS[canon] if canon else None
