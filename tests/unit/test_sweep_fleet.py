"""Simulation fleets: one day per seed, written by concurrent pool workers; each stored day equals a direct
run of that seed's day, a restart doubles nothing, facts aggregate to mean ± band; CLI bad input."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.core.errors import SpecError
from marketlab.core.timeutil import NS_PER_DAY, to_ns
from marketlab.sweep.fleet import aggregate, parse_seeds, simulate_fleet
from tests.support.sweep import assert_one_line_error, short_abm_spec


def test_parse_seeds():
    assert parse_seeds("0..3") == [0, 1, 2, 3]
    assert parse_seeds("7") == [7] and parse_seeds("1, 5,9") == [1, 5, 9]
    for bad, needle in [("3..1", "empty range"), ("a..b", "expected lo..hi"), ("1,1", "given twice"), ("", "expected")]:
        with pytest.raises(SpecError, match=needle):
            parse_seeds(bad)


def test_aggregate_known_numbers():
    t = pl.DataFrame({"status": ["ok", "ok", "ok", "failed"], "spread_mean_bps": [1.0, 2.0, 3.0, None],
                      "hill_tail_index": [None, 4.0, float("nan"), None]})
    a = aggregate(t, ["spread_mean_bps", "hill_tail_index", "absent"])
    s = a["spread_mean_bps"]
    assert (s["mean"], s["std"], s["min"], s["max"], s["n"]) == (2.0, 1.0, 1.0, 3.0, 3.0)
    assert s["lo"] == pytest.approx(2 - 1.96 / math.sqrt(3)) and s["hi"] == pytest.approx(2 + 1.96 / math.sqrt(3))
    assert a["hill_tail_index"]["n"] == 1.0 and math.isnan(a["hill_tail_index"]["std"]) and "absent" not in a


def test_pool_fleet_days_equal_direct_runs_and_restart_doubles_nothing(tmp_path):
    from marketlab.simulators.config import SimSpec
    from marketlab.simulators.simulation import Simulation
    from marketlab.store import Store

    spec = short_abm_spec(tmp_path)
    store = tmp_path / "store"
    res = simulate_fleet(spec, [4, 9], backend="local", max_concurrency=2, store=store)
    assert (res.ran, res.failed, res.table.height) == (2, 0, 2)
    assert res.table["seed"].to_list() == [4, 9]
    st = Store(store)
    base = SimSpec.from_toml(spec)
    day0 = to_ns(base.market.start)
    for i, seed in enumerate([4, 9]):
        # the independent answer: the same seed's session, shifted i days, simulated here directly
        shifted = replace(base, market=replace(base.market, start=f"2024-01-0{2 + i}T14:30:00"))
        direct = Simulation(shifted, seed=seed).run().frames()["events"]
        stored = st.scan_events("abm_default", start=day0 + i * NS_PER_DAY, end=day0 + (i + 1) * NS_PER_DAY).collect()
        assert stored.height == direct.height > 100
        assert stored.sort("seq").select("ts", "type", "side", "price", "size").equals(
            direct.sort("seq").select("ts", "type", "side", "price", "size"))
    n_events = st.scan_events("abm_default").collect().height
    assert res.table["n_events"].to_list() == [
        float(st.scan_events("abm_default", start=day0 + i * NS_PER_DAY, end=day0 + (i + 1) * NS_PER_DAY).collect().height)
        for i in range(2)]

    again = simulate_fleet(spec, [4, 9], backend="local", store=store)
    assert (again.ran, again.skipped) == (0, 2)
    # a lost record: that day is simulated again and replaces itself (no doubled day)
    (store / "sweeps" / "abm_short-fleet" / "variants" / f"{res.table['variant'][1]}.json").unlink()
    third = simulate_fleet(spec, [4, 9], backend="sequential", store=store)
    assert third.ran == 1 and Store(store).scan_events("abm_default").collect().height == n_events


def _sim(*args: str):
    from marketlab.cli.main import app

    return CliRunner().invoke(app, ["simulate", *args])


def test_cli_fleet_json(tmp_path):
    spec = short_abm_spec(tmp_path, duration_s=120.0)
    out = _sim(str(spec), "--seeds", "0..1", "--backend", "sequential", "--store", str(tmp_path / "st"),
               "--dataset", "fleet_x", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["variants"] == 2 and doc["facts"]["n_events"]["n"] == 2.0 and len(doc["rows"]) == 2
    from marketlab.store import Store

    assert Store(tmp_path / "st").tables("fleet_x").height > 0


@pytest.mark.parametrize("args,needle", [
    (["--seeds", "0..1", "--seed", "3"], "not both"),
    (["--backend", "ray"], "give --seeds too"),
    (["--seeds", "x"], "key '--seeds': expected lo..hi"),
    (["--seeds", "0..1", "--backend", "nope"], "unknown backend 'nope'"),
])
def test_cli_fleet_bad_input(tmp_path, args, needle):
    assert_one_line_error(_sim(str(short_abm_spec(tmp_path)), "--store", str(tmp_path / "st"), *args), needle)
