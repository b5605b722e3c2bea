"""Formulaic alpha expression language: tokens, one tree type, parser, RPN grammar + masks, torch evaluator.

>>> from marketlab.features.expr import parse
>>> e = parse("Corr($close, $volume, 20d)")
>>> str(e), e.lookback
('Corr(close, volume, 20)', 19)
"""

from marketlab.features.expr.evaluator import Evaluator
from marketlab.features.expr.grammar import PAD_ID, RPNBuilder, Token, Vocabulary
from marketlab.features.expr.ops import OpSpec
from marketlab.features.expr.parser import ExprError, parse, validate
from marketlab.features.expr.tokens import (
    ALPHAGEN_OPERATORS,
    CONSTANTS,
    DELTAS,
    FEATURES,
    OPERATORS,
)
from marketlab.features.expr.tree import Expr

__all__ = [
    "ALPHAGEN_OPERATORS",
    "CONSTANTS",
    "DELTAS",
    "FEATURES",
    "OPERATORS",
    "PAD_ID",
    "Evaluator",
    "Expr",
    "ExprError",
    "OpSpec",
    "RPNBuilder",
    "Token",
    "Vocabulary",
    "parse",
    "validate",
]
