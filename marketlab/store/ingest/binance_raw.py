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
import re
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

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
    bids: list[list[str]]
    asks: list[list[str]]


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
    return _given_scale(step, what)


def _given_scale(step: float, what: str) -> int:
    """Decimals of a given tick/lot size; it must be a power of ten."""
    try:
        d = _decimals(repr(float(step)))
        ok = float(step) > 0 and abs(float(step) - 10.0**-d) <= 1e-15
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise DataError(None, f"{what} must be a power of ten (0.01, 0.001, ...)", field=what, value=step)
    return d


_DECIMAL = re.compile(r"-?[0-9]*(?:\.[0-9]*)?")


def _to_int(s: str, d: int, path: Path, line: int, fieldname: str) -> int:
    """Exact integer of decimal string ``s`` in units of 10**-d; finer digits are off the grid."""
    if not isinstance(s, str) or not _DECIMAL.fullmatch(s) or not any(c.isdigit() for c in s):
        raise DataError(path, "not a decimal number", row=line, field=fieldname, value=s)
    whole, _, frac = s.partition(".")
    neg = whole.startswith("-")
    v = int(whole.lstrip("-") or "0") * 10**d + int((frac[:d] or "0").ljust(d, "0"))
    if frac[d:].strip("0"):
        grid = "price" if fieldname in ("price", "p", "a", "b") else "size"
        raise DataError(path, f"off the {grid} grid (10^-{d})", row=line, field=fieldname, value=s)
    if neg and v:
        raise DataError(path, "negative value", row=line, field=fieldname, value=s)
    if v >= 10**18:
        raise DataError(path, "value too large (more than 18 digits in ticks/lots)", row=line, field=fieldname,
                        value=s)
    return int(v)


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
    out: np.ndarray = v.astype(np.int64)
    return out


def _lines(path: Path) -> list[str]:
    from marketlab.store.ingest._io import read_bytes

    return read_bytes(path).decode("utf-8", errors="replace").splitlines()


def _int_field(obj: dict[str, Any], key: str, path: Path, ln: int) -> int:
    """``obj[key]`` as an int: a JSON integer or a string of digits; anything else names file, line, field."""
    if key not in obj:
        raise DataError(path, "missing field", row=ln, field=key)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise DataError(path, "not an integer", row=ln, field=key, value=v)
    try:
        out = int(v)
    except ValueError:
        raise DataError(path, "not an integer", row=ln, field=key, value=v) from None
    if not -(2**63) < out < 2**63:
        raise DataError(path, "integer out of range", row=ln, field=key, value=v)
    return out


def _str_field(obj: dict[str, Any], key: str, path: Path, ln: int) -> str:
    if key not in obj:
        raise DataError(path, "missing field", row=ln, field=key)
    v = obj[key]
    if not isinstance(v, str):
        raise DataError(path, "expected a decimal string", row=ln, field=key, value=v)
    return v


def _level_list(obj: dict[str, Any], key: str, path: Path, ln: int) -> list[list[str]]:
    """``obj[key]`` as ``[[price, qty], ...]`` of strings; anything else names file, line and field."""
    if key not in obj:
        raise DataError(path, "missing field", row=ln, field=key)
    v = obj[key]
    if not isinstance(v, list):
        raise DataError(path, "expected a list of [price, qty] pairs", row=ln, field=key, value=str(v)[:40])
    for lvl in v:
        if not (isinstance(lvl, list) and len(lvl) == 2 and all(isinstance(x, str) for x in lvl)):
            raise DataError(path, "expected a [price, qty] pair of strings", row=ln, field=key, value=str(lvl)[:40])
    return v


def _read_raw(paths: list[Path]) -> tuple[dict[str, Any], list[_Diff], list[Any], list[Any], str, str]:
    """Generic reader (``json`` per line): the reference semantics; every malformed line or field is a
    one-line :class:`DataError` naming file, line and field."""
    snapshot: dict[str, Any] | None = None
    diffs: list[_Diff] = []
    trades: list[Any] = []
    tickers: list[Any] = []
    symbol, market = "", "spot"

    def sym_of(data: dict[str, Any], path: Path, ln: int) -> str:
        s = data.get("s", "")
        if not isinstance(s, str):
            raise DataError(path, "symbol is not a string", row=ln, field="s", value=s)
        if s and symbol and s != symbol:  # one capture = one book: another symbol's message would corrupt it
            raise DataError(path, f"message of another symbol (the capture is {symbol})", row=ln, field="s", value=s)
        return s

    for path in paths:
        for ln, text in enumerate(_lines(path), start=1):
            if not text.strip():
                continue
            head, _, body = text.partition(" ")
            try:
                ts = int(head)
                msg = json.loads(body)
            except (ValueError, RecursionError):
                raise DataError(path, "expected '<receive ns> <JSON>'", row=ln, value=text[:60]) from None
            if not -(2**63) < ts < 2**63:
                raise DataError(path, "receive timestamp out of range", row=ln, value=head[:30])
            if not isinstance(msg, dict):
                raise DataError(path, "expected a JSON object after the timestamp", row=ln, value=body[:60])
            if "lastUpdateId" in msg:
                if snapshot is None:
                    snapshot = {"ts": ts, "id": _int_field(msg, "lastUpdateId", path, ln),
                                "bids": _level_list(msg, "bids", path, ln), "asks": _level_list(msg, "asks", path, ln),
                                "path": path, "line": ln}
                continue
            data = msg.get("data", msg)
            if not isinstance(data, dict):
                raise DataError(path, "combined-stream 'data' is not an object", row=ln, field="data",
                                value=str(data)[:40])
            ev = data.get("e")
            if ev == "depthUpdate":
                symbol = sym_of(data, path, ln) or symbol
                pu = data.get("pu")
                if pu is not None:
                    market = "usdm"
                diffs.append(_Diff(path, ln, ts, _int_field(data, "U", path, ln), _int_field(data, "u", path, ln),
                                   None if pu is None else _int_field(data, "pu", path, ln),
                                   _level_list(data, "b", path, ln), _level_list(data, "a", path, ln)))
            elif ev == "trade":
                symbol = sym_of(data, path, ln) or symbol
                m = data.get("m")
                if not isinstance(m, bool):
                    raise DataError(path, "buyer-is-maker flag must be true or false", row=ln, field="m", value=m)
                trades.append((ts, _str_field(data, "p", path, ln), _str_field(data, "q", path, ln), -1 if m else 1,
                               path, ln))
            elif "u" in data and "b" in data and "a" in data and "B" in data:
                symbol = sym_of(data, path, ln) or symbol
                tickers.append((ts, _int_field(data, "u", path, ln), _str_field(data, "b", path, ln),
                                _str_field(data, "B", path, ln), _str_field(data, "a", path, ln),
                                _str_field(data, "A", path, ln), path, ln))
    if snapshot is None:
        raise DataError(paths[0], "no REST depth snapshot ({\"lastUpdateId\": ...}) in the capture; pass the first file too")
    return snapshot, diffs, trades, tickers, symbol, market


def _read_csv(paths: list[Path]) -> tuple[dict[str, Any], list[_Diff], list[Any], list[Any], str, str]:
    """nautilus_trader's CSV depth layout -> the same structures as a raw capture."""
    snap: dict[str, Any] | None = None
    diffs: list[_Diff] = []
    symbol = ""
    for path in paths:
        rows = list(csv.DictReader(io.StringIO("\n".join(_lines(path)))))
        need = {"symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty", "pu"}
        if not rows or not need <= set(rows[0]):
            raise DataError(path, f"expected CSV columns {sorted(need)}")
        for ln, r in enumerate(rows, start=2):
            missing = sorted(k for k in need if not isinstance(r.get(k), str) or not r[k])
            if missing:
                raise DataError(path, "missing field (short or empty row)", row=ln, field=missing[0])
            symbol = symbol or r["symbol"]
            side = r["side"]
            if side not in ("a", "b"):
                raise DataError(path, "side must be 'a' or 'b'", row=ln, field="side", value=side)
            try:
                ts, U, u, pu = int(r["timestamp"]) * 1_000_000, int(r["first_update_id"]), int(r["last_update_id"]), int(r["pu"])
            except ValueError:
                raise DataError(path, "non-integer id/timestamp", row=ln) from None
            if not all(-(2**62) < v < 2**62 for v in (ts, U, u, pu)):
                raise DataError(path, "id/timestamp out of range", row=ln)
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


def _sequence(diffs: list[_Diff], last: int, market: str) -> tuple[list[_Diff], int]:
    """The diffs to apply after snapshot ``last`` (module docstring), and how many came before it."""
    ids = np.array([(d.U, d.u, -1 if d.pu is None else d.pu) for d in diffs], dtype=np.int64).reshape(-1, 3)
    skipped, applied = sequence_ids(ids[:, 0], ids[:, 1], ids[:, 2], last, market, lambda i: (diffs[i].path, diffs[i].line))
    return diffs[skipped : skipped + applied], skipped


def sequence_ids(U: np.ndarray, u: np.ndarray, pu: np.ndarray, last: int, market: str,
                 where: Callable[[int], tuple[Path, int]]) -> tuple[int, int]:
    """``(skipped, applied)``: how many depth diffs (``int64[n]`` first/last/previous update ids in capture
    order, ``pu`` -1 where absent) come before the first one to apply after snapshot ``last``, and how many
    apply from there (all the rest). A gap is a :class:`DataError` naming ``where(i)`` (file, line) of the
    first diff that breaks the chain. Vectorised: a long capture's 50k+ diffs are never Python objects."""
    n = u.shape[0]
    stale = (u < last) if market == "usdm" else (u <= last)
    skipped = n if bool(stale.all()) else int(np.argmin(stale))  # the first diff that is not stale
    if skipped == n:
        return n, 0
    i = skipped
    first_ok = U[i] <= last <= u[i] if market == "usdm" else U[i] <= last + 1 <= u[i]
    if not first_ok:
        path, line = where(i)
        raise DataError(path, f"update-id gap: first diff after snapshot {last} covers [{U[i]}, {u[i]}]",
                        row=line, field="U", value=int(U[i]))
    prev = u[i:-1]
    with_pu = pu[i + 1 :] >= 0 if market == "usdm" else np.zeros(n - i - 1, dtype=bool)
    ok = np.where(with_pu, pu[i + 1 :] == prev, U[i + 1 :] == prev + 1)
    if not bool(ok.all()):
        j = i + 1 + int(np.argmin(ok))
        got = pu[j] if market == "usdm" and pu[j] >= 0 else U[j]
        path, line = where(j)
        raise DataError(path, f"update-id gap after {u[j - 1]}", row=line, field="pu" if market == "usdm" else "U",
                        value=int(got))
    return skipped, n - skipped


def read_capture(paths: list[Path] | Path, *, tick_size: float | None = None, lot_size: float | None = None,
                 fast: bool = True) -> Capture:
    """Read and sequence a capture; raises :class:`DataError` on malformed lines or an update-id gap.

    ``fast`` (default) tries the numba scanner (:mod:`._binance_scan`) first; it returns the same
    :class:`Capture` as the generic path or hands over to it (``fast=False`` forces the generic path).
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if tick_size is not None:
        _given_scale(tick_size, "tick_size")
    if lot_size is not None:
        _given_scale(lot_size, "lot_size")
    is_csv = all(".csv" in p.name for p in paths)
    if fast and not is_csv:
        cap = _fast_capture(paths, tick_size, lot_size)
        if cap is not None:
            return cap
    reader = _read_csv if is_csv else _read_raw
    snap, diffs, trades, tickers, symbol, market = reader(paths)
    if not symbol:
        raise DataError(paths[0], "no symbol found (no depthUpdate/trade/bookTicker message)")
    last = snap["id"]
    applied, skipped = _sequence(diffs, last, market)
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
                                *[c for c in cols if c is not None]], axis=1).reshape(-1, 6)
    return cap


def _scaled(m: np.ndarray, d: np.ndarray, scale: int) -> np.ndarray | None:
    """``m * 10**(scale - d)`` exactly in int64, or None when a value is finer than ``scale`` or would need
    more than 18 digits (the generic path then names it)."""
    if m.size == 0:
        return np.zeros(0, dtype=np.int64)
    if int(d.max()) > scale:
        return None
    pw = (10 ** (scale - d)).astype(np.int64)
    if bool((m > (10**18 - 1) // pw).any()):
        return None
    return (m * pw).astype(np.int64)


def _fast_capture(paths: list[Path], tick_size: float | None, lot_size: float | None) -> Capture | None:
    """The :class:`Capture` from the numba scanner, or None when any file is outside its subset."""
    from marketlab.store.ingest import _binance_scan as bs
    from marketlab.store.ingest._io import read_bytes

    msgs_l, lv_l, tk_l, file_of = [], [], [], []
    symbol = ""
    lv_off = tk_off = 0
    for i, path in enumerate(paths):
        data = read_bytes(path)
        res = bs.scan(data)
        if res is None:
            return None
        msgs, lv, tk = res
        kind = msgs[:, 0]
        has = ((kind == bs.M_DEPTH) | (kind == bs.M_TRADE) | (kind == bs.M_TICKER)) & (msgs[:, 11] > msgs[:, 10])
        if has.any():  # the scan checked that every symbol in this file equals its first one
            r = int(np.flatnonzero(has)[0])
            first = data[int(msgs[r, 10]):int(msgs[r, 11])].decode("ascii")
            if symbol and first != symbol:
                return None  # another symbol in a later file: the generic path names the line
            symbol = first
        ref = (kind == bs.M_DEPTH) | (kind == bs.M_SNAPSHOT)
        msgs[ref, 6:10] += lv_off
        msgs[kind == bs.M_TICKER, 6] += tk_off
        lv_off += lv.shape[0]
        tk_off += tk.shape[0]
        msgs_l.append(msgs)
        lv_l.append(lv)
        tk_l.append(tk)
        file_of.append(np.full(msgs.shape[0], i, dtype=np.int64))
    msgs = np.concatenate(msgs_l)
    lv = np.concatenate(lv_l)
    tk = np.concatenate(tk_l)
    fidx = np.concatenate(file_of)
    kind = msgs[:, 0]
    snaps = np.flatnonzero(kind == bs.M_SNAPSHOT)
    if snaps.size == 0:
        raise DataError(paths[0], "no REST depth snapshot ({\"lastUpdateId\": ...}) in the capture; pass the first file too")
    if not symbol:
        raise DataError(paths[0], "no symbol found (no depthUpdate/trade/bookTicker message)")
    snap = msgs[snaps[0]]
    dep = msgs[kind == bs.M_DEPTH]
    dfile = fidx[kind == bs.M_DEPTH]
    market = "usdm" if bool((dep[:, 5] >= 0).any()) else "spot"
    last = int(snap[3])
    skipped, applied = sequence_ids(dep[:, 3], dep[:, 4], dep[:, 5], last, market,
                                    lambda i: (paths[int(dfile[i])], int(dep[i, 1])))
    adep = dep[skipped : skipped + applied]
    # level rows in update order: snapshot bids, asks, then each applied diff's bids, asks
    starts = np.concatenate([[snap[6], snap[8]], adep[:, [6, 8]].ravel()]).astype(np.int64)
    ends = np.concatenate([[snap[7], snap[9]], adep[:, [7, 9]].ravel()]).astype(np.int64)
    lens = ends - starts
    total = int(lens.sum())
    idx = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total, dtype=np.int64)
    groups = np.repeat(np.repeat(np.arange(adep.shape[0] + 1, dtype=np.int64), 2), lens)
    sides = np.repeat(np.tile(np.array([1, -1], dtype=np.int64), adep.shape[0] + 1), lens)
    trd = msgs[kind == bs.M_TRADE]
    tkr_rows = msgs[kind == bs.M_TICKER]
    tkv = tk[tkr_rows[:, 6]] if tkr_rows.size else np.zeros((0, 8), dtype=np.int64)
    p_dec = np.concatenate([lv[idx, 2], trd[:, 7], tkv[:, 1], tkv[:, 5]])
    q_dec = np.concatenate([lv[idx, 4], trd[:, 9], tkv[:, 3], tkv[:, 7]])
    dp = _given_scale(tick_size, "tick_size") if tick_size is not None else int(p_dec.max(initial=0))
    dq = _given_scale(lot_size, "lot_size") if lot_size is not None else int(q_dec.max(initial=0))
    px, qty = _scaled(lv[idx, 1], lv[idx, 2], dp), _scaled(lv[idx, 3], lv[idx, 4], dq)
    tp, tq = _scaled(trd[:, 6], trd[:, 7], dp), _scaled(trd[:, 8], trd[:, 9], dq)
    tb, tB = _scaled(tkv[:, 0], tkv[:, 1], dp), _scaled(tkv[:, 2], tkv[:, 3], dq)
    ta, tA = _scaled(tkv[:, 4], tkv[:, 5], dp), _scaled(tkv[:, 6], tkv[:, 7], dq)
    if px is None or qty is None or tp is None or tq is None or tb is None or tB is None or ta is None or tA is None:
        return None  # off the given grid or too many digits: the generic path names the value
    cap = Capture(symbol=symbol, market=market, paths=paths, tick_size=10.0**-dp, lot_size=10.0**-dq,
                  last_update_id=last, skipped_diffs=skipped)
    cap.updates = np.stack([groups, sides, px, qty], axis=1).reshape(-1, 4)
    cap.group_ts = np.maximum.accumulate(np.concatenate([[snap[2]], adep[:, 2]]).astype(np.int64))
    cap.group_u = np.concatenate([[last], adep[:, 4]]).astype(np.int64)
    cap.trades = np.stack([trd[:, 2], tp, tq, trd[:, 3]], axis=1).reshape(-1, 4)
    cap.tickers = np.stack([tkr_rows[:, 2], tkr_rows[:, 3], tb, tB, ta, tA], axis=1).reshape(-1, 6)
    return cap


def _updates(snap: dict[str, Any], applied: list[_Diff], dp: int, dq: int) -> np.ndarray:
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
    """events / book / trades frames in the store schemas (see module docstring), from the whole capture."""
    tops, deltas = rebuild(cap, depth=levels)
    return batch_frames(cap.symbol, cap.updates, cap.group_ts, cap.trades, tops, deltas, levels=levels)


def batch_frames(symbol: str, updates: np.ndarray, group_ts: np.ndarray, trades: np.ndarray, tops: np.ndarray,
                 deltas: np.ndarray, *, levels: int, seq0: tuple[int, int, int] = (0, 0, 0)) -> dict[str, pl.DataFrame]:
    """events / book / trades frames of consecutive groups of a capture (all of it, or one streamed batch).

    ``updates int64[m, 4]`` (group, side, price ticks, qty lots; groups numbered from 0 in this piece),
    ``group_ts int64[G]`` (receive ns, already the running max), ``trades int64[k, 4]`` (ts, price, size,
    aggressor), ``tops int64[G, 4*levels]`` and ``deltas int64[m]`` from :class:`~marketlab.lob.l2.L2Book`;
    ``seq0`` = the first events / book / trades ``seq`` of this piece (the rows the earlier pieces hold).
    Level updates that change nothing (``delta == 0``) are not events. No ``trades`` key when ``k == 0``.
    """
    # built column by column from the kept rows' indices, each straight in its stored dtype: a streamed
    # batch's temporaries stay small next to the batch (numpy's int64 arrays pass to polars without a copy)
    idx = np.flatnonzero(deltas)
    n = idx.shape[0]
    d = deltas[idx]
    etype = np.full(n, 2, dtype=np.int8)  # size down
    etype[d > 0] = 1  # size up (or a new level)
    etype[updates[idx, 3] == 0] = 3  # level removed (its quantity was > 0: the delta is not 0)
    ev = _stored({
        "ts": group_ts[updates[idx, 0]], "symbol": symbol, "seq": np.arange(seq0[0], seq0[0] + n, dtype=np.int64),
        "type": etype, "order_id": np.zeros(n, np.int64),
        "side": updates[idx, 1].astype(np.int8), "price": updates[idx, 2], "size": np.abs(d),
    }, EVENTS_SCHEMA)
    del idx, d, etype
    cols: dict[str, Any] = {"ts": group_ts, "symbol": symbol,
                            "seq": np.arange(seq0[1], seq0[1] + len(group_ts), dtype=np.int64)}
    names = ["ask_px", "ask_sz", "bid_px", "bid_sz"]
    for j in range(4 * levels):
        cols[f"{names[j % 4]}_{j // 4 + 1}"] = tops[:, j]
    bk = _stored(cols, book_schema(levels))
    out = {"events": ev, "book": bk}
    if trades.shape[0]:
        out["trades"] = trades_frame(symbol, trades, seq0[2])
    return out


def trades_frame(symbol: str, trades: np.ndarray, seq0: int = 0) -> pl.DataFrame:
    """The ``trades`` frame of ``trades int64[k, 4]`` (ts, price ticks, size lots, aggressor), ``seq`` from
    ``seq0``."""
    return _stored({
        "ts": trades[:, 0], "symbol": symbol, "seq": np.arange(seq0, seq0 + trades.shape[0], dtype=np.int64),
        "price": trades[:, 1], "size": trades[:, 2], "aggressor": trades[:, 3].astype(np.int8),
    }, TRADES_SCHEMA)


def _stored(columns: dict[str, Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A frame of ``columns`` (built in ``schema``'s order) in the stored dtypes; the cast is skipped when
    they already are (the usual case: a streamed capture builds ~3 frames per chunk, and a select of 83
    casts cost ~1 ms each time)."""
    df = pl.DataFrame(columns)
    if list(df.schema.items()) == list(schema.items()):
        return df
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def _options(options: dict[str, Any]) -> dict[str, Any]:
    known = {"tick_size", "lot_size", "levels", "batch_rows"}
    unknown = set(options) - known
    if unknown:
        raise DataError(None, f"unknown binance-raw option(s) {sorted(unknown)} (known: {sorted(known)})")
    return options


def _batch(frames_: dict[str, pl.DataFrame], dataset: str | None, symbol: str, market: str, tick: float, lot: float,
           last_update_id: int, applied: int) -> Any:
    from marketlab.store import IngestBatch, Instrument

    inst = Instrument(symbol, tick_size=tick, lot_size=lot, currency="USDT")
    meta = {"source": "binance raw capture", "market": market, "snapshot_update_id": last_update_id,
            "diffs_applied": applied, "clock": "local receive ns"}
    return IngestBatch(dataset=dataset or f"binance_{market}", frames=frames_, instruments=[inst], meta=meta)


def _whole(paths: list[Path], dataset: str | None, options: dict[str, Any]) -> Any:
    cap = read_capture(paths, tick_size=options.get("tick_size"), lot_size=options.get("lot_size"))
    fr = frames(cap, levels=int(options.get("levels", 20)))
    return _batch(fr, dataset, cap.symbol, cap.market, cap.tick_size, cap.lot_size, cap.last_update_id,
                  int(len(cap.group_u) - 1))


def parse(paths: list[Path], *, dataset: str | None = None, **options: Any) -> Any:
    """Pure parser, whole capture in memory: capture file(s) -> one :class:`~marketlab.store.IngestBatch`
    (events, book, trades). The store's ``ingest/binance-raw`` streams :func:`iter_batches` instead (the
    same rows and values, memory bounded by ``batch_rows``); this is its reference.

    Options: ``tick_size``, ``lot_size`` (powers of ten; inferred when absent), ``levels`` (book depth, 20).
    """
    options = _options(dict(options))
    options.pop("batch_rows", None)
    return _whole([Path(p) for p in paths], dataset, options)


BATCH_ROWS = 250_000  # level rows per streamed batch (~12 MB of events + book at 20 levels)


def iter_batches(paths: list[Path], *, dataset: str | None = None, batch_rows: int = BATCH_ROWS,
                 **options: Any) -> Iterator[Any]:
    """Stream a capture as :class:`~marketlab.store.IngestBatch`es of at most ``batch_rows`` level rows (one
    larger snapshot or diff alone): two passes over the text (:mod:`._binance_stream`), the same rows and
    values as :func:`parse`, memory bounded by the batch. Every error :func:`parse` raises while reading
    and sequencing comes before the first batch; a capture outside the fast scanner's subset is read whole
    by the generic path (one batch). Options: as :func:`parse`, plus ``batch_rows``.
    """
    from marketlab.store.ingest import _binance_stream as st

    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise DataError(None, "batch_rows must be a positive integer", field="batch_rows", value=batch_rows)
    options = _options(dict(options))
    plist = [Path(p) for p in paths]
    tick, lot, levels = options.get("tick_size"), options.get("lot_size"), int(options.get("levels", 20))
    if tick is not None:
        _given_scale(tick, "tick_size")
    if lot is not None:
        _given_scale(lot, "lot_size")
    size = st.chunk_bytes(batch_rows)
    if all(".csv" in p.name for p in plist):
        yield _whole(plist, dataset, options)
        return
    try:
        plan = st.plan(plist, tick, lot, size)
    except st.Outside:
        yield _whole(plist, dataset, options)
        return
    try:
        frames_ = st.batches(plist, plan, levels=levels, batch_rows=batch_rows, size=size)
        while (box := [next(frames_, None)])[0] is not None:
            # no local keeps the frames while the batch is out: the writer frees them as it stages them
            yield _batch(cast(dict[str, pl.DataFrame], box.pop()), dataset, plan.symbol, plan.market, 10.0**-plan.dp, 10.0**-plan.dq,
                         plan.last_update_id, plan.applied)
    except st.Outside:  # a value beyond 18 digits in ticks/lots, found in pass 2: the generic path names it
        read_capture(plist, tick_size=tick, lot_size=lot, fast=False)
        raise DataError(plist[0], "a price or size does not fit the grid (more than 18 digits)") from None


__all__ = ["Capture", "batch_frames", "frames", "iter_batches", "parse", "read_capture", "rebuild", "verify_capture"]
