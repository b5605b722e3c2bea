"""binance-raw: the numba fast path equals the generic json path, and malformed messages are one-line
DataErrors naming file, line and field (issue 13 item 10), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from marketlab.core.errors import DataError
from marketlab.store.ingest import binance_raw
from marketlab.store.ingest._binance_scan import _number, scan
from tests.support.binance import capture_lines, write_capture

FIELDS = ("updates", "group_ts", "group_u", "trades", "tickers")
SCALARS = ("symbol", "market", "tick_size", "lot_size", "last_update_id", "skipped_diffs")


def assert_same_capture(a: binance_raw.Capture, b: binance_raw.Capture) -> None:
    for k in FIELDS:
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    for k in SCALARS:
        assert getattr(a, k) == getattr(b, k), k


def test_fast_scan_accepts_the_sample_and_equals_the_json_path(tmp_path: Path) -> None:
    lines = capture_lines()
    data = ("\n".join(lines) + "\n").encode()
    assert scan(data) is not None  # the fast path really ran on this input
    p = write_capture(tmp_path, lines)
    assert_same_capture(binance_raw.read_capture(p), binance_raw.read_capture(p, fast=False))


def test_compact_json_crlf_blank_lines_and_usdm_pu_also_match(tmp_path: Path) -> None:
    lines = []
    for ln in capture_lines():
        ts, _, body = ln.partition(" ")
        obj = json.loads(body)
        if obj.get("data", {}).get("e") == "depthUpdate":
            obj["data"]["pu"] = obj["data"]["U"] - 1  # futures layout: pu chains the diffs
        # trailing zeros as Binance spot writes them ("61800.30000000"): the tick is still the finest used digit
        lines.append(ts + " " + json.dumps(obj, separators=(",", ":")).replace('.5"', '.500"').replace('.00"', '.0000"'))
    lines.insert(3, "   ")
    p = tmp_path / "cap.gz"
    import gzip

    p.write_bytes(gzip.compress(("\r\n".join(lines) + "\r\n").encode()))
    assert scan(gzip.decompress(p.read_bytes())) is not None
    fast, slow = binance_raw.read_capture(p), binance_raw.read_capture(p, fast=False)
    assert fast.market == "usdm" and fast.tick_size == 0.01 and fast.lot_size == 0.1
    assert_same_capture(fast, slow)


def _mutate(index: int, fn) -> list[str]:
    lines = capture_lines()
    ts, _, body = lines[index].partition(" ")
    obj = json.loads(body)
    fn(obj)
    lines[index] = ts + " " + json.dumps(obj)
    return lines


def _data(key: str, value: object, *, drop: bool = False):
    def fn(obj: dict) -> None:
        if drop:
            del obj["data"][key]
        else:
            obj["data"][key] = value
    return fn


def _top(key: str, value: object, *, drop: bool = False):
    def fn(obj: dict) -> None:
        if drop:
            del obj[key]
        else:
            obj[key] = value
    return fn


# (line index, mutation, expected message part, field named)
BAD = {
    "depth_missing_U": (5, _data("U", None, drop=True), "missing field", "U"),
    "depth_U_str": (5, _data("U", "abc"), "not an integer", "U"),
    "depth_U_null": (5, _data("U", None), "not an integer", "U"),
    "depth_u_float": (5, _data("u", 1.5), "not an integer", "u"),
    "depth_b_null": (5, _data("b", None), "list of [price, qty]", "b"),
    "depth_a_short_level": (5, _data("a", [["10.01"]]), "pair of strings", "a"),
    "depth_a_number_level": (5, _data("a", [[10.01, 0.5]]), "pair of strings", "a"),
    "depth_pu_str": (5, _data("pu", "x"), "not an integer", "pu"),
    "trade_p_null": (4, _data("p", None), "expected a decimal string", "p"),
    "trade_q_missing": (4, _data("q", None, drop=True), "missing field", "q"),
    "trade_q_garbage": (4, _data("q", "0.5x"), "not a decimal number", "q"),
    "trade_m_str": (4, _data("m", "false"), "true or false", "m"),
    "ticker_B_missing": (3, _data("A", None, drop=True), "missing field", "A"),
    "ticker_b_number": (3, _data("b", 9.99), "expected a decimal string", "b"),
    "ticker_u_str": (3, _data("u", "x"), "not an integer", "u"),
    "symbol_number": (4, _data("s", 5), "symbol is not a string", "s"),
    "data_list": (4, _top("data", []), "'data' is not an object", "data"),
    "snapshot_id_str": (2, _top("lastUpdateId", "x"), "not an integer", "lastUpdateId"),
    "snapshot_no_bids": (2, _top("bids", None, drop=True), "missing field", "bids"),
    "snapshot_bids_dict": (2, _top("bids", {"10": "1"}), "list of [price, qty]", "bids"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_messages_are_one_line_errors(tmp_path: Path, case: str) -> None:
    index, fn, problem, field = BAD[case]
    p = write_capture(tmp_path, _mutate(index, fn))
    for fast in (True, False):
        with pytest.raises(DataError) as exc:
            binance_raw.read_capture(p, fast=fast)
        msg = str(exc.value)
        assert "\n" not in msg and "cap.gz" in msg and f"row {index + 1}" in msg, msg
        assert problem in msg and f"field '{field}'" in msg, msg


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', "null", "{\"a\": 1", "{}x"])
def test_non_object_or_broken_json_is_one_line(tmp_path: Path, line: str) -> None:
    lines = capture_lines()
    lines[4] = "5 " + line
    with pytest.raises(DataError, match="row 5") as exc:
        binance_raw.read_capture(write_capture(tmp_path, lines))
    assert "\n" not in str(exc.value)


def test_huge_timestamp_and_empty_price_are_errors(tmp_path: Path) -> None:
    lines = capture_lines()
    lines[4] = "9" * 30 + lines[4][1:]
    with pytest.raises(DataError, match="row 5: receive timestamp out of range"):
        binance_raw.read_capture(write_capture(tmp_path, lines))
    lines = _mutate(4, _data("p", ""))
    with pytest.raises(DataError, match=r"row 5, field 'p': not a decimal number"):
        binance_raw.read_capture(write_capture(tmp_path, lines))


def test_bad_tick_size_option_is_one_line(tmp_path: Path) -> None:
    p = write_capture(tmp_path, capture_lines())
    for bad in (0.03, -0.01, "x"):
        with pytest.raises(DataError, match="tick_size must be a power of ten"):
            binance_raw.read_capture(p, tick_size=bad)  # type: ignore[arg-type]


def test_a_message_of_another_symbol_is_refused(tmp_path: Path) -> None:
    p = write_capture(tmp_path, _mutate(4, _data("s", "ETHUSDT")))
    for fast in (True, False):
        with pytest.raises(DataError, match=r"row 5, field 's': message of another symbol \(the capture is XUSDT\)"):
            binance_raw.read_capture(p, fast=fast)
    other = write_capture(tmp_path, [ln.replace("XUSDT", "YUSDT") for ln in capture_lines()[3:]], name="b.gz")
    first = write_capture(tmp_path, capture_lines()[:3], name="a.gz")
    with pytest.raises(DataError, match="b.gz, row 1, field 's': message of another symbol"):
        binance_raw.read_capture([first, other])


@pytest.mark.parametrize("text,after", [
    ("12", 2), ("-0", 2), ("1.5", 3), ("1e+5", 4), ("2E3,", 3), ("0.25e-2}", 7),  # JSON numbers (RFC 8259)
    ("1.", -1), ("1.e5", -1), ("1e", -1), ("1e+", -1), ("-", -1), ("-.5", -1),  # not JSON: no digit after . / e / -
])
def test_fast_number_scan_follows_json_grammar(text: str, after: int) -> None:
    """The fast scanner's number rule against the JSON grammar: where the number ends, -1 when it is not one."""
    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    assert _number(buf, 0, buf.size)[2] == after


def test_sequence_ids_known_answers() -> None:
    """The Binance rules on id arrays (docs: spot drops u <= lastUpdateId, first U <= last+1 <= u, then
    U == previous u + 1; USD-M drops u < lastUpdateId, first U <= last <= u, then pu == previous u), with the
    row of the first diff that breaks them."""
    from marketlab.store.ingest.binance_raw import sequence_ids

    def run(U: list[int], u: list[int], pu: list[int], last: int, market: str) -> tuple[int, int]:
        arr = [np.array(x, dtype=np.int64) for x in (U, u, pu)]
        return sequence_ids(*arr, last, market, lambda i: (Path("cap.gz"), 10 + i))

    # spot: u == last is stale; the first kept diff straddles last + 1
    assert run([90, 95, 101, 104], [95, 100, 103, 110], [-1] * 4, 100, "spot") == (2, 2)
    # usdm: u == last is NOT stale (it is the first to apply: U <= last <= u)
    assert run([90, 95, 101], [95, 100, 103], [-1, 95, 100], 100, "usdm") == (1, 2)
    assert run([90, 95], [95, 99], [-1, 95], 100, "usdm") == (2, 0)  # all stale
    with pytest.raises(DataError, match=r"first diff after snapshot 100 covers \[102, 103\]") as exc:
        run([90, 102], [95, 103], [-1] * 2, 100, "spot")  # a hole before the first kept diff
    assert "row 11" in str(exc.value)
    with pytest.raises(DataError, match="update-id gap after 103") as exc:
        run([101, 105], [103, 106], [-1] * 2, 100, "spot")  # U must be 104
    assert "row 11" in str(exc.value) and "field 'U'" in str(exc.value)
    with pytest.raises(DataError, match="update-id gap after 103") as exc:
        run([99, 104], [103, 106], [90, 102], 100, "usdm")  # pu must be 103
    assert "field 'pu'" in str(exc.value) and "102" in str(exc.value)
    # usdm diffs without pu chain by U, as spot
    assert run([99, 104, 107], [103, 106, 109], [90, -1, -1], 100, "usdm") == (0, 3)
