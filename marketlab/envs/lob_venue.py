"""What the two LOB envs share: the venue fields of their configs, building a venue by registry id,
choosing where an episode starts, reading the venue's mid price, and :class:`VenueEnv`, their base class.

A venue (``venue/replay-v1``, ``venue/abm-v1`` or a user's registered class) implements
:class:`marketlab.core.protocols.Venue` and is built with ``cls.from_config(config, events=, store=)``;
``start_bounds(horizon)`` gives the range of replay start indices, or None for a generative venue, which
gets a fresh seed instead. A venue whose prices are in finer units than its tick (``venue/trades-v1``: the
store's LOBSTER units, grid 100) says so with a ``tick`` attribute (:func:`venue_tick`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from marketlab.core.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Spec
from marketlab.core.errors import SpecError
from marketlab.core.registry import resolve


@dataclass(frozen=True)
class VenueFields(Spec):
    """``venue``: registry id of kind ``venue``. Replay venues read ``dataset``/``symbol``/``start``/``end``
    from ``store`` (or the ``events`` passed to the env) and advance ``step_events`` events per step after
    ``warmup_events``; generative venues run ``sim_spec`` (a simulator spec file; default spec when None)
    ``step_seconds`` per step after ``warmup_seconds``. ``random_start``: replay episodes start at a
    uniformly drawn event."""

    venue: str = "replay-v1"  # registry id of kind venue: replay-v1 (recorded events), abm-v1 (agent-based market), trades-v1 (TRADES diffusion)
    dataset: str = "synth_lob"  # replay: the events dataset in the store (`marketlab data synth` writes synth_lob)
    symbol: str | None = None  # replay: the symbol (required when the dataset holds several)
    start: str | None = None  # replay: first event time (ISO 8601)
    end: str | None = None  # replay: end of the events (exclusive)
    store: str | None = None  # replay: store folder (default store when none)
    sim_spec: str | None = None  # generative venues: simulator spec file (the default spec when none)
    step_events: PositiveInt = 100  # replay: recorded events per env step
    warmup_events: NonNegativeInt = 500  # replay: events replayed before an episode may start
    step_seconds: PositiveFloat = 5.0  # generative venues: simulated seconds per env step
    warmup_seconds: NonNegativeFloat = 300.0  # generative venues: seconds simulated before the episode
    random_start: bool = True  # replay: start at a uniformly drawn event (from reset(seed=))

    def validate(self, path: Any = None) -> None:
        """The venue id is registered."""
        resolve(self.venue, kind="venue", path=path, key="env.venue")


def venue_mid(venue: Any, fallback: float) -> float:
    """Mid price (ticks) of ``venue.quotes()``; the one side there is when the book is one-sided, else
    ``fallback`` (the env's last known mid)."""
    b, a = venue.quotes()
    if b and a:
        return float((a + b) / 2.0)
    return float(b or a or fallback)


def venue_tick(venue: Any) -> int:
    """The venue's price grid in price units (its ``tick`` attribute; 1 when it has none, as the replay and
    agent-based venues, whose prices are already in ticks). The envs move prices in multiples of it."""
    return int(getattr(venue, "tick", 1))


def build_venue(config: VenueFields, *, events: Any = None, store: Any = None) -> Any:
    """The venue named by ``config.venue``, built from the config (and ``events``/``store``)."""
    cls = resolve(config.venue, kind="venue", key="env.venue")
    return cls.from_config(config, events=events, store=store)


def check_room(venue: Any, horizon: int) -> None:
    """A replay venue must hold warm-up + a whole episode of events (:class:`SpecError` on ``env.horizon``)."""
    bounds = venue.start_bounds(horizon) if hasattr(venue, "start_bounds") else None
    if bounds is not None and bounds[1] < bounds[0]:
        first, last = bounds
        raise SpecError(None, "env.horizon", f"warmup + horizon * step_events exceeds the recording (episode starts would lie in [{first}, {last}])")


def reset_venue(venue: Any, np_random: np.random.Generator, horizon: int, random_start: bool, options: dict[str, Any] | None) -> None:
    """Reset ``venue`` for a new episode: a replay at a start drawn from ``np_random`` in its
    :meth:`start_bounds` (or ``options["start_event"]``, or the first when not ``random_start``); a
    generative venue with a seed drawn from ``np_random``."""
    bounds = venue.start_bounds(horizon) if hasattr(venue, "start_bounds") else None
    if bounds is None:
        venue.reset(int(np_random.integers(0, 2**31 - 1)))
        return
    first, last = bounds
    if options and "start_event" in options:
        start = int(options["start_event"])
    elif random_start and last > first:
        start = int(np_random.integers(first, last + 1))
    else:
        start = first
    venue.reset(0, start)


class VenueEnv(gym.Env):
    """Base of the LOB envs: the config (``config_class``, from a dict's keys as the ``[env]`` table) and the
    venue it names are built here; :meth:`reset` resets the venue (see :func:`reset_venue`) and then
    returns the subclass's :meth:`start` (its own episode state, first observation and info)."""

    metadata = {"render_modes": [], "render_fps": 30}
    config_class: ClassVar[type[VenueFields]]

    def __init__(self, config: Any = None, *, events: Any = None, store: Any = None) -> None:
        super().__init__()
        cls = self.config_class
        self.config: Any = config if isinstance(config, cls) else cls.from_dict({"env": dict(config or {})}, section="env")
        self.venue: Any = build_venue(self.config, events=events, store=store)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (gymnasium API); returns (observation, info)."""
        super().reset(seed=seed)
        reset_venue(self.venue, self.np_random, self.config.horizon, self.config.random_start, options)
        return self.start()

    def start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The subclass's episode start after the venue reset: its state, first observation and info."""
        raise NotImplementedError
