"""LOBSTER message/orderbook pairing (issue 13 item 4): an unpaired file is a one-line error naming it,
raised before anything is parsed or recorded; the right pair is still accepted afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlab.core.errors import DataError, MarketlabError
from marketlab.store import Store
from marketlab.store.ingest.lobster import pair_files, parse
from tests.support.store import tree_hash

# Three real AMZN 2012-06-21 rows (LOBSTER sample): message and the level-1 book after each message.
MSG = "34200.017459617,5,0,1,2238200,-1\n34200.18960767,1,11885113,21,2238100,1\n34200.190226476,4,11885113,21,2238100,1\n"
BOOK1 = "2239500,100,2231800,100\n2239500,100,2238100,21\n2239500,100,2237500,100\n"
BOOK2 = "\n".join(line + ",2239600,50,2231700,10" for line in BOOK1.splitlines()) + "\n"


def _name(sym: str, kind: str, level: int, date: str = "2012-06-21") -> str:
    return f"{sym}_{date}_34200000_57600000_{kind}_{level}.csv"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def test_the_right_pair_parses(tmp_path: Path) -> None:
    m = _write(tmp_path, _name("AMZN", "message", 1), MSG)
    b = _write(tmp_path, _name("AMZN", "orderbook", 1), BOOK1)
    batch = parse([m, b])
    assert batch.frames["events"].height == 3 and batch.frames["book"].height == 3
    assert batch.frames["book"]["bid_px_1"].to_list() == [2231800, 2238100, 2237500]


@pytest.mark.parametrize(
    "msg_name, book_name, culprit",
    [
        (_name("GOOG", "message", 1), _name("AMZN", "orderbook", 1), "orderbook"),  # another ticker
        (_name("AMZN", "message", 1), _name("AMZN", "orderbook", 1, "2012-06-22"), "orderbook"),  # another date
        (_name("AMZN", "message", 5), _name("AMZN", "orderbook", 1), "orderbook"),  # another level
    ],
)
def test_an_unpaired_orderbook_is_an_error_naming_it(tmp_path: Path, msg_name: str, book_name: str, culprit: str) -> None:
    m = _write(tmp_path, msg_name, MSG)
    b = _write(tmp_path, book_name, BOOK1)
    with pytest.raises(DataError, match="no message file") as exc:
        parse([m, b])
    assert book_name in str(exc.value) and "\n" not in str(exc.value)


def test_a_message_without_its_orderbook_is_an_error_unless_book_false(tmp_path: Path) -> None:
    m = _write(tmp_path, _name("AMZN", "message", 1), MSG)
    with pytest.raises(DataError, match="no orderbook file") as exc:
        parse([m])
    assert m.name in str(exc.value)
    batch = parse([m], book=False)  # deliberately messages only
    assert set(batch.frames) == {"events"}


def test_a_folder_with_an_unpaired_file_is_refused_too(tmp_path: Path) -> None:
    _write(tmp_path / "d", _name("AMZN", "message", 1), MSG)
    _write(tmp_path / "d", _name("AMZN", "orderbook", 1), BOOK1)
    _write(tmp_path / "d", _name("GOOG", "orderbook", 1), BOOK1)
    _write(tmp_path / "d", "README.txt", "not data")  # non-LOBSTER names inside a folder are skipped
    with pytest.raises(DataError, match="GOOG_2012-06-21_34200000_57600000_orderbook_1.csv"):
        pair_files([tmp_path / "d"])


def test_an_explicit_non_lobster_name_is_refused(tmp_path: Path) -> None:
    f = _write(tmp_path, "amzn_messages.csv", MSG)
    with pytest.raises(DataError, match="not a LOBSTER file name"):
        parse([f])


def test_book_width_must_match_the_level_in_the_name(tmp_path: Path) -> None:
    m = _write(tmp_path, _name("AMZN", "message", 1), MSG)
    b = _write(tmp_path, _name("AMZN", "orderbook", 1), BOOK2)  # 2 levels under a level-1 name
    with pytest.raises(DataError, match="level 1 but rows have 8 columns") as exc:
        parse([m, b])
    assert b.name in str(exc.value)


def test_unpaired_ingest_records_nothing_and_the_right_pair_still_goes_in(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    goog = _write(tmp_path / "in", _name("GOOG", "message", 1), MSG)
    amzn_m = _write(tmp_path / "in", _name("AMZN", "message", 1), MSG)
    amzn_b = _write(tmp_path / "in", _name("AMZN", "orderbook", 1), BOOK1)
    before = tree_hash(store.path)
    with pytest.raises(MarketlabError, match="no message file|no orderbook file"):
        store.ingest("lobster", [goog, amzn_b], dataset="lob")
    assert tree_hash(store.path) == before
    rep = store.ingest("lobster", [amzn_m, amzn_b], dataset="lob")
    assert not rep.skipped and rep.rows["events"] == 3 and rep.rows["book"] == 3
