"""Parse human formulas into :class:`Expr` trees, with one-line errors.

Grammar (operators are case-insensitive; features may carry qlib's ``$``; windows may carry ``d``)::

    expr  := term (("+" | "-") term)*          -> Add / Sub
    term  := unary (("*" | "/") unary)*        -> Mul / Div
    unary := "-" unary | atom                  -> negative constant, or Mul(x, -1)
    atom  := NUMBER | FEATURE | NAME "(" expr ("," expr)* ")" | "(" expr ")"

so ``Corr($close, $volume, 20d)``, ``Corr(close, volume, 20)`` and ``Ref(close, -20) / close - 1`` all
parse. Every tree is checked with :func:`validate` (arity, featured operands, window bounds).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from marketlab.core.errors import MarketlabError
from marketlab.features.expr.tokens import FEATURES, lookup_operator
from marketlab.features.expr.tree import Expr


class ExprError(MarketlabError):
    """A formula that cannot be parsed, or that breaks the grammar; the message names the formula."""


#: Deepest tree a formula may parse to. Mined alphas nest < 20 deep; the limit keeps the recursive parser,
#: printer and evaluator far from Python's recursion limit (a 3,000-deep formula is an error, not a crash).
MAX_DEPTH = 100


def _too_deep(text: str) -> ExprError:
    shown = text if len(text) <= 60 else text[:60] + "..."
    return ExprError(f"cannot parse formula {shown!r}: nested more than {MAX_DEPTH} levels deep")


def _tree_depth_exceeds(e: Expr, limit: int) -> bool:
    """Whether ``e`` is deeper than ``limit`` nodes, checked without recursion (chains like a+a+...+a)."""
    stack = [(e, 1)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            return True
        stack.extend((a, d + 1) for a in node.args)
    return False


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?P<d>d(?![A-Za-z0-9_]))?"
    r"|(?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[(),+\-*/]))"
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"cannot parse formula {text!r}: unexpected character {text[pos]!r} at position {pos}")
        start = m.start(m.lastgroup) if m.lastgroup else pos
        if m.group("num") is not None:
            out.append(("num", m.group("num"), start))
        elif m.group("name") is not None:
            out.append(("name", m.group("name"), start))
        else:
            out.append(("sym", m.group("sym"), start))
        pos = m.end()
    out.append(("end", "", n))
    return out


class _Parser:
    def __init__(self, text: str, features: tuple[str, ...]) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.features = features
        self.nesting = 0  # open parentheses, calls and unary minus signs around the current position

    def err(self, problem: str) -> ExprError:
        kind, val, pos = self.toks[self.i]
        at = f"at position {pos}" if kind != "end" else "at end of input"
        return ExprError(f"cannot parse formula {self.text!r}: {problem} {at}")

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, sym: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if sym is not None and tok[1] != sym:
            raise self.err(f"expected {sym!r}, found {tok[1] or 'nothing'!r}")
        self.i += 1
        return tok

    def expr(self) -> Expr:
        return self.left_fold(self.term, {"+": "Add", "-": "Sub"})

    def term(self) -> Expr:
        return self.left_fold(self.unary, {"*": "Mul", "/": "Div"})

    def left_fold(self, operand: Callable[[], Expr], ops: dict[str, str]) -> Expr:
        """``operand (op operand)*`` folded left: ``a - b - c`` is ``Sub(Sub(a, b), c)``."""
        left = operand()
        while self.peek()[1] in ops and self.peek()[0] == "sym":
            op = ops[self.take()[1]]
            left = Expr.op(op, left, operand())
        return left

    def nest(self) -> None:
        """Enter one level of nesting; deeper than :data:`MAX_DEPTH` is an error before recursion can crash."""
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _too_deep(self.text)

    def unary(self) -> Expr:
        if self.peek()[0] == "sym" and self.peek()[1] == "-":
            self.take()
            self.nest()
            inner = self.unary()
            self.nesting -= 1
            if inner.kind == "const":
                return Expr.const(-inner.value)
            return Expr.op("Mul", inner, Expr.const(-1.0))
        return self.atom()

    def atom(self) -> Expr:
        kind, val, _ = self.peek()
        if kind == "num":
            self.take()
            return Expr.const(float(val))
        if kind == "sym" and val == "(":
            self.take()
            self.nest()
            e = self.expr()
            self.take(")")
            self.nesting -= 1
            return e
        if kind == "name":
            self.take()
            name = val.lstrip("$")
            if self.peek()[1] == "(":
                self.nest()
                e = self.call(name)
                self.nesting -= 1
                return e
            if val.startswith("$") or name.lower() in self.features:
                if name.lower() not in self.features:
                    raise ExprError(
                        f"unknown feature {name!r} in formula {self.text!r} (known: {', '.join(self.features)})"
                    )
                return Expr.feature(name.lower())
            if lookup_operator(name) is not None:
                raise self.err(f"operator {name!r} needs arguments")
            raise ExprError(f"unknown feature {name!r} in formula {self.text!r} (known: {', '.join(self.features)})")
        raise self.err(f"expected a feature, number or operator, found {val or 'nothing'!r}")

    def call(self, name: str) -> Expr:
        spec = lookup_operator(name)
        if spec is None:
            raise ExprError(f"unknown operator {name!r} in formula {self.text!r}")
        self.take("(")
        args: list[Expr] = []
        if spec.windowed:
            for _ in range(spec.n_operands):
                args.append(self.expr())
                self.take(",")
            args.append(self.window(spec.name))
        else:
            args.append(self.expr())
            while self.peek()[1] == ",":
                self.take()
                args.append(self.expr())
        if self.peek()[1] == ",":
            raise self.err(f"{spec.name} takes {spec.n_args} arguments; too many")
        self.take(")")
        if len(args) != spec.n_args:
            raise ExprError(
                f"{spec.name} takes {spec.n_args} arguments, got {len(args)} in formula {self.text!r}"
            )
        return Expr.op(spec.name, *args)

    def window(self, opname: str) -> Expr:
        sign = 1
        if self.peek()[1] == "-":
            self.take()
            sign = -1
        kind, val, _ = self.peek()
        if kind != "num" or not re.fullmatch(r"\d+", val):
            raise self.err(f"window of {opname} must be an integer number of days, found {val or 'nothing'!r}")
        self.take()
        return Expr.delta(sign * int(val))


def validate(e: Expr, *, allow_future: bool = False, source: str | None = None) -> Expr:
    """Check the grammar rules on a whole tree; return it unchanged or raise a one-line :class:`ExprError`.

    Rules: unary and rolling operators need a featured operand, binary operators at least one,
    pair-rolling both; windows are at least the operator's minimum (windows of 1 only for Ref/Delta);
    a negative window (look-ahead) only for ``Ref`` and only when ``allow_future`` (targets).
    """
    where = f" in formula {source!r}" if source else ""
    for node in e.walk():
        if node.kind != "op":
            continue
        spec = node.spec
        ops = node.operands
        cat = spec.category
        if cat in ("unary", "rolling") and not ops[0].featured:
            raise ExprError(f"{node.name} needs an operand that contains a feature, got {ops[0]}{where}")
        if cat == "binary" and not (ops[0].featured or ops[1].featured):
            raise ExprError(f"{node.name}({ops[0]}, {ops[1]}) is constant: one operand must contain a feature{where}")
        if cat == "pair_rolling" and not (ops[0].featured and ops[1].featured):
            raise ExprError(f"{node.name} needs two operands that contain features{where}")
        if spec.windowed:
            w = node.window
            if w < 0:
                if not (allow_future and node.name == "Ref"):
                    raise ExprError(f"{node.name} window {w} looks into the future{where}")
            elif w < spec.min_window:
                raise ExprError(
                    f"{node.name} window must be at least {spec.min_window} day(s), got {w}{where}"
                    + (" (a window of 1 is degenerate: a constant or the input itself)" if w == 1 else "")
                )
    return e


def parse(text: str, *, allow_future: bool = False, features: tuple[str, ...] = FEATURES) -> Expr:
    """Parse and validate a human formula. ``allow_future`` permits ``Ref(x, -d)`` (targets only)."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError(f"cannot parse formula {text!r}: empty")
    p = _Parser(text, tuple(f.lower() for f in features))
    e = p.expr()
    if p.peek()[0] != "end":
        raise p.err(f"unexpected {p.peek()[1]!r}")
    if len(p.toks) > MAX_DEPTH and _tree_depth_exceeds(e, MAX_DEPTH):  # a deeper tree needs more tokens
        raise _too_deep(text)
    return validate(e, allow_future=allow_future, source=text)
