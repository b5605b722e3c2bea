"""The interfaces the upper floors talk through. Implementations are found by registry id
(:mod:`marketlab.core.registry`); nothing above ``core`` needs to import a sibling to use one.

Units everywhere: prices in integer ticks, sizes in integer lots, times in int64 ns UTC, money in the
quote currency as float64. Shapes are given as (rows, columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class AgentFill:
    """One fill of an agent's order: ``side`` +1 bought / -1 sold, ``price`` ticks, ``size`` lots,
    ``maker`` True when the agent's resting order was hit."""

    side: int
    price: int
    size: int
    maker: bool


@runtime_checkable
class Venue(Protocol):
    """Where one agent's orders meet other order flow (a replay, the agent-based market, TRADES).

    The env drives it in decision steps: ``reset`` once per episode, then per step any of
    ``limit``/``market``/``cancel_all`` followed by one ``advance`` that runs the market forward.
    """

    def reset(self, seed: int, start: int = 0) -> None:
        """Fresh market for an episode; ``seed`` feeds stochastic venues, ``start`` is the replay
        event index (ignored by generative venues)."""

    @property
    def exhausted(self) -> bool:
        """True once the venue has no more market time or events to give."""

    @property
    def now_ns(self) -> int:
        """Current market time, int64 ns UTC."""

    def advance(self) -> list[AgentFill]:
        """Run the market one decision step; returns the agent's fills during it."""

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        """Submit a GTC limit order (``side`` +1/-1, ``price`` ticks, ``size`` lots); immediate fills."""

    def market(self, side: int, size: int) -> list[AgentFill]:
        """Submit a market order of ``size`` lots; returns its fills."""

    def cancel_all(self) -> None:
        """Cancel every resting order of the agent."""

    def resting(self) -> int:
        """Lots of the agent's resting orders."""

    def queue_ahead(self) -> int:
        """Lots queued ahead of the agent's oldest resting order (0 when the venue cannot tell)."""

    def quotes(self) -> tuple[int | None, int | None]:
        """(best bid, best ask) in ticks; None for an empty side."""

    def snapshot(self, depth: int) -> np.ndarray:
        """Top-``depth`` book, int64 (4 * depth,): ask_px, ask_sz, bid_px, bid_sz per level (0 when empty)."""


@runtime_checkable
class Reward(Protocol):
    """A per-step reward from the account's net value. Built with ``(config, init_cash)``.

    ``kernel`` names a numba-compiled ``(state float64[:], prev_value, value, params float64[:]) -> float``
    function so the batched env runs the same arithmetic per row; ``state`` has ``state_size`` slots.
    """

    state_size: int

    def reset(self, value: float) -> None:
        """Start of an episode at net value ``value``."""

    def __call__(self, prev_value: float, value: float) -> float:
        """Reward for the step that took net value from ``prev_value`` to ``value``."""


@runtime_checkable
class Predictor(Protocol):
    """A trained model mapping feature windows to class probabilities.

    ``predict_proba(windows)``: windows float32 (B, T, F) -> probabilities float32 (B, C), rows sum to 1.
    """

    n_classes: int

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of windows."""


@runtime_checkable
class SignalSource(Protocol):
    """Produces a backtest's decisions over a market.

    ``decisions(market, lo)`` returns ``("weights", W)`` with W float64 (T, N) target weights (NaN = no
    order at that row) or ``("entries", E)`` with boolean entries/exits; rows before ``lo`` are warm-up.
    A source must be causal: the decision at row t uses market data of rows <= t only.
    """

    def decisions(self, market: Any, lo: int) -> tuple[str, Any]:
        """Decisions over all rows of ``market`` (a :class:`marketlab.market.MarketData`)."""


@runtime_checkable
class Simulator(Protocol):
    """Generates one market day as store events (the store's EVENTS schema) from a spec and a seed."""

    def run(self) -> Any:
        """Simulate the configured day; returns the simulator's result (events frame and stats)."""
