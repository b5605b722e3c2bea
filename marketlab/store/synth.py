"""Seeded synthetic data for users without data: a daily panel ("synth_daily") and a LOB day ("synth_lob").

Daily panel: log-returns r[t, i] = beta_i * m[t] + gamma_i * s[t, sector(i)] + e[t, i], where the market
factor m, the sector factors s and the idiosyncratic terms e each follow a GARCH(1,1) with Student-t
shocks (volatility clustering, fat tails). Volume is lognormal around a per-symbol level and rises with
|r| / sigma (the volume-volatility correlation of real markets). A few symbols get suspensions: volume 0,
prices carried from the previous close, ``suspended = True``.

LOB day: a Poisson order-flow model (limit adds near the touch, cancels of resting orders, market orders)
applied to an in-memory price-time-priority book, so events, book snapshots (after every event) and
trades are consistent with each other by construction. The simulator component later replaces this with
its agent-based market.

Everything is a pure function of ``seed``; :func:`write_synth` writes both datasets into a store.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import deque
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.schema import EVENTS_SCHEMA, PANEL_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.store.types import IngestBatch, IngestReport, Instrument

NS_DAY = 86_400_000_000_000


def _garch(rng: np.random.Generator, n: int, k: int, vol: float, alpha: float, beta: float,
           nu: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """k independent GARCH(1,1) paths of length n, unconditional daily std ``vol``, unit-variance
    Student-t(nu) shocks -> (eps [n, k], sigma [n, k])."""
    z = rng.standard_t(nu, size=(n, k)) / np.sqrt(nu / (nu - 2.0))
    omega = vol**2 * (1.0 - alpha - beta)
    var = np.full(k, vol**2)
    eps = np.empty((n, k))
    sig = np.empty((n, k))
    for t in range(n):
        s = np.sqrt(var)
        sig[t] = s
        eps[t] = s * z[t]
        var = omega + alpha * eps[t] ** 2 + beta * var
    return eps, sig


def synth_daily(seed: int = 0, n_symbols: int = 300, n_days: int = 756, n_sectors: int = 10,
                start: dt.date = dt.date(2021, 1, 4)) -> tuple[pl.DataFrame, list[Instrument]]:
    """Synthetic daily panel in PANEL_SCHEMA: ``n_symbols`` x ``n_days`` business days, prices in USD."""
    rng = np.random.default_rng(seed)
    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(n_days), roll="forward")
    # daily vol ~1% market, ~0.8% sector, ~1.5% idiosyncratic (annualised ~16% / ~13% / ~24%)
    m, _ = _garch(rng, n_days, 1, 0.010, 0.09, 0.89)
    s, _ = _garch(rng, n_days, n_sectors, 0.008, 0.08, 0.90)
    e, sig_e = _garch(rng, n_days, n_symbols, 0.015, 0.07, 0.90)
    sector = rng.integers(0, n_sectors, n_symbols)
    beta = rng.normal(1.0, 0.3, n_symbols)
    gamma = rng.normal(1.0, 0.25, n_symbols)
    r = beta * m + gamma * s[:, sector] + e + 0.0002
    sigma = np.sqrt((beta * 0.01) ** 2 + (gamma * 0.008) ** 2 + sig_e**2)

    suspended = np.zeros((n_days, n_symbols), dtype=bool)
    for i in rng.choice(n_symbols, size=max(1, n_symbols // 50), replace=False):
        t0 = rng.integers(1, max(2, n_days - 20))
        suspended[t0 : t0 + rng.integers(2, 15), i] = True
    r = np.where(suspended, 0.0, r)

    p0 = np.exp(rng.uniform(np.log(5), np.log(500), n_symbols))
    close = p0 * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([p0[None, :], close[:-1]])
    gap = np.where(suspended, 0.0, rng.normal(0, 0.3, (n_days, n_symbols)) * sigma)
    open_ = prev * np.exp(gap)
    span = np.abs(rng.normal(0, 1, (n_days, n_symbols))) * sigma * 0.6
    high = np.maximum(open_, close) * np.exp(np.where(suspended, 0.0, span))
    low = np.minimum(open_, close) * np.exp(-np.where(suspended, 0.0, np.abs(rng.normal(0, 1, span.shape)) * sigma * 0.6))
    level = np.exp(rng.normal(np.log(2e6), 1.0, n_symbols))
    volume = np.round(level * np.exp(0.6 * np.abs(r) / sigma + rng.normal(0, 0.3, r.shape)))
    volume = np.where(suspended, 0.0, volume)
    vwap = (high + low + close) / 3.0

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1)

    sym_names = np.array([f"SYN{i:03d}" for i in range(n_symbols)])
    panel = pl.DataFrame({
        "date": np.repeat(dates, n_symbols).astype("datetime64[D]"),
        "symbol": np.tile(sym_names, n_days),
        "open": np.round(flat(open_), 2).clip(0.01),
        "high": np.round(flat(high), 2).clip(0.01),
        "low": np.round(flat(low), 2).clip(0.01),
        "close": np.round(flat(close), 2).clip(0.01),
        "volume": flat(volume),
        "vwap": flat(vwap),
        "amount": flat(vwap * volume),
        "adj_factor": np.ones(n_days * n_symbols),
        "in_universe": np.ones(n_days * n_symbols, dtype=bool),
        "suspended": flat(suspended),
    }).cast(PANEL_SCHEMA)
    return panel, [Instrument(str(s_), 0.01, 1.0) for s_ in sym_names]


class _Book:
    """Minimal price-time-priority book: price -> FIFO of [order_id, size]; sorted price lists per side."""

    def __init__(self) -> None:
        self.levels: dict[int, dict[int, deque]] = {1: {}, -1: {}}
        self.prices: dict[int, list[int]] = {1: [], -1: []}  # ascending
        self.orders: dict[int, tuple[int, int]] = {}  # id -> (side, price)

    def best(self, side: int) -> int | None:
        p = self.prices[side]
        return (p[-1] if side == 1 else p[0]) if p else None

    def add(self, oid: int, side: int, price: int, size: int) -> None:
        lv = self.levels[side]
        if price not in lv:
            lv[price] = deque()
            bisect.insort(self.prices[side], price)
        lv[price].append([oid, size])
        self.orders[oid] = (side, price)

    def reduce(self, oid: int, size: int) -> None:
        side, price = self.orders[oid]
        q = self.levels[side][price]
        for o in q:
            if o[0] == oid:
                o[1] -= size
                if o[1] <= 0:
                    q.remove(o)
                    del self.orders[oid]
                break
        if not q:
            del self.levels[side][price]
            self.prices[side].pop(bisect.bisect_left(self.prices[side], price))

    def size_of(self, oid: int) -> int:
        side, price = self.orders[oid]
        return next(o[1] for o in self.levels[side][price] if o[0] == oid)

    def snapshot(self, levels: int) -> list[int]:
        out: list[int] = []
        asks = self.prices[-1][:levels]
        bids = self.prices[1][::-1][:levels]
        for i in range(levels):
            ap = asks[i] if i < len(asks) else 0
            bp = bids[i] if i < len(bids) else 0
            out += [ap, sum(o[1] for o in self.levels[-1][ap]) if ap else 0,
                    bp, sum(o[1] for o in self.levels[1][bp]) if bp else 0]
        return out


def synth_lob(seed: int = 0, n_events: int = 20_000, levels: int = 10, symbol: str = "SYN",
              day: dt.date = dt.date(2024, 1, 2), mid0: int = 10_000) -> dict[str, pl.DataFrame]:
    """Synthetic LOB day -> {"events", "book", "trades"} (ticks of 0.01 USD, lots of 1 share).

    Poisson flow: total rate ~ 1 event per 1.2 s from 14:30 UTC; event mix 55% limit add (price offset
    from the opposite touch geometric), 35% cancel of a random resting order, 10% market order that
    walks the book (one execute event per resting order hit, type 4). Limit prices centre on a latent
    random-walk fair value and market orders lean toward it, so the mid diffuses. Book snapshots follow every event.
    """
    rng = np.random.default_rng(seed)
    book = _Book()
    t = (day - dt.date(1970, 1, 1)).days * NS_DAY + 14 * 3600 * 10**9 + 30 * 60 * 10**9
    ev: list[tuple] = []
    snaps: list[list[int]] = []
    trades: list[tuple] = []
    next_id = 1
    seq = 0

    def emit(ts: int, typ: int, oid: int, side: int, price: int, size: int) -> None:
        nonlocal seq
        ev.append((ts, symbol, seq, typ, oid, side, price, size))
        snaps.append([ts, seq] + book.snapshot(levels))
        seq += 1

    # seed the book with a few levels each side so the first market orders have liquidity
    for k in range(1, 11):
        for side, px in ((1, mid0 - k), (-1, mid0 + k)):
            sz = int(rng.integers(1, 10)) * 100
            book.add(next_id, side, px, sz)
            emit(t, 1, next_id, side, px, sz)
            next_id += 1
    fair = float(mid0)
    while seq < n_events:
        t += int(rng.exponential(1.2e9)) + 1
        fair += rng.normal(0.0, 0.15)
        u = rng.random()
        side = 1 if rng.random() < 0.5 else -1
        bb, ba = book.best(1), book.best(-1)
        if u < 0.55 or bb is None or ba is None:
            # Price relative to the OPPOSITE touch so new orders can improve a wide spread; the offset is
            # geometric (most orders 1-3 ticks away), and a limit order never crosses.
            # Quotes centre on a latent fair value (a random walk) so the price diffuses over the day.
            off = int(rng.geometric(0.3)) - 1
            if side == 1:
                px = int(round(fair)) - off
                px = min(px, ba - 1) if ba is not None else px
            else:
                px = int(round(fair)) + 1 + off
                px = max(px, bb + 1) if bb is not None else px
            sz = int(rng.integers(1, 10)) * 100
            book.add(next_id, side, px, sz)
            emit(t, 1, next_id, side, px, sz)
            next_id += 1
        elif u < 0.90 and book.orders:
            oid = list(book.orders)[int(rng.integers(0, len(book.orders)))]
            s_, px = book.orders[oid]
            full = book.size_of(oid)
            part = full if rng.random() < 0.7 else int(rng.integers(1, full)) if full > 1 else full
            book.reduce(oid, part)
            emit(t, 3 if part == full else 2, oid, s_, px, part)
        else:
            mid = 0.5 * (bb + ba)
            side = 1 if (rng.random() < 0.7) == (fair > mid) else -1  # informed-ish: trade toward fair value
            rest = -side  # market buy hits asks
            want = int(rng.integers(1, 15)) * 100
            while want > 0 and book.best(rest) is not None:
                px = book.best(rest)
                oid, avail = book.levels[rest][px][0]
                fill = min(want, avail)
                book.reduce(oid, fill)
                emit(t, 4, oid, rest, px, fill)
                trades.append((t, symbol, seq - 1, px, fill, side))
                want -= fill
    schema_b = book_schema(levels)
    book_df = pl.DataFrame([[s[0], symbol, s[1]] + s[2:] for s in snaps], schema=schema_b, orient="row")
    return {
        "events": pl.DataFrame(ev, schema=EVENTS_SCHEMA, orient="row"),
        "book": book_df,
        "trades": pl.DataFrame(trades, schema=TRADES_SCHEMA, orient="row"),
    }


def write_synth(store: Any, seed: int = 0, *, n_symbols: int = 300, n_days: int = 756,
                n_events: int = 20_000) -> list[IngestReport]:
    """Write "synth_daily" and "synth_lob" into ``store`` (replacing earlier synthetic partitions)."""
    panel, ins = synth_daily(seed, n_symbols=n_symbols, n_days=n_days)
    meta = {"seed": seed, "generator": "marketlab.store.synth"}
    r1 = store.write(IngestBatch("synth_daily", {"panel": panel}, ins, {**meta, "kind": "factor+GARCH panel"}),
                     format="synth", mode="replace")
    lob = synth_lob(seed, n_events=n_events)
    r2 = store.write(IngestBatch("synth_lob", lob, [Instrument("SYN", 0.01, 1.0)], {**meta, "levels": 10}),
                     format="synth", mode="replace")
    return [r1, r2]
