"""The numba CSV fast path parses exactly what the generic (polars) path parses, or declines."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.store.ingest._fastcsv import count_columns, parse_int_csv

ints = st.integers(min_value=-(10**17), max_value=10**17)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda k: st.lists(st.lists(ints, min_size=k, max_size=k), min_size=1, max_size=40)),
       st.booleans(), st.booleans())
def test_fast_path_equals_polars(rows: list[list[int]], crlf: bool, trailing_newline: bool) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join(",".join(str(v) for v in r) for r in rows) + (end if trailing_newline else "")
    data = text.encode()
    got = parse_int_csv(data, count_columns(data), threads=1)
    assert got is not None
    want = pl.read_csv(data, has_header=False, infer_schema=False).select(pl.all().cast(pl.Int64)).to_numpy()
    assert np.array_equal(got.T, want)
    assert np.array_equal(got.T, np.array(rows, dtype=np.int64))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 86_399), st.integers(0, 10**9 - 1), st.integers(1, 9)), min_size=1, max_size=30))
def test_decimal_seconds_are_exact_ns(times: list[tuple[int, int, int]]) -> None:
    """``secs.fraction`` -> secs * 1e9 + the first 9 fraction digits, whatever the number of digits."""
    lines, want = [], []
    for secs, frac, nd in times:
        digits = f"{frac:09d}"[:nd]
        lines.append(f"{secs}.{digits},1")
        want.append(secs * 10**9 + int(digits.ljust(9, "0")))
    got = parse_int_csv(("\n".join(lines) + "\n").encode(), 2, dec_col=0, threads=1)
    assert got is not None
    assert got[0].tolist() == want


def test_long_input_split_across_threads_keeps_row_order() -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(-(10**12), 10**12, size=(120_000, 8))
    data = "\n".join(",".join(map(str, r)) for r in arr.tolist()).encode() + b"\n"
    assert len(data) > (4 << 20)  # takes the two-thread path
    got = parse_int_csv(data, 8)
    assert got is not None and np.array_equal(got.T, arr)


def test_declines_what_it_does_not_handle() -> None:
    for bad in (b"1,2\n3\n", b"1,2\n3,x\n", b"1,,2\n", b"1,2\n\n3,4\n", b'"1",2\n', b"1.5,2\n",
                b"1234567890123456789,1\n", b"1,2,3\n4,5\n"):
        assert parse_int_csv(bad, count_columns(bad), threads=1) is None, bad
    assert parse_int_csv(b"-1.5,2\n", 2, dec_col=0, threads=1) is None  # negative time: generic path errors
    assert parse_int_csv(b"", 2) is None
