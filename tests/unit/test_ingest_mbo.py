"""``ingest/mbo`` (issue 21): a generic order-by-order format. One hand-made fixture per trap, with the
expected events written out by hand; bad input is one line naming the file, row and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.core.errors import DataError
from marketlab.lob import OrderBook
from marketlab.lob.commands import events_to_commands
from marketlab.store import Store
from marketlab.store.ingest import get_parser
from marketlab.store.ingest.mbo import parse, to_mbo

T0 = 1_700_000_000_000_000_000  # ns
HEADER = "ts_event,order_id,side,price,size,action\n"


def mbo(tmp_path: Path, rows: list[tuple], name: str = "XYZ.csv") -> Path:
    """A CSV fixture: rows (dt_ns, order_id, side, price, size, action)."""
    p = tmp_path / name
    p.write_text(HEADER + "".join(f"{T0 + t},{o},{s},{px},{q},{a}\n" for t, o, s, px, q, a in rows))
    return p


def events(path: Path, **options) -> list[tuple[int, int, int, int, int]]:
    """(type, order_id, side, price ticks, size) of the parsed events, in order."""
    ev = parse([path], **options).frames["events"]
    return [tuple(r) for r in ev.select("type", "order_id", "side", "price", "size").iter_rows()]


def notes(path: Path, **options) -> dict:
    return parse([path], **options).meta["notes"]


def replay(ev: list[tuple], **kw) -> OrderBook:
    """The events through the engine in apply mode (default policy: a crossing add would be rejected)."""
    rows = np.array([(i, t, o, q, p, s) for i, (t, o, s, p, q) in enumerate(ev)], dtype=np.int64)
    ob = OrderBook(**kw)
    res = ob.process(events_to_commands(rows))
    assert not res.status.any(), ob.rejections
    return ob


def test_registered_and_plain_rows(tmp_path: Path) -> None:
    assert get_parser("mbo") is parse
    p = mbo(tmp_path, [(0, 1, "B", "100.00", 5, "A"), (1, 2, "A", "100.02", 3, "add"), (2, 1, "B", "100.00", 2, "C"),
                       (3, 2, "A", "100.02", 3, "F"), (4, 0, "B", "100.01", 1, "T"), (5, 1, "B", "100.00", 3, "cancel"),
                       (6, 0, "N", "0", 0, "N")])
    assert events(p) == [(1, 1, 1, 10000, 5), (1, 2, -1, 10002, 3), (2, 1, 1, 10000, 2), (4, 2, -1, 10002, 3),
                         (5, 0, 1, 10001, 1), (3, 1, 1, 10000, 3)]
    b = parse([p])
    ev = b.frames["events"]
    assert ev["seq"].to_list() == list(range(6)) and ev["ts"][0] == T0 and ev["symbol"][0] == "XYZ"
    assert b.instruments[0].tick_size == 0.01 and b.meta["notes"]["none_rows"] == 1


def test_create_before_fill_race_by_policy(tmp_path: Path) -> None:
    # the taker's add (id 3, buy 8 @ 101) is published before the fill of the ask it takes
    rows = [(0, 1, "A", "1.01", 5, "A"), (1, 2, "B", "0.99", 5, "A"), (2, 3, "B", "1.01", 8, "A"),
            (3, 1, "A", "1.01", 5, "F"), (3, 3, "B", "1.01", 5, "F")]
    p = mbo(tmp_path, rows)
    add1, add2 = (1, 1, -1, 101, 5), (1, 2, 1, 99, 5)
    assert events(p) == [add1, add2, (1, 3, 1, 101, 8), (4, 1, -1, 101, 5), (4, 3, 1, 101, 5)]  # rest: as published
    assert events(p, crossing_add="reject") == [add1, add2, (4, 1, -1, 101, 5)]
    assert notes(p, crossing_add="reject")["crossing_rejected"] == 1
    # defer: the add rests once the fill makes room, then its own fill trades 5 of its 8 lots
    deferred = events(p, crossing_add="defer")
    assert deferred == [add1, add2, (4, 1, -1, 101, 5), (1, 3, 1, 101, 8), (4, 3, 1, 101, 5)]
    assert notes(p, crossing_add="defer")["deferred_adds"] == 1
    assert replay(deferred).snapshot(1).tolist() == [0, 0, 101, 3]
    # fills of the taker before the maker's: they reduce the waiting add, which rests with what is left
    p2 = mbo(tmp_path, rows[:3] + [rows[4], rows[3]], "XYZ2.csv")
    d2 = events(p2, crossing_add="defer")
    assert d2 == [add1, add2, (4, 1, -1, 101, 5), (1, 3, 1, 101, 3)]
    assert notes(p2, crossing_add="defer")["deferred_fills_dropped"] == 1
    assert replay(d2).snapshot(1).tolist() == [0, 0, 101, 3]


def test_delete_before_create(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 7, "B", "1.00", 4, "C"), (1, 8, "B", "1.00", 2, "D"), (2, 7, "B", "1.00", 10, "A"),
                       (3, 8, "B", "1.00", 2, "A"), (4, 9, "A", "1.05", 1, "A")])
    # 7: 4 of its 10 lots cancelled before the add arrived -> rests with 6; 8: deleted first -> never rests
    assert events(p) == [(1, 7, 1, 100, 6), (1, 9, -1, 105, 1)]
    assert notes(p)["race_delete_before_create"] == 2


def test_double_delete_and_reductions_of_a_gone_order(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 5, "A", "2.00", 3, "A"), (1, 5, "A", "2.00", 3, "C"), (2, 5, "A", "2.00", 3, "C"),
                       (3, 5, "A", "2.00", 1, "F"), (4, 6, "A", "2.01", 1, "A")])
    assert events(p) == [(1, 5, -1, 200, 3), (3, 5, -1, 200, 3), (1, 6, -1, 201, 1)]
    assert notes(p)["gone_dropped"] == 2


def test_orders_that_predate_the_file(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 9, "B", "1.00", 2, "C"), (1, 9, "B", "1.00", 1, "F"), (2, 10, "A", "1.02", 4, "D"),
                       (3, 11, "B", "0.99", 3, "M")])
    kept = [(2, 9, 1, 100, 2), (4, 9, 1, 100, 1), (3, 10, -1, 102, 4), (1, 11, 1, 99, 3)]
    assert events(p) == kept
    assert notes(p)["unknown_kept"] == 3 and notes(p)["modify_of_unknown_as_add"] == 1
    assert events(p, unknown_orders="drop") == [(1, 11, 1, 99, 3)]
    # kept rows replay in tolerant mode against the pre-existing liquidity of a seed
    ob = OrderBook(tolerant=True)
    ob.set_level(+1, 100, 5, ts=0)
    ob.set_level(-1, 102, 4, ts=0)
    rows = np.array([(1, t, o, q, px, s) for t, o, s, px, q in kept], dtype=np.int64)
    assert not ob.process(events_to_commands(rows)).status.any()
    assert ob.snapshot(1).tolist() == [0, 0, 100, 2]


def test_stub_orders_far_from_the_market(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 1, "B", "0.01", 1, "A"), (0, 2, "A", "99999.99", 1, "A"), (1, 3, "B", "235.10", 4, "A"),
                       (1, 4, "A", "235.12", 2, "A"), (2, 5, "A", "235.11", 1, "A"), (3, 5, "A", "235.11", 1, "F")])
    ev = events(p)
    assert ev[:2] == [(1, 1, 1, 1, 1), (1, 2, -1, 9_999_999, 1)]
    ob = replay(ev)
    assert ob.snapshot(2).tolist() == [23512, 2, 23510, 4, 9_999_999, 1, 1, 1]
    assert ob.far_levels[1] == 1 and ob.nbytes < 8 * 2**20  # the 99,999.99 ask sits on a far level


def test_modifies_price_change_loses_priority(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 1, "B", "1.00", 5, "A"), (1, 2, "B", "1.01", 1, "A"), (2, 1, "B", "1.01", 5, "M"),
                       (3, 1, "B", "1.01", 3, "M"), (4, 1, "B", "1.01", 4, "M"), (5, 1, "B", "1.01", 4, "M"),
                       (6, 2, "B", "1.01", 0, "M"), (7, 1, "B", "1.02", 2, "M")])
    assert events(p) == [(1, 1, 1, 100, 5), (1, 2, 1, 101, 1),
                         (3, 1, 1, 100, 5), (1, 1, 1, 101, 5),  # new price: cancel + add, behind id 2
                         (2, 1, 1, 101, 2),  # smaller at the same price: keeps its place
                         (3, 1, 1, 101, 3), (1, 1, 1, 101, 4),  # larger: back of the queue
                         (3, 2, 1, 101, 1),  # modify to 0: gone
                         (3, 1, 1, 101, 4), (1, 1, 1, 102, 2)]  # new price and smaller: still cancel + add
    assert notes(p)["modify_unchanged"] == 1 and notes(p)["modify_split"] == 3
    ob = replay(events(p)[:4])
    assert ob.queue(+1, 101) == [2, 1]


def test_clear_and_remaining_size_policy(tmp_path: Path) -> None:
    p = mbo(tmp_path, [(0, 1, "B", "1.00", 10, "A"), (1, 2, "A", "1.01", 2, "A"), (2, 1, "B", "1.00", 7, "C"),
                       (3, 1, "B", "1.00", 0, "F"), (4, 2, "A", "1.01", 0, "R"), (5, 2, "A", "1.01", 1, "C")])
    assert events(p, reduce_size="remaining") == [(1, 1, 1, 100, 10), (1, 2, -1, 101, 2), (2, 1, 1, 100, 3),
                                                   (4, 1, 1, 100, 7), (3, 2, -1, 101, 2)]
    n = notes(p, reduce_size="remaining")
    assert n["clear_deletes"] == 1 and n["gone_dropped"] == 1


def test_iso_timestamps_symbol_column_and_parquet(tmp_path: Path) -> None:
    df = pl.DataFrame({"ts_event": ["2024-01-02T00:00:00.000000001Z", "2024-01-02T00:00:01Z"], "symbol": ["A.B", "C"],
                       "order_id": [1, 2], "side": ["buy", "sell"], "price": [1.5, 2.0], "size": [3, 4],
                       "action": ["add", "add"], "flags": [128, 0]})
    df.write_parquet(tmp_path / "x.parquet")
    b = parse([tmp_path / "x.parquet"], tick_size=0.5)
    ev = b.frames["events"]
    assert ev["symbol"].to_list() == ["A.B", "C"] and ev["price"].to_list() == [3, 4] and ev["seq"].to_list() == [0, 0]
    assert ev["ts"][0] == 1_704_153_600_000_000_001 and sorted(i.symbol for i in b.instruments) == ["A.B", "C"]


@pytest.mark.parametrize("rows,options,needle", [
    ([(0, 1, "B", "1.00", 5, "X")], {}, "field 'action'"),
    ([(0, 1, "Q", "1.00", 5, "A")], {}, "field 'side'"),
    ([(0, 1, "B", "1.005", 5, "A")], {}, "not on the tick grid"),
    ([(0, 1, "B", "abc", 5, "A")], {}, "field 'price'"),
    ([(0, 1, "B", "1.00", "2.5", "A")], {}, "field 'size'"),
    ([(0, 0, "B", "1.00", 5, "A")], {}, "field 'order_id'"),
    ([(0, 1, "N", "1.00", 5, "A")], {}, "needs side B or A"),
    ([(5, 1, "B", "1.00", 5, "A"), (4, 2, "B", "1.00", 5, "A")], {}, "goes back in time"),
    ([(0, 1, "B", "1.00", 5, "A"), (1, 1, "B", "1.00", 5, "A")], {}, "add of live order id 1"),
    ([(0, 1, "B", "1.00", 5, "A")], {"crossing_add": "maybe"}, "crossing_add"),
    ([(0, 1, "B", "1.00", 5, "A")], {"tick": 1}, "unknown mbo option"),
])
def test_bad_input_is_one_line_naming_the_place(tmp_path: Path, rows, options, needle) -> None:
    p = mbo(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        parse([p], **options)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg
    if "option" not in needle and "crossing_add" not in needle:
        assert str(p) in msg and "row " in msg


def test_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("ts_event,order_id,side,price,size\n1,1,B,1.0,1\n")
    with pytest.raises(DataError, match="field 'action'"):
        parse([p])


def test_cli_ingest_mbo_with_options_and_bad_input(tmp_path: Path) -> None:
    from marketlab.cli.main import app

    p = mbo(tmp_path, [(0, 1, "A", "1.01", 5, "A"), (1, 2, "B", "1.01", 2, "A"), (2, 1, "A", "1.01", 2, "F"),
                       (2, 2, "B", "1.01", 2, "F")])
    store = tmp_path / "store"
    r = CliRunner().invoke(app, ["ingest", "mbo", str(p), "--dataset", "ven", "--opt", "crossing_add=defer",
                                 "--opt", "tick_size=0.01", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.stderr
    ev = Store(store).read("events", "ven").sort("seq")
    assert ev.select("type", "order_id", "size").rows() == [(1, 1, 5), (4, 1, 2)]  # the taker never rested
    bad = mbo(tmp_path, [(0, 1, "B", "1.00", 5, "ZZ")], "bad.csv")
    r = CliRunner().invoke(app, ["ingest", "mbo", str(bad), "--dataset", "ven2", "--store", str(store)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "bad.csv" in lines[0]
    r = CliRunner().invoke(app, ["ingest", "mbo", str(p), "--opt", "nonsense", "--store", str(store)])
    assert r.exit_code == 2 and "KEY=VALUE" in r.stderr


def test_to_mbo_refuses_types_without_an_action() -> None:
    ev = pl.DataFrame({"ts": [1], "symbol": ["X"], "seq": [0], "type": [7], "order_id": [0], "side": [1], "price": [0],
                       "size": [0]})
    with pytest.raises(ValueError, match="type 7"):
        to_mbo(ev, tick_size=0.01)
