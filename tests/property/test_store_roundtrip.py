"""Property: whatever valid frame is written comes back exactly (ingest -> read round trip)."""

from __future__ import annotations

import tempfile

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketlab.core.schema import EVENTS_SCHEMA, book_schema
from marketlab.store import IngestBatch, Instrument, Store

NS_DAY = 86_400_000_000_000


@st.composite
def event_frames(draw) -> pl.DataFrame:
    n = draw(st.integers(1, 60))
    syms = draw(st.lists(st.sampled_from(["AAA", "B.B", "C-1", "^IDX"]), min_size=1, max_size=3, unique=True))
    rows = []
    for s in syms:
        t = draw(st.integers(0, 3 * NS_DAY))
        for i in range(n):
            t += draw(st.integers(0, NS_DAY // 3))  # crosses day boundaries, allows equal ts
            rows.append({
                "ts": t, "symbol": s, "seq": i, "type": draw(st.integers(1, 6)),
                "order_id": draw(st.integers(0, 2**40)), "side": draw(st.sampled_from([1, -1])),
                "price": draw(st.integers(1, 10**9)), "size": draw(st.integers(0, 10**6)),
            })
    return pl.DataFrame(rows, schema=EVENTS_SCHEMA)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=event_frames(), levels=st.integers(1, 3))
def test_events_and_book_round_trip_exactly(df: pl.DataFrame, levels: int) -> None:
    book = df.select("ts", "symbol", "seq").with_columns(
        [pl.col("seq").alias(c) for c in book_schema(levels) if c not in ("ts", "symbol", "seq")]
    )
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        ins = [Instrument(s, 0.01, 1.0) for s in df["symbol"].unique().to_list()]
        store.write(IngestBatch("prop", {"events": df, "book": book}, ins))
        key = ["symbol", "ts", "seq"]
        back = store.scan_events("prop").collect()
        assert back.schema == pl.Schema(EVENTS_SCHEMA)
        assert back.sort(key, maintain_order=True).equals(df.sort(key, maintain_order=True))
        bk = store.scan_book("prop").collect()
        assert bk.sort(key, maintain_order=True).equals(book.sort(key, maintain_order=True))
        # a one-symbol range read returns exactly the matching rows
        s = df["symbol"][0]
        lo, hi = int(df["ts"].min()), int(df["ts"].max()) // 2 + 1
        want = df.filter((pl.col("symbol") == s) & (pl.col("ts") >= lo) & (pl.col("ts") < hi))
        got = store.scan_events("prop", s, lo, hi).collect()
        assert got.sort(key, maintain_order=True).equals(want.sort(key, maintain_order=True))
