"""``verify_snapshots`` / ``marketlab book verify-snapshots`` on a hand-made feed with known answers, and on a
LOBSTER day turned into events + snapshots (checked against the per-message verifier)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.core.timeutil import NS_PER_S
from marketlab.lob.snapshots import verify_snapshots

DT = [(c, np.int64) for c in ("ts", "seq", "type", "order_id", "side", "price", "size")]
# seq 1: a bid 100x4 joins; seq 2: it is executed, while (unseen) 98x2 left and 97x6 arrived deeper;
# seq 3: an order that predates the feed (id 77) takes the whole ask at 101.
EVENTS = np.array([(1 * NS_PER_S, 1, 1, 10, 1, 100, 4), (2 * NS_PER_S, 2, 4, 10, 1, 100, 4),
                   (3 * NS_PER_S, 3, 3, 77, -1, 101, 5)], dtype=DT)
SNAPS = [  # (ts, seq, ask1 px, sz, bid1 px, sz, ask2 px, sz, bid2 px, sz)
    (0, 0, 101, 5, 99, 5, 102, 3, 98, 2),
    (1 * NS_PER_S, 1, 101, 5, 100, 4, 102, 3, 99, 5),
    (2 * NS_PER_S, 2, 101, 5, 99, 5, 102, 3, 97, 6),
    (3 * NS_PER_S, 3, 102, 3, 99, 5, 0, 0, 97, 6),
]


def run(reseed: bool):
    s = np.array(SNAPS, dtype=np.int64)
    return verify_snapshots(EVENTS, s[:, 1], s[:, 0], s[:, 2:], reseed=reseed)


def test_known_answers_with_and_without_reseed():
    rep = run(True)
    assert rep.snapshots_compared == 3 and rep.levels == 2
    assert rep.match_rate_best_price == 1.0 and rep.match_rate_all_levels == pytest.approx(2 / 3)
    assert rep.reseeds == 1 and rep.rejected_events == 0
    assert (rep.sync_seconds_median, rep.sync_seconds_mean) == (1.5, 1.5)  # in sync 0 s -> 2 s, then 2 s -> 3 s
    rep = run(False)  # the unseen change at 98/97 never heals without a re-seed
    assert rep.match_rate_all_levels == pytest.approx(1 / 3) and rep.reseeds == 0
    assert rep.sync_seconds_median == 2.0
    assert rep.per_hour == {"00:00Z": {"snapshots": 3, "best_price": 1.0, "top5": 1 / 3, "all_levels": 1 / 3}}


def test_cli_json_and_bad_input(tmp_path):
    from marketlab.cli.main import app

    ev, sn = tmp_path / "ev.csv", tmp_path / "snap.parquet"
    pl.DataFrame({c: EVENTS[c] for c, _ in DT}).write_csv(ev)
    cols = ["ts", "seq", "ask_px_1", "ask_sz_1", "bid_px_1", "bid_sz_1", "ask_px_2", "ask_sz_2", "bid_px_2", "bid_sz_2"]
    pl.DataFrame(SNAPS, schema=cols, orient="row").write_parquet(sn)
    runner = CliRunner()
    res = runner.invoke(app, ["book", "verify-snapshots", str(ev), str(sn), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["match_rate_all_levels"] == pytest.approx(2 / 3) and out["reseeds"] == 1
    pl.DataFrame({"ts": [1]}).write_csv(tmp_path / "bad.csv")
    res = runner.invoke(app, ["book", "verify-snapshots", str(tmp_path / "bad.csv"), str(sn)])
    assert res.exit_code == 2 and res.output.startswith("error:") and "seq" in res.output and res.output.count("\n") == 1
    res = runner.invoke(app, ["book", "verify-snapshots", str(ev), str(tmp_path / "missing.parquet")])
    assert res.exit_code == 2 and "file not found" in res.output
