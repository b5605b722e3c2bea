"""Fast path for Binance raw captures: one numba pass over the bytes instead of ``json.loads`` per line.

It reads only a strict subset of what :mod:`marketlab.store.ingest.binance_raw`'s generic path accepts:
printable-ASCII lines ``<digits> <JSON object>`` (``\\n`` or ``\\r\\n`` ends), objects whose values are
strings without escapes, JSON numbers, ``true``/``false``/``null``, the level arrays ``b``/``a``/``bids``/
``asks`` (``[["price", "qty"], ...]``, plain ``digits[.digits]`` decimals of at most 18 digits) and one
nested ``data`` object. The fields the parser needs (``U``, ``u``, ``pu``, ``lastUpdateId``: plain
integers; ``p``, ``q``, ``b``, ``B``, ``a``, ``A``: decimal strings; ``m``: a boolean; ``e``, ``s``:
strings) must have those types. A line outside this subset makes the scan report it and the caller runs the
generic path on the whole input, which then accepts or names the problem exactly as it always did: the fast
path never changes what is accepted, only how fast clean captures go (and a parity test checks equality).

Decimals are kept as ``(mantissa, decimals)`` with trailing zeros stripped, so the tick and lot sizes can be
inferred afterwards (the finest decimal used) and the values scaled exactly in integers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Keys the parser reads (index = code). Any other key's value is validated and skipped.
KEYS = ("data", "e", "s", "U", "u", "pu", "b", "a", "p", "q", "m", "B", "A", "lastUpdateId", "bids", "asks")
K_DATA, K_E, K_S, K_UU, K_U, K_PU, K_B, K_A, K_P, K_Q, K_M, K_BB, K_AA, K_LUI, K_BIDS, K_ASKS = range(16)
EVENTS = ("depthUpdate", "trade", "bookTicker")
EV_DEPTH, EV_TRADE, EV_TICKER = range(3)


def _table(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(w) for w in words)
    tab = np.zeros((len(words), width), dtype=np.uint8)
    lens = np.zeros(len(words), dtype=np.int64)
    for i, w in enumerate(words):
        tab[i, : len(w)] = np.frombuffer(w.encode(), dtype=np.uint8)
        lens[i] = len(w)
    return tab, lens


KEY_TAB, KEY_LEN = _table(KEYS)
EV_TAB, EV_LEN = _table(EVENTS)

# Field slots of one parsed object (int64[NSLOT]). T_* hold a type tag: 0 absent, 1 int, 2 decimal string,
# 3 other string, 4 array of levels, 5 bool, 6 null, 7 other (number with fraction/exponent, ...), 8 object.
NSLOT = 48
S_TYPE = 0  # 16 type tags, one per key code
S_V0 = 16  # 16 first values: int value / decimal mantissa / string start / levels lo / bool
S_V1 = 32  # 16 second values: decimal decimals / string end / levels hi
TY_ABSENT, TY_INT, TY_DEC, TY_STR, TY_LEVELS, TY_BOOL, TY_NULL, TY_OTHER, TY_OBJECT = range(9)

# Output message kinds
M_DEPTH, M_TRADE, M_TICKER, M_SNAPSHOT = 1, 2, 3, 4
# msgs int64[L, 12]: kind, line, ts, U | lastUpdateId | ticker u, u, pu (-1 absent), b_lo, b_hi, a_lo, a_hi,
#   sym_lo, sym_hi (-1 when no "s")
# trades use: b_lo = price mantissa, b_hi = price decimals, a_lo = qty mantissa, a_hi = qty decimals, U = aggressor
# tickers use: U = u, then four decimals in levels rows t_lo (bid, bid qty, ask, ask qty)
MSG_COLS = 12


@njit(cache=True, nogil=True, boundscheck=False)
def _ws(buf: np.ndarray, p: int, n: int) -> int:  # pragma: no cover - compiled
    while p < n and (buf[p] == 32 or buf[p] == 9):
        p += 1
    return p


@njit(cache=True, nogil=True, boundscheck=False)
def _string(buf: np.ndarray, p: int, n: int) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """``p`` at the opening quote -> (start, end, after) of a string without escapes; after = -1 on failure."""
    if p >= n or buf[p] != 34:
        return 0, 0, -1
    s = p + 1
    q = s
    while q < n:
        c = buf[q]
        if c == 34:
            return s, q, q + 1
        if c == 92:  # backslash: escapes are left to the generic path
            return 0, 0, -1
        q += 1
    return 0, 0, -1


@njit(cache=True, nogil=True, boundscheck=False)
def _decimal(buf: np.ndarray, s: int, e: int) -> tuple[int, int, bool]:  # pragma: no cover - compiled
    """``digits[.digits]`` in buf[s:e] -> (mantissa, decimals, ok) with trailing fraction zeros stripped."""
    m = 0
    nd = 0
    d = 0
    p = s
    while p < e and 48 <= buf[p] <= 57:
        m = m * 10 + (buf[p] - 48)
        nd += 1
        p += 1
    if nd == 0:
        return m, 0, False
    if p < e:
        if buf[p] != 46:
            return m, 0, False
        p += 1
        f0 = p
        while p < e and 48 <= buf[p] <= 57:
            m = m * 10 + (buf[p] - 48)
            nd += 1
            d += 1
            p += 1
        if p == f0 or p != e:
            return m, 0, False
    if nd > 18:
        return m, 0, False
    while d > 0 and m % 10 == 0:
        m //= 10
        d -= 1
    return m, d, True


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _digits(buf: np.ndarray, p: int, n: int, least: int) -> int:  # pragma: no cover - compiled
    """End of the run of ASCII digits at ``p``; -1 when it is shorter than ``least``."""
    q = p
    while q < n and 48 <= buf[q] <= 57:
        q += 1
    return q if q - p >= least else -1


@njit(cache=True, nogil=True, boundscheck=False)
def _number(buf: np.ndarray, p: int, n: int) -> tuple[int, bool, int]:  # pragma: no cover - compiled
    """A JSON number at p -> (int value, is_plain_nonneg_int, after); after = -1 when not JSON grammar."""
    s = p
    if p < n and buf[p] == 45:
        p += 1
    if p >= n or not (48 <= buf[p] <= 57):
        return 0, False, -1
    lead = p
    if buf[p] == 48:
        p += 1
    else:
        p = _digits(buf, p, n, 0)
    int_end = p
    plain = buf[s] != 45
    if p < n and buf[p] == 46:
        plain = False
        p = _digits(buf, p + 1, n, 1)  # fraction: at least one digit
        if p < 0:
            return 0, False, -1
    if p < n and (buf[p] == 101 or buf[p] == 69):
        plain = False
        p += 1
        if p < n and (buf[p] == 43 or buf[p] == 45):
            p += 1
        p = _digits(buf, p, n, 1)  # exponent: at least one digit
        if p < 0:
            return 0, False, -1
    v = 0
    if plain:
        if int_end - lead > 18:
            plain = False
        else:
            for k in range(lead, int_end):
                v = v * 10 + (buf[k] - 48)
    return v, plain, p


@njit(cache=True, nogil=True, boundscheck=False)
def _match(tab: np.ndarray, lens: np.ndarray, buf: np.ndarray, s: int, e: int) -> int:  # pragma: no cover - compiled
    """Index of buf[s:e] in the word table, -1 when absent."""
    ln = e - s
    for i in range(tab.shape[0]):
        if lens[i] != ln:
            continue
        ok = True
        for k in range(ln):
            if tab[i, k] != buf[s + k]:
                ok = False
                break
        if ok:
            return i
    return -1


@njit(cache=True, nogil=True, boundscheck=False)
def _same(buf: np.ndarray, a0: int, a1: int, b0: int, b1: int) -> bool:  # pragma: no cover - compiled
    """Whether buf[a0:a1] == buf[b0:b1]."""
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if buf[a0 + k] != buf[b0 + k]:
            return False
    return True


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _string_then(buf: np.ndarray, p: int, n: int, delim: int) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Blanks, a string, blanks and the byte ``delim`` from ``p`` -> (start, end, index of ``delim``); that
    index is -1 on failure."""
    s, e, p = _string(buf, _ws(buf, p, n), n)
    if p < 0:
        return s, e, -1
    p = _ws(buf, p, n)
    if p >= n or buf[p] != delim:
        return s, e, -1
    return s, e, p


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _put_pair(dst: np.ndarray, i: int, st: np.ndarray, key: int) -> None:  # pragma: no cover - compiled
    """``dst[i], dst[i + 1]`` = the two values of field ``key`` in slots ``st`` (mantissa and decimals of a
    decimal, start and end of a string, lo and hi of a levels array)."""
    dst[i] = st[S_V0 + key]
    dst[i + 1] = st[S_V1 + key]


@njit(cache=True, nogil=True, boundscheck=False)
def _levels(buf: np.ndarray, p: int, n: int, lv: np.ndarray, nlv: int, side: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """``[["px","qty"], ...]`` at p -> rows appended to lv (side, pm, pd, qm, qd); returns (after, new nlv)."""
    if buf[p] != 91:
        return -1, nlv
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        return p + 1, nlv
    while True:
        if p >= n or buf[p] != 91:
            return -1, nlv
        s1, e1, p = _string_then(buf, p + 1, n, 44)  # "px",
        if p < 0:
            return -1, nlv
        s2, e2, p = _string_then(buf, p + 1, n, 93)  # "qty"]
        if p < 0:
            return -1, nlv
        pm, pd, ok1 = _decimal(buf, s1, e1)
        qm, qd, ok2 = _decimal(buf, s2, e2)
        if not (ok1 and ok2) or nlv >= lv.shape[0]:
            return -1, nlv
        lv[nlv, 0] = side
        lv[nlv, 1] = pm
        lv[nlv, 2] = pd
        lv[nlv, 3] = qm
        lv[nlv, 4] = qd
        nlv += 1
        p = _ws(buf, p + 1, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 93:
            return p + 1, nlv
        return -1, nlv


@njit(cache=True, nogil=True, boundscheck=False)
def _object(buf: np.ndarray, p: int, n: int, top: np.ndarray, sub: np.ndarray, lv: np.ndarray,
            nlv: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """Parse the object at p into slots ``top``; a nested combined-stream ``data`` object goes into ``sub``
    (iteratively: numba's cache cannot hold recursive functions). Returns (after, nlv); after = -1 when the
    object is outside the fast subset."""
    if p >= n or buf[p] != 123:
        return -1, nlv
    for i in range(NSLOT):
        top[i] = 0
        sub[i] = 0
    st = top
    depth = 0
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return p + 1, nlv
    while True:
        ks, ke, p = _string(buf, p, n)
        if p < 0:
            return -1, nlv
        key = _match(KEY_TAB, KEY_LEN, buf, ks, ke)
        p = _ws(buf, p, n)
        if p >= n or buf[p] != 58:
            return -1, nlv
        p = _ws(buf, p + 1, n)
        if p >= n:
            return -1, nlv
        c = buf[p]
        if c == 34:  # string
            s, e, p = _string(buf, p, n)
            if p < 0:
                return -1, nlv
            if key >= 0:
                m, d, ok = _decimal(buf, s, e)
                if ok:
                    st[S_TYPE + key] = TY_DEC
                    st[S_V0 + key] = m
                    st[S_V1 + key] = d
                else:
                    st[S_TYPE + key] = TY_STR
                    st[S_V0 + key] = s
                    st[S_V1 + key] = e
        elif c == 91:  # array: only level lists
            if key != K_B and key != K_A and key != K_BIDS and key != K_ASKS:
                return -1, nlv
            side = 1 if (key == K_B or key == K_BIDS) else -1
            lo = nlv
            p, nlv = _levels(buf, p, n, lv, nlv, side)
            if p < 0:
                return -1, nlv
            st[S_TYPE + key] = TY_LEVELS
            st[S_V0 + key] = lo
            st[S_V1 + key] = nlv
        elif c == 123:  # object: only the combined-stream "data", one level deep
            if depth != 0 or key != K_DATA:
                return -1, nlv
            for i in range(NSLOT):
                sub[i] = 0
            top[S_TYPE + K_DATA] = TY_OBJECT
            p = _ws(buf, p + 1, n)
            if p < n and buf[p] == 125:
                p += 1  # empty data object; continue in the top object
            else:
                st = sub
                depth = 1
                continue
        elif c == 116 or c == 102 or c == 110:  # true / false / null
            if c == 116 and p + 4 <= n and buf[p + 1] == 114 and buf[p + 2] == 117 and buf[p + 3] == 101:
                ty, val, p = TY_BOOL, 1, p + 4
            elif c == 102 and p + 5 <= n and buf[p + 1] == 97 and buf[p + 2] == 108 and buf[p + 3] == 115 \
                    and buf[p + 4] == 101:
                ty, val, p = TY_BOOL, 0, p + 5
            elif c == 110 and p + 4 <= n and buf[p + 1] == 117 and buf[p + 2] == 108 and buf[p + 3] == 108:
                ty, val, p = TY_NULL, 0, p + 4
            else:
                return -1, nlv
            if key >= 0:
                st[S_TYPE + key] = ty
                st[S_V0 + key] = val
        else:
            v, plain, p = _number(buf, p, n)
            if p < 0:
                return -1, nlv
            if key >= 0:
                st[S_TYPE + key] = TY_INT if plain else TY_OTHER
                st[S_V0 + key] = v
        # after a value: ',' -> next key; '}' closes the data object (back to the top) or the top object
        while True:
            p = _ws(buf, p, n)
            if p < n and buf[p] == 44:
                p = _ws(buf, p + 1, n)
                break
            if p < n and buf[p] == 125:
                if depth == 1:
                    depth = 0
                    st = top
                    p += 1
                    continue
                return p + 1, nlv
            return -1, nlv


@njit(cache=True, nogil=True, boundscheck=False)
def scan_nb(buf: np.ndarray, msgs: np.ndarray, lv: np.ndarray, tk: np.ndarray) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """Scan a whole capture. Returns (n_msgs, n_levels, n_tickers, failed_line): failed_line 0 when every
    line fits the fast subset, else the 1-based line that does not (the caller then uses the generic path).

    ``msgs int64[L, MSG_COLS]`` (see MSG_COLS), ``lv int64[V, 5]`` level rows, ``tk int64[K, 8]`` ticker
    decimals (bid, bid qty, ask, ask qty as mantissa/decimals pairs)."""
    n = buf.shape[0]
    top = np.zeros(NSLOT, dtype=np.int64)
    sub = np.zeros(NSLOT, dtype=np.int64)
    nm = 0
    nlv = 0
    ntk = 0
    line = 0
    p = 0
    sym_lo = -1  # the first symbol of a depth/trade/ticker message; every later one must equal it
    sym_hi = -1
    while p < n:
        line += 1
        # line end and byte check (printable ASCII, '\r' only before '\n')
        e = p
        while e < n and buf[e] != 10:
            c = buf[e]
            if c < 32 or c > 126:
                if not (c == 13 and e + 1 < n and buf[e + 1] == 10):
                    if not (c == 9):
                        return nm, nlv, ntk, line
            e += 1
        end = e - 1 if e > p and buf[e - 1] == 13 else e
        q = _ws(buf, p, end)
        if q == end:  # blank line
            p = e + 1
            continue
        if q != p or not (48 <= buf[p] <= 57):
            return nm, nlv, ntk, line
        ts = np.int64(0)
        nd = 0
        while q < end and 48 <= buf[q] <= 57:
            if ts > 922337203685477579:
                return nm, nlv, ntk, line
            ts = ts * 10 + (buf[q] - 48)
            nd += 1
            q += 1
        if q >= end or buf[q] != 32 or nd > 19:
            return nm, nlv, ntk, line
        q = _ws(buf, q + 1, end)
        q, nlv = _object(buf, q, end, top, sub, lv, nlv)
        if q < 0 or _ws(buf, q, end) != end:
            return nm, nlv, ntk, line
        if nm >= msgs.shape[0]:
            return nm, nlv, ntk, line
        row = msgs[nm]
        row[1] = line
        row[2] = ts
        row[10] = -1
        row[11] = -1
        if top[S_TYPE + K_LUI] != TY_ABSENT:
            if top[S_TYPE + K_LUI] != TY_INT or top[S_TYPE + K_BIDS] != TY_LEVELS or top[S_TYPE + K_ASKS] != TY_LEVELS:
                return nm, nlv, ntk, line
            row[0] = M_SNAPSHOT
            row[3] = top[S_V0 + K_LUI]
            row[4] = top[S_V0 + K_LUI]
            _put_pair(row, 6, top, K_BIDS)
            _put_pair(row, 8, top, K_ASKS)
            nm += 1
            p = e + 1
            continue
        ty_data = top[S_TYPE + K_DATA]
        if ty_data != TY_ABSENT and ty_data != TY_OBJECT:
            return nm, nlv, ntk, line
        st = sub if ty_data == TY_OBJECT else top
        ty_e = st[S_TYPE + K_E]
        ev = -1
        if ty_e == TY_STR:
            ev = _match(EV_TAB, EV_LEN, buf, st[S_V0 + K_E], st[S_V1 + K_E])
        elif ty_e != TY_ABSENT and ty_e != TY_DEC:
            return nm, nlv, ntk, line
        elif ty_e == TY_DEC:
            ev = -1  # a numeric-looking string is a non-event name: not ours
        ty_s = st[S_TYPE + K_S]
        if ty_s == TY_STR:
            _put_pair(row, 10, st, K_S)
        elif ty_s == TY_DEC:
            return nm, nlv, ntk, line  # a symbol that looks like a number: generic path decides
        elif ty_s != TY_ABSENT:
            return nm, nlv, ntk, line
        if ev == EV_DEPTH:
            if st[S_TYPE + K_UU] != TY_INT or st[S_TYPE + K_U] != TY_INT or st[S_TYPE + K_B] != TY_LEVELS \
                    or st[S_TYPE + K_A] != TY_LEVELS:
                return nm, nlv, ntk, line
            ty_pu = st[S_TYPE + K_PU]
            if ty_pu != TY_ABSENT and ty_pu != TY_NULL and ty_pu != TY_INT:
                return nm, nlv, ntk, line
            row[0] = M_DEPTH
            row[3] = st[S_V0 + K_UU]
            row[4] = st[S_V0 + K_U]
            row[5] = st[S_V0 + K_PU] if ty_pu == TY_INT else -1
            _put_pair(row, 6, st, K_B)
            _put_pair(row, 8, st, K_A)
        elif ev == EV_TRADE:
            if st[S_TYPE + K_P] != TY_DEC or st[S_TYPE + K_Q] != TY_DEC or st[S_TYPE + K_M] != TY_BOOL:
                return nm, nlv, ntk, line
            row[0] = M_TRADE
            row[3] = -1 if st[S_V0 + K_M] == 1 else 1
            _put_pair(row, 6, st, K_P)
            _put_pair(row, 8, st, K_Q)
        elif st[S_TYPE + K_U] != TY_ABSENT and st[S_TYPE + K_B] != TY_ABSENT and st[S_TYPE + K_A] != TY_ABSENT \
                and st[S_TYPE + K_BB] != TY_ABSENT:
            if st[S_TYPE + K_U] != TY_INT or st[S_TYPE + K_B] != TY_DEC or st[S_TYPE + K_BB] != TY_DEC \
                    or st[S_TYPE + K_A] != TY_DEC or st[S_TYPE + K_AA] != TY_DEC or ntk >= tk.shape[0]:
                return nm, nlv, ntk, line
            row[0] = M_TICKER
            row[3] = st[S_V0 + K_U]
            row[6] = ntk
            t = tk[ntk]
            _put_pair(t, 0, st, K_B)
            _put_pair(t, 2, st, K_BB)
            _put_pair(t, 4, st, K_A)
            _put_pair(t, 6, st, K_AA)
            ntk += 1
        else:
            row[0] = 0  # a message the parser ignores
        if row[0] != 0 and row[11] > row[10]:
            if sym_lo < 0:
                sym_lo = row[10]
                sym_hi = row[11]
            elif not _same(buf, sym_lo, sym_hi, row[10], row[11]):
                return nm, nlv, ntk, line
        nm += 1
        p = e + 1
    return nm, nlv, ntk, 0


def scan(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(msgs, levels, ticker decimals) of a capture's bytes, or None when a line is outside the fast subset."""
    buf = np.frombuffer(data, dtype=np.uint8)
    lines = data.count(b"\n") + 1
    msgs = np.empty((lines, MSG_COLS), dtype=np.int64)
    lv = np.empty((data.count(b"[") + 1, 5), dtype=np.int64)
    tk = np.empty((lines, 8), dtype=np.int64)
    nm, nlv, ntk, failed = scan_nb(buf, msgs, lv, tk)
    if failed:
        return None
    return msgs[:nm], lv[:nlv], tk[:ntk]
