"""Seeded synthetic data for users without data: a daily panel ("synth_daily") and a LOB day ("synth_lob").

Daily panel: log-returns r[t, i] = beta_i * m[t] + gamma_i * s[t, sector(i)] + e[t, i], where the market
factor m, the sector factors s and the idiosyncratic terms e each follow a GARCH(1,1) with Student-t
shocks (volatility clustering, fat tails). Volume is lognormal around a per-symbol level and rises with
|r| / sigma (the volume-volatility correlation of real markets). A few symbols get suspensions: volume 0,
prices carried from the previous close, ``suspended = True``.

LOB day: a Poisson order-flow model (limit adds near the touch, cancels of resting orders, market orders)
applied to the matching engine's book (:class:`marketlab.lob.OrderBook`), so events, book snapshots
(after every event) and trades are consistent with each other by construction. The agent-based market
(``marketlab simulate``) is the realistic alternative.

Everything is a pure function of ``seed``; :func:`write_synth` writes both datasets into a store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.schema import EVENTS_SCHEMA, PANEL_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_MIN
from marketlab.lob import OrderBook
from marketlab.store.types import IngestBatch, IngestReport, Instrument


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
    }).cast(PANEL_SCHEMA)  # type: ignore[arg-type]
    return panel, [Instrument(str(s_), 0.01, 1.0) for s_ in sym_names]


def synth_lob(seed: int = 0, n_events: int = 20_000, levels: int = 10, symbol: str = "SYN",
              day: dt.date = dt.date(2024, 1, 2), mid0: int = 10_000) -> dict[str, pl.DataFrame]:
    """Synthetic LOB day -> {"events", "book", "trades"} (ticks of 0.01 USD, lots of 1 share).

    Poisson flow: total rate ~ 1 event per 1.2 s from 14:30 UTC; event mix 55% limit add (price offset
    from the opposite touch geometric), 35% cancel of a random resting order, 10% market order that
    walks the book (one execute event per resting order hit, type 4). Limit prices centre on a latent
    random-walk fair value and market orders lean toward it, so the mid diffuses. Book snapshots follow every event.
    """
    rng = np.random.default_rng(seed)
    book = OrderBook()
    t = (day - dt.date(1970, 1, 1)).days * NS_PER_DAY + (14 * 60 + 30) * NS_PER_MIN
    ev: list[tuple[Any, ...]] = []
    snaps: list[list[int]] = []
    trades: list[tuple[Any, ...]] = []
    next_id = 1
    seq = 0

    def emit(ts: int, typ: int, oid: int, side: int, price: int, size: int) -> None:
        nonlocal seq
        ev.append((ts, symbol, seq, typ, oid, side, price, size))
        snaps.append([ts, seq] + book.snapshot(levels).tolist())
        seq += 1

    def rest(oid: int, side: int, px: int, sz: int) -> None:
        code = book.submit_limit(oid, side, px, sz, ts=t)  # never crosses: prices stay off the opposite touch
        if code or book.n_last_fills:  # pragma: no cover - generator invariant
            raise RuntimeError(f"synthetic order {oid} at {px} was rejected ({code}) or traded")
        emit(t, 1, oid, side, px, sz)

    # seed the book with a few levels each side so the first market orders have liquidity
    for k in range(1, 11):
        for side, px in ((1, mid0 - k), (-1, mid0 + k)):
            rest(next_id, side, px, int(rng.integers(1, 10)) * 100)
            next_id += 1
    fair = float(mid0)
    while seq < n_events:
        t += int(rng.exponential(1.2e9)) + 1
        fair += rng.normal(0.0, 0.15)
        u = rng.random()
        side = 1 if rng.random() < 0.5 else -1
        bb, ba = book.quotes()
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
            rest(next_id, side, px, int(rng.integers(1, 10)) * 100)
            next_id += 1
        elif u < 0.90 and book.n_orders:
            # a random resting order, in arrival order (ids increase with arrival, resting_orders sorts by id)
            oid, s_, px, full = book.resting_orders()[int(rng.integers(0, book.n_orders))].tolist()
            part = full if rng.random() < 0.7 else int(rng.integers(1, full)) if full > 1 else full
            book.cancel(oid, part, ts=t)
            emit(t, 3 if part == full else 2, oid, s_, px, part)
        else:
            mid = 0.5 * (bb + ba)
            side = 1 if (rng.random() < 0.7) == (fair > mid) else -1  # informed-ish: trade toward fair value
            maker = -side  # market buy hits asks
            want = int(rng.integers(1, 15)) * 100
            # one execute event (and book row) per resting order hit, front of the best level first
            while want > 0 and (best := book.quotes()[0 if maker == 1 else 1]) is not None:
                px = best
                oid = book.queue(maker, px)[0]
                info = book.order(oid)
                if info is None:  # pragma: no cover - the queue lists live orders only
                    raise RuntimeError(f"order {oid} queued at {px} is not live")
                fill = min(want, info.size)
                book.cancel(oid, fill, ts=t)
                emit(t, 4, oid, maker, px, fill)
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
