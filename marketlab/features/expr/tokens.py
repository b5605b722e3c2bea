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

from dataclasses import dataclass

FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")

# AlphaGen's constant set (both reference commits).
CONSTANTS: tuple[float, ...] = (-30.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.01, 0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

# AlphaGen @HEAD time deltas. 1 is kept because Ref/Delta use it; the grammar masks it for window stats.
DELTAS: tuple[int, ...] = (1, 5, 10, 20, 40)


@dataclass(frozen=True)
class OpSpec:
    """Static description of one operator: name, category, arity (not counting the window), min window."""

    name: str
    category: str  # "unary" | "binary" | "rolling" | "pair_rolling"
    min_window: int = 0  # only for rolling / pair_rolling

    @property
    def n_operands(self) -> int:
        """Number of expression operands (the window, if any, is extra)."""
        return {"unary": 1, "binary": 2, "rolling": 1, "pair_rolling": 2}[self.category]

    @property
    def n_args(self) -> int:
        """Total arguments including the window (what the RPN stack machine pops)."""
        return self.n_operands + (1 if self.category in ("rolling", "pair_rolling") else 0)

    @property
    def windowed(self) -> bool:
        return self.category in ("rolling", "pair_rolling")


_SPECS: tuple[OpSpec, ...] = (
    OpSpec("Abs", "unary"),
    OpSpec("Log", "unary"),
    OpSpec("Sign", "unary"),
    OpSpec("CSRank", "unary"),
    OpSpec("CSZScore", "unary"),
    OpSpec("Add", "binary"),
    OpSpec("Sub", "binary"),
    OpSpec("Mul", "binary"),
    OpSpec("Div", "binary"),
    OpSpec("Pow", "binary"),
    OpSpec("Greater", "binary"),
    OpSpec("Less", "binary"),
    OpSpec("Ref", "rolling", 1),
    OpSpec("Delta", "rolling", 1),
    OpSpec("Mean", "rolling", 2),
    OpSpec("Sum", "rolling", 2),
    OpSpec("Std", "rolling", 2),
    OpSpec("Var", "rolling", 2),
    OpSpec("Skew", "rolling", 3),
    OpSpec("Kurt", "rolling", 4),
    OpSpec("Max", "rolling", 2),
    OpSpec("Min", "rolling", 2),
    OpSpec("Med", "rolling", 2),
    OpSpec("Mad", "rolling", 2),
    OpSpec("Rank", "rolling", 2),
    OpSpec("WMA", "rolling", 2),
    OpSpec("EMA", "rolling", 2),
    OpSpec("Cov", "pair_rolling", 2),
    OpSpec("Corr", "pair_rolling", 2),
)

OPERATORS: dict[str, OpSpec] = {s.name: s for s in _SPECS}

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
