"""Streamed Binance raw captures: two passes over the text, memory bounded by the batch, not the capture.

Why two passes: the tick and lot sizes are inferred as the finest decimal used by the snapshot, the
*applied* diffs, the trades and the tickers of the whole capture; which diffs apply depends on the REST
snapshot (which may come after diffs that apply) and on the market (USD-M as soon as any diff carries
``pu``). A prefix cannot decide either. So:

* **pass 1** runs the numba scanner (:mod:`._binance_scan`) over the text in line-aligned chunks and keeps
  only what decides them: the snapshot's levels, per depth message ``(file, line, U, u, pu, finest price
  decimals, finest size decimals)`` (7 int64; a diff carries tens of level rows, so this is a few % of
  the events), the finest decimals of trades and tickers, the symbol and the market. It then sequences
  the diffs (:func:`.binance_raw._sequence`, the same rules and errors) and fixes the grid: every error
  the whole-file path raises before building frames is raised here, before any batch;
* **pass 2** scans again and turns consecutive groups (the snapshot, then each applied diff) into
  ``events`` / ``book`` / ``trades`` batches of at most ``batch_rows`` level rows (a single larger group,
  e.g. a 2,000-level snapshot, is one batch), carrying the book (:class:`~marketlab.lob.l2.L2Book`), the
  ``seq`` counters and the receive clock's running maximum across batches.

The rows and values equal the whole-file path (:func:`.binance_raw.read_capture` + :func:`.frames`);
tests compare both on the real captures and on crafted files cut into many batches. A capture outside
the scanner's subset (string escapes, non-ASCII, the nautilus CSV layout, a value off a given grid or
beyond 18 digits) is read by the whole-file generic path instead, which accepts or names the problem
exactly as before (memory then follows the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.errors import DataError
from marketlab.store.ingest import _binance_scan as bs

CHUNK_MIN, CHUNK_MAX = 1 << 18, 16 << 20


def chunk_bytes(batch_rows: int) -> int:
    """Text read per scan: ~8 bytes per batch row (USD-M capture: ~68 bytes of text per level row, so a
    chunk holds ~1/8 of a batch's level rows: its text and scan arrays stay small next to the batch)."""
    return int(min(CHUNK_MAX, max(CHUNK_MIN, 8 * batch_rows)))


class Outside(Exception):
    """The capture is outside the fast subset: the caller runs the whole-file generic path."""


def _chunks(paths: list[Path], size: int) -> Iterator[tuple[int, int, bytes, int]]:
    """``(file index, lines before this chunk in its file, chunk, newlines in it)`` over every file, in order."""
    from marketlab.store.ingest._io import iter_chunks

    for i, path in enumerate(paths):
        before = 0
        for data in iter_chunks(path, size):
            n = data.count(b"\n")
            yield i, before, data, n
            before += n


def _scan(data: bytes, newlines: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`._binance_scan.scan` of one chunk whose newlines are counted already. Level rows are
    bounded by the bytes (``["1","1"]`` + a comma: >= 9 bytes a row) instead of counting ``[``: the
    arrays are allocated untouched (``np.empty``), so only the rows written take memory."""
    buf = np.frombuffer(data, dtype=np.uint8)
    msgs = np.empty((newlines + 1, bs.MSG_COLS), dtype=np.int64)
    lv = np.empty((len(data) // 9 + 1, 5), dtype=np.int64)
    tk = np.empty((newlines + 1, 8), dtype=np.int64)
    nm, nlv, ntk, failed = bs.scan_nb(buf, msgs, lv, tk)
    if failed:
        raise Outside
    return msgs[:nm], lv[:nlv], tk[:ntk]


def _segmax(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max(values[lo[i]:hi[i]])`` for disjoint ascending ranges; 0 for an empty range."""
    out = np.zeros(lo.shape[0], dtype=np.int64)
    if lo.shape[0] == 0 or values.shape[0] == 0:
        return out
    ext = np.append(values, 0)  # reduceat needs every index < len: a range may end at the last row
    red = np.maximum.reduceat(ext, np.stack([lo, hi], axis=1).ravel())[::2]
    full = hi > lo
    out[full] = red[full]
    return out


def _symbol(data: bytes, msgs: np.ndarray) -> str:
    """The chunk's symbol (the scanner checked that every message in it has this one), '' when none."""
    kind = msgs[:, 0]
    has = ((kind == bs.M_DEPTH) | (kind == bs.M_TRADE) | (kind == bs.M_TICKER)) & (msgs[:, 11] > msgs[:, 10])
    if not has.any():
        return ""
    r = int(np.flatnonzero(has)[0])
    return data[int(msgs[r, 10]) : int(msgs[r, 11])].decode("ascii")


@dataclass
class Plan:
    """What pass 1 found: everything the whole-file path decides before it builds frames."""

    symbol: str
    market: str
    last_update_id: int
    snapshot_ts: int
    snapshot_levels: np.ndarray  # int64[n, 5]: side, price mantissa, decimals, size mantissa, decimals
    skipped: int  # depth messages (in capture order) before the first applied one
    applied: int  # depth messages applied
    dp: int  # price decimals (tick = 10**-dp)
    dq: int  # size decimals (lot = 10**-dq)


def plan(paths: list[Path], tick_size: float | None, lot_size: float | None, size: int) -> Plan:
    """Pass 1 (module docstring). Raises :class:`Outside` when the generic path must read the capture,
    :class:`DataError` for the errors the whole-file fast path raises itself (no snapshot, no symbol,
    an update-id gap)."""
    from marketlab.store.ingest.binance_raw import _Diff, _given_scale, _sequence

    symbol = ""
    snap: tuple[int, int, int, int, np.ndarray] | None = None  # file, line, ts, id, levels
    diffs: list[np.ndarray] = []  # per chunk int64[n, 7]: file, line, U, u, pu, price dec, size dec
    other_p = other_q = 0  # finest decimals of trades and tickers
    for f, before, data, newlines in _chunks(paths, size):
        msgs, lv, tk = _scan(data, newlines)
        sym = _symbol(data, msgs)
        if sym:
            if symbol and sym != symbol:
                raise Outside  # another symbol: the generic path names its line
            symbol = sym
        kind = msgs[:, 0]
        if snap is None and (kind == bs.M_SNAPSHOT).any():
            s = msgs[int(np.flatnonzero(kind == bs.M_SNAPSHOT)[0])]
            levels = np.concatenate([lv[s[6] : s[7]], lv[s[8] : s[9]]]).copy()
            snap = (f, before + int(s[1]), int(s[2]), int(s[3]), levels)
        dep = msgs[kind == bs.M_DEPTH]
        if dep.shape[0]:
            pd_ = np.maximum(_segmax(lv[:, 2], dep[:, 6], dep[:, 7]), _segmax(lv[:, 2], dep[:, 8], dep[:, 9]))
            qd = np.maximum(_segmax(lv[:, 4], dep[:, 6], dep[:, 7]), _segmax(lv[:, 4], dep[:, 8], dep[:, 9]))
            diffs.append(
                np.stack(
                    [np.full(dep.shape[0], f, np.int64), dep[:, 1] + before, dep[:, 3], dep[:, 4], dep[:, 5], pd_, qd], axis=1
                )
            )
        trd = msgs[kind == bs.M_TRADE]
        tkv = tk[msgs[kind == bs.M_TICKER][:, 6]]
        other_p = max(other_p, int(trd[:, 7].max(initial=0)), int(tkv[:, 1].max(initial=0)), int(tkv[:, 5].max(initial=0)))
        other_q = max(other_q, int(trd[:, 9].max(initial=0)), int(tkv[:, 3].max(initial=0)), int(tkv[:, 7].max(initial=0)))
        del msgs, lv, tk, data
    if snap is None:
        raise DataError(paths[0], 'no REST depth snapshot ({"lastUpdateId": ...}) in the capture; pass the first file too')
    if not symbol:
        raise DataError(paths[0], "no symbol found (no depthUpdate/trade/bookTicker message)")
    d = np.concatenate(diffs) if diffs else np.zeros((0, 7), dtype=np.int64)
    market = "usdm" if bool((d[:, 4] >= 0).any()) else "spot"
    last = snap[3]
    # the same sequencing (rules and error messages) as the whole-file path, on light diff records
    seq = [_Diff(paths[f], line, 0, U, u, None if pu < 0 else pu, [], []) for f, line, U, u, pu, _, _ in d.tolist()]
    applied, skipped = _sequence(seq, last, market)
    del seq
    app = d[skipped : skipped + len(applied)]
    lv = snap[4]
    p_dec = max(int(lv[:, 2].max(initial=0)), int(app[:, 5].max(initial=0)), other_p)
    q_dec = max(int(lv[:, 4].max(initial=0)), int(app[:, 6].max(initial=0)), other_q)
    dp = _given_scale(tick_size, "tick_size") if tick_size is not None else p_dec
    dq = _given_scale(lot_size, "lot_size") if lot_size is not None else q_dec
    if p_dec > dp or q_dec > dq:
        raise Outside  # off the given grid: the generic path names the value
    return Plan(
        symbol=symbol,
        market=market,
        last_update_id=last,
        snapshot_ts=snap[2],
        snapshot_levels=lv,
        skipped=skipped,
        applied=len(applied),
        dp=dp,
        dq=dq,
    )


class _Pending:
    """Groups read but not yet yielded, kept as the pieces each chunk produced (appending copies nothing):
    level rows (group numbered within the piece), the groups' receive times and positions in the capture
    (message ordinal), trades and their positions. A batch is cut off the front: only its rows are joined."""

    def __init__(self) -> None:
        self.pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (upd, gts, gpos), >= 1 group each
        self.rows = 0
        self.trades: list[tuple[np.ndarray, np.ndarray]] = []  # (trades, tpos)
        self.n_trades = 0

    def add(self, upd: np.ndarray, gts: np.ndarray, gpos: np.ndarray, trades: np.ndarray, tpos: np.ndarray) -> None:
        if gts.shape[0]:
            self.pieces.append((upd, gts, gpos))
            self.rows += upd.shape[0]
        if trades.shape[0]:
            self.trades.append((trades, tpos))
            self.n_trades += trades.shape[0]

    def cut(self, batch_rows: int, final: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The first whole groups holding at most ``batch_rows`` level rows (at least one group) and the
        trades received before the next group; None while fewer than ``batch_rows`` rows and trades are
        pending (unless ``final``)."""
        if (not self.pieces and not self.trades) or (not final and self.rows < batch_rows and self.n_trades < batch_rows):
            return None
        upd_l: list[np.ndarray] = []
        gts_l: list[np.ndarray] = []
        rows = 0
        while self.pieces and rows < batch_rows:
            upd, gts, gpos = self.pieces[0]
            room = batch_rows - rows
            if upd.shape[0] <= room:  # the whole piece fits
                self.pieces.pop(0)
            else:  # the groups of this piece that fit; a single larger group alone
                ends = np.searchsorted(upd[:, 0], np.arange(gts.shape[0], dtype=np.int64), side="right")
                g = int(np.searchsorted(ends, room, side="right"))
                if g == 0 and gts_l:
                    break
                g = max(g, 1)
                r = int(ends[g - 1])
                if g == gts.shape[0]:  # one group, larger than the batch
                    self.pieces.pop(0)
                else:
                    rest = upd[r:].copy()
                    rest[:, 0] -= g
                    self.pieces[0] = (rest, gts[g:].copy(), gpos[g:].copy())
                upd, gts = upd[:r], gts[:g]
                room = 0  # the batch is full
            upd_l.append(upd)
            gts_l.append(gts)
            rows += upd.shape[0]
            if room == 0:
                break
        self.rows -= rows
        nxt = int(self.pieces[0][2][0]) if self.pieces else None  # position of the first group not yielded
        t_l = []
        while self.trades and (nxt is None or int(self.trades[0][1][0]) < nxt):
            trades, tpos = self.trades[0]
            k = trades.shape[0] if nxt is None else int(np.searchsorted(tpos, nxt, side="left"))
            t_l.append(trades[:k])
            if k < trades.shape[0]:
                self.trades[0] = (trades[k:], tpos[k:])
                break
            self.trades.pop(0)
        got_t = np.concatenate(t_l) if t_l else np.zeros((0, 4), dtype=np.int64)
        self.n_trades -= got_t.shape[0]
        if len(upd_l) == 1:
            upd_all = upd_l[0]
        else:  # one copy; each piece's groups move past the groups of the pieces before it
            upd_all = np.concatenate(upd_l) if upd_l else np.zeros((0, 4), dtype=np.int64)
            start = goff = 0
            for u, g_ in zip(upd_l, gts_l, strict=True):
                upd_all[start : start + u.shape[0], 0] += goff
                start += u.shape[0]
                goff += g_.shape[0]
        gts_all = np.concatenate(gts_l) if gts_l else np.zeros(0, dtype=np.int64)
        return upd_all, gts_all, got_t


def _scaled(m: np.ndarray, d: np.ndarray, scale: int) -> np.ndarray:
    from marketlab.store.ingest.binance_raw import _scaled as scaled

    out = scaled(m, d, scale)
    if out is None:
        raise Outside  # a value beyond 18 digits in ticks/lots: the generic path names it
    return out


def _levels_rows(lv: np.ndarray, lo: np.ndarray, hi: np.ndarray, side: np.ndarray, group: np.ndarray, p: Plan) -> np.ndarray:
    """``int64[m, 4]`` (group, side, price ticks, size lots) of the level ranges ``[lo, hi)`` in order."""
    lens = hi - lo
    total = int(lens.sum())
    idx = np.repeat(lo - (np.cumsum(lens) - lens), lens) + np.arange(total, dtype=np.int64)
    rows = np.empty((total, 4), dtype=np.int64)
    rows[:, 0] = np.repeat(group, lens)
    rows[:, 1] = np.repeat(side, lens)
    rows[:, 2] = _scaled(lv[idx, 1], lv[idx, 2], p.dp)
    rows[:, 3] = _scaled(lv[idx, 3], lv[idx, 4], p.dq)
    return rows


def batches(paths: list[Path], p: Plan, *, levels: int, batch_rows: int, size: int) -> Iterator[dict[str, Any]]:
    """Pass 2: frames (:func:`.binance_raw.batch_frames`) of consecutive groups, at most ``batch_rows``
    level rows each (a larger single group alone). Raises :class:`Outside` on a value beyond 18 digits."""
    from marketlab.lob.l2 import L2Book
    from marketlab.store.ingest.binance_raw import batch_frames

    book = L2Book()
    seq0 = [0, 0, 0]  # events, book, trades rows already yielded
    clock = np.iinfo(np.int64).min  # receive-time running maximum over the groups yielded so far
    pending = _Pending()
    snap = p.snapshot_levels
    ns = snap.shape[0]
    snap_rows = _levels_rows(
        snap, np.arange(ns, dtype=np.int64), np.arange(1, ns + 1, dtype=np.int64), snap[:, 0], np.zeros(ns, dtype=np.int64), p
    )
    none = np.zeros(0, dtype=np.int64)
    pending.add(
        snap_rows,
        np.array([p.snapshot_ts], dtype=np.int64),
        np.array([-1], dtype=np.int64),
        np.zeros((0, 4), dtype=np.int64),
        none,
    )
    del snap_rows
    ordinal = 0  # depth messages seen, in capture order
    position = 0  # messages seen, in capture order

    def emit(final: bool) -> Iterator[dict[str, Any]]:
        nonlocal clock
        while (got := pending.cut(batch_rows, final)) is not None:
            upd, gts, trades = got
            del got
            gts = np.maximum(np.maximum.accumulate(gts), clock) if gts.shape[0] else gts
            if gts.shape[0]:
                clock = int(gts[-1])
            tops, deltas = book.apply(upd, depth=levels, n_groups=gts.shape[0])
            fr = batch_frames(p.symbol, upd, gts, trades, tops, deltas, levels=levels, seq0=(seq0[0], seq0[1], seq0[2]))
            del upd, tops, deltas
            seq0[0] += fr["events"].height
            seq0[1] += gts.shape[0]
            seq0[2] += trades.shape[0]
            del gts, trades
            yield fr
            del fr

    for _, _, data, newlines in _chunks(paths, size):
        msgs, lv, _tk = _scan(data, newlines)
        del data, _tk
        kind = msgs[:, 0]
        pos = np.arange(position, position + msgs.shape[0], dtype=np.int64)
        position += msgs.shape[0]
        is_dep = kind == bs.M_DEPTH
        dep, dpos = msgs[is_dep], pos[is_dep]
        lo, hi = max(p.skipped - ordinal, 0), max(min(p.skipped + p.applied - ordinal, dep.shape[0]), 0)
        ordinal += dep.shape[0]
        adep = dep[lo:hi]
        n = adep.shape[0]
        group = np.repeat(np.arange(n, dtype=np.int64), 2)
        rows = _levels_rows(
            lv, adep[:, [6, 8]].ravel(), adep[:, [7, 9]].ravel(), np.tile(np.array([1, -1], dtype=np.int64), n), group, p
        )
        is_trd = kind == bs.M_TRADE
        trd = msgs[is_trd]
        trades = np.stack(
            [trd[:, 2], _scaled(trd[:, 6], trd[:, 7], p.dp), _scaled(trd[:, 8], trd[:, 9], p.dq), trd[:, 3]], axis=1
        ).reshape(-1, 4)
        pending.add(rows, adep[:, 2].copy(), dpos[lo:hi], trades, pos[is_trd])
        del msgs, lv, dep, adep, rows, trd, trades, pos, dpos
        yield from emit(False)
    yield from emit(True)
