"""Bad input through Store.ingest: one-line error naming file/field/value, store byte-for-byte unchanged."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from marketlab.core.errors import MarketlabError
from marketlab.store import Store
from tests.support.store import tree_hash

GOOD = "date,open,high,low,close,volume,Name\n2020-01-02,10,11,9,10.5,100,AAA\n2020-01-03,10.5,12,10,11,120,AAA\n" \
       "2020-01-02,20,21,19,20.5,50,BBB\n2020-01-03,20.5,22,20,21,60,BBB\n"

CASES = {
    "truncated": (GOOD + "2020-01-06,11,12,10\n", "truncated"),
    "wrong_header": (GOOD.replace("close", "klose"), "wrong header"),
    "nan_price": (GOOD.replace("10.5,12,10,11", "10.5,12,10,NaN"), "price"),
    "negative_price": (GOOD.replace("20,21,19,20.5", "-20,21,19,20.5"), "price"),
    "path_symbol": (GOOD.replace("BBB", "../etc"), "invalid symbol"),
    "duplicate_row": (GOOD + "2020-01-03,10.5,12,10,11,120,AAA\n", "duplicate"),
    "not_a_number": (GOOD.replace("120", "12x"), "not a number"),
}


@pytest.fixture
def store_with_data(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    store.ingest("ohlcv", [good], dataset="base")
    return store


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_panel_csv(store_with_data: Store, tmp_path: Path, case: str) -> None:
    text, match = CASES[case]
    f = tmp_path / f"{case}.csv"
    f.write_text(text)
    before = tree_hash(store_with_data.path)
    with pytest.raises(MarketlabError, match=match) as exc:
        store_with_data.ingest("ohlcv", [f], dataset="bad")
    msg = str(exc.value)
    assert "\n" not in msg and case in msg  # names the file
    assert tree_hash(store_with_data.path) == before


def test_out_of_order_single_symbol_file(store_with_data: Store, tmp_path: Path) -> None:
    f = tmp_path / "XYZ_1m.csv"
    f.write_text("datetime,open,high,low,close,volume\n2024-01-01 00:01:00,1,2,1,2,3\n"
                 "2024-01-01 00:00:00,1,2,1,2,3\n2024-01-01 00:02:00,1,2,1,2,3\n")
    before = tree_hash(store_with_data.path)
    with pytest.raises(MarketlabError, match="out of order") as exc:
        store_with_data.ingest("ohlcv", [f], dataset="bad")
    assert "XYZ_1m.csv" in str(exc.value) and "2024-01-01 00:00:00" in str(exc.value)
    assert tree_hash(store_with_data.path) == before


def test_truncated_gzip(store_with_data: Store, tmp_path: Path) -> None:
    blob = gzip.compress((GOOD * 200).encode())
    f = tmp_path / "cut.csv.gz"
    f.write_bytes(blob[: len(blob) // 2])
    before = tree_hash(store_with_data.path)
    with pytest.raises(MarketlabError, match="truncated or corrupt"):
        store_with_data.ingest("ohlcv", [f], dataset="bad")
    assert tree_hash(store_with_data.path) == before


def test_reingest_same_file_is_a_skipped_noop(store_with_data: Store, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    before = tree_hash(store_with_data.path)
    rep = store_with_data.ingest("ohlcv", [good], dataset="base")
    assert rep.skipped and rep.rows == {}
    assert tree_hash(store_with_data.path) == before
    assert store_with_data.scan_panel("base").collect().height == 4


def test_unknown_and_missing_formats(store_with_data: Store, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    with pytest.raises(MarketlabError, match="unknown ingest format"):
        store_with_data.ingest("nope", [good])
    # A file of the wrong format for a known reader: one clean error naming the file, store unchanged.
    before = tree_hash(store_with_data.path)
    with pytest.raises(MarketlabError, match=r"good\.csv: expected CSV columns"):
        store_with_data.ingest("binance-raw", [good])
    assert tree_hash(store_with_data.path) == before
