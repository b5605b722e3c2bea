"""The TRADES generator as a world agent: M independent markets, each a matching engine
(:class:`marketlab.lob.OrderBook`), advanced in lockstep with one batched denoiser call per round.

Per market and step: the conditioning window is the last W-1 *exchange-confirmed* orders (the order as
the engine took it: a market order's first fill price and filled size, a cancel's target order) and
the W books before them plus the current book; a sample is decoded (:mod:`.decode`); discarded samples
are counted by reason and resampled (up to ``max_tries`` rounds, then the market skips the step, counted
as ``gave_up``); accepted orders go to the engine, whose rejections are counted too (the tests
require 0 when the generator trades alone).

In the mixed market (:meth:`TradesMarkets.attach`, :mod:`.mixed`) the orders go through an agent-based
exchange on the same book instead, other agents trade there too, and the window is every participant's
confirmed orders; a world order that loses a race to an agent is an engine rejection, counted by reason.

Markets start from real data (the reference replays 15 minutes first): the history window is the real
tokens before index ``start`` and the engine is seeded with the book before that order, one
generator-owned order per level.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from marketlab.lob import OrderBook
from marketlab.simulators.trades.decode import REASONS, DecodeRules, Order, check_order, decode_one
from marketlab.simulators.trades.diffusion import Clip, GaussianDiffusion
from marketlab.simulators.trades.model import Denoiser
from marketlab.simulators.trades.tokens import (
    CANCEL,
    LIMIT,
    MARKET,
    OrderTokens,
    TokenStats,
    book_features,
    depth_of,
    mid_price,
    order_features,
)


@dataclass
class GenerationStats:
    """Counts over a run: accepted orders by kind, discarded samples by reason, engine rejections (and their
    reasons), markets that gave up a step after ``max_tries`` rounds, samples drawn, valid candidates left
    unused, orders whose arrival fell after the mixed market's exchange closed (``after_close``).
    Identity: samples = accepted + discarded + engine_rejected + unused + after_close."""

    accepted: Counter[str] = field(default_factory=Counter)
    discarded: Counter[str] = field(default_factory=Counter)
    engine_rejected: int = 0
    gave_up: int = 0
    samples: int = 0
    unused: int = 0
    after_close: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able counts."""
        return {
            "accepted": dict(self.accepted),
            "discarded": {r: self.discarded.get(r, 0) for r in REASONS},
            "engine_rejected": self.engine_rejected,
            "rejected_reasons": dict(self.rejected_reasons),
            "gave_up": self.gave_up,
            "samples": self.samples,
            "unused": self.unused,
            "after_close": self.after_close,
        }


class TradesMarkets:
    """M markets driven by one denoiser. ``model`` carries the (EMA) weights; ``stats`` the training
    statistics; ``tokens`` real data to start from at row ``start`` (needs ``start >= W - 1``).

    ``method``/``steps``: "ddim" with 1-10 steps (eta 0) or "ddpm" (all T steps). ``clip_x0``: the
    sampler's x0 predictions are clamped to the training split's range per token dimension
    ("train_range", the default; as IDDPM clamps images to their range [-1, 1]), to +-a number, or not
    at all (None, as the reference). Why: alpha_bar_{T-1} = 2.4e-6 with the capped cosine schedule, so the
    first step's x0 = (x - sqrt(1 - ab) eps)/sqrt(ab) multiplies the epsilon error by ~650; measured on a
    GOOG model after 300 steps: DDPM-100 without the clamp accepted 2 of 80 orders, with it 80 of 80.

    ``candidates`` K: each sampler call draws K i.i.d. samples per market and the first valid one is used
    (the same distribution as discard-and-resample one at a time, in fewer sampler rounds); retry rounds
    draw K * 2^attempt (at most 8K) for the markets still without an order, so a few unlucky markets do not
    cost a full sampler round each; candidates
    left undecoded after a market's order was found are counted as ``unused``."""

    def __init__(
        self,
        model: Denoiser,
        stats: TokenStats,
        tokens: OrderTokens,
        *,
        start: int,
        n_markets: int = 1,
        seed: int = 0,
        method: str = "ddim",
        steps: int = 10,
        rules: DecodeRules | None = None,
        max_tries: int = 10,
        candidates: int = 1,
        clip_x0: float | str | None = "train_range",
        device: str | torch.device = "cpu",
    ) -> None:
        shape = model.shape
        w = shape.window
        if start < w - 1 or start >= len(tokens):
            raise ValueError(f"start {start} must be in [{w - 1}, {len(tokens)}) for window {w}")
        if tokens.levels != shape.levels:
            raise ValueError(f"tokens have {tokens.levels} book levels, the model {shape.levels}")
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.stats = stats
        self.grid = tokens.grid
        self.levels = shape.levels
        self.diffusion = GaussianDiffusion(shape.steps)
        self.method, self.steps, self.max_tries = method, steps, max_tries
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.candidates = int(candidates)
        self.clip_x0: Clip
        if clip_x0 == "train_range":
            if not stats.z_lo:
                raise ValueError("clip_x0='train_range' needs statistics with the training range (z_lo/z_hi)")
            self.clip_x0 = (torch.tensor(stats.z_lo, dtype=torch.float32), torch.tensor(stats.z_hi, dtype=torch.float32))
        elif isinstance(clip_x0, str):
            raise ValueError(f"clip_x0 must be 'train_range', a number or None, got {clip_x0!r}")
        else:
            self.clip_x0 = clip_x0
        self.rules = rules or DecodeRules(levels=shape.levels)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.m = int(n_markets)
        hist = tokens.take(slice(start - (w - 1), start))
        feats = order_features(hist)
        enc_orders = stats.encode_orders(feats, hist.kind)
        enc_book = stats.encode_book(book_features(hist.book, self.grid))
        self.cond = np.repeat(enc_orders[None], self.m, axis=0)  # (M, W-1, 8)
        self.cond_book = np.repeat(enc_book[None], self.m, axis=0)  # (M, W-1, 4L) books before those orders
        self.books: list[OrderBook] = []
        self.next_id = [1] * self.m
        t0 = int(tokens.ts[start - 1])
        self.now = [t0] * self.m
        seed_book = tokens.book[start]
        for i in range(self.m):
            ob = OrderBook(event_capacity=None)  # a session is drained once, at its end: keep every event
            for lv in range(self.levels):
                apx, asz, bpx, bsz = (int(v) for v in seed_book[4 * lv : 4 * lv + 4])
                if apx > 0 and asz > 0:
                    ob.submit_limit(self.next_id[i], -1, apx, asz, ts=t0)
                    self.next_id[i] += 1
                if bpx > 0 and bsz > 0:
                    ob.submit_limit(self.next_id[i], 1, bpx, bsz, ts=t0)
                    self.next_id[i] += 1
            self.books.append(ob)
        self.seed_events = self.next_id[0] - 1  # the seed book: one add event per generator order placed
        self.volume = [0] * self.m  # lots traded in each market (every fill, whoever traded)
        self.protected: list[set[int]] = [set() for _ in range(self.m)]  # other agents' ids: never cancelled
        self.protected_fills: list[list[np.ndarray]] = [[] for _ in range(self.m)]  # engine fills touching them
        self.last_mid = np.full(self.m, float(mid_price(seed_book[None, :])[0]))
        self.stats_run = GenerationStats()
        self.log: list[list[tuple[int, Order]]] = [[] for _ in range(self.m)]
        self.last_ts = [t0] * self.m  # time of the newest order in each conditioning window
        # the mixed market (:mod:`.mixed`): per market the exchange the orders go through and the world's seat
        self.exchanges: list[Any] | None = None
        self.seats: list[Any] = []

    def attach(self, exchanges: list[Any], seats: list[Any]) -> None:
        """Route every market's orders through ``exchanges[i]`` (a :class:`~.mixed.ConfirmingExchange` on
        ``books[i]``) as agent ``seats[i]``; the conditioning windows then follow the exchange's confirmed
        orders of every participant (see :mod:`.mixed`)."""
        if len(exchanges) != self.m or len(seats) != self.m:
            raise ValueError(f"need one exchange and seat per market ({self.m})")
        if any(ex.book is not ob for ex, ob in zip(exchanges, self.books, strict=True)):
            raise ValueError("each exchange must trade on the market's own book")
        self.exchanges, self.seats = list(exchanges), list(seats)

    # ------------------------------------------------------------------ one round
    def _sample(self, idx: np.ndarray, book_now: np.ndarray) -> np.ndarray:
        """Denoise one order for the markets ``idx``; returns raw samples (len(idx), 8) in token space."""
        dev = self.device
        cond = torch.as_tensor(self.cond[idx], device=dev)
        books = np.concatenate([self.cond_book[idx], book_now[:, None, :]], axis=1)
        bt = torch.as_tensor(books, device=dev)

        def fn(xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out: tuple[torch.Tensor, torch.Tensor] = self.model(xt, t, cond, bt)
            return out

        with torch.inference_mode():
            x = self.diffusion.sample(
                fn,
                (len(idx), 1, cond.shape[-1]),
                self.generator,
                method=self.method,
                steps=self.steps,
                device=dev,
                clip_x0=self.clip_x0,
            )
        return x[:, 0, :].cpu().numpy()

    def step(self) -> list[Order | None]:
        """Advance every market by one generated order (None where it gave up); returns the orders."""
        snaps = np.stack([b.snapshot(self.levels) for b in self.books])  # the book before the new order
        mids = mid_price(snaps)
        self.last_mid = np.where(np.isnan(mids), self.last_mid, mids)
        anchored = self._anchor_empty(snaps)
        bfeat = self.stats.encode_book(book_features(anchored, self.grid))
        pending = np.arange(self.m)
        result: list[Order | None] = [None] * self.m
        resting = {i: self._own_resting(i) for i in range(self.m)}  # the book is fixed while sampling
        for attempt in range(self.max_tries):
            if pending.size == 0:
                break
            # retries draw more candidates per market (first valid one wins: the same distribution as
            # resampling one at a time), so the few markets left do not cost a sampler round each
            k = self.candidates * min(2**attempt, 8)
            rep = np.repeat(pending, k)
            raw = self._sample(rep, bfeat[rep])
            feats, kinds = self.stats.decode_orders(raw)
            self.stats_run.samples += int(rep.size)
            still = []
            for j, i in enumerate(pending.tolist()):
                for c in range(k):
                    r = j * k + c
                    got = decode_one(
                        feats[r], int(kinds[r]), snaps[i], resting[i], self.grid, self.rules, ref_mid=float(self.last_mid[i])
                    )
                    if isinstance(got, str):
                        self.stats_run.discarded[got] += 1
                        continue
                    result[i] = got
                    self.stats_run.unused += k - 1 - c
                    break
                else:
                    still.append(i)
            pending = np.array(still, dtype=np.int64)
        self.stats_run.gave_up += int(pending.size)
        for i, order in enumerate(result):
            if order is None:
                continue
            if self.exchanges is None:
                self._submit(i, order, anchored[i], bfeat[i])
            else:
                self._submit_mixed(i, order)
        return result

    def run(self, n_orders: int) -> GenerationStats:
        """``n_orders`` rounds (each market gets one order per round)."""
        for _ in range(n_orders):
            self.step()
        return self.stats_run

    def _anchor_empty(self, snaps: np.ndarray) -> np.ndarray:
        """A market whose book emptied conditions on a one-lot ladder at its last mid (the model needs a
        finite book); the real engine book stays empty, so market orders there are discarded."""
        empty = (snaps[:, 0] <= 0) & (snaps[:, 2] <= 0)
        if not empty.any():
            return snaps
        out = snaps.copy()
        for i in np.flatnonzero(empty):
            bid = max(int(self.last_mid[i] // self.grid) * self.grid, self.grid)
            out[i, 2], out[i, 3], out[i, 0], out[i, 1] = bid, 0, bid + self.grid, 0
        return out

    # ------------------------------------------------------------------ engine side
    def _own_resting(self, i: int) -> np.ndarray:
        rows = self.books[i].resting_orders()
        if self.exchanges is not None:  # mixed market: the world cancels only orders its seat sent
            return rows[self.exchanges[i].owners(rows[:, 0]) == self.seats[i].agent_id] if rows.size else rows
        if self.protected[i] and rows.size:
            rows = rows[~np.isin(rows[:, 0], list(self.protected[i]))]
        return rows

    def _submit(self, i: int, order: Order, snap: np.ndarray, bfeat_row: np.ndarray) -> None:
        ob = self.books[i]
        live = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in ob.resting_orders()} if order.kind == CANCEL else {}
        problem = check_order(order, live, self.grid)
        if problem is not None:  # pragma: no cover - decode_one never builds one; kept as the gate
            raise AssertionError(f"invalid order reached the engine gate: {problem} ({order})")
        self.now[i] += order.dt_ns
        ts = self.now[i]
        price, size = order.price, order.size
        if order.kind == LIMIT:
            code = ob.submit_limit(self.next_id[i], order.side, order.price, order.size, ts=ts)
            self.next_id[i] += 1
        elif order.kind == MARKET:
            code = ob.submit_market(self.next_id[i], order.side, order.size, ts=ts)
            self.next_id[i] += 1
            fills = ob.last_fills()
            if code == 0 and fills.shape[0]:
                price, size = int(fills["price"][0]), int(fills["size"].sum())
        else:
            code = ob.cancel(order.cancel_id, ts=ts)
        if code != 0:
            self.stats_run.engine_rejected += 1
            return
        if ob.n_last_fills:
            self.volume[i] += int(ob.last_fills()["size"].sum())
        if self.protected[i] and ob.n_last_fills:
            f = ob.last_fills()
            mine = np.isin(f["maker_id"], list(self.protected[i])) | np.isin(f["taker_id"], list(self.protected[i]))
            if mine.any():
                self.protected_fills[i].append(f[mine])
        self.stats_run.accepted[("limit", "cancel", "market")[order.kind]] += 1
        self.log[i].append((ts, order))
        # the confirmed order enters the conditioning window, with the book before it
        self._push(i, ts, order.kind, order.side, price, size, snap, bfeat_row, dt_ns=order.dt_ns)

    def _submit_mixed(self, i: int, order: Order) -> None:
        """The mixed market: every agent event up to the order's arrival (``dt`` after the world's previous
        order) runs first, then the order goes through the exchange (zero latency); the window takes the
        exchange's confirmed orders of every participant in time order."""
        ex, seat = self.exchanges[i], self.seats[i]  # type: ignore[index]
        ts = self.now[i] + order.dt_ns
        self.now[i] = ts
        if ts > ex.t_end_ns:
            self.stats_run.after_close += 1
            return
        ex.run_until(ts)
        rejected, reasons = ex.agent_rejections[seat.agent_id], dict(ex.rejections)
        if order.kind == LIMIT:
            ex.limit(seat, order.side, order.price, order.size)
        elif order.kind == MARKET:
            ex.market(seat, order.side, order.size)
        else:
            ex.cancel(seat, order.cancel_id)
        ex.run_until(ts)
        if ex.agent_rejections[seat.agent_id] != rejected:  # counted, never silently dropped
            self.stats_run.engine_rejected += 1
            self.stats_run.rejected_reasons.update(
                {k: v - reasons.get(k, 0) for k, v in ex.rejections.items() if v != reasons.get(k, 0)}
            )
        else:
            self.stats_run.accepted[("limit", "cancel", "market")[order.kind]] += 1
            self.log[i].append((ts, order))
        self.pull_confirmed(i)

    def pull_confirmed(self, i: int) -> int:
        """Move market ``i``'s newly confirmed orders (every participant's) into its conditioning window;
        returns how many."""
        ex = self.exchanges[i]  # type: ignore[index]
        got = ex.confirmed
        for c in got:
            snap = self._anchor_row(i, c.book)
            self._push(i, c.ts, c.kind, c.side, c.price, c.size, snap)
        ex.confirmed = []
        return len(got)

    def _anchor_row(self, i: int, snap: np.ndarray) -> np.ndarray:
        if snap[0] <= 0 and snap[2] <= 0:
            bid = max(int(self.last_mid[i] // self.grid) * self.grid, self.grid)
            snap = snap.copy()
            snap[2], snap[3], snap[0], snap[1] = bid, 0, bid + self.grid, 0
        return snap

    def _push(
        self,
        i: int,
        ts: int,
        kind_: int,
        side_: int,
        price: int,
        size: int,
        snap: np.ndarray,
        bfeat_row: np.ndarray | None = None,
        dt_ns: int | None = None,
    ) -> None:
        """Append one confirmed order at ``ts`` (ns) to market ``i``'s window, with ``snap`` the (anchored)
        book before it; its dt is ``dt_ns`` or else the time since the window's newest order (the same
        thing unless the venue moved the clock on while the generator was stuck)."""
        kind = np.array([kind_], dtype=np.int8)
        side = np.array([side_], dtype=np.int8)
        px = np.array([price], dtype=np.int64)
        mid = float(mid_price(snap[None, :])[0])
        depth = float(depth_of(kind, side, px, snap[None, :], self.grid)[0])
        dt_s = (max(ts - self.last_ts[i], 0) if dt_ns is None else dt_ns) / 1e9
        self.last_ts[i] = max(ts, self.last_ts[i])
        feats = np.array([[dt_s, size, (price - mid) / self.grid, side_, depth]])
        tok = self.stats.encode_orders(feats, kind)[0]
        if bfeat_row is None:
            bfeat_row = self.stats.encode_book(book_features(snap[None, :], self.grid))[0]
        self.cond[i] = np.roll(self.cond[i], -1, axis=0)
        self.cond[i, -1] = tok
        self.cond_book[i] = np.roll(self.cond_book[i], -1, axis=0)
        self.cond_book[i, -1] = bfeat_row
