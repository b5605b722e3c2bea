"""LOBSTER / Binance parsers and replay: bad input gives one-line DataErrors naming file, row, field, value."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from marketlab.core.errors import DataError
from marketlab.lob.lobster import replay_messages, verify_lobster
from marketlab.store.ingest import binance_raw, lobster

NAME = "TEST_2012-06-21_34200000_57600000_{}_2.csv"
# a tiny consistent level-2 day: seeded book, add, partial cancel, execution, delete, hidden execution
MSGS = [
    "34200.000000001,1,1,100,1000000,1",
    "34200.5,1,2,50,1000100,-1",
    "34201,2,1,20,1000000,1",
    "34201.25,4,2,50,1000100,-1",
    "34202,3,1,80,1000000,1",
    "34203,5,0,7,1000050,1",
]
BOOK = [  # ask1 px, sz, bid1 px, sz, ask2 ..., bid2 ...  (row i = after message i)
    "1000200,10,1000000,100,1000300,5,999900,30",
    "1000100,50,1000000,100,1000200,10,999900,30",
    "1000100,50,1000000,80,1000200,10,999900,30",
    "1000200,10,1000000,80,1000300,5,999900,30",
    "1000200,10,999900,30,1000300,5,999800,40",
    "1000200,10,999900,30,1000300,5,999800,40",
]


def write_day(tmp: Path, msgs: list[str] = MSGS, book: list[str] = BOOK) -> tuple[Path, Path]:
    m = tmp / NAME.format("message")
    b = tmp / NAME.format("orderbook")
    m.write_text("\n".join(msgs) + "\n")
    b.write_text("\n".join(book) + "\n")
    return m, b


def test_parse_tiny_day(tmp_path):
    m, b = write_day(tmp_path)
    day = lobster.read_lobster(m, b)
    assert day.symbol == "TEST" and day.levels == 2 and day.grid == 100
    # 09:30:00.000000001 New York (EDT, UTC-4) = 13:30 UTC
    assert day.msgs[0, 0] == 1340285400_000000001
    assert day.msgs[:, 1].tolist() == [1, 1, 2, 4, 3, 5]
    batch = lobster.parse([m, b], dataset="t")
    ev, bk = batch.frames["events"], batch.frames["book"]
    assert ev.height == 6 and bk.height == 6 and bk["bid_px_2"][4] == 999800
    assert batch.instruments[0].tick_size == 0.0001


def test_verify_tiny_day_with_deeper_level_entering_view(tmp_path):
    day = lobster.read_lobster(*write_day(tmp_path))
    rep = verify_lobster(day.msgs, day.book, grid=day.grid, repeat_timing=False)
    assert rep.match_rate_all_levels == 1.0 and rep.mismatch_rows == 0
    # row 4: the bid at 100.00 is deleted and 99.98 (never seen) slides in from level 3
    assert rep.strict_match_rate_all_levels < 1.0 and rep.flag_counts["deeper_level_entered_view"] >= 1
    # row 3 executed ask order 2 at 100.01 which was added in the file; row 2 partially cancels order 1
    assert rep.flag_counts["id_never_added_served_by_pre_existing_liquidity"] == 0
    # Known answer by hand: rows 1-3 and 5 match from the messages alone (the ask at 100.03 is in the
    # seed row); only row 4 needs rule 4, which fills exactly one level (bid 99.98 x 40) from the file.
    assert rep.strict_match_rate_all_levels == 4 / 5 and rep.strict_match_rate_level1 == 1.0
    assert rep.max_levels_filled_per_row == 1 and rep.levels_filled_total == 1
    assert rep.strict_mismatch_classes == {"deeper_level_entered_view": 1}


@pytest.mark.parametrize(
    "row,line,field,value",
    [
        (2, "34201,2,1,0,1000000,1", "size", 0),
        (2, "34201,2,1,-5,1000000,1", "size", -5),
        (2, "34201,2,1,20,1000050,1", "price", 1000050),  # off the one-cent grid
        (2, "34200.1,2,1,20,1000000,1", "time", None),  # earlier than row 2
        (2, "34201,9,1,20,1000000,1", "type", 9),
        (2, "34201,2,1,20,1000000,0", "direction", 0),
        (2, "34201,2,1,x,1000000,1", "size", "x"),
    ],
)
def test_lobster_bad_messages(tmp_path, row, line, field, value):
    msgs = list(MSGS)
    msgs[row] = line
    m, b = write_day(tmp_path, msgs)
    with pytest.raises(DataError) as exc:
        lobster.read_lobster(m, b)
    msg = str(exc.value)
    assert "\n" not in msg and m.name in msg and f"row {row + 1}" in msg and f"field '{field}'" in msg
    if value is not None:
        assert repr(value) in msg


def test_lobster_crossed_initial_book(tmp_path):
    book = list(BOOK)
    book[0] = "1000000,10,1000000,100,1000300,5,999900,30"
    m, b = write_day(tmp_path, book=book)
    with pytest.raises(DataError, match=r"row 1, field 'bid_px_1': crossed initial book"):
        lobster.read_lobster(m, b)


def test_lobster_row_count_mismatch(tmp_path):
    m, b = write_day(tmp_path, book=BOOK[:-1])
    with pytest.raises(DataError, match="has 5 rows but the message file has 6"):
        lobster.read_lobster(m, b)


def test_strict_replay_errors_and_book_kept():
    # ts, type, id, size, price, direction
    good = np.array([[1, 1, 1, 10, 100, 1], [2, 1, 2, 5, 101, -1]])
    with pytest.raises(DataError, match=r"f.csv, row 3, field 'order_id': unknown order id .*\(value 7\)"):
        replay_messages(np.vstack([good, [3, 3, 7, 5, 100, 1]]), source="f.csv")
    with pytest.raises(DataError, match=r"row 3, field 'time'"):
        replay_messages(np.vstack([good, [0, 2, 1, 5, 100, 1]]), source="f.csv")
    with pytest.raises(DataError, match=r"row 3, field 'price': new order would cross"):
        replay_messages(np.vstack([good, [3, 1, 3, 5, 101, 1]]), source="f.csv")
    with pytest.raises(DataError, match=r"row 3, field 'size': size larger"):
        replay_messages(np.vstack([good, [3, 4, 1, 11, 100, 1]]), source="f.csv")
    with pytest.raises(DataError, match="crossed initial book"):
        replay_messages(good, strict=False, initial_book=np.array([100, 5, 100, 5]))
    res = replay_messages(np.vstack([good, [3, 4, 1, 4, 100, 1]]), depth=1)
    assert res.batch.snaps[-1].tolist() == [101, 5, 100, 6]


# ---------------------------------------------------------------- Binance raw capture
def capture_lines(gap: bool = False) -> list[str]:
    snap = {"lastUpdateId": 100, "bids": [["10.00", "1.5"], ["9.99", "2"]], "asks": [["10.01", "1"], ["10.03", "4"]]}

    def depth(U, u, b, a):
        return json.dumps(
            {"stream": "x@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": "XUSDT", "U": U, "u": u, "b": b, "a": a}}
        )

    def ticker(u, b, B, a, A):
        return json.dumps({"stream": "x@bookTicker", "data": {"u": u, "s": "XUSDT", "b": b, "B": B, "a": a, "A": A}})

    trade = json.dumps(
        {"stream": "x@trade", "data": {"e": "trade", "E": 1, "s": "XUSDT", "t": 1, "p": "10.01", "q": "0.5", "T": 1, "m": False}}
    )
    lines = [
        "1 " + depth(90, 95, [["9.98", "1"]], []),  # before the snapshot: dropped
        "2 " + depth(96, 102, [["10.00", "0"]], [["10.02", "3"]]),  # received before the snapshot, applies
        "3 " + json.dumps(snap),
        "4 " + ticker(102, "9.99", "2", "10.01", "1"),
        "5 " + trade,
        "6 " + depth(104 if gap else 103, 105, [], [["10.01", "0.5"]]),
        "7 " + ticker(105, "9.99", "2", "10.01", "0.5"),
    ]
    return lines


def write_capture(tmp: Path, lines: list[str]) -> Path:
    p = tmp / "cap.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return p


def test_binance_capture_rebuild_and_frames(tmp_path):
    cap = binance_raw.read_capture(write_capture(tmp_path, capture_lines()))
    assert cap.tick_size == 0.01 and cap.lot_size == 0.1 and cap.skipped_diffs == 1
    rep = binance_raw.verify_capture(cap)
    assert rep["tickers_covered"] == 2 and rep["tickers_exact"] == 2 and rep["agreement_rate_exact"] == 1.0
    fr = binance_raw.frames(cap, levels=2)
    assert fr["book"]["bid_px_1"].to_list() == [1000, 999, 999]
    assert fr["book"]["ask_sz_1"].to_list() == [10, 10, 5]
    assert fr["trades"]["aggressor"].to_list() == [1]
    ev = fr["events"]
    # snapshot 4 adds; diff 1: bid 10.00 removed (type 3), ask 10.02 added; diff 2: ask 10.01 reduced (type 2)
    assert ev["type"].to_list() == [1, 1, 1, 1, 3, 1, 2]
    assert (np.diff(ev["ts"].to_numpy()) >= 0).all()


def test_binance_gap_is_an_error(tmp_path):
    p = write_capture(tmp_path, capture_lines(gap=True))
    with pytest.raises(DataError, match=r"cap.gz, row 6, field 'U': update-id gap after 102 \(value 104\)"):
        binance_raw.read_capture(p)


def test_binance_bad_lines(tmp_path):
    lines = capture_lines()
    lines[3] = lines[3].replace('"10.01"', '"10.011"')
    with pytest.raises(DataError, match="off the price grid"):
        binance_raw.read_capture(write_capture(tmp_path, lines), tick_size=0.01)
    with pytest.raises(DataError, match="row 2: expected '<receive ns> <JSON>'"):
        binance_raw.read_capture(write_capture(tmp_path, [lines[0], "garbage"]))
    with pytest.raises(DataError, match="no REST depth snapshot"):
        binance_raw.read_capture(write_capture(tmp_path, [lines[0], lines[1]]))


def test_nautilus_csv_fixtures(shared_data):
    d = shared_data / "crypto_l2_fixtures"
    cap = binance_raw.read_capture(d / "btcusdt-depth-snap.csv")
    assert cap.symbol == "BTCUSDT" and cap.tick_size == 0.1 and cap.lot_size == 0.001
    tops, _ = binance_raw.rebuild(cap, depth=3)
    # the fixture holds the first 100 snapshot rows, all bids: best bid 20377.00, no asks
    assert tops[0].tolist()[:4] == [0, 0, 203770, 1770] and tops[0, 6] < tops[0, 2]
    # the update file starts 10 minutes after the snapshot: a real update-id gap
    with pytest.raises(DataError, match="update-id gap"):
        binance_raw.read_capture([d / "btcusdt-depth-snap.csv", d / "btcusdt-depth-update.csv"])


def test_cli_book_verify_json_and_bad_input(tmp_path):
    from typer.testing import CliRunner

    from marketlab.cli.main import app

    m, b = write_day(tmp_path)
    r = CliRunner().invoke(app, ["book", "verify", str(m), str(b), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for key in ("rows", "match_rate_level1", "match_rate_all_levels", "match_rate_per_level", "events_per_s"):
        assert key in out
    assert out["rows"] == 6 and len(out["match_rate_per_level"]) == 2
    msgs = list(MSGS)
    msgs[3] = "34201.25,4,2,0,1000100,-1"
    m2, b2 = write_day(tmp_path, msgs)
    r = CliRunner().invoke(app, ["book", "verify", str(m2), str(b2), "--json"])
    assert r.exit_code == 2 and "row 4, field 'size': non-positive size" in r.output
    cap = write_capture(tmp_path, capture_lines())
    r = CliRunner().invoke(app, ["book", "verify-binance", str(cap), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["agreement_rate_exact"] == 1.0


def _long_day(tmp: Path, n: int = 600) -> tuple[list[str], list[str]]:
    """n consistent-enough rows (adds at rising times) for the streaming reader's boundaries."""
    msgs = [f"{34200 + i}.{i:09d},1,{i + 1},{i % 7 + 1},{1000000 + 100 * (i % 5)},1" for i in range(n)]
    book = [f"1001000,{i % 9 + 1},1000000,{i % 7 + 1},1001100,5,999900,30" for i in range(n)]
    return msgs, book


def _stream(m: Path, b: Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    bs = list(lobster.iter_batches([m, b], dataset="t", batch_rows=rows))
    assert all(x.frames["events"].height <= rows for x in bs)
    ev = np.vstack([x.frames["events"].drop("symbol").to_numpy() for x in bs])
    bk = np.vstack([x.frames["book"].drop("symbol").to_numpy() for x in bs])
    return ev, bk


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
@pytest.mark.parametrize("rows", [1, 37, 600, 10_000])
def test_streamed_rows_equal_the_whole_day_across_chunk_and_batch_boundaries(tmp_path, monkeypatch, chunk, rows):
    msgs, book = _long_day(tmp_path)
    msgs[300] = "34500.000000300 , 1, 301 ,+2,1000000,1"  # spaces and '+': only the generic path takes it
    m, b = write_day(tmp_path, msgs, book)
    day = lobster.read_lobster(m, b)
    assert day.msgs[300].tolist() == [1340285400_000000000 + 300 * 10**9 + 300, 1, 301, 2, 1000000, 1]
    monkeypatch.setattr(lobster, "CHUNK_BYTES", chunk)  # many ~1-line text chunks: every boundary is hit
    ev, bk = _stream(m, b, rows)
    assert np.array_equal(ev[:, [0, 2, 3, 6, 5, 4]], day.msgs)  # ts, type, order_id, size, price, side
    assert np.array_equal(ev[:, 1], np.arange(600)) and np.array_equal(bk[:, 2:], day.book)


@pytest.mark.parametrize("chunk", [64, 1 << 20])
@pytest.mark.parametrize(
    "target,row,line,match",
    [
        ("msg", 450, "34650,9,1,20,1000000,1", r"row 451, field 'type': unknown message type"),
        ("msg", 450, "34650,1,1,x,1000000,1", r"row 451, field 'size': not an integer"),
        ("msg", 450, "34000,1,1,5,1000000,1", r"row 451, field 'time': timestamp earlier"),
        ("book", 450, "1001000,-1,1000000,3,1001100,5,999900,30", r"row 451, field 'ask_sz_1': negative size"),
        ("book", 450, "1001000,1,1000050,3,1001100,5,999900,30", r"row 451, field 'bid_px_1': price off the tick"),
    ],
)
def test_streamed_errors_name_the_file_row(tmp_path, monkeypatch, chunk, target, row, line, match):
    """Rows are numbered in the file whatever chunk or batch they fall in (batch 100 rows: row 451 is in batch 5)."""
    msgs, book = _long_day(tmp_path)
    (msgs if target == "msg" else book)[row] = line
    m, b = write_day(tmp_path, msgs, book)
    monkeypatch.setattr(lobster, "CHUNK_BYTES", chunk)
    with pytest.raises(DataError, match=match) as exc:
        list(lobster.iter_batches([m, b], dataset="t", batch_rows=100))
    assert (m.name if target == "msg" else b.name) in str(exc.value)
    with pytest.raises(DataError, match=match):
        lobster.read_lobster(m, b)


@pytest.mark.parametrize("book_rows,msg_rows", [(599, 600), (601, 600), (500, 600), (600, 500)])
def test_streamed_row_count_mismatch_counts_both_files(tmp_path, book_rows, msg_rows):
    msgs, book = _long_day(tmp_path, 601)
    m, b = write_day(tmp_path, msgs[:msg_rows], book[:book_rows])
    want = f"has {book_rows} rows but the message file has {msg_rows}"
    with pytest.raises(DataError, match=want):
        list(lobster.iter_batches([m, b], dataset="t", batch_rows=100))
    with pytest.raises(DataError, match=want):
        lobster.read_lobster(m, b)


def _normalise_book(path, cols, unit):
    """The orderbook check/convert of the parser's kernel on raw rows ``cols``, raising its error."""
    from marketlab.store.ingest._fastcsv import book_rows_nb

    bad = book_rows_nb(cols, 0, cols.shape[1], unit, 1)
    if bad >= 0:
        lobster._book_error(path, cols[:, bad:], bad, unit, 0.01)


@pytest.mark.parametrize("unit", [1, 7, 100, 10_000])
def test_book_grid_check_equals_exact_modulo(tmp_path, unit):
    """The book check tests "multiple of the grid" without an integer division (float quotient, exact
    integer re-multiplication): it must accept and refuse exactly what ``px % unit == 0`` does, also for
    prices near 2**53-2**60 where a float quotient is inexact, and dummies/empty levels pass."""
    rng = np.random.default_rng(7)
    n = 4000
    base = np.concatenate([rng.integers(1, 10**7, n // 2), rng.integers(2**52, 10**17, n // 2)])
    px = np.where(rng.random(n) < 0.5, base - base % unit, base)  # half on the grid, half anywhere
    px[:10] = lobster.DUMMY
    px[10:20] = -lobster.DUMMY
    sz = rng.integers(0, 50, n)
    for i in range(n):
        cols = np.array([[px[i]], [sz[i]]], dtype=np.int64)
        real = sz[i] > 0 and abs(px[i]) != lobster.DUMMY
        bad = real and (px[i] <= 0 or px[i] % unit != 0)
        if bad:
            with pytest.raises(DataError, match="price off the tick grid"):
                _normalise_book(tmp_path / "b.csv", cols, unit)
        else:
            _normalise_book(tmp_path / "b.csv", cols, unit)
            assert cols[:, 0].tolist() == ([int(px[i]), int(sz[i])] if real else [0, 0])


def _reference_book(rows: list[list[int]], unit: int, ratio: int = 1) -> tuple[str, int, str, int] | list[list[int]]:
    """The orderbook rules written plainly (the oracle for the parser's in-pass check): the first negative
    size in file order, else the first real level (size > 0, price not +-9999999999) whose price is not a
    positive multiple of ``unit``, as (problem, 1-based row, field, value); else the converted rows (real
    prices divided by ``ratio``, empty levels (0, 0))."""
    names = [
        f"{side}_{what}_{lvl}" for lvl in (1, 2) for side, what in (("ask", "px"), ("ask", "sz"), ("bid", "px"), ("bid", "sz"))
    ]
    for r, row in enumerate(rows):
        for j in range(1, len(row), 2):
            if row[j] < 0:
                return "negative size", r + 1, names[j], row[j]
    for r, row in enumerate(rows):
        for j in range(0, len(row), 2):
            real = row[j + 1] > 0 and abs(row[j]) != 9999999999
            if real and (row[j] <= 0 or row[j] % unit != 0):
                return "price off the tick grid (0.01 USD)", r + 1, names[j], row[j]
    return [
        [
            v
            for j in range(0, len(row), 2)
            for v in ((row[j] // ratio, row[j + 1]) if row[j + 1] > 0 and abs(row[j]) != 9999999999 else (0, 0))
        ]
        for row in rows
    ]


@pytest.mark.parametrize("tick_size,ratio", [(0.0001, 1), (0.01, 100)])
def test_book_rows_checked_in_the_parse_pass_equal_the_plain_rules(tmp_path, tick_size, ratio):
    """Random orderbook cells (negative and zero sizes, off-grid, zero, negative, empty-level and 8+ digit
    prices, spaces that send a line to the generic path) read by ``read_lobster`` give exactly the
    reference's error (row, field, value) or values: the kernel checks and converts rows in the same pass."""
    rng = np.random.default_rng(11)
    prices = ["1000000", "1001100", "1000050", "0", "-100", "9999999999", "-9999999999", "100000000000", "7", " 1000100"]
    sizes = ["0", "1", "30", "12345678", "-1", "-25", " 5"]
    msgs, book = _long_day(tmp_path, 40)
    for case in range(150):
        rows = [[int(v) for v in line.split(",")] for line in book]
        text = list(book)
        for r in rng.choice(np.arange(1, 40), size=int(rng.integers(1, 4)), replace=False):
            cells = text[r].split(",")
            j = int(rng.integers(0, 8))
            cells[j] = str(rng.choice(prices if j % 2 == 0 else sizes))
            text[r] = ",".join(cells)
            rows[r][j] = int(cells[j])
        m, b = write_day(tmp_path, msgs, text)
        want = _reference_book(rows, 100, ratio)  # the grid is 100 LOBSTER units (0.01 USD) either way
        if isinstance(want, tuple):
            problem, row, field, value = want
            with pytest.raises(DataError) as exc:
                lobster.read_lobster(m, b, tick_size=tick_size)
            assert str(exc.value) == str(DataError(b, problem, field=field, row=row, value=value)), case
        else:
            assert lobster.read_lobster(m, b, tick_size=tick_size).book.tolist() == want, case


def _prefetch_threads() -> int:
    import threading

    return sum(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_prefetch_hands_over_pieces_and_the_error_in_order():
    from marketlab.store.ingest._io import Prefetch

    def pieces():
        yield b"a\n"
        yield b"b\n"
        raise DataError("x.csv.gz", "cannot decompress (truncated)")

    got = []
    p = Prefetch(pieces())
    with pytest.raises(DataError, match="truncated"):
        for c in p:
            got.append(c)
    p.close()
    assert got == [b"a\n", b"b\n"] and _prefetch_threads() == 0


@pytest.mark.parametrize("book", [[""], ["1,2,3"] * 600, BOOK[:1] * 600])  # empty; 3 columns; 8 for level 2
def test_refused_orderbook_leaves_no_prefetch_thread(tmp_path, monkeypatch, book):
    """The reader refuses the orderbook in its constructor (the caller gets nothing to close) while its
    decompression thread is still pieces ahead (64-byte pieces): that thread must stop there, or every
    such ingest leaks a thread."""
    monkeypatch.setattr(lobster, "CHUNK_BYTES", 64)
    before = _prefetch_threads()
    m, b = write_day(tmp_path, book=book)
    if book[0] == BOOK[0]:  # a level-2 file named level 1
        b = b.rename(b.with_name(b.name.replace("_2.csv", "_1.csv")))
        m = m.rename(m.with_name(m.name.replace("_2.csv", "_1.csv")))
    with pytest.raises(DataError):
        lobster.read_lobster(m, b)
    with pytest.raises(DataError):
        list(lobster.iter_batches([m, b], dataset="t"))
    assert _prefetch_threads() == before
