"""Python boundary of the matching engine: :class:`OrderBook`.

A price-time-priority continuous double auction with full L3 state (order ids, FIFO queue per price
level). Prices are ``int`` ticks (> 0), sizes ``int`` lots (> 0), order ids ``int`` (> 0; ids <= 0 are
reserved for the engine's synthetic liquidity), sides ``+1`` buy / ``-1`` sell, timestamps ``int`` ns.

Two ways to drive it:

* **Simulation (matching)** — one call per order, for agents::

      book = OrderBook()
      book.submit_limit(1, +1, 10_000, 5, ts=t)            # -> status (0 = accepted)
      book.submit_limit(2, -1, 9_999, 3, ts=t, tif="IOC")  # crosses: fills at 10_000
      book.last_fills()        # structured FILL_DTYPE rows of the last call
      book.cancel(1, ts=t)     # full cancel; cancel(1, 2) takes 2 lots off
      book.modify(1, price=10_001, size=4, ts=t)
      book.snapshot(10)        # int64[40]: ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ...

  A bad order (non-positive size/price, unknown or duplicate id, earlier timestamp, non-integer price)
  is **rejected**: the call returns a non-zero ``R_*`` code, :attr:`rejections` counts it by reason and the
  book is untouched. Fill-or-kill orders that cannot fill completely return ``R_FOK`` (counted as
  ``fok_killed``).

* **Batch** — :meth:`process` runs an array of commands (``COMMAND_DTYPE``) in one numba call and can
  snapshot the top ``depth`` levels after every command. Replay of recorded messages uses the
  ``apply_*`` kinds, which rest orders without matching (the data already says what traded).

Semantics
---------
* Matching: an incoming buy trades with the lowest ask while ``ask <= limit`` (any ask for market
  orders), oldest order first within a level; the trade price is the resting order's price.
* GTC limit remainder rests at the back of its level; IOC/market remainders are cancelled; FOK trades
  only if the whole size is available at acceptable prices, else nothing happens.
* ``cancel(id, size)``: ``size`` 0 or >= remaining removes the order, else reduces it (keeps priority).
* ``modify(id, price, size)``: same price and size <= remaining keeps priority (a reduction); a price
  change or size increase loses priority: the order is removed and re-entered with the same id at the
  back of the new level, and it may trade if it now crosses.
* Emitted events (store EVENTS_SCHEMA codes): 1 add (the resting part of a new order), 2 partial
  cancel, 3 delete, 4 execution of a resting order (one per fill, on the maker's id/side/price).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from marketlab.lob import kernels as K
from marketlab.lob import verify_kernels as VK
from marketlab.lob.policy import VenuePolicy

log = logging.getLogger(__name__)

COMMAND_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("kind", np.int64),
        ("order_id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("size", np.int64),
        ("aux", np.int64),
    ]
)
FILL_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("seq", np.int64),  # seq of the matching execution event
        ("taker_id", np.int64),
        ("maker_id", np.int64),
        ("aggressor", np.int64),  # side of the incoming order
        ("price", np.int64),
        ("size", np.int64),
    ]
)
# The store's EVENTS_SCHEMA fields without ``symbol`` (LOBSTER type codes), all int64 as the kernels write them.
ENGINE_EVENT_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("seq", np.int64),
        ("type", np.int64),
        ("order_id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("size", np.int64),
    ]
)

KIND = {
    "limit": K.K_LIMIT,
    "market": K.K_MARKET,
    "cancel": K.K_CANCEL,
    "modify": K.K_MODIFY,
    "apply_add": K.K_APPLY_ADD,
    "apply_reduce": K.K_APPLY_REDUCE,
    "set_level": K.K_SET_LEVEL,
    "noop": K.K_NOOP,
}
TIF = {"GTC": K.TIF_GTC, "IOC": K.TIF_IOC, "FOK": K.TIF_FOK}

REASONS = {
    K.R_SIZE: "non_positive_size",
    K.R_PRICE: "non_positive_price",
    K.R_DUP_ID: "duplicate_order_id",
    K.R_UNKNOWN_ID: "unknown_order_id",
    K.R_TS: "out_of_order_timestamp",
    K.R_FOK: "fok_killed",
    K.R_OFF_TICK: "price_off_tick_grid",
    K.R_SIDE: "bad_side",
    K.R_KIND: "bad_command_kind",
    K.R_CROSS: "add_would_cross_book",
    K.R_OVERSIZE: "reduce_exceeds_remaining",
    K.R_ATTR: "side_or_price_differs_from_order",
    K.R_ID: "non_positive_order_id",
    K.R_BAND: "price_outside_max_band",
}


@dataclass(frozen=True)
class OrderInfo:
    """A live order: id, side (+1/-1), price (ticks), remaining size (lots), entry ts (ns), synthetic flag,
    and whether it is a crossing add still held out of the book (``crossing_add="defer"``)."""

    order_id: int
    side: int
    price: int
    size: int
    ts: int
    synthetic: bool
    deferred: bool = False


@dataclass(frozen=True)
class BatchResult:
    """Outcome of :meth:`OrderBook.process`: ``status[n]`` per command (0 ok, else ``R_*``), ``snaps``
    ``int64[n, 4*depth]`` (empty when depth 0), fills/events emitted by the batch (structured arrays)."""

    status: np.ndarray
    snaps: np.ndarray
    fills: np.ndarray
    events: np.ndarray


def _pow2(n: int) -> int:
    return 1 << max(6, int(n - 1).bit_length())


class OrderBook:
    """L3 limit-order book and matching engine over numba kernels (see the module docstring).

    Parameters
    ----------
    capacity: initial number of order slots (grows by doubling).
    price_band: optional ``(low, high)`` ticks to preallocate as the dense window (``max_levels`` is raised
        to fit it); otherwise the window is centred on the first price seen and grows (re-based, doubling)
        while it stays within ``max_levels``.
    max_levels: largest dense window (price levels per side; 64 bytes per level for both sides, so the
        default 2**16 holds at most 4 MiB; a fresh book starts at 2**14 levels, 1 MiB). A price
        the window cannot reach within that size rests on a *far level*: a sorted, sparse side table
        (binary search, rows shifted on insert/delete) that costs nothing until used, so stub orders at
        0.01 and 99,999.99 neither allocate nor slow the book. When a side's far table fills and the live
        orders' median price has left the window's middle half, the window is re-centred on it (levels
        move between window and far table); otherwise the far table doubles.
    far_levels: initial far-table capacity per side (doubles on demand).
    tolerant: replay mode for data that starts mid-day: ``apply_reduce`` of an unknown id takes the
        quantity from synthetic pre-existing liquidity at the message's (side, price) (see
        :meth:`set_level`) and clamps oversize reductions instead of rejecting them.
    policy: the venue's replay policy (:class:`marketlab.lob.policy.VenuePolicy`: crossing adds, reduce
        sizes); the default rejects crossing adds and reads reduce sizes as lots that left the book.
    event_capacity: the event and fill buffers keep at most about this many rows between drains: when a
        call starts with more, the rows of earlier calls are discarded (counted in :attr:`events_discarded`);
        :meth:`last_events`/:meth:`last_fills` and :meth:`process`'s result are never affected. ``None``
        keeps everything until :meth:`drain_events` (a simulator that drains once per session).

    Attributes: :attr:`scalars` is a read-only view of the kernel scalars (index with
    ``marketlab.lob.kernels.S_*``): the cheap way to poll the touch or the fill counter after every call.
    """

    def __init__(
        self,
        *,
        capacity: int = 1 << 14,
        price_band: tuple[int, int] | None = None,
        max_levels: int = 1 << 16,
        far_levels: int = 64,
        tolerant: bool = False,
        policy: VenuePolicy | None = None,
        event_capacity: int | None = 1 << 16,
    ) -> None:
        cap = max(16, int(capacity))
        self.max_levels = int(max_levels)
        self._orders = np.zeros((cap, 8), dtype=np.int64)
        self._orders[:, K.O_NEXT] = np.arange(1, cap + 1)
        self._orders[-1, K.O_NEXT] = -1
        # The id -> slot map starts small (it doubles whenever it gets half full): a table sized for
        # the slot capacity (2 MiB at 2**16 slots) turns every lookup into a cache miss, while a few
        # thousand live orders fit a 128 KiB table in L2.
        self._sc = np.zeros(K.N_SCALARS, dtype=np.int64)
        self._sc[K.S_FREE] = 0
        # Read-only view of the kernel scalars: the fast path for code that polls the book after every
        # message (a simulator's exchange): one array read instead of a property call.
        self.scalars = self._sc.view()
        self.scalars.flags.writeable = False
        self._alloc_hash(_pow2(2 * min(cap, 1 << 12)))
        self._sc[K.S_LASTTS] = np.iinfo(np.int64).min
        self._sc[K.S_TOLERANT] = 1 if tolerant else 0
        self.policy = policy or VenuePolicy()
        for idx, value in self.policy.scalars().items():
            self._sc[idx] = value
        self._event_cap = None if event_capacity is None else max(1, int(event_capacity))
        self.events_discarded = 0  # event rows dropped by the event_capacity bound
        self.fills_discarded = 0
        self._sc[K.S_DEFHEAD] = -1
        self._sc[K.S_DEFTAIL] = -1
        self._sc[K.S_FCAP] = max(1, int(far_levels))
        self._levels = np.zeros((2, 2 * int(self._sc[K.S_FCAP]), 4), dtype=np.int64)
        self._bm = np.zeros((2, 0), dtype=np.uint64)
        if price_band is not None:
            lo, hi = int(price_band[0]), int(price_band[1])
            nlev = _pow2(max(64, hi - lo + 1))
            self.max_levels = max(self.max_levels, nlev)
            self._alloc_band(max(1, lo), nlev)
        self._sc[K.S_WCAP] = max(64, self.max_levels)
        self._fills = np.zeros((1024, 7), dtype=np.int64)
        self._events = np.zeros((1024, 7), dtype=np.int64)
        self._fill_mark = 0
        self._event_mark = 0
        self.rejections: dict[str, int] = {}
        self.rejection_log: list[tuple[int, int, str]] = []  # (ts, order_id, reason), last 10_000 kept
        self._one = np.zeros((1, 7), dtype=np.int64)
        self._one_status = np.zeros(1, dtype=np.int64)
        self._nosnap = np.zeros((1, 1), dtype=np.int64)

    # ------------------------------------------------------------ storage management
    def _alloc_band(self, base: int, nlev: int, fcap: int | None = None) -> None:
        """Lay the levels out for the window ``[base, base + nlev)`` (rounded up to 64 levels) with
        ``fcap`` far levels per side (default: unchanged; doubled until every level outside fits)."""
        nlev = ((nlev + 63) // 64) * 64
        fcap = int(self._sc[K.S_FCAP]) if fcap is None else fcap
        while True:
            new = np.zeros((2, nlev + 2 * fcap, 4), dtype=np.int64)
            new[:, :nlev, K.L_HEAD] = -1
            new[:, :nlev, K.L_TAIL] = -1
            bm = np.zeros((2, nlev // 64), dtype=np.uint64)
            if K.relayout_nb(self._levels, self._sc, new, bm, base, nlev, fcap) >= 0:
                break
            fcap *= 2
        self._levels, self._bm = new, bm

    def _grow_band(self, price: int) -> None:
        """Re-base/enlarge the window so ``price`` fits with margin, within ``max_levels`` (the kernel asks
        only when the window plus ``price`` spans at most that many levels)."""
        n = int(self._sc[K.S_NLEV])
        cap = int(self._sc[K.S_WCAP])
        if n == 0:
            nlev = min(1 << 14, cap)
            self._alloc_band(max(1, price - nlev // 2), nlev)
            return
        lo = min(int(self._sc[K.S_BASE]), price)
        hi = max(int(self._sc[K.S_BASE]) + n, price + 1)
        nlev = min(_pow2(2 * (hi - lo)), max(cap, hi - lo))
        base = max(1, lo - (nlev - (hi - lo)) // 2)
        if base + nlev < hi:
            base = hi - nlev
        self._alloc_band(base, nlev)

    def _far_room(self) -> None:
        """A far table is full: re-centre the window on the live orders' median price when it has left the
        window's middle half, and double the far capacity when that does not free enough rows."""
        sc = self._sc
        base, n = int(sc[K.S_BASE]), int(sc[K.S_NLEV])
        o = self._orders
        live = o[(o[:, K.O_QTY] > 0) & (o[:, K.O_SYN] != K.SYN_DEFERRED), K.O_PRICE]
        if n and live.size:
            centre = int(np.median(live))
            if not base + n // 4 <= centre < base + 3 * n // 4:
                self._alloc_band(max(1, centre - n // 2), n)
                if max(int(sc[K.S_NFAR]), int(sc[K.S_NFAR + 1])) + int(sc[K.S_NDEFER]) + 1 < int(sc[K.S_FCAP]):
                    return
        self._alloc_band(int(sc[K.S_BASE]), n, 2 * int(sc[K.S_FCAP]))

    def _alloc_hash(self, hcap: int) -> None:
        """Empty hash table of ``hcap`` buckets. Keys and slots are interleaved in one ``int64[hcap, 2]``
        array (``_hkeys``/``_hvals`` are its strided column views, which the kernels take), so a probe
        reads one cache line instead of two."""
        self._htab = np.empty((hcap, 2), dtype=np.int64)
        self._htab[:, 0] = 0
        self._htab[:, 1] = -1
        self._hkeys = self._htab[:, 0]
        self._hvals = self._htab[:, 1]
        self._sc[K.S_HSHIFT] = 64 - (hcap.bit_length() - 1)

    def _grow_slots(self) -> None:
        old = self._orders
        cap = old.shape[0]
        new = np.zeros((2 * cap, 8), dtype=np.int64)
        new[:cap] = old
        new[cap:, K.O_NEXT] = np.arange(cap + 1, 2 * cap + 1)
        new[-1, K.O_NEXT] = -1
        new[cap:, K.O_QTY] = 0
        # append the new slots in front of the (empty) free list
        new[-1, K.O_NEXT] = self._sc[K.S_FREE]
        self._sc[K.S_FREE] = cap
        self._orders = new

    def _grow_hash(self) -> None:
        hcap = self._hkeys.shape[0] * 2
        self._alloc_hash(hcap)
        self._sc[K.S_HSHIFT] = 64 - (hcap.bit_length() - 1)
        K.rehash_nb(self._orders, self._hkeys, self._hvals, self._sc)

    def _grow_out(self) -> None:
        need = int(self._sc[K.S_NASK] + self._sc[K.S_NBID]) + 8
        for name, used in (("_fills", K.S_NFILL), ("_events", K.S_NEVT)):
            buf = getattr(self, name)
            self._resize_out(name, max(2 * buf.shape[0], int(self._sc[used]) + 2 * need))

    def _resize_out(self, name: str, size: int) -> None:
        buf = getattr(self, name)
        used = int(self._sc[K.S_NFILL if name == "_fills" else K.S_NEVT])
        # np.empty: rows past `used` are always written by the kernel before they are read
        new = np.empty((size, 7), dtype=np.int64)
        new[:used] = buf[:used]
        setattr(self, name, new)

    def _reserve_out(self, n: int) -> None:
        """Size the event buffer for a batch of ``n`` commands up front (most emit one event): one
        allocation instead of a kernel exit, copy and re-entry per doubling."""
        want = int(self._sc[K.S_NEVT]) + n + int(self._sc[K.S_NASK] + self._sc[K.S_NBID]) + 64
        if self._events.shape[0] < want:
            self._resize_out("_events", want + want // 4)

    # ------------------------------------------------------------ core loop
    def _run(self, cmds: np.ndarray, status: np.ndarray, snaps: np.ndarray, depth: int, stop: bool) -> tuple[int, int]:
        i = 0
        while True:
            code, i = K.process_nb(
                self._orders, self._levels, self._bm, self._hkeys, self._hvals, self._sc,
                cmds, i, status, self._fills, self._events, snaps, depth, stop,
            )  # fmt: skip
            if code == K.OK or code > 0:
                return int(code), int(i)
            if code == K.NEED_SLOTS:
                self._grow_slots()
            elif code == K.NEED_HASH:
                self._grow_hash()
            elif code == K.NEED_OUT:
                self._grow_out()
            elif code == K.NEED_BAND:
                self._grow_band(int(self._sc[K.S_NEEDPX]))
            elif code == K.NEED_FAR:
                self._far_room()
            else:  # pragma: no cover - kernel contract
                raise RuntimeError(f"kernel returned unknown code {code}")

    def _count_reject(self, cmds: np.ndarray, status: np.ndarray, lo: int, hi: int) -> None:
        """Count rejections of ``cmds[lo:hi]`` by reason and keep the last 10,000 in the log (vectorised:
        a batch may reject many orders, and per-row Python here cost as much as the kernel itself)."""
        st = status[lo:hi]
        if not st.any():
            return
        bad = np.flatnonzero(st) + lo
        codes = status[bad]
        counts = np.bincount(codes - codes.min())
        base = int(codes.min())
        for off in np.flatnonzero(counts).tolist():
            reason = _reason(base + off)
            self.rejections[reason] = self.rejections.get(reason, 0) + int(counts[off])
        tail = bad[-10_000:]
        names = [_reason(c) for c in status[tail].tolist()]
        self.rejection_log.extend(zip(cmds[tail, K.C_TS].tolist(), cmds[tail, K.C_ID].tolist(), names, strict=True))
        if len(self.rejection_log) > 10_000:
            del self.rejection_log[: len(self.rejection_log) - 10_000]
        if log.isEnabledFor(logging.DEBUG):
            for j in tail:
                log.debug("order %d rejected: %s", int(cmds[j, K.C_ID]), REASONS.get(int(status[j])))

    def _one_cmd(self, ts: int | None, kind: int, oid: int, side: int, price: object, size: int, aux: int) -> int:
        sc = self._sc
        if ts is None:
            ts = max(int(sc[K.S_LASTTS]), 0)
        if type(price) is int:
            px, off = price, False
        else:
            px, off = _as_tick(price)
        self._fill_mark, self._event_mark = sc[K.S_NFILL : K.S_NEVT + 1].tolist()
        if self._event_cap is not None and (self._event_mark > self._event_cap or self._fill_mark > self._event_cap):
            self._discard_outputs()
        c = self._one
        if off:
            c[0] = (ts, kind, oid, side, px, int(size), aux)
            self._one_status[0] = K.R_OFF_TICK
            self._count_reject(c, self._one_status, 0, 1)
            return K.R_OFF_TICK
        # One numba call with scalar arguments (cheaper to dispatch than filling the command row here);
        # only when the kernel asks for room does the general grow-and-resume loop run.
        code: int = K.one_nb(self._orders, self._levels, self._bm, self._hkeys, self._hvals, sc, c, self._one_status,
                        self._fills, self._events, self._nosnap, int(ts), kind, int(oid), int(side), int(px),
                        int(size), aux)
        if code < 0:
            self._one_status[0] = 0
            self._run(c, self._one_status, self._nosnap, 0, False)
            code = int(self._one_status[0])
        if code:
            self._count_reject(c, self._one_status, 0, 1)
        return code

    def _discard_outputs(self) -> None:
        """Drop the event/fill rows of earlier calls (the ``event_capacity`` bound); ``seq`` keeps counting."""
        self.events_discarded += int(self._sc[K.S_NEVT])
        self.fills_discarded += int(self._sc[K.S_NFILL])
        self._sc[K.S_NEVT] = 0
        self._sc[K.S_NFILL] = 0
        self._fill_mark = self._event_mark = 0

    # ------------------------------------------------------------ simulation API
    def submit_limit(self, order_id: int, side: int, price: int, size: int, *, ts: int | None = None, tif: str = "GTC") -> int:
        """Limit order (``tif`` GTC, IOC or FOK). Returns 0 or an ``R_*`` rejection code."""
        return self._one_cmd(ts, K.K_LIMIT, order_id, side, price, size, TIF[tif])

    def submit_market(self, order_id: int, side: int, size: int, *, ts: int | None = None) -> int:
        """Market order: trades up to ``size`` at any price; the rest is cancelled."""
        return self._one_cmd(ts, K.K_MARKET, order_id, side, 1, size, K.TIF_IOC)

    def cancel(self, order_id: int, size: int = 0, *, ts: int | None = None) -> int:
        """Cancel ``size`` lots (0 = all) of a resting order."""
        return self._one_cmd(ts, K.K_CANCEL, order_id, 1, 1, size, 0)

    def modify(self, order_id: int, *, size: int, price: int | None = None, ts: int | None = None) -> int:
        """Change a resting order to ``size`` lots at ``price`` (None keeps it; size 0 cancels it); see the
        priority rules above."""
        return self._one_cmd(ts, K.K_MODIFY, order_id, 1, 0 if price is None else price, size, 0)

    def apply_add(self, order_id: int, side: int, price: int, size: int, *, ts: int | None = None) -> int:
        """Replay: rest a recorded order without matching (a crossing add follows :attr:`policy`)."""
        return self._one_cmd(ts, K.K_APPLY_ADD, order_id, side, price, size, 0)

    def apply_reduce(self, order_id: int, side: int, price: int, size: int, *, event: int = K.E_DELETE,
                     ts: int | None = None) -> int:
        """Replay: reduce a recorded order (``size`` read by :attr:`policy`); ``event`` is the type emitted
        (2 partial cancel, 3 delete, 4 execution)."""
        return self._one_cmd(ts, K.K_APPLY_REDUCE, order_id, side, price, size, event)

    def set_level(self, side: int, price: int, size: int, *, ts: int | None = None) -> int:
        """Replay helper: make the total at (side, price) ``size`` via synthetic pre-existing liquidity."""
        return self._one_cmd(ts, K.K_SET_LEVEL, 0, side, price, size, 0)

    def process(self, cmds: np.ndarray, *, depth: int = 0, stop_on_reject: bool = False) -> BatchResult:
        """Run a batch of commands (``COMMAND_DTYPE`` structured array or ``int64[n, 7]``).

        ``depth > 0`` snapshots the top ``depth`` levels after every command. With ``stop_on_reject`` the
        batch stops at the first rejected command (status set, command not applied); otherwise rejected
        commands are skipped and counted in :attr:`rejections`.
        """
        arr = as_command_array(cmds)
        n = arr.shape[0]
        status = np.zeros(n, dtype=np.int64)
        snaps = np.zeros((n, 4 * depth) if depth > 0 else (1, 1), dtype=np.int64)
        if self._event_cap is not None and max(int(self._sc[K.S_NFILL]), int(self._sc[K.S_NEVT])) > self._event_cap:
            self._discard_outputs()
        f0, e0 = int(self._sc[K.S_NFILL]), int(self._sc[K.S_NEVT])
        self._fill_mark, self._event_mark = f0, e0
        if n > 1024:
            self._reserve_out(n)
        code, i = self._run(arr, status, snaps, depth, stop_on_reject)
        self._count_reject(arr, status, 0, n if code == K.OK else i + 1)
        f1, e1 = int(self._sc[K.S_NFILL]), int(self._sc[K.S_NEVT])
        return BatchResult(
            status=status,
            snaps=snaps if depth > 0 else np.zeros((n, 0), dtype=np.int64),
            fills=self._fills[f0:f1].copy().view(FILL_DTYPE).reshape(-1),
            events=self._events[e0:e1].copy().view(ENGINE_EVENT_DTYPE).reshape(-1),
        )

    # ------------------------------------------------------------ replay fast paths
    def reserve(self, orders: int, events: int = 0) -> None:
        """Size order slots and the id map for ``orders`` live orders and the event buffer for ``events``
        rows up front, so a long replay kernel never has to stop and grow them."""
        while self._orders.shape[0] < orders:
            self._grow_slots()
        if self._hkeys.shape[0] < 2 * orders + 64:
            self._alloc_hash(_pow2(2 * orders + 64))
            K.rehash_nb(self._orders, self._hkeys, self._hvals, self._sc)
        if events > self._events.shape[0]:
            self._resize_out("_events", int(events))

    def verify_lobster_rows(self, msgs: np.ndarray, book: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run the LOBSTER verification kernel (:func:`marketlab.lob.verify_kernels.lobster_verify_nb`, rules in
        :mod:`marketlab.lob.lobster`) on this book, already seeded with ``book[0]`` and sized with
        :meth:`reserve` and a ``price_band`` covering every price.

        ``msgs int64[n, 6]``, ``book int64[n, 4L]`` (ticks). Returns ``(pre, post, flags, filled, dropped)``,
        each ``int64[n]``: match bits before/after rule 4, ``F_*`` flags, and per row the levels rule 4 set
        from the row and the levels it removed because the row does not list them.
        """
        n, L = msgs.shape[0], book.shape[1] // 4
        snap = np.zeros(4 * L, dtype=np.int64)
        pre, post, flags, filled, dropped = (np.zeros(n, dtype=np.int64) for _ in range(5))
        VK.lobster_verify_nb(self._orders, self._levels, self._bm, self._hkeys, self._hvals, self._sc, self._events,
                            msgs, book, L, snap, pre, post, flags, filled, dropped)
        self._sc[K.S_NEVT] = 0
        self._event_mark = 0
        return pre, post, flags, filled, dropped

    # ------------------------------------------------------------ outputs
    def last_fills(self) -> np.ndarray:
        """Fills (``FILL_DTYPE``) produced by the last call (a copy)."""
        n = int(self._sc[K.S_NFILL])
        return self._fills[self._fill_mark : n].copy().view(FILL_DTYPE).reshape(-1)

    def last_events(self) -> np.ndarray:
        """Events (``ENGINE_EVENT_DTYPE``) produced by the last call (a copy)."""
        n = int(self._sc[K.S_NEVT])
        return self._events[self._event_mark : n].copy().view(ENGINE_EVENT_DTYPE).reshape(-1)

    def drain_fills(self) -> np.ndarray:
        """All fills since the last drain (``FILL_DTYPE``); empties the buffer."""
        n = int(self._sc[K.S_NFILL])
        out = self._fills[:n].copy().view(FILL_DTYPE).reshape(-1)
        self._sc[K.S_NFILL] = 0
        self._fill_mark = 0
        return out

    def drain_events(self) -> np.ndarray:
        """All events since the last drain (``ENGINE_EVENT_DTYPE``, ``seq`` increasing); empties the buffer."""
        n = int(self._sc[K.S_NEVT])
        out = self._events[:n].copy().view(ENGINE_EVENT_DTYPE).reshape(-1)
        self._sc[K.S_NEVT] = 0
        self._event_mark = 0
        return out

    # ------------------------------------------------------------ inspection
    def snapshot(self, depth: int = 10) -> np.ndarray:
        """Top ``depth`` levels: ``int64[4*depth]`` = ask_px_i, ask_sz_i, bid_px_i, bid_sz_i (0 = empty)."""
        out = np.zeros(4 * depth, dtype=np.int64)
        if self._sc[K.S_NLEV]:
            K.snapshot_nb(self._levels, self._bm, self._sc, depth, out)
        return out

    @property
    def best_bid(self) -> int | None:
        """Best bid price in ticks (None when there are no bids)."""
        v = int(self._sc[K.S_BID])
        return v if v > 0 else None

    @property
    def best_ask(self) -> int | None:
        """Best ask price in ticks (None when there are no asks)."""
        v = int(self._sc[K.S_ASK])
        return v if v > 0 else None

    def quotes(self) -> tuple[int | None, int | None]:
        """``(best_bid, best_ask)`` in ticks (None for an empty side) in one cheap read of the kernel
        scalars: what an agent polls after every event, without building a snapshot."""
        b, a = self._sc[K.S_BID : K.S_ASK + 1].tolist()
        return (b if b > 0 else None, a if a > 0 else None)

    @property
    def fill_mark(self) -> int:
        """Fill count (``scalars[kernels.S_NFILL]``) before the last call: the last call traded iff
        ``scalars[S_NFILL] != fill_mark``."""
        return self._fill_mark

    @property
    def n_last_fills(self) -> int:
        """Number of fills the last call produced (what :meth:`last_fills` would return, without the copy)."""
        return int(self._sc[K.S_NFILL]) - self._fill_mark

    @property
    def n_orders(self) -> int:
        """Live resting orders (synthetic ones included)."""
        return int(self._sc[K.S_LIVE])

    @property
    def n_deferred(self) -> int:
        """Crossing adds held out of the book until it uncrosses (``crossing_add="defer"``)."""
        return int(self._sc[K.S_NDEFER])

    @property
    def far_levels(self) -> tuple[int, int]:
        """Occupied (bid, ask) levels outside the dense window, in the far tables."""
        return int(self._sc[K.S_NFAR]), int(self._sc[K.S_NFAR + 1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the book's arrays (orders, levels, bitmap, id map, event and fill buffers)."""
        return sum(int(a.nbytes) for a in (self._orders, self._levels, self._bm, self._htab, self._events, self._fills))

    @property
    def last_ts(self) -> int:
        """Timestamp (ns) of the last accepted command."""
        return int(self._sc[K.S_LASTTS])

    def level_size(self, side: int, price: int) -> int:
        """Total lots resting at (side, price)."""
        li = K.level_row_nb(self._levels, self._sc, int(side), int(price))
        return 0 if li < 0 else int(self._levels[0 if side > 0 else 1, li, K.L_QTY])

    def queue(self, side: int, price: int) -> list[int]:
        """Order ids queued at (side, price), front (next to trade) first."""
        out = np.zeros(max(1, self.level_count(side, price)), dtype=np.int64)
        k = K.level_orders_nb(self._orders, self._levels, self._sc, side, int(price), out)
        return [int(x) for x in out[:k]]

    def level_count(self, side: int, price: int) -> int:
        """Number of orders resting at (side, price)."""
        li = K.level_row_nb(self._levels, self._sc, int(side), int(price))
        return 0 if li < 0 else int(self._levels[0 if side > 0 else 1, li, K.L_CNT])

    def order(self, order_id: int) -> OrderInfo | None:
        """The live order ``order_id`` or None."""
        slot = K.hash_get_nb(self._hkeys, self._hvals, self._sc, int(order_id))
        if slot < 0:
            return None
        r = self._orders[slot]
        return OrderInfo(int(r[K.O_ID]), int(r[K.O_SIDE]), int(r[K.O_PRICE]), int(r[K.O_QTY]), int(r[K.O_TS]),
                         int(r[K.O_SYN]) == K.SYN_LIQ, int(r[K.O_SYN]) == K.SYN_DEFERRED)

    def resting_orders(self) -> np.ndarray:
        """All resting orders as ``int64[n, 4]`` rows (order_id, side, price, size), sorted by order id
        (deferred crossing adds, which are not in the book yet, excluded)."""
        keep: np.ndarray = (self._orders[:, K.O_QTY] > 0) & (self._orders[:, K.O_SYN] != K.SYN_DEFERRED)
        out: np.ndarray = self._orders[keep][:, [K.O_ID, K.O_SIDE, K.O_PRICE, K.O_QTY]]
        return out[np.argsort(out[:, 0], kind="stable")]

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (never after matching; possible only through replay commands)."""
        b, a = self.best_bid, self.best_ask
        return b is not None and a is not None and b >= a


def _reason(code: int) -> str:
    return REASONS.get(code, f"code_{code}")


def _as_tick(price: object) -> tuple[int, bool]:
    """Integer tick of ``price`` and whether it was off the integer grid (e.g. 100.5 ticks)."""
    if isinstance(price, (int, np.integer)):
        return int(price), False
    p = float(price)  # type: ignore[arg-type]
    if p != p or p in (float("inf"), float("-inf")):
        return 0, True
    r = round(p)
    return int(r), abs(p - r) > 1e-9


def as_command_array(cmds: np.ndarray) -> np.ndarray:
    """``int64[n, 7]`` C-contiguous command array from a structured ``COMMAND_DTYPE`` array or 2-D ints."""
    if cmds.dtype.names:
        out = np.empty((cmds.shape[0], 7), dtype=np.int64)
        for j, name in enumerate(COMMAND_DTYPE.names or ()):
            out[:, j] = cmds[name]
        return out
    arr = np.ascontiguousarray(cmds, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 7:
        raise ValueError(f"commands must be int64[n, 7] or COMMAND_DTYPE, got shape {arr.shape}")
    return arr


def make_commands(n: int) -> np.ndarray:
    """Zeroed structured command array (``COMMAND_DTYPE``) of length ``n`` to fill in."""
    return np.zeros(n, dtype=COMMAND_DTYPE)
