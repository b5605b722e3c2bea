"""Gymnasium token-generation environment: one episode writes one formula in reverse Polish notation.

Observation: the token ids so far (``action + 1``; 0 is padding only), length ``max_len``. Action: a token
index. ``action_masks()`` (the sb3-contrib MaskablePPO protocol) allows only grammar-legal tokens that keep
the formula completable within ``max_len`` tokens, so every episode ends with a valid formula. The reward is
0 on every step but the last; the last step returns ``score(expr)`` (the pool's increment, see
:mod:`.pool`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from marketlab.features.expr import Expr, RPNBuilder, Vocabulary


class AlphaTokenEnv(gym.Env):
    """Token env over ``vocab``; ``score`` maps a finished expression to its terminal reward."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        vocab: Vocabulary,
        score: Callable[[Expr], float],
        max_len: int = 20,
        max_lookback: int = 100,
    ) -> None:
        super().__init__()
        self.vocab = vocab
        self.score = score
        self.max_len = max_len
        self.max_lookback = max_lookback
        self.action_space = gym.spaces.Discrete(vocab.n_actions)
        self.observation_space = gym.spaces.Box(0, vocab.n_actions, shape=(max_len,), dtype=np.int64)
        self.builder = RPNBuilder(vocab, max_len, max_lookback)
        self.last_expr: Expr | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new formula (gymnasium API)."""
        super().reset(seed=seed)
        self.builder = RPNBuilder(self.vocab, self.max_len, self.max_lookback)
        return self.builder.observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Push one token; the episode ends when the formula is complete (gymnasium API)."""
        self.builder.push(int(action))
        obs = self.builder.observation()
        if not self.builder.finished:
            return obs, 0.0, False, False, {}
        expr = self.builder.result()
        self.last_expr = expr
        reward = float(self.score(expr))
        return obs, reward, True, False, {"formula": str(expr)}

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The episode so far (the tokens pushed), for exact resume (``agents/sb3_state``)."""
        return {}, {"actions": [int(a) for a in self.builder.actions]}

    def set_state(self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
        """Rebuild the episode from :meth:`get_state`'s tokens."""
        self.builder = RPNBuilder(self.vocab, self.max_len, self.max_lookback)
        for a in scalars["actions"]:
            self.builder.push(int(a))

    def action_masks(self) -> np.ndarray:
        """Legal tokens at the current position (for MaskablePPO)."""
        return self.builder.action_mask()
