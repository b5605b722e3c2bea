"""Replay of recorded L3 messages (LOBSTER codes) through the engine, strict or tolerant.

``msgs int64[n, 6]`` rows are ``ts, type, order_id, size, price, direction`` (the layout of
:class:`marketlab.store.ingest.lobster.LobsterDay`; prices in the engine's ticks). Type 1 becomes an
``apply_add`` (rests without matching: recorded data lists executions itself), types 2/3/4 an
``apply_reduce`` (partial cancel / delete / execution), types 5-7 a no-op that still yields a snapshot.

* ``strict=True`` (data that starts from an empty book): the first bad message raises a one-line
  :class:`DataError` naming the source, the 1-based row, the field and the value — a non-positive size or
  price, an unknown order id, a duplicate id, an add that crosses the book, a reduction larger than the
  order, a timestamp earlier than the previous one. The book is left as it was before that message.
* ``strict=False`` (data that starts mid-day, like LOBSTER): seed ``initial_book`` (one book row,
  ``int64[4L]``) as synthetic liquidity; reductions of ids that predate the file are taken from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marketlab.core.errors import DataError
from marketlab.lob import kernels as K
from marketlab.lob.engine import BatchResult, OrderBook

FIELD_OF = {
    K.R_SIZE: "size", K.R_PRICE: "price", K.R_DUP_ID: "order_id", K.R_UNKNOWN_ID: "order_id",
    K.R_TS: "time", K.R_SIDE: "direction", K.R_CROSS: "price", K.R_OVERSIZE: "size",
    K.R_ATTR: "price", K.R_ID: "order_id", K.R_BAND: "price", K.R_KIND: "type",
}
PROBLEM = {
    K.R_SIZE: "non-positive size", K.R_PRICE: "non-positive price", K.R_DUP_ID: "order id already in the book",
    K.R_UNKNOWN_ID: "unknown order id (cancel/execution of an order never added)",
    K.R_TS: "timestamp earlier than the previous message", K.R_SIDE: "direction must be 1 or -1",
    K.R_CROSS: "new order would cross the book", K.R_OVERSIZE: "size larger than the order's remaining size",
    K.R_ATTR: "side/price differ from the order's", K.R_ID: "non-positive order id",
    K.R_BAND: "price outside the representable band", K.R_KIND: "unknown message type",
}


@dataclass
class ReplayResult:
    """``book`` after the last message; ``batch`` holds per-row status, snapshots and emitted events."""

    book: OrderBook
    batch: BatchResult


def messages_to_commands(msgs: np.ndarray) -> np.ndarray:
    """``int64[n, 7]`` engine commands for LOBSTER-coded messages (see module docstring)."""
    m = np.asarray(msgs, dtype=np.int64)
    typ = m[:, 1]
    cmds = np.zeros((m.shape[0], 7), dtype=np.int64)
    cmds[:, K.C_TS] = m[:, 0]
    cmds[:, K.C_ID] = m[:, 2]
    cmds[:, K.C_SIZE] = m[:, 3]
    cmds[:, K.C_PRICE] = m[:, 4]
    cmds[:, K.C_SIDE] = m[:, 5]
    cmds[:, K.C_KIND] = np.where(typ == 1, K.K_APPLY_ADD, np.where((typ >= 2) & (typ <= 4), K.K_APPLY_REDUCE,
                                 np.where((typ >= 5) & (typ <= 7), K.K_NOOP, -1)))
    cmds[:, K.C_AUX] = typ
    return cmds


def seed_commands(row: np.ndarray, ts: int) -> np.ndarray:
    """``set_level`` commands loading one book row (ask_px, ask_sz, bid_px, bid_sz per level)."""
    out = []
    for k in range(len(row) // 4):
        for side, off in ((-1, 0), (1, 2)):
            px, sz = int(row[4 * k + off]), int(row[4 * k + off + 1])
            if px > 0 and sz > 0:
                out.append((ts, K.K_SET_LEVEL, 0, side, px, sz, 0))
    return np.array(out, dtype=np.int64).reshape(-1, 7)


def replay_messages(
    msgs: np.ndarray,
    *,
    depth: int = 10,
    strict: bool = True,
    initial_book: np.ndarray | None = None,
    source: str | Path | None = None,
    book: OrderBook | None = None,
) -> ReplayResult:
    """Replay ``msgs`` (see module docstring); ``snaps[i]`` is the top-``depth`` book after row i."""
    ob = book or OrderBook(capacity=max(1024, int((np.asarray(msgs)[:, 1] == 1).sum()) + 64), tolerant=not strict)
    if initial_book is not None:
        row = np.asarray(initial_book, dtype=np.int64)
        a1, b1 = int(row[0]), int(row[2])
        if a1 > 0 and b1 > 0 and b1 >= a1:
            raise DataError(source, "crossed initial book (best bid >= best ask)", field="bid_px_1", value=b1)
        ts0 = int(msgs[0, 0]) if len(msgs) else 0
        ob.process(seed_commands(row, ts0))
        ob.drain_events()
    cmds = messages_to_commands(msgs)
    res = ob.process(cmds, depth=depth, stop_on_reject=strict)
    if strict:
        bad = np.flatnonzero((res.status != 0) & (res.status != K.R_FOK))
        if bad.size:
            i = int(bad[0])
            code = int(res.status[i])
            fld = FIELD_OF.get(code, "type")
            col = {"size": 3, "price": 4, "order_id": 2, "time": 0, "direction": 5, "type": 1}[fld]
            raise DataError(source, PROBLEM.get(code, f"rejected (code {code})"), row=i + 1, field=fld,
                            value=int(msgs[i, col]))
    return ReplayResult(ob, res)
