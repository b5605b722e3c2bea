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

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.store.ingest import _binance_scan as bs

CHUNK_MIN, CHUNK_MAX = 1 << 18, 16 << 20


def chunk_bytes(batch_rows: int) -> int:
    """Text read per scan: ~4 bytes per batch row (USD-M capture: ~68 bytes of text per level row, so a
    chunk holds ~1/16 of a batch's level rows: its text, scan arrays and conversion temporaries stay small
    next to the batch; 1/8 cost ~9 MB more at 1M-row batches, 1/32 ~10% more CPU)."""
    return int(min(CHUNK_MAX, max(CHUNK_MIN, 4 * batch_rows)))


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
    from marketlab.store.ingest.binance_raw import _given_scale, sequence_ids

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
    # the same sequencing (rules and error messages) as the whole-file path
    skipped, applied = sequence_ids(d[:, 2], d[:, 3], d[:, 4], last, market, lambda i: (paths[int(d[i, 0])], int(d[i, 1])))
    app = d[skipped : skipped + applied]
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
        applied=applied,
        dp=dp,
        dq=dq,
    )


@dataclass
class _Piece:
    """Consecutive applied groups already in their stored form: their ``events`` and ``book`` rows, and
    what cutting at a group boundary needs, per group (``int64[G]``): cumulative level rows (``rows``) and
    events (``events_end``), and the position in the capture (message ordinal, for the trades cut)."""

    events: pl.DataFrame
    book: pl.DataFrame
    rows: np.ndarray
    events_end: np.ndarray
    pos: np.ndarray

    def split(self, g: int) -> tuple[_Piece, _Piece]:
        """The first ``g`` groups and the rest (slices: no copy)."""
        r, e = int(self.rows[g - 1]), int(self.events_end[g - 1])
        head = _Piece(self.events.slice(0, e), self.book.slice(0, g), self.rows[:g], self.events_end[:g], self.pos[:g])
        rest = _Piece(self.events.slice(e), self.book.slice(g), self.rows[g:] - r, self.events_end[g:] - e, self.pos[g:])
        return head, rest


class _Pending:
    """Groups and trades read but not yet yielded, as the pieces each chunk produced, already converted to
    frames (the book applied, seq and clock assigned), so what waits is the next batch itself and never
    its raw level rows beside it. A batch is cut off the front at a group boundary; its frames are the
    pieces joined without a copy (polars chunks)."""

    def __init__(self) -> None:
        self.pieces: deque[_Piece] = deque()
        self.rows = 0
        self.trades: deque[tuple[pl.DataFrame, np.ndarray]] = deque()  # (frame, positions)
        self.n_trades = 0

    def add(self, piece: _Piece | None, trades: pl.DataFrame | None, tpos: np.ndarray) -> None:
        if piece is not None:
            self.pieces.append(piece)
            self.rows += int(piece.rows[-1])
        if trades is not None:
            self.trades.append((trades, tpos))
            self.n_trades += trades.height

    def cut(self, batch_rows: int, final: bool) -> tuple[list[_Piece], list[pl.DataFrame]] | None:
        """The first whole groups holding at most ``batch_rows`` level rows (at least one group) and the
        trades received before the next group; None while fewer than ``batch_rows`` rows and trades are
        pending (unless ``final``)."""
        if (not self.pieces and not self.trades) or (not final and self.rows < batch_rows and self.n_trades < batch_rows):
            return None
        taken: list[_Piece] = []
        rows = 0
        while self.pieces and rows < batch_rows:
            piece = self.pieces[0]
            room = batch_rows - rows
            if int(piece.rows[-1]) <= room:  # the whole piece fits
                self.pieces.popleft()
            else:  # the groups of this piece that fit; a single larger group alone
                g = int(np.searchsorted(piece.rows, room, side="right"))
                if g == 0 and taken:
                    break
                g = max(g, 1)
                if g == piece.pos.shape[0]:  # one group, larger than the batch
                    self.pieces.popleft()
                else:
                    piece, self.pieces[0] = piece.split(g)
                room = 0  # the batch is full
            taken.append(piece)
            rows += int(piece.rows[-1])
            if room == 0:
                break
        self.rows -= rows
        nxt = int(self.pieces[0].pos[0]) if self.pieces else None  # position of the first group not yielded
        t_l: list[pl.DataFrame] = []
        while self.trades and (nxt is None or int(self.trades[0][1][0]) < nxt):
            trades, tpos = self.trades[0]
            k = trades.height if nxt is None else int(np.searchsorted(tpos, nxt, side="left"))
            if k < trades.height:
                t_l.append(trades.slice(0, k))
                self.trades[0] = (trades.slice(k), tpos[k:])
                break
            t_l.append(trades)
            self.trades.popleft()
        self.n_trades -= sum(t.height for t in t_l)
        return taken, t_l


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
    """Pass 2: frames (as :func:`.binance_raw.batch_frames`) of consecutive groups, at most ``batch_rows``
    level rows each (a larger single group alone). Raises :class:`Outside` on a value beyond 18 digits.

    Memory: each chunk's groups are applied to the book and turned into frames at once, so between batches
    only those frames wait (the next batch itself), never raw level rows; a batch is joined from them
    without a copy and leaves no reference here while it is out."""
    from marketlab.lob.l2 import L2Book
    from marketlab.store.ingest.binance_raw import batch_frames, trades_frame

    book = L2Book()
    count = [0, 0, 0]  # events, book, trades rows converted so far (the next seq of each)
    clock = np.iinfo(np.int64).min  # receive-time running maximum over the groups converted so far
    pending = _Pending()
    none = np.zeros(0, dtype=np.int64)
    no_trades = np.zeros((0, 4), dtype=np.int64)
    empty = batch_frames(p.symbol, no_trades, none, no_trades, np.zeros((0, 4 * levels), np.int64), none, levels=levels)

    def convert(upd: np.ndarray, gts: np.ndarray, gpos: np.ndarray) -> _Piece | None:
        """Groups ``upd int64[m, 4]`` (group numbered from 0 here, side, ticks, lots) received at ``gts``,
        in capture order: applied to the book now, as frames."""
        nonlocal clock
        g = gts.shape[0]
        if g == 0:
            return None
        gts = np.maximum(np.maximum.accumulate(gts), clock)
        clock = int(gts[-1])
        tops, deltas = book.apply(upd, depth=levels, n_groups=g)
        fr = batch_frames(p.symbol, upd, gts, no_trades, tops, deltas, levels=levels, seq0=(count[0], count[1], 0))
        rows = np.cumsum(np.bincount(upd[:, 0], minlength=g))
        events_end = np.cumsum(np.bincount(upd[deltas != 0, 0], minlength=g))
        count[0] += fr["events"].height
        count[1] += g
        return _Piece(fr["events"], fr["book"], rows, events_end, gpos)

    def trades_of(trades: np.ndarray) -> pl.DataFrame | None:
        if trades.shape[0] == 0:
            return None
        count[2] += trades.shape[0]
        return trades_frame(p.symbol, trades, count[2] - trades.shape[0])

    def take(got: tuple[list[_Piece], list[pl.DataFrame]]) -> dict[str, pl.DataFrame]:
        pieces, trades = got
        out = {
            "events": pl.concat([x.events for x in pieces], rechunk=False) if pieces else empty["events"],
            "book": pl.concat([x.book for x in pieces], rechunk=False) if pieces else empty["book"],
        }
        if sum(t.height for t in trades):
            out["trades"] = pl.concat(trades, rechunk=False)
        return out

    def emit(final: bool) -> Iterator[dict[str, Any]]:
        while (got := pending.cut(batch_rows, final)) is not None:
            box = [take(got)]
            del got
            yield box.pop()  # no local keeps the frames while they are out

    snap = p.snapshot_levels
    ns = snap.shape[0]
    snap_rows = _levels_rows(
        snap, np.arange(ns, dtype=np.int64), np.arange(1, ns + 1, dtype=np.int64), snap[:, 0], np.zeros(ns, dtype=np.int64), p
    )
    pending.add(convert(snap_rows, np.array([p.snapshot_ts], dtype=np.int64), np.array([-1], dtype=np.int64)), None, none)
    del snap_rows
    ordinal = 0  # depth messages seen, in capture order
    position = 0  # messages seen, in capture order

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
        del lv
        pending.add(convert(rows, adep[:, 2].copy(), dpos[lo:hi].copy()), trades_of(trades), pos[is_trd])
        del msgs, dep, adep, rows, trd, trades, pos, dpos
        yield from emit(False)
    yield from emit(True)
