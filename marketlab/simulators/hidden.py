"""The exchange's non-displayed (hidden) orders: their state, and the merge of their type-5 executions
into the engine's event stream. The matching rules are in :mod:`marketlab.simulators.exchange`; this
module only keeps the orders and the executions in arrival order.
"""

from __future__ import annotations

import numpy as np

E_EXECUTE_HIDDEN = 5  # LOBSTER type of an execution against a non-displayed order


class HiddenOrders:
    """Resting non-displayed orders: ``orders[id] = [side, price, size left, agent, arrival no]``, the best
    hidden bid/ask prices (0 = none) and the type-5 executions not yet drained."""

    __slots__ = ("orders", "best_bid", "best_ask", "volume", "_no", "_pending", "_drained")

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.volume = 0  # lots traded against hidden orders
        self._no = 0
        # (engine seq of the next engine event, ts, maker id, maker side, price, size, taker id, aggressor side)
        self._pending: list[tuple[int, int, int, int, int, int, int, int]] = []
        self._drained = 0

    def rest(self, oid: int, side: int, price: int, size: int, agent: int) -> None:
        """Rest a new hidden order behind every earlier one."""
        self._no += 1
        self.orders[oid] = [side, price, size, agent, self._no]
        if (side > 0 and price > self.best_bid) or (side < 0 and (self.best_ask == 0 or price < self.best_ask)):
            self._update_best()

    def drop(self, oid: int) -> None:
        """Remove order ``oid`` (filled or cancelled)."""
        del self.orders[oid]
        self._update_best()

    def _update_best(self) -> None:
        # a handful of orders: a scan is cheapest
        hb = ha = 0
        for side, price, _left, _aid, _no in self.orders.values():
            if side > 0:
                if price > hb:
                    hb = price
            elif ha == 0 or price < ha:
                ha = price
        self.best_bid, self.best_ask = hb, ha

    def oldest_at(self, side: int, price: int) -> int:
        """Id of the oldest hidden order of ``side`` at ``price`` (one must exist)."""
        best_oid, best_no = 0, 1 << 62
        for oid, h in self.orders.items():
            if h[0] == side and h[1] == price and h[4] < best_no:
                best_oid, best_no = oid, h[4]
        return best_oid

    def listing(self) -> list[tuple[int, int, int, int]]:
        """``(order_id, side, price, size)`` of every resting hidden order, oldest first."""
        rows = sorted(self.orders.items(), key=lambda kv: kv[1][4])
        return [(oid, h[0], h[1], h[2]) for oid, h in rows]

    def record(self, engine_seq: int, ts: int, maker: int, maker_side: int, price: int, size: int, taker: int,
               aggressor: int) -> None:
        """A type-5 execution that happened before the engine event numbered ``engine_seq``."""
        self._pending.append((engine_seq, ts, maker, maker_side, price, size, taker, aggressor))
        self.volume += size

    def merge(self, ev: np.ndarray, fills: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merge the pending type-5 executions (events and fills) into the engine's drained ``ev``/``fills``
        (engine dtypes) in arrival order, renumbering ``seq`` so the stream counts 0, 1, 2, ... over the
        session; fills carry the ``seq`` of their execution event."""
        if not self._pending and not self._drained:
            return ev, fills
        h = np.array(self._pending, dtype=np.int64).reshape(-1, 8)
        self._pending = []
        nh = h.shape[0]
        shift = self._drained
        keys = h[:, 0]
        # an engine event s has s engine events and every hidden one with key <= s before it
        ev_seq = ev["seq"] + shift + np.searchsorted(keys, ev["seq"], side="right")
        h_seq = keys + shift + np.arange(nh)
        hev = np.zeros(nh, dtype=ev.dtype)
        hev["ts"], hev["seq"], hev["type"], hev["order_id"] = h[:, 1], h_seq, E_EXECUTE_HIDDEN, h[:, 2]
        hev["side"], hev["price"], hev["size"] = h[:, 3], h[:, 4], h[:, 5]
        new_fill_seq = fills["seq"] + shift + np.searchsorted(keys, fills["seq"], side="right")
        ev = ev.copy()
        ev["seq"] = ev_seq
        fills = fills.copy()
        fills["seq"] = new_fill_seq
        hf = np.zeros(nh, dtype=fills.dtype)
        hf["ts"], hf["seq"], hf["taker_id"], hf["maker_id"] = h[:, 1], h_seq, h[:, 6], h[:, 2]
        hf["aggressor"], hf["price"], hf["size"] = h[:, 7], h[:, 4], h[:, 5]
        self._drained += nh
        events = np.concatenate([ev, hev])
        events = events[np.argsort(events["seq"], kind="stable")]
        allf = np.concatenate([fills, hf])
        allf = allf[np.argsort(allf["seq"], kind="stable")]
        return events, allf
