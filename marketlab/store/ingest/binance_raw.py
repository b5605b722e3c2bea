"""Binance raw websocket captures (diff depth + REST snapshot + trades + bookTicker) -> store frames.

Input (hftbacktest's sample captures): gzipped text, one message per line, ``<local receive ns> <JSON>``.
The JSON is a combined-stream envelope ``{"stream": ..., "data": {...}}`` (``depthUpdate`` with
``U``/``u`` first/last update id, futures add ``pu``; ``trade``; ``bookTicker``), except the single REST
depth snapshot ``{"lastUpdateId": ..., "bids": [[p, q], ...], "asks": [...]}``. Several files of one
capture are read in order (later files continue without a snapshot). The nautilus_trader CSV layout
(``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu`` with ``snap``/``set``
rows) is read too, so its tiny real fixtures can drive the same code.

Traps this module documents and handles:
* Sequencing (Binance docs): diffs are selected by update id, not by file position: a diff received
  *before* the snapshot line may be the first one to apply. Spot: drop ``u <= lastUpdateId``, the first
  applied diff must have ``U <= lastUpdateId + 1 <= u``, every next one ``U == previous u + 1``. USD-M
  futures: first ``U <= lastUpdateId <= u``, then ``pu == previous u``. Any gap is a :class:`DataError`
  naming the file, line and ids (a rebuilt book past a gap would be silently wrong).
* Quantities in diffs are absolute level totals (0 deletes); prices and sizes are decimal strings and are
  converted to integer ticks/lots exactly (string arithmetic, no floats). Tick and lot sizes are inferred
  as the finest decimal used (BTCUSDT spot: 0.01 and 0.00001) unless given; with a given tick a finer
  price is "off the tick grid".
* ``ts`` everywhere is the local receive clock (ns); exchange times (ms) are ignored so that events,
  book and trades share one clock.
* Events are level changes: order_id 0, type 1 (size up, size = increase), 2 (size down), 3 (level
  removed). Book snapshots (top ``levels``, default 20) follow every applied diff.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema


@dataclass
class _Diff:
    path: Path
    line: int
    ts: int
    U: int
    u: int
    pu: int | None
    bids: list
    asks: list


@dataclass
class Capture:
    """A parsed capture. Price/size fields hold decimal strings until :func:`_finish` converts them.

    After reading: ``updates int64[m, 4]`` (group, side, price ticks, qty lots) where group 0 is the
    snapshot and group g >= 1 the g-th applied diff; ``group_ts``/``group_u`` ``int64[G]`` (receive ts and
    last update id of each group); ``trades int64[k, 4]`` (ts, price, size, aggressor); ``tickers
    int64[t, 6]`` (ts, u, bid_px, bid_qty, ask_px, ask_qty).
    """

    symbol: str
    market: str
    paths: list[Path]
    tick_size: float = 0.0
    lot_size: float = 0.0
    last_update_id: int = 0
    updates: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    group_ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    group_u: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    trades: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    tickers: np.ndarray = field(default_factory=lambda: np.zeros((0, 6), np.int64))
    skipped_diffs: int = 0


def _decimals(s: str) -> int:
    if "." not in s:
        return 0
    return len(s.split(".", 1)[1].rstrip("0"))


def _scale_of(step: float | None, values: list[str], what: str) -> int:
    if step is None:
        return _max_decimals(values)
    d = _decimals(repr(float(step)))
    if abs(float(step) - 10.0**-d) > 1e-15:
        raise DataError(None, f"{what} must be a power of ten (0.01, 0.001, ...)", field=what, value=step)
    return d


def _to_int(s: str, d: int, path: Path, line: int, fieldname: str) -> int:
    """Exact integer of decimal string ``s`` in units of 10**-d; finer digits are off the grid."""
    whole, _, frac = s.partition(".")
    try:
        neg = whole.startswith("-")
        v = int(whole or "0") * 10**d + (-1 if neg else 1) * int((frac[:d] or "0").ljust(d, "0"))
        int(frac or "0")
    except ValueError:
        raise DataError(path, "not a decimal number", row=line, field=fieldname, value=s) from None
    if frac[d:].strip("0"):
        grid = "price" if fieldname in ("price", "p", "a", "b") else "size"
        raise DataError(path, f"off the {grid} grid (10^-{d})", row=line, field=fieldname, value=s)
    if v < 0:
        raise DataError(path, "negative value", row=line, field=fieldname, value=s)
    return v


def _max_decimals(values: list[str]) -> int:
    """``max(_decimals(v) for v in values)`` in one vectorised pass."""
    if not values:
        return 0
    frac = pl.Series(values, dtype=pl.String).str.split_exact(".", 1).struct.field("field_1")
    return int(frac.fill_null("").str.strip_chars_end("0").str.len_chars().max() or 0)  # type: ignore[arg-type]


def _to_ints(values: list[str], d: int) -> np.ndarray | None:
    """Vectorised :func:`_to_int` for plain non-negative decimals (``digits[.digits]``, nothing finer than
    10**-d, at most 18 significant digits): ``int64[len(values)]``, or None when any value falls outside
    that form, so the caller runs the per-value path, which accepts the same values and names the first
    bad one (file, line, field)."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    parts = pl.Series(values, dtype=pl.String).str.split_exact(".", 1).struct.unnest()
    whole, frac = parts["field_0"], parts["field_1"].fill_null("")
    ok = (whole.str.contains(r"^[0-9]+$") & frac.str.contains(r"^[0-9]*$")
          & (whole.str.len_chars() + d <= 18) & frac.str.slice(d).str.contains(r"^0*$"))
    if not ok.all():
        return None
    v = whole.cast(pl.Int64).to_numpy() * 10**d
    if d:
        v = v + frac.str.slice(0, d).str.pad_end(d, "0").cast(pl.Int64).to_numpy()
    return v.astype(np.int64)


def _lines(path: Path) -> list[str]:
    from marketlab.store.ingest._io import read_bytes

    return read_bytes(path).decode("utf-8", errors="replace").splitlines()


def _read_raw(paths: list[Path]) -> tuple[dict, list[_Diff], list, list, str, str]:
    snapshot: dict | None = None
    diffs: list[_Diff] = []
    trades: list = []
    tickers: list = []
    symbol, market = "", "spot"
    for path in paths:
        for ln, text in enumerate(_lines(path), start=1):
            if not text.strip():
                continue
            head, _, body = text.partition(" ")
            try:
                ts = int(head)
                msg = json.loads(body)
            except ValueError:
                raise DataError(path, "expected '<receive ns> <JSON>'", row=ln, value=text[:60]) from None
            if "lastUpdateId" in msg:
                if snapshot is None:
                    snapshot = {"ts": ts, "id": int(msg["lastUpdateId"]), "bids": msg["bids"], "asks": msg["asks"],
                                "path": path, "line": ln}
                continue
            data = msg.get("data", msg)
            ev = data.get("e")
            if ev == "depthUpdate":
                symbol = symbol or data.get("s", "")
                pu = data.get("pu")
                if pu is not None:
                    market = "usdm"
                diffs.append(_Diff(path, ln, ts, int(data["U"]), int(data["u"]), None if pu is None else int(pu),
                                   data["b"], data["a"]))
            elif ev == "trade":
                symbol = symbol or data.get("s", "")
                trades.append((ts, data["p"], data["q"], -1 if data["m"] else 1, path, ln))
            elif "u" in data and "b" in data and "a" in data and "B" in data:
                symbol = symbol or data.get("s", "")
                tickers.append((ts, int(data["u"]), data["b"], data["B"], data["a"], data["A"], path, ln))
    if snapshot is None:
        raise DataError(paths[0], "no REST depth snapshot ({\"lastUpdateId\": ...}) in the capture; pass the first file too")
    return snapshot, diffs, trades, tickers, symbol, market


def _read_csv(paths: list[Path]) -> tuple[dict, list[_Diff], list, list, str, str]:
    """nautilus_trader's CSV depth layout -> the same structures as a raw capture."""
    snap: dict | None = None
    diffs: list[_Diff] = []
    symbol = ""
    for path in paths:
        rows = list(csv.DictReader(io.StringIO("\n".join(_lines(path)))))
        need = {"symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty", "pu"}
        if not rows or not need <= set(rows[0]):
            raise DataError(path, f"expected CSV columns {sorted(need)}")
        for ln, r in enumerate(rows, start=2):
            symbol = symbol or r["symbol"]
            side = r["side"]
            if side not in ("a", "b"):
                raise DataError(path, "side must be 'a' or 'b'", row=ln, field="side", value=side)
            try:
                ts, U, u, pu = int(r["timestamp"]) * 1_000_000, int(r["first_update_id"]), int(r["last_update_id"]), int(r["pu"])
            except ValueError:
                raise DataError(path, "non-integer id/timestamp", row=ln) from None
            lvl = [r["price"], r["qty"]]
            if r["update_type"] == "snap":
                if snap is None:
                    snap = {"ts": ts, "id": u, "bids": [], "asks": [], "path": path, "line": ln}
                (snap["bids"] if side == "b" else snap["asks"]).append(lvl)
            elif r["update_type"] == "set":
                if not diffs or diffs[-1].u != u or diffs[-1].U != U:
                    diffs.append(_Diff(path, ln, ts, U, u, pu if pu >= 0 else None, [], []))
                (diffs[-1].bids if side == "b" else diffs[-1].asks).append(lvl)
            else:
                raise DataError(path, "update_type must be snap or set", row=ln, field="update_type", value=r["update_type"])
    if snap is None:
        raise DataError(paths[0], "no snapshot rows (update_type 'snap')")
    market = "usdm" if any(d.pu is not None for d in diffs) else "spot"
    return snap, diffs, [], [], symbol, market


def read_capture(paths: list[Path] | Path, *, tick_size: float | None = None, lot_size: float | None = None) -> Capture:
    """Read and sequence a capture; raises :class:`DataError` on malformed lines or an update-id gap."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    reader = _read_csv if all(".csv" in p.name for p in paths) else _read_raw
    snap, diffs, trades, tickers, symbol, market = reader(paths)
    if not symbol:
        raise DataError(paths[0], "no symbol found (no depthUpdate/trade/bookTicker message)")
    last = snap["id"]
    # sequencing by update id (module docstring)
    applied: list[_Diff] = []
    prev_u = None
    skipped = 0
    for d in diffs:
        if prev_u is None:
            if d.u < last or (market == "spot" and d.u == last):
                skipped += 1
                continue
            ok = d.U <= last + 1 <= d.u if market == "spot" else d.U <= last <= d.u
            if not ok:
                raise DataError(d.path, f"update-id gap: first diff after snapshot {last} covers [{d.U}, {d.u}]",
                                row=d.line, field="U", value=d.U)
        else:
            ok = (d.pu == prev_u) if (market == "usdm" and d.pu is not None) else (d.U == prev_u + 1)
            if not ok:
                got = d.pu if market == "usdm" and d.pu is not None else d.U
                raise DataError(d.path, f"update-id gap after {prev_u}", row=d.line,
                                field="pu" if market == "usdm" else "U", value=got)
        applied.append(d)
        prev_u = d.u
    prices = [p for p, _ in snap["bids"] + snap["asks"]] + [p for d in applied for p, _ in d.bids + d.asks]
    prices += [t[1] for t in trades] + [x for t in tickers for x in (t[2], t[4])]
    sizes = [q for _, q in snap["bids"] + snap["asks"]] + [q for d in applied for _, q in d.bids + d.asks]
    sizes += [t[2] for t in trades] + [x for t in tickers for x in (t[3], t[5])]
    dp = _scale_of(tick_size, prices, "tick_size")
    dq = _scale_of(lot_size, sizes, "lot_size")

    cap = Capture(symbol=symbol, market=market, paths=paths, tick_size=10.0**-dp, lot_size=10.0**-dq,
                  last_update_id=last, skipped_diffs=skipped)
    cap.updates = _updates(snap, applied, dp, dq)
    gts = [snap["ts"]] + [d.ts for d in applied]
    gu = [last] + [d.u for d in applied]
    # a diff received before the snapshot only takes effect once the snapshot is there: keep ts monotone
    cap.group_ts = np.maximum.accumulate(np.array(gts, dtype=np.int64))
    cap.group_u = np.array(gu, dtype=np.int64)
    tp, tq = _to_ints([t[1] for t in trades], dp), _to_ints([t[2] for t in trades], dq)
    if tp is None or tq is None:
        cap.trades = np.array(
            [(t[0], _to_int(t[1], dp, t[4], t[5], "p"), _to_int(t[2], dq, t[4], t[5], "q"), t[3]) for t in trades],
            dtype=np.int64,
        ).reshape(-1, 4)
    else:
        cap.trades = np.stack([np.array([t[0] for t in trades], np.int64), tp, tq,
                               np.array([t[3] for t in trades], np.int64)], axis=1).reshape(-1, 4)
    cols = [_to_ints([t[k] for t in tickers], dp if k in (2, 4) else dq) for k in (2, 3, 4, 5)]
    if any(c is None for c in cols):
        cap.tickers = np.array(
            [(t[0], t[1], _to_int(t[2], dp, t[6], t[7], "b"), _to_int(t[3], dq, t[6], t[7], "B"),
              _to_int(t[4], dp, t[6], t[7], "a"), _to_int(t[5], dq, t[6], t[7], "A")) for t in tickers],
            dtype=np.int64,
        ).reshape(-1, 6)
    else:
        cap.tickers = np.stack([np.array([t[0] for t in tickers], np.int64), np.array([t[1] for t in tickers], np.int64),
                                *cols], axis=1).reshape(-1, 6)  # type: ignore[misc]
    return cap


def _updates(snap: dict, applied: list[_Diff], dp: int, dq: int) -> np.ndarray:
    """``int64[m, 4]`` (group, side, price ticks, qty lots): snapshot levels (group 0, bids then asks),
    then each applied diff's bids and asks. Prices and sizes are converted in one vectorised pass; if any
    value is not a plain decimal on the grid, the per-value path runs and raises the exact error."""
    groups: list[int] = []
    sides: list[int] = []
    pxs: list[str] = []
    qtys: list[str] = []
    for g, (b, a) in enumerate([(snap["bids"], snap["asks"])] + [(d.bids, d.asks) for d in applied]):
        for side, lv in ((1, b), (-1, a)):
            groups.extend([g] * len(lv))
            sides.extend([side] * len(lv))
            for p, q in lv:
                pxs.append(p)
                qtys.append(q)
    px, qty = _to_ints(pxs, dp), _to_ints(qtys, dq)
    if px is not None and qty is not None:
        return np.stack([np.array(groups, np.int64), np.array(sides, np.int64), px, qty], axis=1).reshape(-1, 4)
    rows: list[tuple[int, int, int, int]] = []
    sp, sl = snap["path"], snap["line"]
    for side, lv in ((1, snap["bids"]), (-1, snap["asks"])):
        for p, q in lv:
            rows.append((0, side, _to_int(p, dp, sp, sl, "price"), _to_int(q, dq, sp, sl, "qty")))
    for g, d in enumerate(applied, start=1):
        for side, lv in ((1, d.bids), (-1, d.asks)):
            for p, q in lv:
                rows.append((g, side, _to_int(p, dp, d.path, d.line, "price"), _to_int(q, dq, d.path, d.line, "qty")))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def rebuild(cap: Capture, depth: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Book after the snapshot and after every applied diff: ``(tops int64[G, 4*depth], deltas int64[m])``."""
    from marketlab.lob.l2 import L2Book

    return L2Book().apply(cap.updates, depth=depth, n_groups=len(cap.group_u))


def verify_capture(cap: Capture) -> dict[str, Any]:
    """Compare the rebuilt best bid/ask (price and size) with every bookTicker whose update id is covered.

    The book is known exactly at the update id of the snapshot and of each applied diff. A ticker with
    id ``u`` is *covered* when snapshot id <= u <= last applied id; it is compared with the book after
    the last diff whose id is <= u. ``exact`` tickers are those whose id equals a diff's last id (the book
    state is the same event); for the rest a 100 ms diff bundles several updates, so the book may show a
    state up to one bundle older than the ticker, and disagreement there is expected, not an error.
    """
    tops, _ = rebuild(cap, depth=1)
    tk = cap.tickers
    gu = cap.group_u
    covered = (tk[:, 1] >= gu[0]) & (tk[:, 1] <= gu[-1]) if len(tk) else np.zeros(0, bool)
    idx = np.searchsorted(gu, tk[:, 1], side="right") - 1
    idx = np.clip(idx, 0, len(gu) - 1)
    book = tops[idx]  # ask_px, ask_sz, bid_px, bid_sz
    px_ok = (book[:, 2] == tk[:, 2]) & (book[:, 0] == tk[:, 4])
    full_ok = px_ok & (book[:, 3] == tk[:, 3]) & (book[:, 1] == tk[:, 5])
    exact = covered & (gu[idx] == tk[:, 1])
    n_cov, n_ex = int(covered.sum()), int(exact.sum())
    crossed = int(((tops[:, 0] > 0) & (tops[:, 2] > 0) & (tops[:, 2] >= tops[:, 0])).sum())
    return {
        "symbol": cap.symbol,
        "market": cap.market,
        "tick_size": cap.tick_size,
        "lot_size": cap.lot_size,
        "snapshot_update_id": int(cap.last_update_id),
        "diffs_applied": int(len(gu) - 1),
        "diffs_skipped_before_snapshot": int(cap.skipped_diffs),
        "level_updates": int(cap.updates.shape[0]),
        "tickers": int(len(tk)),
        "tickers_covered": n_cov,
        "agreement_rate_best_prices": float(px_ok[covered].mean()) if n_cov else float("nan"),
        "agreement_rate_best_prices_and_sizes": float(full_ok[covered].mean()) if n_cov else float("nan"),
        "tickers_exact": n_ex,
        "agreement_rate_exact": float(full_ok[exact].mean()) if n_ex else float("nan"),
        "crossed_books": crossed,
    }


def frames(cap: Capture, *, levels: int = 20) -> dict[str, pl.DataFrame]:
    """events / book / trades frames in the store schemas (see module docstring)."""
    tops, deltas = rebuild(cap, depth=levels)
    up = cap.updates
    keep = deltas != 0
    ts_rows = cap.group_ts[up[:, 0]]
    newq = up[:, 3]
    etype = np.where(deltas > 0, 1, np.where(newq == 0, 3, 2))
    ev = pl.DataFrame({
        "ts": ts_rows[keep], "symbol": cap.symbol, "seq": np.arange(int(keep.sum()), dtype=np.int64),
        "type": etype[keep].astype(np.int8), "order_id": np.zeros(int(keep.sum()), np.int64),
        "side": up[keep, 1].astype(np.int8), "price": up[keep, 2], "size": np.abs(deltas[keep]),
    }).select([pl.col(c).cast(t) for c, t in EVENTS_SCHEMA.items()])
    cols: dict[str, Any] = {"ts": cap.group_ts, "symbol": cap.symbol, "seq": np.arange(len(cap.group_ts), dtype=np.int64)}
    names = ["ask_px", "ask_sz", "bid_px", "bid_sz"]
    for j in range(4 * levels):
        cols[f"{names[j % 4]}_{j // 4 + 1}"] = tops[:, j]
    bk = pl.DataFrame(cols).select([pl.col(c).cast(t) for c, t in book_schema(levels).items()])
    tr = cap.trades
    trades = pl.DataFrame({
        "ts": tr[:, 0], "symbol": cap.symbol, "seq": np.arange(tr.shape[0], dtype=np.int64),
        "price": tr[:, 1], "size": tr[:, 2], "aggressor": tr[:, 3].astype(np.int8),
    }).select([pl.col(c).cast(t) for c, t in TRADES_SCHEMA.items()])
    out = {"events": ev, "book": bk}
    if trades.height:
        out["trades"] = trades
    return out


def parse(paths: list[Path], *, dataset: str | None = None, **options: Any) -> Any:
    """Pure parser: capture file(s) -> :class:`~marketlab.store.IngestBatch` (events, book, trades).

    Options: ``tick_size``, ``lot_size`` (powers of ten; inferred when absent), ``levels`` (book depth, 20).
    """
    from marketlab.store import IngestBatch, Instrument

    known = {"tick_size", "lot_size", "levels"}
    unknown = set(options) - known
    if unknown:
        raise DataError(None, f"unknown binance-raw option(s) {sorted(unknown)} (known: {sorted(known)})")
    cap = read_capture(list(paths), tick_size=options.get("tick_size"), lot_size=options.get("lot_size"))
    fr = frames(cap, levels=int(options.get("levels", 20)))
    inst = Instrument(cap.symbol, tick_size=cap.tick_size, lot_size=cap.lot_size, currency="USDT")
    meta = {"source": "binance raw capture", "market": cap.market, "snapshot_update_id": cap.last_update_id,
            "diffs_applied": int(len(cap.group_u) - 1), "clock": "local receive ns"}
    return IngestBatch(dataset=dataset or f"binance_{cap.market}", frames=fr, instruments=[inst], meta=meta)


__all__ = ["Capture", "frames", "parse", "read_capture", "rebuild", "verify_capture"]
