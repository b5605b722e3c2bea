"""Recorded events -> engine commands: the one converter every replay uses.

Input is either a structured array with fields ``ts, type, order_id, side, price, size`` (the store's
EVENTS schema, :data:`marketlab.lob.ENGINE_EVENT_DTYPE`, a venue's events) or ``int64[n, 6]`` LOBSTER
message rows ``ts, type, order_id, size, price, direction`` (:class:`marketlab.store.ingest.lobster.LobsterDay`).
Types are LOBSTER codes: 1 add, 2 partial cancel, 3 delete, 4 execution, 5 hidden execution, 6 cross,
7 halt. Prices must already be in the engine's ticks. Output: ``int64[n, 7]`` command rows
(:data:`marketlab.lob.COMMAND_DTYPE` columns).

Two modes, for the two ways recorded flow can meet a book:

* ``"apply"`` (rebuild the recorded book): type 1 -> ``apply_add`` (rests without matching: the data
  lists its executions itself), types 2/3/4 -> ``apply_reduce`` of that id with the type in ``aux`` (the
  event type the engine emits), types 5-7 -> ``noop`` (the visible book is unchanged but a batch still
  gives a snapshot row); any other type -> an invalid kind the engine rejects (``bad_command_kind``).
* ``"match"`` (recorded flow trading against other orders in the same book, e.g. an agent's):
  type 1 -> GTC limit; type 2 -> cancel of ``size`` lots; type 3 -> full cancel; type 4 (execution of
  resting order X, size s at price p) -> an IOC limit of the *opposite* side at p for s lots, with a fresh
  id ``taker_id_base + row``, so time priority decides whose order fills; types 5-7 -> ``noop``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from marketlab.lob import kernels as K

TAKER_ID_BASE = 1 << 50  # ids of re-enacted recorded aggressors in "match" mode (recorded ids are far below)


def _columns(events: np.ndarray) -> tuple[np.ndarray, ...]:
    """(ts, type, order_id, side, price, size) as int64 columns of either accepted layout."""
    if events.dtype.names:
        return tuple(np.asarray(events[c], dtype=np.int64) for c in ("ts", "type", "order_id", "side", "price", "size"))
    m = np.asarray(events, dtype=np.int64)
    if m.ndim != 2 or m.shape[1] != 6:
        raise ValueError(f"events must be structured or int64[n, 6] LOBSTER rows, got shape {m.shape}")
    return m[:, 0], m[:, 1], m[:, 2], m[:, 5], m[:, 4], m[:, 3]


def events_to_commands(
    events: np.ndarray, *, mode: Literal["apply", "match"] = "apply", taker_id_base: int = TAKER_ID_BASE
) -> np.ndarray:
    """Engine commands ``int64[n, 7]`` for recorded ``events`` (see the module docstring for both modes)."""
    ts, typ, oid, side, price, size = _columns(events)
    n = ts.shape[0]
    cmd = np.zeros((n, 7), dtype=np.int64)
    cmd[:, K.C_TS] = ts
    cmd[:, K.C_ID] = oid
    cmd[:, K.C_SIDE] = side
    cmd[:, K.C_PRICE] = price
    cmd[:, K.C_SIZE] = size
    hidden = (typ >= 5) & (typ <= 7)
    if mode == "apply":
        reduce = (typ >= 2) & (typ <= 4)
        cmd[:, K.C_KIND] = np.where(typ == 1, K.K_APPLY_ADD, np.where(reduce, K.K_APPLY_REDUCE, np.where(hidden, K.K_NOOP, -1)))
        cmd[:, K.C_AUX] = typ
        return cmd
    if mode != "match":
        raise ValueError(f"mode must be 'apply' or 'match', got {mode!r}")
    cmd[:, K.C_KIND] = K.K_NOOP
    add = typ == 1
    cmd[add, K.C_KIND] = K.K_LIMIT
    cmd[add, K.C_AUX] = K.TIF_GTC
    cmd[(typ == 2) | (typ == 3), K.C_KIND] = K.K_CANCEL
    cmd[typ == 3, K.C_SIZE] = 0
    exe = typ == 4
    cmd[exe, K.C_KIND] = K.K_LIMIT
    cmd[exe, K.C_AUX] = K.TIF_IOC
    cmd[exe, K.C_SIDE] = -side[exe]  # the aggressor is on the other side of the maker
    cmd[exe, K.C_ID] = taker_id_base + np.nonzero(exe)[0]
    cmd[cmd[:, K.C_KIND] == K.K_NOOP, K.C_PRICE] = 1
    return cmd


def seed_commands(row: np.ndarray, ts: int) -> np.ndarray:
    """``set_level`` commands ``int64[k, 7]`` loading one book row (ask_px, ask_sz, bid_px, bid_sz per
    level, ticks/lots, 0 = empty) as synthetic pre-existing liquidity, level 1 first, ask before bid."""
    out = []
    for k in range(len(row) // 4):
        for side, off in ((-1, 0), (1, 2)):
            px, sz = int(row[4 * k + off]), int(row[4 * k + off + 1])
            if px > 0 and sz > 0:
                out.append((ts, K.K_SET_LEVEL, 0, side, px, sz, 0))
    return np.array(out, dtype=np.int64).reshape(-1, 7)
