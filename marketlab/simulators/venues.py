"""The agent-based venue (``venue/abm-v1``): the ABM market with an env's agent inside it.

:class:`AbmVenue` runs the agent-based simulator (:mod:`marketlab.simulators.abm`) with the agent as an
:class:`~marketlab.simulators.abm.ExternalTrader`; the other agents react to its orders. It implements
:class:`marketlab.core.protocols.Venue` (see :mod:`marketlab.market.venues` for the construction contract).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketlab.core.protocols import AgentFill
from marketlab.core.timeutil import NS_PER_S


class AbmVenue:
    """The agent-based market with the agent as an ExternalTrader; ``step_seconds`` of market time per advance."""

    @classmethod
    def from_config(cls, config: Any, *, events: Any = None, store: Any = None) -> AbmVenue:
        """From an env config's ``sim_spec`` (a simulator spec file; the default spec when None),
        ``step_seconds`` and ``warmup_seconds``; ``events`` and ``store`` are not used."""
        return cls(config.sim_spec, config.step_seconds, config.warmup_seconds)

    def start_bounds(self, horizon: int) -> None:
        """None: a generative venue draws a fresh market from the seed instead of a start index."""
        return None

    @property
    def now_ns(self) -> int:
        """Current market time, int64 ns UTC."""
        return int(self.sim.exchange.now)

    def __init__(self, spec_path: str | None, step_seconds: float, warmup_seconds: float) -> None:
        self.spec_path = spec_path
        self.step_ns = int(step_seconds * NS_PER_S)
        self.warmup_ns = int(warmup_seconds * NS_PER_S)
        self.sim: Any = None
        self.me: Any = None
        self._seen = 0
        self._mine: set[int] = set()

    def reset(self, seed: int = 0, start: int = 0) -> None:
        """A fresh simulated market from ``seed``, run through the warm-up (``start`` is unused)."""
        from marketlab.simulators.abm import ExternalTrader, Simulation
        from marketlab.simulators.config import SimSpec

        spec = SimSpec.from_toml(self.spec_path) if self.spec_path else SimSpec()
        self.sim = Simulation(spec, seed=seed)
        self.me = self.sim.add_experimental_agent(ExternalTrader())
        ex = self.sim.exchange
        ex.run_until(ex.t0_ns + self.warmup_ns)
        self._seen = 0
        self._mine = set()

    @property
    def exhausted(self) -> bool:
        """True once the venue has no more events or market time to give."""
        ex = self.sim.exchange
        return bool(ex.now >= ex.t_end_ns)

    def _new_fills(self) -> list[AgentFill]:
        new = self.me.fills[self._seen :]
        self._seen = len(self.me.fills)
        return [AgentFill(int(f.side), int(f.price), int(f.size), bool(f.maker)) for f in new]

    def advance(self) -> list[AgentFill]:
        """Run the market one decision step; returns the agent's fills during it."""
        ex = self.sim.exchange
        ex.run_until(ex.now + self.step_ns)
        return self._new_fills()

    def limit(self, side: int, price: int, size: int) -> list[AgentFill]:
        """Submit a GTC limit order (``side`` +1/-1, ``price`` ticks, ``size`` lots); returns its immediate fills."""
        self._mine.add(self.sim.exchange.limit(self.me, side, int(price), int(size)))
        return []  # orders reach the exchange after their latency, during the next advance

    def market(self, side: int, size: int) -> list[AgentFill]:
        """Submit a market order of ``size`` lots; returns its fills."""
        ex = self.sim.exchange
        ex.market(self.me, side, int(size))
        ex.run_until(ex.now + 10_000_000)  # let it arrive (latency is micro- to milliseconds)
        return self._new_fills()

    def cancel_all(self) -> None:
        """Cancel every resting order of the agent."""
        for oid in self._mine:
            self.sim.exchange.cancel(self.me, oid)
        self._mine = set()

    def resting(self) -> int:
        """Lots of the agent's resting orders."""
        book = self.sim.exchange.book
        return sum(o.size for o in (book.order(i) for i in self._mine) if o is not None)

    def queue_ahead(self) -> int:
        """Lots queued ahead of the agent's oldest resting order (0: the venue cannot tell)."""
        return 0

    def quotes(self) -> tuple[int | None, int | None]:
        """(best bid, best ask) in ticks; None for an empty side."""
        bid, ask = self.sim.exchange.quotes()
        return bid, ask

    def snapshot(self, depth: int) -> np.ndarray:
        """Top-``depth`` book, int64 (4 * depth,): ask_px, ask_sz, bid_px, bid_sz per level."""
        return np.asarray(self.sim.exchange.book_snapshot(depth))
