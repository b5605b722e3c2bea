"""A streamed ingest holds one batch at a time, by structure (issue 13): the parsers keep no reference to a
batch they yielded, the writer frees each partition of a batch once its file is written and the whole batch
before the parser builds the next, and the pieces that bound a write's temporaries (Parquet row groups,
key checks slice by slice) give the same files and answers as doing it whole.

Memory itself is a benchmark figure (benchmarks/ingest_memory.py), never asserted here: these tests watch
which arrays are still alive (finalizers on numpy buffers that polars shares without a copy)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import StoreError
from marketlab.core.timeutil import NS_PER_DAY
from marketlab.store import IngestBatch, Instrument, Store, keys, validate, writer
from marketlab.store.ingest import binance_raw, ohlcv
from tests.support.binance import long_capture_lines, write_capture

DAY0 = 19_723 * NS_PER_DAY  # 2024-01-01
ROWS = 50  # bars per day


class Alive:
    """Names of the numpy buffers not yet freed (a finalizer per buffer)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def track(self, name: str, a: np.ndarray) -> np.ndarray:
        self.names.add(name)
        weakref.finalize(a, self.names.discard, name)
        return a


def _day(alive: Alive, batch: int, day: int) -> pl.DataFrame:
    """One day of 1-minute bars whose numeric columns are numpy buffers polars shares (no copy)."""
    ts = DAY0 + day * NS_PER_DAY + np.arange(ROWS, dtype=np.int64) * 60 * 10**9
    cols: dict[str, object] = {"ts": alive.track(f"b{batch}d{day}", ts), "symbol": ["AAA"] * ROWS}
    for c in ("open", "high", "low", "close", "volume", "vwap"):
        cols[c] = np.full(ROWS, 10.0)
    cols["trades"] = np.ones(ROWS, dtype=np.int64)
    return pl.DataFrame(cols)


def _batches(alive: Alive, seen: list[set[str]], n_batches: int = 3, days: int = 3) -> Iterator[IngestBatch]:
    """``n_batches`` batches of ``days`` days each (one frame joined without a copy); ``seen`` records which
    buffers are still alive each time the next batch is asked for."""
    for b in range(n_batches):
        seen.append(set(alive.names))
        frame = pl.concat([_day(alive, b, b * days + d) for d in range(days)], rechunk=False)
        box = [IngestBatch("x", {"bars": frame}, [Instrument("AAA", 0.01, 1.0)], {})]
        del frame
        yield box.pop()  # a parser keeps no reference to the batch it hands out


def test_the_writer_frees_each_partition_once_written_and_the_batch_before_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive, seen, at_write = Alive(), [], []
    real = writer.write_parquet

    def watched(df: pl.DataFrame, path: Path) -> None:
        gc.collect()
        at_write.append(set(alive.names))
        real(df, path)

    monkeypatch.setattr(writer, "write_parquet", watched)
    rep = Store(tmp_path / "s").write(_batches(alive, seen))
    assert rep.rows["bars"] == 3 * 3 * ROWS
    # the parser builds batch k while nothing of batch k-1 is alive
    assert seen == [set(), set(), set()]
    # day d of batch b is written while only days d.. of that batch are alive (earlier ones were freed)
    assert at_write == [{f"b{b}d{d}" for d in range(3 * b + k, 3 * b + 3)} for b in range(3) for k in range(3)]
    assert not alive.names


def test_a_caller_that_keeps_its_batch_keeps_it_whole(tmp_path: Path) -> None:
    """``Store.write(batch)``: the caller's frames are never emptied, only the writer's own references go."""
    alive = Alive()
    batch = next(_batches(alive, []))
    Store(tmp_path / "s").write(batch)
    assert batch.frames["bars"].height == 3 * ROWS and len(alive.names) == 3


def _gone_after_yield(batches: Iterator[IngestBatch]) -> list[bool]:
    """For each batch a parser yields: whether every frame object is gone once the consumer drops the batch
    (while the parser is suspended: it must not keep them in a local)."""
    out = []
    while (box := [next(batches, None)])[0] is not None:
        refs = [weakref.ref(f) for f in box[0].frames.values()]
        box.pop()
        gc.collect()
        out.append(all(r() is None for r in refs))
    return out


def test_ohlcv_keeps_no_reference_to_a_yielded_batch(tmp_path: Path) -> None:
    p = tmp_path / "BTCUSDT_1m.csv"
    ts = DAY0 // 10**6 + np.arange(1000) * 60_000
    pl.DataFrame({"open_time": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}).write_csv(p)
    gone = _gone_after_yield(ohlcv.iter_batches([p], batch_rows=300))
    assert len(gone) == 5 and all(gone)  # 4 bars batches (300, 300, 300, 100) and the summary


def test_binance_raw_keeps_no_reference_to_a_yielded_batch(tmp_path: Path) -> None:
    p = write_capture(tmp_path, long_capture_lines(120, seed=3, usdm=True))
    gone = _gone_after_yield(binance_raw.iter_batches([p], batch_rows=40))
    assert len(gone) > 5 and all(gone)


def test_row_groups_write_the_same_file_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame longer than a row group is converted and written group by group: the same rows, types and
    per-group statistics as one conversion (strings, nulls and a frame joined from chunks included)."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 100)
    n = 250
    df = pl.concat(
        [
            pl.DataFrame({"ts": np.arange(k, k + 125, dtype=np.int64), "symbol": "AAA", "close": np.linspace(1, 2, 125)})
            for k in (0, 125)
        ],
        rechunk=False,
    ).with_columns(pl.lit(None, pl.Float64).alias("vwap"))
    writer.write_parquet(df, tmp_path / "g.parquet")
    md = pq.read_metadata(tmp_path / "g.parquet")
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [100, 100, 50]
    assert writer._stats_range(md, "bars") == (0, n - 1)
    back = pl.read_parquet(tmp_path / "g.parquet")
    assert back.equals(df) and back.schema == df.schema
    whole = tmp_path / "w.parquet"
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1 << 16)
    writer.write_parquet(df, whole)
    assert pq.read_schema(whole) == pq.read_schema(tmp_path / "g.parquet")


@pytest.mark.parametrize("slice_rows", [1, 2, 3, 1 << 16])
def test_key_checks_slice_by_slice_see_a_step_at_a_slice_boundary(slice_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_SPAN_SLICE", slice_rows)
    monkeypatch.setattr(validate, "_ORDER_SLICE", slice_rows)
    up = pl.DataFrame({"ts": [1, 2, 3, 4, 5, 6], "symbol": ["A"] * 6, "seq": [10, 11, 12, 13, 14, 15]})
    assert writer.key_span("events", up) == (10, 15)
    for at in range(1, 6):  # a key repeated at every position, so at every slice boundary too
        seq = list(range(10, 16))
        seq[at] = seq[at - 1]
        rep = up.with_columns(pl.Series("seq", seq))
        assert writer.key_span("events", rep) is None
        assert validate.first_step_back(rep["seq"], strict=True) == at
        assert validate.first_step_back(rep["seq"], strict=False) is None
        with pytest.raises(StoreError, match=f"seq={seq[at]}"):
            keys.check_unique("events", rep, None, "x")
    tr = up.with_columns(pl.Series("ts", [1, 1, 2, 2, 3, 3]), pl.Series("seq", [0, 1, 0, 1, 0, 0]))
    assert writer.key_span("trades", tr) is None  # (3, 0) twice at the end


def test_lobster_keeps_no_reference_to_a_yielded_batch(tmp_path: Path) -> None:
    from marketlab.store.ingest import lobster
    from tests.unit.test_lob_ingest import write_day

    m, b = write_day(tmp_path)
    gone = _gone_after_yield(lobster.iter_batches([m, b], batch_rows=2))
    assert len(gone) == 3 and all(gone)
