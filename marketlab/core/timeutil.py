"""Time constants and the one conversion of user time values to int64 ns UTC."""

from __future__ import annotations

import datetime as dt

import numpy as np

from marketlab.core.errors import SpecError

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_HOUR = 3_600 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
EPOCH_DATE = dt.date(1970, 1, 1)

TimeLike = int | str | dt.datetime | dt.date | np.datetime64


def to_ns(value: TimeLike, *, key: str | None = None) -> int:
    """int ns (returned as is), ISO 8601 string (``2024-01-02``, ``2024-01-02T09:30``, ``...Z``),
    ``datetime`` (naive = UTC), ``date`` or ``np.datetime64`` -> int64 ns since the epoch, UTC.

    A value that is none of these is a :class:`SpecError` naming ``key``.
    """
    if isinstance(value, bool):
        raise SpecError(None, key, f"invalid time {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SpecError(None, key, f"invalid time {value!r} (use ISO 8601, e.g. 2024-01-02 or 2024-01-02T09:30)") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US
    if isinstance(value, dt.date):
        return (value - EPOCH_DATE).days * NS_PER_DAY
    raise SpecError(None, key, f"invalid time {value!r}")


def ns_to_date(ns: int) -> dt.date:
    """int64 ns UTC -> the UTC calendar day it falls on."""
    return EPOCH_DATE + dt.timedelta(days=ns // NS_PER_DAY)


def time_unit(ns: np.ndarray) -> str:
    """The coarsest unit that shows every value of ``ns`` (int64 ns UTC) exactly: ``"D"`` when all are
    midnights (daily data), else ``"s"``, ``"ms"`` or ``"ns"``."""
    a = np.asarray(ns, dtype=np.int64)
    for unit, step in (("D", NS_PER_DAY), ("s", NS_PER_S), ("ms", NS_PER_MS)):
        if (a % step == 0).all():
            return unit
    return "ns"


def format_times(ns: np.ndarray, unit: str | None = None) -> np.ndarray:
    """int64 ns UTC -> readable strings for printed and written results: ``2021-01-04`` for daily data,
    ``2021-01-04 09:31:00`` intraday. ``unit`` (default :func:`time_unit` of ``ns``): pass the whole
    series' unit when formatting a few of its values, so every column reads alike."""
    a = np.asarray(ns, dtype=np.int64)
    unit = unit or time_unit(a)
    text = np.datetime_as_string(a.astype("datetime64[ns]"), unit=unit)  # type: ignore[call-overload]
    if a.size == 0:  # np.char.replace fails on an empty array (e.g. the trade list of a flat backtest)
        return np.array([], dtype=str)
    return np.char.replace(text, "T", " ")
