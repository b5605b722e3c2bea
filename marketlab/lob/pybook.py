"""A straightforward pure-Python order book with the engine's semantics (the baseline and the reference).

Dict of price -> deque of order ids per side, an order-id map, sorted price lists kept with ``bisect``.
It implements the same commands as :mod:`marketlab.lob.kernels` (limit GTC/IOC/FOK, market, cancel,
modify, replay add/reduce, set_level) and the same top-``depth`` snapshot, so the benchmark compares
like with like and the property tests can check the numba engine fill by fill. Written for clarity,
not speed; no shared code with the kernels.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from marketlab.lob import kernels as K


class PyOrderBook:
    """Reference book. Orders: ``id -> [side, price, qty, synthetic]``; levels: ``(side, price) -> deque``."""

    def __init__(self, *, tolerant: bool = False) -> None:
        self.orders: dict[int, list[int]] = {}
        self.queues: dict[int, dict[int, deque[int]]] = {1: {}, -1: {}}
        self.level_qty: dict[int, dict[int, int]] = {1: {}, -1: {}}
        self.prices: dict[int, list[int]] = {1: [], -1: []}  # ascending
        self.fills: list[tuple[int, int, int, int, int, int]] = []  # ts, taker, maker, aggressor, price, size
        self.events: list[tuple[int, int, int, int, int, int]] = []  # ts, type, id, side, price, size
        self.last_ts = -(2**63)
        self.tolerant = tolerant

    # ---------------------------------------------------------------- primitives
    def best(self, side: int) -> int | None:
        """Best price of ``side`` or None."""
        p = self.prices[side]
        if not p:
            return None
        return p[-1] if side > 0 else p[0]

    def _add(self, oid: int, side: int, price: int, qty: int, synthetic: bool = False, front: bool = False) -> None:
        self.orders[oid] = [side, price, qty, int(synthetic)]
        q = self.queues[side].get(price)
        if q is None:
            q = self.queues[side][price] = deque()
            self.level_qty[side][price] = 0
            insort(self.prices[side], price)
        if front:
            q.appendleft(oid)
        else:
            q.append(oid)
        self.level_qty[side][price] += qty

    def _reduce(self, oid: int, qty: int) -> None:
        side, price, left, _ = self.orders[oid]
        self.level_qty[side][price] -= min(qty, left)
        if qty >= left:
            del self.orders[oid]
            q = self.queues[side][price]
            q.remove(oid)
            if not q:
                del self.queues[side][price]
                del self.level_qty[side][price]
                p = self.prices[side]
                del p[bisect_left(p, price)]
        else:
            self.orders[oid][2] = left - qty

    def _match(self, ts: int, oid: int, side: int, price: int, qty: int, market: bool) -> int:
        opp = -side
        while qty > 0:
            best = self.best(opp)
            if best is None or (not market and ((side > 0 and best > price) or (side < 0 and best < price))):
                break
            q = self.queues[opp][best]
            while qty > 0 and q:
                mid = q[0]
                f = min(qty, self.orders[mid][2])
                self.fills.append((ts, oid, mid, side, best, f))
                self.events.append((ts, K.E_EXECUTE, mid, opp, best, f))
                qty -= f
                self._reduce(mid, f)
                if best not in self.queues[opp]:
                    break
        return qty

    def _fillable(self, side: int, price: int, market: bool) -> int:
        opp = -side
        prices = self.prices[opp] if side > 0 else list(reversed(self.prices[opp]))
        tot = 0
        for p in prices:
            if not market and ((side > 0 and p > price) or (side < 0 and p < price)):
                break
            tot += self.level_qty[opp][p]
        return tot

    def _submit(self, ts: int, oid: int, side: int, price: int, qty: int, market: bool, tif: int) -> int:
        if tif == K.TIF_FOK and self._fillable(side, price, market) < qty:
            return K.R_FOK
        left = self._match(ts, oid, side, price, qty, market)
        if left > 0 and not market and tif == K.TIF_GTC:
            self._add(oid, side, price, left)
            self.events.append((ts, K.E_ADD, oid, side, price, left))
        return K.OK

    # ---------------------------------------------------------------- commands
    def process(self, ts: int, kind: int, oid: int, side: int, price: int, size: int, aux: int) -> int:
        """Apply one command (same columns as the kernels' ``cmds``); returns 0 or an ``R_*`` code."""
        if ts < self.last_ts:
            return K.R_TS
        if kind == K.K_NOOP:
            self.last_ts = ts
            return K.OK
        if side not in (1, -1) and kind in (K.K_LIMIT, K.K_MARKET, K.K_APPLY_ADD, K.K_APPLY_REDUCE, K.K_SET_LEVEL):
            # cancel/modify act by id alone
            return K.R_SIDE
        code = K.OK
        if kind == K.K_MODIFY and size == 0:  # modify to 0 = cancel
            kind = K.K_CANCEL
        if kind in (K.K_LIMIT, K.K_MARKET, K.K_APPLY_ADD):
            if size <= 0:
                return K.R_SIZE
            if kind != K.K_MARKET and price <= 0:
                return K.R_PRICE
            if oid <= 0:
                return K.R_ID
            if oid in self.orders:
                return K.R_DUP_ID
            if kind == K.K_APPLY_ADD:
                opp = self.best(-side)
                if opp is not None and ((side > 0 and price >= opp) or (side < 0 and price <= opp)):
                    return K.R_CROSS
                self._add(oid, side, price, size)
                self.events.append((ts, K.E_ADD, oid, side, price, size))
            else:
                code = self._submit(ts, oid, side, price, size, kind == K.K_MARKET, aux if kind == K.K_LIMIT else K.TIF_IOC)
        elif kind == K.K_CANCEL:
            if size < 0:
                return K.R_SIZE
            if oid <= 0 or oid not in self.orders:
                return K.R_UNKNOWN_ID
            sd, px, q, _ = self.orders[oid]
            if size == 0 or size >= q:
                self._reduce(oid, q)
                self.events.append((ts, K.E_DELETE, oid, sd, px, q))
            else:
                self._reduce(oid, size)
                self.events.append((ts, K.E_CANCEL, oid, sd, px, size))
        elif kind == K.K_MODIFY:
            if size <= 0:
                return K.R_SIZE
            if price < 0:
                return K.R_PRICE
            if oid <= 0 or oid not in self.orders:
                return K.R_UNKNOWN_ID
            sd, px, q, _ = self.orders[oid]
            newpx = px if price == 0 else price
            if newpx == px and size <= q:
                if size < q:
                    self._reduce(oid, q - size)
                    self.events.append((ts, K.E_CANCEL, oid, sd, px, q - size))
            else:
                self._reduce(oid, q)
                self.events.append((ts, K.E_DELETE, oid, sd, px, q))
                self._submit(ts, oid, sd, newpx, size, False, K.TIF_GTC)
        elif kind == K.K_APPLY_REDUCE:
            if size <= 0:
                return K.R_SIZE
            target = oid if oid in self.orders else None
            if target is None and self.tolerant:
                sid = int(K.synthetic_id_nb(side, price))
                target = sid if sid in self.orders else None
            if target is None:
                return K.R_UNKNOWN_ID
            sd, px, q, _ = self.orders[target]
            if sd != side or px != price:
                return K.R_ATTR
            if size > q and not self.tolerant:
                return K.R_OVERSIZE
            take = min(size, q)
            self._reduce(target, take)
            et = aux if aux in (K.E_CANCEL, K.E_EXECUTE) else K.E_DELETE
            if et == K.E_CANCEL and take == q:
                et = K.E_DELETE
            self.events.append((ts, et, target, sd, px, take))
        elif kind == K.K_SET_LEVEL:
            if size < 0:
                return K.R_SIZE
            if price <= 0:
                return K.R_PRICE
            self._set_level(ts, side, price, size)
        else:
            return K.R_KIND
        if code in (K.OK, K.R_FOK):
            self.last_ts = ts
        return code

    def _set_level(self, ts: int, side: int, price: int, size: int) -> None:
        sid = int(K.synthetic_id_nb(side, price))
        syn = self.orders[sid][2] if sid in self.orders else 0
        real = self.level_qty[side].get(price, 0) - syn
        if size >= real:
            want = size - real
            if want == syn:
                return
            if sid in self.orders:
                if want == 0:
                    self._reduce(sid, syn)
                    self.events.append((ts, K.E_DELETE, sid, side, price, syn))
                else:
                    self.orders[sid][2] = want
                    self.level_qty[side][price] += want - syn
                    self.events.append((ts, K.E_ADD if want > syn else K.E_CANCEL, sid, side, price, abs(want - syn)))
            else:
                self._add(sid, side, price, want, synthetic=True, front=True)
                self.events.append((ts, K.E_ADD, sid, side, price, want))
            return
        if sid in self.orders:
            self._reduce(sid, syn)
            self.events.append((ts, K.E_DELETE, sid, side, price, syn))
        excess = real - size
        while excess > 0:
            oid = self.queues[side][price][0]
            q = self.orders[oid][2]
            take = min(q, excess)
            self._reduce(oid, take)
            self.events.append((ts, K.E_DELETE if take == q else K.E_CANCEL, oid, side, price, take))
            excess -= take

    # ---------------------------------------------------------------- views
    def snapshot(self, depth: int) -> list[int]:
        """Top ``depth``: ask_px, ask_sz, bid_px, bid_sz per level (0 = empty)."""
        out = [0] * (4 * depth)
        asks = self.prices[-1][:depth]
        bids = self.prices[1][: -depth - 1 : -1]
        for k, p in enumerate(asks):
            out[4 * k] = p
            out[4 * k + 1] = self.level_qty[-1][p]
        for k, p in enumerate(bids):
            out[4 * k + 2] = p
            out[4 * k + 3] = self.level_qty[1][p]
        return out

    def queue(self, side: int, price: int) -> list[int]:
        """Order ids at (side, price), front first."""
        return list(self.queues[side].get(price, ()))
