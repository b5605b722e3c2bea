"""binance-raw streams (issue 13): the batches of :func:`iter_batches` hold exactly the rows of the whole-file
path (:func:`parse`), however the capture is cut into chunks and batches; every error still comes as one line
naming file, line and field, with the store unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import DataError, MarketlabError
from marketlab.store import Store
from marketlab.store.ingest import _binance_stream, binance_raw
from tests.support.binance import MIDNIGHT_NS, capture_lines, long_capture_lines, write_capture

KINDS = ("events", "book", "trades")


def streamed(paths: list[Path], **kw: object) -> dict[str, pl.DataFrame]:
    batches = list(binance_raw.iter_batches(paths, **kw))  # type: ignore[arg-type]
    return {k: pl.concat([b.frames[k] for b in batches if k in b.frames]) for k in KINDS if any(k in b.frames for b in batches)}


def assert_same(whole: dict[str, pl.DataFrame], stream: dict[str, pl.DataFrame]) -> None:
    assert set(whole) == set(stream)
    for k in whole:
        assert whole[k].equals(stream[k]), (k, whole[k].height, stream[k].height)


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 64 bytes: every line is read (and scanned) on its own, so chunk ends fall between the diff
    that applies before the snapshot, the snapshot and the rest."""
    monkeypatch.setattr(_binance_stream, "chunk_bytes", lambda batch_rows: 64)


@pytest.mark.parametrize("usdm", [False, True])
@pytest.mark.parametrize("batch_rows", [1, 3, 17, 40, 41, 10_000])
def test_streamed_batches_equal_the_whole_file(tmp_path: Path, usdm: bool, batch_rows: int) -> None:
    p = write_capture(tmp_path, long_capture_lines(120, seed=3, usdm=usdm))
    whole = binance_raw.parse([p])
    batches = list(binance_raw.iter_batches([p], batch_rows=batch_rows))
    assert_same(whole.frames, streamed([p], batch_rows=batch_rows))
    assert all(b.meta == whole.meta and b.instruments == whole.instruments and b.dataset == whole.dataset for b in batches)
    # a batch holds at most batch_rows level rows, unless one group (the 40-level snapshot) is larger alone
    assert all(b.frames["events"].height <= max(batch_rows, 40) for b in batches)
    if batch_rows < 100:
        assert len(batches) > 3


def test_chunk_boundaries_between_every_line(tmp_path: Path, tiny_chunks: None) -> None:
    lines = long_capture_lines(60, seed=5)
    # a second REST snapshot later in the capture (a restarted recorder) is ignored, as by the whole-file path
    lines.insert(40, '7 {"lastUpdateId": 1050, "bids": [["9.50", "1"]], "asks": [["10.50", "1"]]}')
    p = write_capture(tmp_path, lines)
    assert_same(binance_raw.parse([p]).frames, streamed([p], batch_rows=25))
    q = write_capture(tmp_path, capture_lines(), name="small.gz")  # the applying diff comes before the snapshot
    assert_same(binance_raw.parse([q]).frames, streamed([q], batch_rows=1))


def test_a_tick_that_appears_only_at_the_end(tmp_path: Path, tiny_chunks: None) -> None:
    """The last trade is the only value with 3 decimals: every earlier batch must already use the 0.001 grid."""
    p = write_capture(tmp_path, long_capture_lines(80, seed=1, late_price="10.005"))
    whole = binance_raw.parse([p])
    assert whole.instruments[0].tick_size == pytest.approx(0.001)
    first = next(iter(binance_raw.iter_batches([p], batch_rows=5)))
    assert first.instruments[0].tick_size == pytest.approx(0.001)
    assert_same(whole.frames, streamed([p], batch_rows=5))
    assert whole.frames["trades"]["price"][-1] == 10_005
    # with a given tick the late value is off the grid: one line naming file, line and field
    with pytest.raises(DataError) as exc:
        next(iter(binance_raw.iter_batches([p], batch_rows=5, tick_size=0.01)))
    msg = str(exc.value)
    lines = len(long_capture_lines(80, seed=1, late_price="10.005"))
    assert "\n" not in msg and f"row {lines}" in msg and "field 'p'" in msg and "off the price grid" in msg, msg


def test_real_capture_streamed_equals_whole(shared_data: Path) -> None:
    f = shared_data / "binance_btcusdt_raw_feed_2024-08-08" / "spot_btcusdt_20240808.gz"
    if not f.exists():
        pytest.skip("capture not staged")
    assert_same(binance_raw.parse([f], levels=5).frames, streamed([f], levels=5, batch_rows=50_000))


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_store_rows_equal_the_whole_file_write(tmp_path: Path) -> None:
    """The streamed ingest (many batches, two days) stores the same rows as writing the one whole-file batch."""
    p = write_capture(tmp_path, long_capture_lines(150, seed=7))
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    rep = a.ingest("binance-raw", [p], dataset="x", batch_rows=20)
    b.write(binance_raw.parse([p], dataset="x"))
    for k in KINDS:
        got, want = a.read(k, "x"), b.read(k, "x")
        assert got.equals(want), k
        assert rep.rows[k] == want.height
    days = {str(Path(f).parent.name) for f in a.files("events", "x")}
    assert days == {"date=2024-08-08", "date=2024-08-09"}
    # streamed batches of one day are committed as their own files, never read back and merged (trades too)
    assert len(a.files("events", "x")) > 2 and len(a.files("trades", "x")) > 2
    ts = a.read("events", "x")["ts"]
    assert ts.is_sorted() and int(ts.min()) < MIDNIGHT_NS <= int(ts.max())
    assert a.instrument("x", "XUSDT").tick_size == b.instrument("x", "XUSDT").tick_size
    again = a.ingest("binance-raw", [p], dataset="x", batch_rows=20)
    assert again.skipped


def _last(lines: list[str], marker: str) -> int:
    return max(i for i, ln in enumerate(lines) if marker in ln)


BAD_LATE = {  # (line marker, old, new, problem, field): a problem near the end of a capture streamed in batches
    "missing_field": ("depthUpdate", '"U":', '"V":', "missing field", "U"),
    "not_decimal": ('"t": -1', '"p": "', '"p": "x', "not a decimal number", "p"),
    "gap": ("depthUpdate", '"U":', '"U":9', "update-id gap", "U"),
    # 18 digits fit the scanner, not the 0.01 grid in int64: found while scaling, after earlier batches were yielded
    "value_too_large": ('"t": -1', '"p": "10.01"', '"p": "999999999999999999"', "value too large", "p"),
}


@pytest.mark.parametrize("case", sorted(BAD_LATE))
def test_a_bad_line_late_in_the_capture_is_one_line_and_the_store_is_unchanged(
    tmp_path: Path, case: str, tiny_chunks: None
) -> None:
    marker, old, new, problem, field = BAD_LATE[case]
    lines = long_capture_lines(80, seed=2, late_price="10.01")
    i = _last(lines, marker)
    assert old in lines[i]
    lines[i] = lines[i].replace(old, new, 1)
    p = write_capture(tmp_path, lines)
    store = Store(tmp_path / "store")
    store.ingest("binance-raw", [write_capture(tmp_path, capture_lines(), name="ok.gz")], dataset="x")
    before = tree_hash(tmp_path / "store")
    with pytest.raises(MarketlabError) as exc:
        store.ingest("binance-raw", [p], dataset="x", batch_rows=5)
    msg = str(exc.value)
    assert "\n" not in msg and "cap.gz" in msg and f"row {i + 1}" in msg and f"field '{field}'" in msg, msg
    assert problem in msg, msg
    assert tree_hash(tmp_path / "store") == before


def test_batch_rows_must_be_a_positive_integer(tmp_path: Path) -> None:
    p = write_capture(tmp_path, capture_lines())
    for bad in (0, -3, 2.5, True):
        with pytest.raises(DataError, match="batch_rows must be a positive integer"):
            next(iter(binance_raw.iter_batches([p], batch_rows=bad)))  # type: ignore[arg-type]


def test_segment_max_known_answers() -> None:
    v = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64)
    lo = np.array([0, 2, 2, 5, 8], dtype=np.int64)
    hi = np.array([2, 2, 5, 8, 8], dtype=np.int64)
    assert _binance_stream._segmax(v, lo, hi).tolist() == [3, 0, 5, 9, 0]
