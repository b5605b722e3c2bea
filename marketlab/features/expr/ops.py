"""The alpha-expression operators, one constant each; registered as ``op/<Name>`` in the core registry.

Each :class:`OpSpec` fixes an operator's category (hence its arity and what its operands may be) and,
for windowed operators, its minimum window. The evaluator has one kernel per name, so the set of
operators is closed: :mod:`marketlab.features.expr.tokens` resolves every ``op/*`` id once, at import,
into the dict the parser and grammar read.
"""

from __future__ import annotations

from dataclasses import dataclass

_N_OPERANDS = {"unary": 1, "binary": 2, "rolling": 1, "pair_rolling": 2}


@dataclass(frozen=True)
class OpSpec:
    """Static description of one operator: name, category, arity (not counting the window), min window."""

    name: str
    category: str  # "unary" | "binary" | "rolling" | "pair_rolling"
    min_window: int = 0  # only for rolling / pair_rolling

    @property
    def n_operands(self) -> int:
        """Number of expression operands (the window, if any, is extra)."""
        return _N_OPERANDS[self.category]

    @property
    def n_args(self) -> int:
        """Total arguments including the window (what the RPN stack machine pops)."""
        return self.n_operands + (1 if self.windowed else 0)

    @property
    def windowed(self) -> bool:
        """Whether the operator takes a time-delta window as its last argument."""
        return self.category in ("rolling", "pair_rolling")


Abs = OpSpec("Abs", "unary")
Log = OpSpec("Log", "unary")
Sign = OpSpec("Sign", "unary")
CSRank = OpSpec("CSRank", "unary")
CSZScore = OpSpec("CSZScore", "unary")
Add = OpSpec("Add", "binary")
Sub = OpSpec("Sub", "binary")
Mul = OpSpec("Mul", "binary")
Div = OpSpec("Div", "binary")
Pow = OpSpec("Pow", "binary")
Greater = OpSpec("Greater", "binary")
Less = OpSpec("Less", "binary")
Ref = OpSpec("Ref", "rolling", 1)
Delta = OpSpec("Delta", "rolling", 1)
Mean = OpSpec("Mean", "rolling", 2)
Sum = OpSpec("Sum", "rolling", 2)
Std = OpSpec("Std", "rolling", 2)
Var = OpSpec("Var", "rolling", 2)
Skew = OpSpec("Skew", "rolling", 3)
Kurt = OpSpec("Kurt", "rolling", 4)
Max = OpSpec("Max", "rolling", 2)
Min = OpSpec("Min", "rolling", 2)
Med = OpSpec("Med", "rolling", 2)
Mad = OpSpec("Mad", "rolling", 2)
Rank = OpSpec("Rank", "rolling", 2)
WMA = OpSpec("WMA", "rolling", 2)
EMA = OpSpec("EMA", "rolling", 2)
Cov = OpSpec("Cov", "pair_rolling", 2)
Corr = OpSpec("Corr", "pair_rolling", 2)
