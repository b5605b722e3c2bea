"""Fast path for headerless all-integer CSV files (LOBSTER message/orderbook files): one numba pass.

The generic path (polars ``read_csv`` as strings, then a checked cast) names the first bad cell exactly but
costs ~1 s per LOBSTER level-10 day; this kernel parses the same bytes (~1 GB/s: a level-10 orderbook day,
34 MB of text, in ~32 ms) into column-major ``int64`` arrays (each column contiguous, so frames are built
without copies). It accepts only clean input: optional spaces around each cell, an optional ``-``, 1..18
digits, ``,`` between cells, ``\\n`` or ``\\r\\n`` line ends. Anything else (wrong column count, empty
cell, a letter, an overflow, an empty line) makes it stop at that line and the caller hands the rest to the
generic path, which then raises the precise one-line :class:`DataError` (or accepts what the generic rules
accept). So the fast path never changes what is accepted, only how fast clean files go.

Cells of up to 7 digits (every price and size of a LOBSTER book) are read 8 bytes at a time (SWAR: one
load, a bytewise digit mask, three multiplications), not digit by digit. One column may be a decimal
(``seconds.fraction``): it is parsed exactly to integer nanoseconds (``secs * 1e9 + first 9 fraction
digits``, further digits truncated as the generic path does). Orderbook rows can be checked and converted
in the same pass, while they are in cache (:class:`BookPairs`), instead of in two more passes over the batch.

:class:`IntRows` reads a file in bounded pieces: decompressed chunks of ~1 MiB (line-aligned) are parsed
while they are in cache, straight into the caller's output array, so a streaming reader's memory is its
batch and a whole-file read never holds the decompressed text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from marketlab.store.ingest._jit import kernel

SP, CR, LF, COMMA, MINUS, DOT = 32, 13, 10, 44, 45, 46
CHUNK_BYTES = 1 << 20  # decompressed bytes parsed per step: stays in cache, bounds a stream's text buffer
EMPTY_PRICE = 9999999999  # LOBSTER's price of an empty book level (+ on the ask side, - on the bid side)

# SWAR: one uint64 holds 8 characters, the first in its lowest byte
_ZEROS = np.uint64(0x3030303030303030)  # "00000000"
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_BYTE_PAIRS = np.uint64(0x000000FF000000FF)
_MUL_100_1E6 = np.uint64(100 + (1_000_000 << 32))
_MUL_1_1E4 = np.uint64(1 + (10_000 << 32))


@intrinsic
def _load_u64_intrinsic(typingctx: Any, buf: Any, pos: Any) -> Any:  # pragma: no cover - compiled
    """``buf[pos:pos+8]`` (``uint8``) as one little-endian ``uint64``: a single unaligned load (numba
    would otherwise load and shift 8 bytes). The caller guarantees ``pos + 8 <= len(buf)``."""
    sig = types.uint64(buf, pos)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.bitcast(builder.gep(arr.data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen


# typed for mypy as what the kernels call: (uint8 buffer, offset) -> uint64
_load_u64 = cast(Callable[[np.ndarray, int], np.uint64], _load_u64_intrinsic)
_trailing_zeros = cast(Callable[[np.uint64], np.uint64], trailing_zeros)


@kernel()
def _level_nb(px: int, sz: int, unit: int, inv: float) -> int:  # pragma: no cover - compiled
    """One orderbook level (raw LOBSTER units): 1 a real level (size > 0, price not +-``EMPTY_PRICE``) whose
    price is a positive multiple of ``unit``, 0 an empty level, -1 a bad one (a negative size, or a real
    level's price off the grid). ``inv`` is ``1 / unit``.

    "Multiple of ``unit``" without an integer division per level (a ~25-cycle instruction for a runtime
    divisor): ``q = round(px / unit)`` in floating point, then ``q * unit == px`` exactly; only when that
    fails (a price off the grid, or one above 2**52 whose float quotient is inexact) does the exact ``%``
    decide, so the result is always the exact test's."""
    if sz < 0:
        return -1
    if sz > 0 and px != EMPTY_PRICE and px != -EMPTY_PRICE:
        if px <= 0 or (np.int64(px * inv + 0.5) * unit != px and px % unit != 0):
            return -1
        return 1
    return 0


@kernel()
def _book_row_nb(out: np.ndarray, row: int, unit: int, ratio: int) -> bool:  # pragma: no cover - compiled
    """Check, then convert in place, one orderbook row ``out[:, row]`` of (price, size) pairs: good when
    no level is bad (:func:`_level_nb`); then real prices become ``price // ratio`` and empty levels
    (0, 0). A bad row is left as it was and False returned."""
    inv = 1.0 / unit
    for j in range(0, out.shape[0], 2):
        if _level_nb(out[j, row], out[j + 1, row], unit, inv) < 0:
            return False
    for j in range(0, out.shape[0], 2):
        if _level_nb(out[j, row], out[j + 1, row], unit, inv) == 0:
            out[j, row] = 0
            out[j + 1, row] = 0
        elif ratio != 1:  # LOBSTER's own unit (the default): no division
            out[j, row] = out[j, row] // ratio
    return True


@kernel()
def book_rows_nb(out: np.ndarray, a: int, b: int, unit: int, ratio: int) -> int:  # pragma: no cover - compiled
    """:func:`_book_row_nb` over rows ``a .. b-1`` of ``out`` (``int64[4L, cap]``); returns the first bad
    row (it and the rows after it are left raw) or -1."""
    for r in range(a, b):
        if not _book_row_nb(out, r, unit, ratio):
            return r
    return -1


@kernel()
def parse_rows_nb(
    buf: np.ndarray, lo: int, hi: int, ncols: int, dec_col: int, out: np.ndarray, row0: int, max_rows: int, unit: int, ratio: int
) -> tuple[int, int, int, int]:  # pragma: no cover
    """Parse lines of ``buf[lo:hi]`` (``uint8``) into ``out[:, row0:]`` (``int64[ncols, cap]``), at most
    ``max_rows`` of them.

    Returns ``(rows, pos, ok, bad)``: rows parsed, the offset just past the last parsed line, ``ok`` 0
    when the line starting at ``pos`` does not fit the strict grammar (the caller hands the rest to its
    generic path), 1 otherwise, and ``bad``: with ``unit > 0`` the rows are orderbook rows checked and
    converted level by level as they are parsed (:func:`_level_nb`: a size is checked with its level's
    price while both are in registers); ``bad`` is the first row that failed, else -1. From
    ``bad`` on, prices are left as read (not divided by ``ratio``) and only empty levels are zeroed, which
    leaves every negative size and every real level's price as it was, for the caller's error report
    (:class:`BookPairs`). ``dec_col`` (-1 for none) is parsed as non-negative ``secs.fraction`` to int ns. A line must end in ``\\n`` unless it ends the buffer.

    A cell of 1..7 plain digits (prices and sizes) is read with one 8-byte load: the digit run's length
    from a bytewise "is a digit" mask, its value by three multiplications (SWAR); anything else (spaces,
    a sign, 8+ digits, the decimal column, the last 7 bytes of the buffer) takes the byte loop.
    """
    n = hi
    p = lo
    row = row0
    end_row = row0 + max_rows
    bad = -1
    inv = 1.0 / unit if unit > 0 else 0.0
    px = np.int64(0)  # the price of the level whose size comes next (orderbook rows)
    while p < n and row < end_row:
        start = p
        col = 0
        row_bad = False
        while True:
            if col >= ncols:
                return row - row0, start, 0, bad
            v = np.int64(0)
            k = 0
            if col != dec_col and p + 8 <= n:
                x = _load_u64(buf, p)
                # non-zero bytes where a character is not '0'..'9' (the +6 carries only out of bytes that
                # are themselves flagged, into later characters, which are not looked at)
                nondigit = ((x & _HIGH_NIBBLES) ^ _ZEROS) | (((x + _SIXES) & _HIGH_NIBBLES) ^ _ZEROS)
                if nondigit != 0:
                    k = int(np.int64(_trailing_zeros(nondigit) >> np.uint64(3)))  # leading digits (0..7)
                if k:
                    # the k digits moved to the top bytes (the bytes below become leading zeros), then
                    # pairs, quads and the 8-digit value by multiply-and-shift
                    t = (x - _ZEROS) << np.uint64(64 - 8 * k)
                    t = t * np.uint64(10) + (t >> np.uint64(8))
                    t = ((t & _BYTE_PAIRS) * _MUL_100_1E6 + ((t >> np.uint64(16)) & _BYTE_PAIRS) * _MUL_1_1E4) >> np.uint64(32)
                    v = np.int64(t)
                    p += k
            if k == 0:
                while p < n and buf[p] == SP:
                    p += 1
                neg = False
                if p < n and buf[p] == MINUS:
                    neg = True
                    p += 1
                nd = 0
                while p < n:
                    d = np.int64(buf[p]) - 48
                    if d < 0 or d > 9:
                        break
                    v = v * 10 + d
                    nd += 1
                    p += 1
                if nd == 0 or nd > 18:
                    return row - row0, start, 0, bad
                if col == dec_col:
                    if neg:
                        return row - row0, start, 0, bad
                    frac = np.int64(0)
                    nf = 0
                    if p < n and buf[p] == DOT:
                        p += 1
                        while p < n:
                            d = np.int64(buf[p]) - 48
                            if d < 0 or d > 9:
                                break
                            if nf < 9:
                                frac = frac * 10 + d
                            nf += 1
                            p += 1
                        if nf == 0:
                            return row - row0, start, 0, bad
                    while nf < 9:
                        frac *= 10
                        nf += 1
                    if v > 9_000_000_000:  # seconds * 1e9 must fit int64
                        return row - row0, start, 0, bad
                    v = v * 1_000_000_000 + frac
                elif neg:
                    v = -v
            while p < n and buf[p] == SP:
                p += 1
            if unit > 0:  # orderbook rows: each level checked as its size is read (_level_nb)
                if col & 1 == 0:
                    px = v
                else:
                    level = _level_nb(px, v, unit, inv)
                    if level < 0:
                        row_bad = True
                    elif level == 0:  # an empty level: (0, 0)
                        out[col - 1, row] = 0
                        v = np.int64(0)
            out[col, row] = v
            col += 1
            if p >= n:
                break
            c = buf[p]
            if c == COMMA:
                p += 1
                continue
            if c == CR:
                p += 1
                if p < n and buf[p] != LF:
                    return row - row0, start, 0, bad
            if p < n:
                if buf[p] != LF:
                    return row - row0, start, 0, bad
                p += 1
            break
        if col != ncols:
            return row - row0, start, 0, bad
        if row_bad:
            if bad < 0:
                bad = row
        elif ratio != 1 and bad < 0:  # real prices in ticks (LOBSTER's own unit, the default, needs none)
            for j in range(0, ncols, 2):
                if out[j + 1, row] > 0:
                    out[j, row] = out[j, row] // ratio
        row += 1
    return row - row0, p, 1, bad


def parse_int_csv(data: bytes, ncols: int, dec_col: int = -1, *, threads: int = 2) -> np.ndarray | None:
    """``int64[ncols, rows]`` from clean headerless integer CSV bytes, or None when the strict grammar
    does not hold (the caller then uses its generic, error-reporting path).

    Inputs over 4 MB are cut at a line end and the halves parsed in two threads (the kernel releases the
    GIL); the row offset of the second half is the line count of the first, so rows land in order.
    """
    if ncols <= 0 or not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    cap = data.count(b"\n") + 1
    out = np.empty((ncols, cap), dtype=np.int64)
    n = len(data)
    cut = data.find(b"\n", n // 2) + 1 if threads > 1 and n > (4 << 20) else 0
    if cut <= 0 or cut >= n:
        rows, pos, ok, _ = parse_rows_nb(buf, 0, n, ncols, dec_col, out, 0, cap, 0, 1)
        return out[:, :rows] if ok and rows and pos == n else None
    first = data.count(b"\n", 0, cut)
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(parse_rows_nb, buf, cut, n, ncols, dec_col, out, first, cap, 0, 1)
        rows1, pos1, ok1, _ = parse_rows_nb(buf, 0, cut, ncols, dec_col, out, 0, first, 0, 1)
        rows2, pos2, ok2, _ = second.result()
    if not (ok1 and ok2) or rows1 != first or pos1 != cut or pos2 != n:
        return None
    return out[:, : rows1 + rows2]


def count_columns(data: bytes) -> int:
    """Cells in the first line (commas + 1); 0 for empty input."""
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    return first.count(b",") + 1 if first.strip() else 0


def count_rows(data: bytes) -> int:
    """Lines in ``data`` (a last line without its newline counts)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# The generic path for lines the kernel declines: ``(text, index of its first row in the file) ->
# int64[ncols, rows]``; it raises the one-line DataError (rows numbered from that index) or returns them.
Generic = Callable[[bytes, int], np.ndarray]


@dataclass(frozen=True)
class BookPairs:
    """Rows are orderbook rows of (price, size) pairs, checked and converted as they land
    (:func:`_level_nb`): ``unit`` is the grid every real price must be a multiple of, ``ratio`` what
    real prices are divided by. ``report(cols, file_row)`` gets the rows from the first bad one to the end
    of its piece (``int64[ncols, k]``, the first being row ``file_row`` of the file, 0-based) with sizes
    and real levels' prices as read (empty levels may be zeroed) and raises the one-line error."""

    unit: int
    ratio: int
    report: Callable[[np.ndarray, int], None]


class IntRows:
    """Rows of a headerless integer CSV stream, parsed in bounded pieces into the caller's arrays.

    ``chunks`` yields line-aligned text (``_io.iter_chunks``); each chunk is parsed by the kernel right
    away, straight into the output of :meth:`read_into`; from a line the kernel declines, the rest of that
    chunk goes through ``generic`` (exact errors) and its rows are served from there. With ``book``, every
    row is checked and converted in cache as it lands (:class:`BookPairs`), whichever path parsed it.
    Memory: one chunk of text (plus, on the generic path, that chunk's rows).
    """

    def __init__(
        self, chunks: Iterator[bytes], ncols: int, dec_col: int, generic: Generic, book: BookPairs | None = None
    ) -> None:
        self._chunks = chunks
        self.ncols = ncols
        self._dec = dec_col
        self._generic = generic
        self._book = book
        self._unit, self._ratio = (book.unit, book.ratio) if book is not None else (0, 1)
        self.served = 0  # rows handed out so far
        self._buf: np.ndarray = np.zeros(0, np.uint8)
        self._text = b""
        self._pos = 0
        self._pending: np.ndarray | None = None  # rows parsed by the generic path, not yet served
        self._pending_at = 0
        self.file_rows = 0  # rows taken from the file so far (served or pending)

    @classmethod
    def open(
        cls, path: Path, ncols: int, dec_col: int, generic: Generic, book: BookPairs | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> IntRows:
        from marketlab.store.ingest._io import iter_chunks

        return cls(iter_chunks(path, chunk_bytes), ncols, dec_col, generic, book)

    def _next_chunk(self) -> bool:
        text = next(self._chunks, None)
        if text is None:
            self._text, self._buf, self._pos = b"", np.zeros(0, np.uint8), 0
            return False
        self._text, self._buf, self._pos = text, np.frombuffer(text, np.uint8), 0
        return True

    def read_into(self, out: np.ndarray, row0: int, max_rows: int) -> int:
        """Fill ``out[:, row0:row0+k]`` with the next ``k <= max_rows`` rows; ``k < max_rows`` only at the
        end of the stream."""
        got = 0
        while got < max_rows:
            at = row0 + got
            if self._pending is not None:
                take = min(max_rows - got, self._pending.shape[1] - self._pending_at)
                out[:, at : at + take] = self._pending[:, self._pending_at : self._pending_at + take]
                self._pending_at += take
                if self._book is not None:
                    self._check(out, at, book_rows_nb(out, at, at + take, self._unit, self._ratio), at + take)
                self.served += take
                got += take
                if self._pending_at == self._pending.shape[1]:
                    self._pending = None
                continue
            if self._pos >= len(self._buf) and not self._next_chunk():
                break
            rows, pos, ok, bad = parse_rows_nb(
                self._buf, self._pos, len(self._buf), self.ncols, self._dec, out, at, max_rows - got, self._unit, self._ratio
            )
            self._check(out, at, bad, at + rows)
            self.served += rows
            got += rows
            self.file_rows += rows
            self._pos = pos
            if not ok:
                rest = self._generic(self._text[pos:], self.file_rows)
                self._pos = len(self._buf)
                self.file_rows += rest.shape[1]
                self._pending, self._pending_at = rest, 0
        return got

    def _check(self, out: np.ndarray, at: int, bad: int, end: int) -> None:
        """Report the piece ``out[:, at:end]``'s first bad orderbook row ``bad`` (-1: none); call before the
        piece is counted in ``served``."""
        if bad >= 0:
            assert self._book is not None
            self._book.report(out[:, bad:end], self.served + bad - at)

    def count_rest(self) -> int:
        """Rows left in the stream (consumes it): for a row-count mismatch message."""
        n = 0 if self._pending is None else self._pending.shape[1] - self._pending_at
        n += count_rows(self._text[self._pos :])
        while self._next_chunk():
            n += count_rows(self._text)
        self._pending = None
        return n
