"""Synthetic data is deterministic and self-consistent; the data CLI works end to end with --json."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.store import Store
from marketlab.store.resample import trades_to_bars
from marketlab.store.synth import synth_lob, write_synth


def _read_all(store: Store) -> dict[str, pl.DataFrame]:
    return {
        "panel": store.scan_panel("synth_daily").collect().sort("date", "symbol"),
        "events": store.scan_events("synth_lob").collect().sort("seq"),
        "book": store.scan_book("synth_lob").collect().sort("seq"),
        "trades": store.scan_trades("synth_lob").collect().sort("seq"),
    }


def test_synth_same_seed_same_data(tmp_path) -> None:
    a, b, c = Store(tmp_path / "a"), Store(tmp_path / "b"), Store(tmp_path / "c")
    for s, seed in ((a, 7), (b, 7), (c, 8)):
        write_synth(s, seed, n_symbols=20, n_days=60, n_events=1500)
    ra, rb, rc = _read_all(a), _read_all(b), _read_all(c)
    assert all(ra[k].equals(rb[k]) for k in ra)
    assert not ra["panel"].equals(rc["panel"])
    p = ra["panel"]
    assert p["suspended"].any() and (p.filter(pl.col("suspended"))["volume"] == 0).all()
    assert (p["high"] >= p["low"]).all()


def test_synth_lob_consistent() -> None:
    d = synth_lob(3, n_events=3000, levels=5)
    ev, book, tr = d["events"], d["book"], d["trades"]
    assert ev.height == book.height and (ev["seq"] == book["seq"]).all()
    assert ev["ts"].is_sorted() and ev["seq"].to_list() == list(range(ev.height))
    both = book.filter((pl.col("ask_px_1") > 0) & (pl.col("bid_px_1") > 0))
    assert (both["ask_px_1"] > both["bid_px_1"]).all()  # never crossed
    ex = ev.filter(pl.col("type") == 4)
    assert tr.height == ex.height and tr["size"].sum() == ex["size"].sum()
    # each trade's price was the best opposite quote just before it
    prev = book.with_columns(pl.col("ask_px_1").shift(1).alias("pa"), pl.col("bid_px_1").shift(1).alias("pb"))
    j = tr.join(prev, on="seq")
    assert ((j["aggressor"] == 1) & (j["price"] == j["pa"]) | (j["aggressor"] == -1) & (j["price"] == j["pb"])).all()


def test_data_cli_json(tmp_path) -> None:
    runner = CliRunner()
    st = ["--store", str(tmp_path / "s")]
    r = runner.invoke(app, ["data", "synth", "--seed", "1", "--symbols", "10", "--days", "30", "--events", "800", "--json", *st])
    assert r.exit_code == 0, r.output
    assert [d["dataset"] for d in json.loads(r.stdout)["datasets"]] == ["synth_daily", "synth_lob"]
    r = runner.invoke(app, ["data", "list", "--json", *st])
    assert {d["dataset"] for d in json.loads(r.stdout)["datasets"]} == {"synth_daily", "synth_lob"}
    out = tmp_path / "bars.parquet"
    r = runner.invoke(app, ["data", "bars", "synth_lob", "SYN", "--freq", "1m", "--out", str(out), "--json", *st])
    assert r.exit_code == 0, r.output
    want = trades_to_bars(Store(tmp_path / "s").scan_trades("synth_lob", as_float=True), "1m")
    assert pl.read_parquet(out).equals(want) and json.loads(r.stdout)["bars"] == want.height
    r = runner.invoke(app, ["data", "sql", "select count(*) as n from panel_synth_daily", "--json", *st])
    assert json.loads(r.stdout)["data"] == [{"n": 300}]
    csv = tmp_path / "bad.csv"
    csv.write_text("date,open,high,low,close,volume,Name\n2020-01-02,1,2,1,NaN,5,AAA\n")
    r = runner.invoke(app, ["ingest", "ohlcv", str(csv), "--json", *st])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "bad.csv" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
