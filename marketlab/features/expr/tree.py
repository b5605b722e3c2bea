"""The one expression tree type: ``Expr``.

A node is a feature (``close``), a constant (``-0.5``), a time delta (the window ``20`` of a rolling op),
or an operator applied to argument nodes (windowed operators carry their delta as the last argument).
Nodes are immutable and hashable; ``str(e)`` prints the human formula (``Corr(close, volume, 20)``) that
:func:`marketlab.features.expr.parse` reads back, and :attr:`Expr.key` is the canonical form (commutative
operands sorted) used as the cache key, so ``Add(close, open)`` and ``Add(open, close)`` share one result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from marketlab.features.expr.ops import OpSpec
from marketlab.features.expr.tokens import FEATURES, OPERATORS

# Operators whose operands can be swapped without changing the value (cache canonicalisation).
COMMUTATIVE: frozenset[str] = frozenset({"Add", "Mul", "Greater", "Less", "Cov", "Corr"})


def format_number(value: float) -> str:
    """Shortest round-trip text for a constant: ``-1``, ``0.5``, ``0.01``, ``1e-08``."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True, eq=True)
class Expr:
    """Immutable expression node.

    ``kind``: ``"feature"`` (``name`` is the feature), ``"const"`` (``value``), ``"delta"`` (``value`` is
    the integer window, negative only for look-ahead ``Ref`` in targets) or ``"op"`` (``name`` is the
    operator, ``args`` the operands, the delta last for windowed operators).
    """

    kind: str
    name: str = ""
    value: float = 0.0
    args: tuple["Expr", ...] = field(default=())

    # ---- constructors -------------------------------------------------------------------------------
    @staticmethod
    def feature(name: str) -> "Expr":
        """A feature leaf (``open``, ``close``, ...)."""
        return Expr("feature", name=name)

    @staticmethod
    def const(value: float) -> "Expr":
        """A constant leaf."""
        return Expr("const", value=float(value))

    @staticmethod
    def delta(days: int) -> "Expr":
        """A time-delta leaf (window in days; negative only for look-ahead ``Ref``)."""
        return Expr("delta", value=float(int(days)))

    @staticmethod
    def op(name: str, *args: "Expr") -> "Expr":
        """An operator node over ``args`` (the window last for windowed operators)."""
        return Expr("op", name=name, args=tuple(args))

    # ---- structure ----------------------------------------------------------------------------------
    @property
    def spec(self) -> OpSpec:
        """Operator spec (only for ``kind == "op"``)."""
        return OPERATORS[self.name]

    @property
    def window(self) -> int:
        """Window of a windowed operator (its last argument)."""
        return int(self.args[-1].value)

    @property
    def operands(self) -> tuple["Expr", ...]:
        """Expression operands (the window excluded)."""
        if self.kind == "op" and self.spec.windowed:
            return self.args[:-1]
        return self.args

    @cached_property
    def featured(self) -> bool:
        """True when the expression contains a feature (so it is not a constant)."""
        if self.kind == "feature":
            return True
        if self.kind != "op":
            return False
        return any(a.featured for a in self.operands)

    @cached_property
    def lookback(self) -> int:
        """Days of history before ``t`` the value at ``t`` needs (0 for a bare feature)."""
        if self.kind != "op":
            return 0
        inner = max(a.lookback for a in self.operands)
        if not self.spec.windowed:
            return inner
        w = self.window
        if self.name in ("Ref", "Delta"):
            return inner + max(w, 0)
        return inner + w - 1

    @cached_property
    def lookahead(self) -> int:
        """Days after ``t`` the value at ``t`` reads (only a negative ``Ref`` looks ahead; targets use it)."""
        if self.kind != "op":
            return 0
        inner = max(a.lookahead for a in self.operands)
        if self.name in ("Ref", "Delta") and self.window < 0:
            return inner - self.window
        return inner

    @cached_property
    def size(self) -> int:
        """Number of RPN tokens of the expression (nodes, windows included)."""
        return 1 + sum(a.size for a in self.args)

    @cached_property
    def depth(self) -> int:
        """Levels of operators and leaves (windows excluded)."""
        return 1 + max((a.depth for a in self.operands), default=0)

    def walk(self) -> Iterator[Expr]:
        """Yield every node (pre-order), windows included."""
        yield self
        for a in self.args:
            yield from a.walk()

    def subexpressions(self) -> list["Expr"]:
        """Distinct operator nodes, children before parents."""
        seen: dict[str, Expr] = {}

        def visit(e: Expr) -> None:
            for a in e.args:
                visit(a)
            if e.kind == "op" and e.key not in seen:
                seen[e.key] = e

        visit(self)
        return list(seen.values())

    # ---- text ---------------------------------------------------------------------------------------
    def __str__(self) -> str:
        if self.kind == "feature":
            return self.name
        if self.kind in ("const", "delta"):
            return format_number(self.value)
        return f"{self.name}({', '.join(str(a) for a in self.args)})"

    def __repr__(self) -> str:
        return f"Expr<{self}>"

    @cached_property
    def key(self) -> str:
        """Canonical text: like ``str`` but with commutative operands sorted; equal keys ⇒ equal values."""
        if self.kind != "op":
            return str(self)
        keys = [a.key for a in self.operands]
        if self.name in COMMUTATIVE:
            keys.sort()
        if self.spec.windowed:
            keys.append(str(self.args[-1]))
        return f"{self.name}({','.join(keys)})"

    # ---- reverse Polish -----------------------------------------------------------------------------
    def to_rpn(self) -> list["Expr"]:
        """Postfix token sequence: operands (and the window) first, then the operator node's head."""
        out: list[Expr] = []

        def visit(e: Expr) -> None:
            for a in e.args:
                visit(a)
            out.append(e if e.kind != "op" else Expr("op", name=e.name))

        visit(self)
        return out


def is_feature_name(name: str) -> bool:
    """Whether ``name`` is a feature of the language."""
    return name in FEATURES
