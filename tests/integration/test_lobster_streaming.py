"""The streaming LOBSTER reader on real days: bounded batches, the same rows as an independent whole-file read,
memory bounded by the batch (not the file), and a streamed store ingest equal to a one-batch one."""

from __future__ import annotations

import gc
import gzip
import tracemalloc
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from marketlab.store import Store
from marketlab.store.ingest import lobster

pytestmark = pytest.mark.integration
DIR = "lobster_sample_2012-06-21"
STEM = "{}_2012-06-21_34200000_57600000_{}_{}.csv.gz"
MIDNIGHT_UTC_NS = 1_340_251_200 * 10**9  # 2012-06-21 00:00 America/New_York (EDT) = 04:00 UTC


def pair(shared_data, ticker: str, level: int):
    d = shared_data / DIR
    return d / STEM.format(ticker, "message", level), d / STEM.format(ticker, "orderbook", level)


def independent(msg, book) -> tuple[np.ndarray, np.ndarray]:
    """Events and book read without marketlab's parser: Python's csv text, Decimal seconds, numpy."""
    rows = [line.split(",") for line in gzip.decompress(msg.read_bytes()).decode().splitlines()]
    ts = np.array([MIDNIGHT_UTC_NS + int(Decimal(r[0]) * 10**9) for r in rows], dtype=np.int64)
    m = np.array([[int(x) for x in r[1:]] for r in rows], dtype=np.int64)  # type, id, size, price, direction
    halt = m[:, 0] == 7
    ev = np.column_stack([ts, np.arange(len(rows)), m[:, 0], m[:, 1], np.where(halt, 0, m[:, 4]),
                          np.where(halt, 0, m[:, 3]), np.where(halt, 0, m[:, 2])])
    b = np.loadtxt(gzip.open(book), delimiter=",", dtype=np.int64)
    px, sz = b[:, 0::2], b[:, 1::2]
    empty = (np.abs(px) == 9_999_999_999) | (sz <= 0)
    b[:, 0::2] = np.where(empty, 0, px)
    b[:, 1::2] = np.where(empty, 0, sz)
    return ev, b


@pytest.mark.parametrize("ticker,level,batch_rows", [("AMZN", 5, 9_999), ("GOOG", 1, 4_096)])
def test_streamed_batches_are_bounded_and_equal_the_file(shared_data, ticker, level, batch_rows):
    msg, book = pair(shared_data, ticker, level)
    batches = list(lobster.iter_batches([msg, book], dataset="s", batch_rows=batch_rows))
    assert len(batches) > 5
    for i, b in enumerate(batches):
        ev, bk = b.frames["events"], b.frames["book"]
        assert ev.height == bk.height and 0 < ev.height <= batch_rows
        assert ev.height == batch_rows or i == len(batches) - 1  # only the last batch is short
        assert ev["seq"][0] == i * batch_rows and bk["seq"].equals(ev["seq"])
    ev = pl.concat([b.frames["events"] for b in batches])
    bk = pl.concat([b.frames["book"] for b in batches])
    want_ev, want_bk = independent(msg, book)
    got_ev = ev.select("ts", "seq", "type", "order_id", "side", "price", "size").to_numpy().astype(np.int64)
    assert np.array_equal(got_ev, want_ev)
    assert np.array_equal(bk.drop("ts", "symbol", "seq").to_numpy(), want_bk)
    whole = lobster.parse([msg, book], dataset="s")  # the one-batch convenience: the same frames
    assert whole.frames["events"].equals(ev) and whole.frames["book"].equals(bk)


def _peak_traced(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_is_bounded_by_the_batch_not_the_file(shared_data):
    """numpy buffers and the decompressed text are traced by tracemalloc: streaming a level-10 day (148k rows,
    ~55 MB of arrays, ~40 MB of text) in 4,000-row batches holds a batch (~1.5 MB) and ~1 MiB of text per
    file; the whole-file read holds the day."""
    msg, book = pair(shared_data, "GOOG", 10)

    def stream(rows: int = 4_000) -> None:
        it = lobster.iter_batches([msg, book], dataset="s", batch_rows=rows)
        while (box := [next(it, None)])[0] is not None:  # hold no batch while the next is built
            box.pop()

    stream(100_000)  # one-off costs (loading the compiled kernels) are not the reader's memory
    streamed = _peak_traced(stream)
    whole = _peak_traced(lambda: lobster.read_lobster(msg, book))
    batch_bytes = 4_000 * (6 + 40) * 8
    assert whole > 50e6
    assert streamed < 4 * batch_bytes + 6 * 2**20, (streamed, whole)


def test_streamed_store_ingest_adopts_each_batch_and_equals_one_batch(shared_data, tmp_path):
    msg, book = pair(shared_data, "AMZN", 1)
    streamed, one = Store(tmp_path / "a"), Store(tmp_path / "b")
    rep = streamed.ingest("lobster", [msg, book], dataset="d", batch_rows=10_000)
    one.write(lobster.parse([msg, book], dataset="d"))
    n = rep.rows["events"]
    assert n == 57_515 and rep.added == {"events": n, "book": n}
    for kind in ("events", "book"):
        assert streamed.read(kind, "d").equals(one.read(kind, "d"))
        # batches of one partition in key order are committed as staged (one file each), never re-read and merged
        assert len(streamed.files(kind, "d")) == -(-n // 10_000)
    again = streamed.ingest("lobster", [msg, book], dataset="d", batch_rows=7_000)
    assert again.skipped
