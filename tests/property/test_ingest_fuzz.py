"""Fuzzing every ingest parser on mutated real lines (truncate, swap fields, insert garbage, drop/duplicate a
line): a parser either returns a batch or raises a one-line MarketlabError, never another exception
(issue 13 item 10). binance-raw also checks that its fast path and its generic path agree on every input,
and a store-level run checks that a refused ingest leaves the store byte-for-byte unchanged."""

from __future__ import annotations

import gzip
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketlab.core.errors import DataError, MarketlabError
from marketlab.store import Store
from marketlab.store.ingest import binance_raw, fi2010, lobster, ohlcv
from tests.support.binance import KLINE_ROWS, capture_lines
from tests.support.store import tree_hash

GARBAGE = ["", "x", "-", ".", ",", " ", '"', "{", "}", "[", "]", ":", "null", "NaN", "inf", "1e999", "-1", "0",
           "\t", "\x00", "é", "99999999999999999999", "1_0", "\r", '"a"', "true", "[[", "]]", "0.0000000001"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, lines: list[str], sep: str) -> list[str]:
    """``lines`` with 1-3 random edits of the kinds a corrupt or hostile file shows."""
    out = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(out) - 1))
        ln = out[i]
        op = draw(st.sampled_from(["truncate", "swap", "insert", "replace", "drop", "dup"]))
        if op == "truncate":
            out[i] = ln[: draw(st.integers(0, max(len(ln) - 1, 0)))]
        elif op == "insert":
            pos = draw(st.integers(0, len(ln)))
            out[i] = ln[:pos] + draw(st.sampled_from(GARBAGE)) + ln[pos:]
        elif op in ("swap", "replace"):
            fields = ln.split(sep)
            a = draw(st.integers(0, len(fields) - 1))
            if op == "swap":
                b = draw(st.integers(0, len(fields) - 1))
                fields[a], fields[b] = fields[b], fields[a]
            else:
                fields[a] = draw(st.sampled_from(GARBAGE))
            out[i] = sep.join(fields)
        elif op == "drop" and len(out) > 1:
            del out[i]
        elif op == "dup":
            out.insert(i, ln)
    return out


JSON_VALUES = [None, "x", "", "10.0x", "-1", 1.5, -1, 10**20, [], [["1"]], [[1, 2]], {}, True, "0"]


@st.composite
def json_mutated(draw: st.DrawFn, lines: list[str]) -> list[str]:
    """Valid JSON, wrong content: a random field of a random message set to another type/value or deleted."""
    import json

    out = list(lines)
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(out) - 1))
        ts, _, body = out[i].partition(" ")
        obj = json.loads(body)
        target = obj["data"] if isinstance(obj.get("data"), dict) and draw(st.booleans()) else obj
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.integers(0, 4)) == 0:
            del target[key]
        else:
            target[key] = draw(st.sampled_from(JSON_VALUES))
        out[i] = ts + " " + json.dumps(obj)
    return out


def _ok_or_data_error(fn, *args, **kw) -> object:  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kw)
    except MarketlabError as exc:
        assert "\n" not in str(exc)
        return exc


# ------------------------------------------------------------------------------------------ binance-raw
def _gz(path: Path, lines: list[str]) -> Path:
    """``lines`` gzipped into ``path`` (lone surrogates from the mutations kept as their bytes)."""
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")))
    return path


def _fast_and_slow(p: Path) -> tuple[object, object]:
    """The capture read by the fast path and by the generic path (each a Capture or the DataError)."""
    return _ok_or_data_error(binance_raw.read_capture, p), _ok_or_data_error(binance_raw.read_capture, p, fast=False)


@FUZZ
@given(st.one_of(mutated(capture_lines(), ","), json_mutated(capture_lines())))
def test_binance_raw_fuzz(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = _gz(Path(d) / "cap.gz", lines)
        fast, slow = _fast_and_slow(p)
        if isinstance(slow, DataError) or isinstance(fast, DataError):
            assert isinstance(fast, DataError) and isinstance(slow, DataError) and str(fast) == str(slow)
        else:
            assert isinstance(fast, binance_raw.Capture) and isinstance(slow, binance_raw.Capture)
            for k in ("updates", "group_ts", "group_u", "trades", "tickers"):
                assert (getattr(fast, k) == getattr(slow, k)).all() and getattr(fast, k).shape == getattr(slow, k).shape
            assert (fast.symbol, fast.market, fast.tick_size, fast.lot_size) == \
                (slow.symbol, slow.market, slow.tick_size, slow.lot_size)
            _ok_or_data_error(binance_raw.parse, [p], levels=3)


def _real_usdm_head(shared: Path, n: int = 70) -> list[str]:
    with gzip.open(shared / "binance_btcusdt_raw_feed_2024-08-08" / "usdm_btcusdt_20240808.gz", "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


def test_binance_raw_fuzz_on_real_capture_lines(shared_data: Path) -> None:
    lines = _real_usdm_head(shared_data)  # includes the 1000-level REST snapshot (line 55)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(lines, ","))
    def run(mut: list[str]) -> None:
        with tempfile.TemporaryDirectory() as d:
            fast, slow = _fast_and_slow(_gz(Path(d) / "usdm.gz", mut))
            assert type(fast) is type(slow) or (isinstance(fast, DataError) and isinstance(slow, DataError))

    run()


# ---------------------------------------------------------------------------------------------- ohlcv
PANEL = ["date,open,high,low,close,volume,Name", "2013-02-08,15.07,15.12,14.63,14.75,8407500,AAL",
         "2013-02-11,14.89,15.01,14.26,14.46,8882000,AAL", "2013-02-08,67.7142,68.4014,66.8928,67.8542,158168416,AAPL"]


@FUZZ
@given(mutated(KLINE_ROWS, ","), st.sampled_from(["csv", "zip"]))
def test_ohlcv_klines_fuzz(lines: list[str], how: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        text = "\n".join(lines) + "\n"
        if how == "zip":
            p = Path(d) / "BTCUSDT-1m-2022-01-01.zip"
            with zipfile.ZipFile(p, "w") as zf:
                zf.writestr("BTCUSDT-1m-2022-01-01.csv", text.encode("utf-8", errors="surrogatepass"))
        else:
            p = Path(d) / "BTCUSDT-1m-2022-01.csv"
            p.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        _ok_or_data_error(ohlcv.parse, [p])
        _ok_or_data_error(lambda: list(ohlcv.iter_batches([p], batch_rows=1)))


@FUZZ
@given(mutated(PANEL, ","))
def test_ohlcv_panel_fuzz(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "panel.csv"
        p.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass"))
        _ok_or_data_error(ohlcv.parse, [p])


# -------------------------------------------------------------------------------------------- lobster
MSG = ["34200.017459617,5,0,1,2238200,-1", "34200.18960767,1,11885113,21,2238100,1",
       "34200.190226476,4,11885113,21,2238100,1"]
BOOK = ["2239500,100,2231800,100", "2239500,100,2238100,21", "2239500,100,2237500,100"]


@FUZZ
@given(mutated(MSG, ","), mutated(BOOK, ","), st.booleans())
def test_lobster_fuzz(msg: list[str], book: list[str], mutate_msg: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
        b = Path(d) / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"
        m.write_bytes(("\n".join(msg if mutate_msg else MSG) + "\n").encode("utf-8", errors="surrogatepass"))
        b.write_bytes(("\n".join(BOOK if mutate_msg else book) + "\n").encode("utf-8", errors="surrogatepass"))
        _ok_or_data_error(lobster.parse, [m, b])


# --------------------------------------------------------------------------------------------- fi2010
def _fi2010_lines() -> list[str]:
    rows = []
    for r in range(fi2010.N_ROWS):
        vals = [f"{((r * 7 + c * 3) % 11 - 5) / 3:.7e}" for c in range(4)] if r < fi2010.N_FEATURES else \
            [f"{1 + (r + c) % 3:.7e}" for c in range(4)]
        rows.append("   " + "   ".join(vals))
    return rows


@FUZZ
@given(mutated(_fi2010_lines(), "   "))
def test_fi2010_fuzz(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "Train_Dst_NoAuction_ZScore_CF_1.txt"
        p.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass"))
        _ok_or_data_error(fi2010.parse, [p])


def test_fi2010_non_numeric_token_names_row_sample_and_value(tmp_path: Path) -> None:
    lines = _fi2010_lines()
    lines[9] = "   ".join(lines[9].split()[:2] + ["none"] + lines[9].split()[3:])
    p = tmp_path / "Train_Dst_NoAuction_ZScore_CF_1.txt"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 10, field 'sample 2': not a number \(value 'none'\)"):
        fi2010.parse([p])
    lines = _fi2010_lines()
    lines[20] = lines[20] + "   7.0"  # one value too many, all numeric
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="row 21: row has 5 values, row 1 has 4"):
        fi2010.parse([p])
    lines = _fi2010_lines()
    lines[30] = "   ".join(lines[30].split()[:3] + ["x1"])  # garbage last token, row length unchanged
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 31, field 'sample 3': not a number \(value 'x1'\)"):
        fi2010.parse([p])


# ------------------------------------------------------------------------------ store: refused = unchanged
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(KLINE_ROWS, ","))
def test_refused_ingest_leaves_the_store_unchanged(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "store")
        good = Path(d) / "ETHUSDT-1m-2022-01.csv"
        good.write_text("\n".join(KLINE_ROWS).replace("46", "36") + "\n")
        store.ingest("ohlcv", [good], dataset="k")
        before = tree_hash(store.path)
        bad = Path(d) / "BTCUSDT-1m-2022-01.csv"
        bad.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass"))
        try:
            store.ingest("ohlcv", [bad], dataset="k")
        except MarketlabError as exc:
            assert "\n" not in str(exc)
            assert tree_hash(store.path) == before
