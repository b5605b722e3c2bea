"""Verify a book rebuilt from an order-by-order feed against the venue's periodic top-N snapshots.

This is how a user checks a new venue: events (store EVENTS schema, LOBSTER type codes, prices in ticks)
are replayed through the engine in ``apply`` mode (:func:`marketlab.lob.commands.events_to_commands`,
tolerant: orders that predate the feed are served by the seeded synthetic liquidity), and after the
event each snapshot was taken at (its ``seq``) the engine's top N levels are compared with it.

* **Seed.** The book starts from the first snapshot (one synthetic order per level); events with
  ``seq`` at or before it are skipped.
* **Compare.** Per snapshot: best price (ask_px_1 and bid_px_1), top 5 levels (price and size, both
  sides) and all N levels.
* **Re-seed** (optional). When all N levels do not match, every price inside the snapshot's visible
  window (asks up to its N-th ask, bids down to its N-th bid; the whole side when it lists fewer than N)
  is set from the snapshot, so one divergence does not cascade. A level-N feed cannot show changes
  deeper than N, so a rebuilt book drifts there by design; the re-seed count says how often.
* **Sync time.** After each seed, the time until the first snapshot that differs in any of the N levels
  (a seed still in sync at the end counts until the last snapshot).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from marketlab.core.timeutil import NS_PER_HOUR, NS_PER_S
from marketlab.lob.commands import events_to_commands, seed_commands
from marketlab.lob.engine import OrderBook


@dataclass
class SnapshotReport:
    """Match rates are shares of the ``snapshots_compared`` snapshots after the seed."""

    levels: int
    events: int
    snapshots_compared: int
    match_rate_best_price: float
    match_rate_top5: float
    match_rate_all_levels: float
    reseeds: int
    sync_seconds_median: float
    sync_seconds_mean: float
    per_hour: dict[str, dict[str, float]] = field(default_factory=dict)
    rejected_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


def _resync(book: OrderBook, row: np.ndarray, n: int, ts: int) -> None:
    """Set every price inside ``row``'s visible window (both sides) to the row's size (0 when absent)."""
    for side, off in ((-1, 0), (1, 2)):
        want = {int(row[4 * k + off]): int(row[4 * k + off + 1]) for k in range(n) if row[4 * k + off] > 0}
        edge = int(row[4 * (n - 1) + off])  # 0: fewer than n levels, the whole side is visible
        deep = book.snapshot(4 * n + 64)
        for k in range(deep.shape[0] // 4):
            px = int(deep[4 * k + off])
            if px == 0:
                break
            inside = edge == 0 or (px <= edge if side < 0 else px >= edge)
            if inside and want.get(px, 0) != int(deep[4 * k + off + 1]):
                book.set_level(side, px, want.get(px, 0), ts=ts)
        for px, size in want.items():
            if book.level_size(side, px) != size:
                book.set_level(side, px, size, ts=ts)


def verify_snapshots(
    events: np.ndarray, snap_seq: np.ndarray, snap_ts: np.ndarray, rows: np.ndarray, *, reseed: bool = True
) -> SnapshotReport:
    """Rebuild from ``events`` and compare with snapshots (see the module docstring).

    ``events``: structured array with ``ts, seq, type, order_id, side, price, size`` sorted by ``seq``;
    ``snap_seq[m]``/``snap_ts[m]``: the event each snapshot follows and its time (ns), increasing;
    ``rows int64[m, 4N]``: ask_px, ask_sz, bid_px, bid_sz per level (ticks/lots, 0 = empty).
    """
    rows = np.asarray(rows, dtype=np.int64)
    m, n = rows.shape[0], rows.shape[1] // 4
    if m < 2:
        raise ValueError("need at least two snapshots (the first one seeds the book)")
    seq = np.asarray(events["seq"], dtype=np.int64)
    start = int(np.searchsorted(seq, snap_seq[0], side="right"))
    cmds = events_to_commands(events[start:], mode="apply")
    ends = np.searchsorted(seq, snap_seq, side="right") - start
    # no price band: stub orders far from the market rest on far levels instead of sizing a dense grid
    book = OrderBook(capacity=max(1024, cmds.shape[0] // 4), tolerant=True, event_capacity=1 << 12)
    book.process(seed_commands(rows[0], int(snap_ts[0])))
    top = min(5, n)
    best_ok = np.zeros(m - 1, dtype=bool)
    top_ok = np.zeros(m - 1, dtype=bool)
    all_ok = np.zeros(m - 1, dtype=bool)
    seeds_at = [int(snap_ts[0])]
    sync: list[float] = []
    in_sync = True
    rejected = 0
    pos = 0
    for k in range(1, m):
        end = int(ends[k])
        if end > pos:
            res = book.process(cmds[pos:end])
            rejected += int(np.count_nonzero(res.status))
            pos = end
        snap = book.snapshot(n)
        row = rows[k]
        best_ok[k - 1] = snap[0] == row[0] and snap[2] == row[2]
        top_ok[k - 1] = bool(np.array_equal(snap[: 4 * top], row[: 4 * top]))
        all_ok[k - 1] = bool(np.array_equal(snap, row))
        if not all_ok[k - 1]:
            if in_sync:
                sync.append((int(snap_ts[k]) - seeds_at[-1]) / NS_PER_S)
                in_sync = False
            if reseed:
                _resync(book, row, n, int(snap_ts[k]))
                seeds_at.append(int(snap_ts[k]))
                in_sync = True
    if in_sync:
        sync.append((int(snap_ts[-1]) - seeds_at[-1]) / NS_PER_S)
    hours = np.asarray(snap_ts[1:], dtype=np.int64) // NS_PER_HOUR
    per_hour = {}
    for h in np.unique(hours).tolist():
        sel = hours == h
        per_hour[f"{h % 24:02d}:00Z"] = {
            "snapshots": int(sel.sum()),
            "best_price": float(best_ok[sel].mean()),
            "top5": float(top_ok[sel].mean()),
            "all_levels": float(all_ok[sel].mean()),
        }
    return SnapshotReport(
        levels=n,
        events=int(cmds.shape[0]),
        snapshots_compared=m - 1,
        match_rate_best_price=float(best_ok.mean()),
        match_rate_top5=float(top_ok.mean()),
        match_rate_all_levels=float(all_ok.mean()),
        reseeds=len(seeds_at) - 1,
        sync_seconds_median=float(np.median(sync)),
        sync_seconds_mean=float(np.mean(sync)),
        per_hour=per_hour,
        rejected_events=rejected,
    )
