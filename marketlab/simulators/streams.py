"""Random streams of the simulation: chunked draws per agent (:class:`RandomBuffer`) and the one-way
latency model (:class:`LatencyModel`, per-agent :class:`LatencyStream`). Each stream draws from its own
``numpy.random.Generator``, so a run is a pure function of the master seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class RandomBuffer:
    """Chunked draws from one ``numpy.random.Generator`` (scalar draws from NumPy cost ~1 us each).

    The sequence of values is a pure function of the generator's seed and the order of calls, so a run
    stays reproducible. ``chunk`` values are drawn at a time per distribution.
    """

    __slots__ = ("rng", "chunk", "_u", "_ui", "_n", "_ni", "_e", "_ei")

    def __init__(self, rng: np.random.Generator, chunk: int = 1024) -> None:
        self.rng = rng
        self.chunk = chunk
        self._u: list[float] = []
        self._ui = 0
        self._n: list[float] = []
        self._ni = 0
        self._e: list[float] = []
        self._ei = 0

    def uniform(self) -> float:
        """U[0, 1)."""
        if self._ui >= len(self._u):
            self._u = self.rng.random(self.chunk).tolist()
            self._ui = 0
        v = self._u[self._ui]
        self._ui += 1
        return v

    def normal(self) -> float:
        """N(0, 1)."""
        if self._ni >= len(self._n):
            self._n = self.rng.standard_normal(self.chunk).tolist()
            self._ni = 0
        v = self._n[self._ni]
        self._ni += 1
        return v

    def exponential(self) -> float:
        """Exp(1)."""
        if self._ei >= len(self._e):
            self._e = self.rng.standard_exponential(self.chunk).tolist()
            self._ei = 0
        v = self._e[self._ei]
        self._ei += 1
        return v

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return lo + int(self.uniform() * (hi - lo + 1))


@dataclass(frozen=True)
class LatencyModel:
    """One-way latency in ns: ``base_ns + jitter_median_ns * exp(sigma * Z)``, Z ~ N(0, 1) per message.

    Each agent draws its latencies from its own stream (see :meth:`Exchange.add_agent`), so adding an
    experimental agent does not change anyone else's latencies.
    """

    base_ns: int = 50_000
    jitter_median_ns: int = 20_000
    sigma: float = 1.0

    def sample(self, rb: RandomBuffer) -> int:
        """One latency draw (ns, >= base_ns)."""
        if self.jitter_median_ns <= 0:
            return self.base_ns
        return self.base_ns + int(self.jitter_median_ns * math.exp(self.sigma * rb.normal()))

    def stream(self, rng: np.random.Generator, chunk: int = 2048) -> LatencyStream:
        """A per-agent source of latency draws, computed ``chunk`` at a time (same values as :meth:`sample`)."""
        return LatencyStream(self, rng, chunk)


class LatencyStream:
    """Latencies of one agent, drawn in vectorised chunks from the agent's latency generator."""

    __slots__ = ("model", "rng", "chunk", "_buf", "_i")

    def __init__(self, model: LatencyModel, rng: np.random.Generator, chunk: int) -> None:
        self.model = model
        self.rng = rng
        self.chunk = chunk
        self._buf: list[int] = []
        self._i = 0

    def next(self) -> int:
        """Next one-way latency in ns."""
        if self._i >= len(self._buf):
            m = self.model
            z = self.rng.standard_normal(self.chunk)
            jitter = (m.jitter_median_ns * np.exp(m.sigma * z)).astype(np.int64) if m.jitter_median_ns > 0 else 0
            self._buf = (m.base_ns + np.zeros(self.chunk, dtype=np.int64) + jitter).tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        return v
