"""Token vocabulary, reverse-Polish (RPN) sequences and action masks for building expressions.

An expression of ``n`` nodes is written as ``n`` RPN tokens followed by ``SEP``. The :class:`RPNBuilder`
stack machine pushes operands and lets an operator pop its arguments; :meth:`RPNBuilder.action_mask` says
which tokens are legal next. Two fixes over the reference implementation:

* **Ids.** Action ``a`` is observed as id ``a + 1``; id ``0`` is padding only (the reference used raw action
  ids with padding 0, so its first operator ``Abs`` was indistinguishable from padding).
* **Windows of 1** are masked for every windowed statistic (only ``Ref``/``Delta`` accept 1).

The mask also looks ahead: a token is allowed only if the expression can still be completed (reduced to one
featured item plus ``SEP``) within ``max_len`` tokens, so every episode ends in a valid formula, and window
choices that would push the look-back beyond ``max_lookback`` days are masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketlab.features.expr.parser import ExprError, validate
from marketlab.features.expr.tokens import ALPHAGEN_OPERATORS, CONSTANTS, DELTAS, FEATURES, OPERATORS
from marketlab.features.expr.tree import Expr, format_number

PAD_ID = 0


@dataclass(frozen=True)
class Token:
    """One vocabulary entry: ``kind`` in {"op", "feature", "const", "delta", "sep"}."""

    kind: str
    name: str = ""
    value: float = 0.0

    def __str__(self) -> str:
        if self.kind in ("op", "feature"):
            return self.name
        if self.kind == "sep":
            return "SEP"
        return format_number(self.value) + ("d" if self.kind == "delta" else "")


class Vocabulary:
    """The action set: operators, features, constants, deltas and SEP, in that order.

    ``action`` indexes :attr:`tokens` (0 .. n_actions-1); the policy observes ``action + 1`` (0 = padding).
    """

    def __init__(
        self,
        operators: tuple[str, ...] = ALPHAGEN_OPERATORS,
        features: tuple[str, ...] = FEATURES,
        constants: tuple[float, ...] = CONSTANTS,
        deltas: tuple[int, ...] = DELTAS,
    ) -> None:
        for o in operators:
            if o not in OPERATORS:
                raise ExprError(f"unknown operator {o!r} in vocabulary (known: {', '.join(OPERATORS)})")
        for f in features:
            if f not in FEATURES:
                raise ExprError(f"unknown feature {f!r} in vocabulary (known: {', '.join(FEATURES)})")
        for d in deltas:
            if int(d) < 1:
                raise ExprError(f"time delta must be a positive integer, got {d!r}")
        self.tokens: list[Token] = (
            [Token("op", o) for o in operators]
            + [Token("feature", f) for f in features]
            + [Token("const", value=float(c)) for c in constants]
            + [Token("delta", value=float(int(d))) for d in deltas]
            + [Token("sep")]
        )
        self.n_actions = len(self.tokens)
        self.sep = self.n_actions - 1
        self._index = {(t.kind, t.name, t.value): i for i, t in enumerate(self.tokens)}
        kinds = np.array([t.kind for t in self.tokens])
        self.op_idx = np.flatnonzero(kinds == "op")
        self.feature_idx = np.flatnonzero(kinds == "feature")
        self.const_idx = np.flatnonzero(kinds == "const")
        self.delta_idx = np.flatnonzero(kinds == "delta")
        self.delta_values = np.array([int(self.tokens[i].value) for i in self.delta_idx])
        cat: dict[str, list[int]] = {"unary": [], "binary": [], "rolling": [], "pair_rolling": []}
        for i in self.op_idx:
            cat[OPERATORS[self.tokens[i].name].category].append(int(i))
        self.cat_idx = {k: np.array(v, dtype=np.int64) for k, v in cat.items()}

    def action_of(self, node: Expr) -> int:
        """Action index of an RPN node (an op head, feature, const or delta)."""
        key = (node.kind, node.name, node.value if node.kind in ("const", "delta") else 0.0)
        if node.kind == "op":
            key = ("op", node.name, 0.0)
        try:
            return self._index[key]
        except KeyError:
            raise ExprError(f"token {node} is not in the vocabulary") from None

    def encode(self, expr: Expr) -> list[int]:
        """Actions that build ``expr`` (RPN order) followed by SEP."""
        return [self.action_of(n) for n in expr.to_rpn()] + [self.sep]

    def decode(self, actions: list[int] | np.ndarray) -> Expr:
        """Build an expression from actions (a trailing SEP is optional); raises :class:`ExprError` if invalid."""
        b = RPNBuilder(self, max_len=max(len(actions), 1) + 1, max_lookback=10**9, check=False)
        for a in actions:
            a = int(a)
            if a == self.sep:
                break
            b.push(a)
        return b.result()


class RPNBuilder:
    """Stack machine that builds one expression token by token, with legal-action masks.

    ``max_len`` counts every token including the final SEP.
    """

    def __init__(self, vocab: Vocabulary, max_len: int = 20, max_lookback: int = 100, check: bool = True) -> None:
        self.vocab = vocab
        self.max_len = max_len
        self.max_lookback = max_lookback
        self.check = check
        self.stack: list[Expr] = []
        self.actions: list[int] = []
        self.finished = False

    # ---- completion look-ahead ----------------------------------------------------------------------
    @staticmethod
    def _need(tags: list[tuple[str, int]]) -> int:
        """Fewest tokens (SEP included) that turn a stack of tags into one featured expression + SEP.

        Tags: ("F", lookback) featured, ("C", 0) constant, ("D", days) delta on top.
        """
        if not tags:
            return 2  # a feature, then SEP
        if tags[-1][0] == "D":
            return 1 + RPNBuilder._need(tags[:-2] + [("F", 0)])
        if not any(t[0] == "F" for t in tags):
            return 3  # constant alone: push a feature, a binary op, SEP
        # constants are never adjacent, so (s-1) binary ops always reduce the stack
        return len(tags)

    def _tags(self) -> list[tuple[str, int]]:
        out = []
        for e in self.stack:
            if e.kind == "delta":
                out.append(("D", int(e.value)))
            elif e.featured:
                out.append(("F", e.lookback))
            else:
                out.append(("C", 0))
        return out

    def action_mask(self) -> np.ndarray:
        """Boolean mask over actions: True where the token is legal now and the formula stays completable."""
        v = self.vocab
        mask = np.zeros(v.n_actions, dtype=bool)
        if self.finished:
            return mask
        tags = self._tags()
        s = len(tags)
        left = self.max_len - len(self.actions) - 1  # tokens still available after this one
        top = tags[-1][0] if tags else None

        def ok(after: list[tuple[str, int]]) -> bool:
            return self._need(after) <= left

        # operands: a feature unless a delta is on top; a constant only on an empty stack or a featured top
        if top != "D":
            if ok(tags + [("F", 0)]):
                mask[v.feature_idx] = True
            if (top is None or top == "F") and ok(tags + [("C", 0)]):
                mask[v.const_idx] = True
        # deltas: on a featured top; masked when the result would look back too far
        if top == "F":
            lb = max(t[1] for t in tags[-2:] if t[0] == "F")
            for j, d in zip(v.delta_idx, v.delta_values, strict=False):
                if lb + d <= self.max_lookback and ok(tags + [("D", int(d))]):
                    mask[j] = True
        # operators
        if s >= 1 and top == "F" and ok(tags[:-1] + [("F", tags[-1][1])]):
            mask[v.cat_idx["unary"]] = True
        if s >= 2 and top != "D" and tags[-2][0] != "D" and "F" in (tags[-1][0], tags[-2][0]):
            lb = max(tags[-1][1], tags[-2][1])
            if ok(tags[:-2] + [("F", lb)]):
                mask[v.cat_idx["binary"]] = True
        if top == "D":
            w = tags[-1][1]
            if s >= 2 and tags[-2][0] == "F":
                for j in v.cat_idx["rolling"]:
                    if w >= OPERATORS[v.tokens[j].name].min_window and ok(tags[:-2] + [("F", tags[-2][1] + w)]):
                        mask[j] = True
            if s >= 3 and tags[-2][0] == "F" and tags[-3][0] == "F":
                lb = max(tags[-2][1], tags[-3][1]) + w
                for j in v.cat_idx["pair_rolling"]:
                    if w >= OPERATORS[v.tokens[j].name].min_window and ok(tags[:-3] + [("F", lb)]):
                        mask[j] = True
        if s == 1 and top == "F":
            mask[v.sep] = True
        return mask

    # ---- stepping -----------------------------------------------------------------------------------
    def push(self, action: int) -> None:
        """Apply one action. With ``check`` the action must be legal under :meth:`action_mask`."""
        v = self.vocab
        if self.check and not self.action_mask()[action]:
            raise ExprError(f"illegal token {v.tokens[action]} after {' '.join(str(v.tokens[a]) for a in self.actions)!r}")
        tok = v.tokens[action]
        self.actions.append(action)
        if tok.kind == "sep":
            self.finished = True
            return
        if tok.kind == "feature":
            self.stack.append(Expr.feature(tok.name))
        elif tok.kind == "const":
            self.stack.append(Expr.const(tok.value))
        elif tok.kind == "delta":
            self.stack.append(Expr.delta(int(tok.value)))
        else:
            spec = OPERATORS[tok.name]
            if len(self.stack) < spec.n_args:
                raise ExprError(f"{tok.name} needs {spec.n_args} operands, stack has {len(self.stack)}")
            args = self.stack[-spec.n_args :]
            del self.stack[-spec.n_args :]
            node = Expr.op(tok.name, *args)
            if not self.check:
                validate(node)
            self.stack.append(node)

    def result(self) -> Expr:
        """The finished expression; raises :class:`ExprError` unless the stack holds one featured item."""
        if len(self.stack) != 1 or not self.stack[0].featured or self.stack[0].kind == "delta":
            raise ExprError(f"incomplete expression: stack holds {[str(e) for e in self.stack]}")
        return validate(self.stack[0])

    def observation(self) -> np.ndarray:
        """Token ids so far (action + 1), right-padded with 0 to ``max_len``; dtype int64."""
        obs = np.zeros(self.max_len, dtype=np.int64)
        if self.actions:
            obs[: len(self.actions)] = np.asarray(self.actions) + 1
        return obs
