"""Sweeps: grids, restart, failures, the local process pool (same answers as a direct run, a killed worker
retried) and the CLI's bad-input paths. Ray has its own file (test_sweep_ray.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab import sweep
from marketlab.core.errors import MarketlabError, SpecError
from marketlab.sweep.grid import apply, expand, parse_grid, parse_value
from tests.support.sweep import (
    BACKTEST_SPEC,
    assert_one_line_error,
    mine_store_and_spec,
    probe_spec,
    run_killing_one_worker,
    write_panel_store,
)

GRID = ["costs.commission=0,0.002", "signal.lookback=5,20"]


@pytest.fixture(scope="module")
def panel_store(tmp_path_factory) -> Path:
    return write_panel_store(tmp_path_factory.mktemp("sweep") / "store")


@pytest.fixture
def bt_spec(tmp_path) -> Path:
    p = tmp_path / "mom.toml"
    p.write_text(BACKTEST_SPEC)
    return p


# ---- grids --------------------------------------------------------------------------------------------
def test_grid_values_and_product_order():
    assert [parse_value(t) for t in ("5", "0.5", "true", '"a b"', "momentum-v1")] == [5, 0.5, True, "a b", "momentum-v1"]
    grid = parse_grid(["signal.lookback=5,10,20", "costs.commission=0,0.001"])
    assert expand(grid) == [
        {"costs.commission": c, "signal.lookback": lb} for c in (0, 0.001) for lb in (5, 10, 20)
    ]
    assert apply({"costs": {"spread": 1}}, {"costs.commission": 2, "signal.kind": "x"}) == {
        "costs": {"spread": 1, "commission": 2}, "signal": {"kind": "x"}}


def test_random_search_draws_distinct_variants_reproducibly():
    from marketlab.sweep.grid import sample

    full = expand(parse_grid(["a=1,2,3,4", "b=1,2,3"]))
    picked = sample(full, 5, seed=3)
    assert len(picked) == 5 and len({tuple(v.items()) for v in picked}) == 5 and all(v in full for v in picked)
    assert picked == sample(full, 5, seed=3) and picked != sample(full, 5, seed=4)
    assert [full.index(v) for v in picked] == sorted(full.index(v) for v in picked)  # grid order
    assert sample(full, 12, seed=0) == full
    for n, needle in ((13, "exceeds the grid's 12 variants"), (0, "must be >= 1")):
        with pytest.raises(SpecError, match=needle):
            sample(full, n, seed=0)


@pytest.mark.parametrize("items,needle", [
    ([], "empty grid"),
    (["signal.lookback="], "has no values"),
    (["lookback"], "expected key=v1,v2"),
    (["a=1", "a=2"], "given twice"),
    (["a=1,2,1"], "a value is given twice"),
])
def test_bad_grids(items, needle):
    with pytest.raises(SpecError, match=needle):
        parse_grid(items)


def test_unknown_key_names_the_known_ones(bt_spec, panel_store):
    with pytest.raises(SpecError) as err:
        sweep.run(bt_spec, ["costs.fee_bps=0,2"], store=panel_store, backend="sequential")
    msg = str(err.value)
    assert "costs.fee_bps" in msg and "costs.commission" in msg and "signal.lookback" in msg and "\n" not in msg
    with pytest.raises(SpecError, match="'costs.commission'"):  # a bad value is refused before anything runs
        sweep.run(bt_spec, ["costs.commission=0,2"], store=panel_store, backend="sequential")
    assert not (panel_store / "sweeps").exists()


# ---- same answers ---------------------------------------------------------------------------------------
def test_backtest_sweep_equals_direct_runs_and_restart_skips(bt_spec, panel_store, tmp_path):
    """Each row's metrics equal a direct Backtest of a spec file written with that variant's values; the
    process pool gives the same numbers; a restart runs nothing; a lost record is run again."""
    from marketlab.backtests import Backtest
    from marketlab.store import Store

    seq = sweep.run(bt_spec, GRID, store=panel_store, backend="sequential", name="seq")
    assert (seq.ran, seq.skipped, seq.failed, seq.table.height) == (4, 0, 0, 4)
    st = Store(panel_store)
    for row in seq.table.iter_rows(named=True):
        text = BACKTEST_SPEC.replace("lookback = 20", f"lookback = {row['signal.lookback']}").replace(
            "commission = 0.0005", f"commission = {row['costs.commission']}")
        direct_path = tmp_path / f"direct_{row['variant']}.toml"
        direct_path.write_text(text)
        direct = Backtest.from_spec(direct_path, store=st).run(report=False)
        assert row["sharpe"] == direct.metrics["sharpe"] and row["final_value"] == direct.value[-1]
        assert json.loads((Path(row["run_dir"]) / "metrics.json").read_text())["metrics"]["sharpe"] == row["sharpe"]
    assert seq.table["final_value"].n_unique() == 4  # the overrides changed something

    pool = sweep.run(bt_spec, GRID, store=panel_store, backend="local", max_concurrency=2, name="pool")
    metric_cols = ["variant", "sharpe", "total_return", "max_drawdown", "final_value"]
    assert pool.table.select(metric_cols).equals(seq.table.select(metric_cols))
    assert pl.read_parquet(pool.path).select(metric_cols).equals(seq.table.select(metric_cols))

    again = sweep.run(bt_spec, GRID, store=panel_store, backend="sequential", name="seq")
    assert (again.ran, again.skipped) == (0, 4) and again.table.equals(seq.table)
    lost = seq.table["variant"][2]
    (panel_store / "sweeps" / "seq" / "variants" / f"{lost}.json").unlink()
    third = sweep.run(bt_spec, GRID, store=panel_store, backend="sequential", name="seq")
    assert (third.ran, third.skipped) == (1, 3)
    assert third.table.select(metric_cols).equals(seq.table.select(metric_cols))


# ---- failures -------------------------------------------------------------------------------------------
def test_failed_variant_is_marked_and_others_complete(tmp_path):
    res = sweep.run(probe_spec(tmp_path), {"probe.x": [0.0, 1.0], "probe.fail": [False, True]},
                    store=tmp_path / "st", backend="sequential")
    t = res.table.sort("probe.x", "probe.fail")
    assert t["status"].to_list() == ["ok", "failed", "ok", "failed"] and res.failed == 2
    assert all("probe asked to fail" in e for e in t.filter(pl.col("status") == "failed")["error"])
    ok = t.filter(pl.col("status") == "ok")
    # known answer: x + the sum of 1000 standard normals from seed 7
    import numpy as np

    base = float(np.random.default_rng(7).standard_normal(1000).sum())
    assert ok["value"].to_list() == [base, 1.0 + base]
    # a restart re-runs only the failed ones
    assert sweep.run(probe_spec(tmp_path), {"probe.x": [0.0, 1.0], "probe.fail": [False, True]},
                     store=tmp_path / "st", backend="sequential").ran == 2


@pytest.mark.parametrize("retries,expect", [(2, "ok"), (0, "failed")])
def test_pool_worker_killed_mid_task(tmp_path, retries, expect):
    """SIGKILL a pool worker while it runs a variant: with retries every variant still lands exactly once;
    without, the variants the broken pool lost are failed rows and the table still has one row each."""
    t, killed = run_killing_one_worker(probe_spec(tmp_path, seconds=1.5), tmp_path / "st", 60, backend="local",
                                       max_concurrency=2, retries=retries)
    if expect == "ok":
        assert t["status"].to_list() == ["ok"] * 3
        assert killed[0] not in t["run_dir"].map_elements(
            lambda d: json.loads((Path(d) / "started.json").read_text())["pid"], return_dtype=pl.Int64).to_list()
    else:
        assert "failed" in t["status"].to_list()
        assert all("worker process died" in e for e in t.filter(pl.col("status") == "failed")["error"])


def test_backend_and_address_errors(tmp_path):
    spec = probe_spec(tmp_path)
    with pytest.raises(MarketlabError, match="unknown backend 'dask'"):
        sweep.run(spec, ["probe.x=1"], store=tmp_path / "st", backend="dask")
    with pytest.raises(MarketlabError, match="only the ray backend"):
        sweep.run(spec, ["probe.x=1"], store=tmp_path / "st", backend="local", address="auto")
    with pytest.raises(MarketlabError, match=r"ray cluster at 127\.0\.0\.1:9 does not answer"):
        sweep.run(spec, ["probe.x=1"], store=tmp_path / "st", backend="ray", address="127.0.0.1:9")


# ---- CLI ------------------------------------------------------------------------------------------------
def _cli(*args: str):
    from marketlab.cli.main import app

    return CliRunner().invoke(app, ["sweep", *args])


def test_cli_json_and_table(tmp_path):
    spec = probe_spec(tmp_path)
    out = _cli(str(spec), "--grid", "probe.x=0,1", "--grid", "probe.seed=1,2", "--store", str(tmp_path / "st"),
               "--backend", "sequential", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["variants"] == 4 and doc["failed"] == 0 and len(doc["rows"]) == 4
    assert pl.read_parquet(doc["table"]).height == 4
    out = _cli(str(spec), "--grid", "probe.x=0,1", "--grid", "probe.seed=1,2", "--store", str(tmp_path / "st"),
               "--backend", "sequential")
    assert out.exit_code == 0 and "skipped 4" in out.stdout
    out = _cli(str(spec), "--grid", "probe.x=0,1,2,3,4", "--grid", "probe.seed=1,2", "--random", "3", "--seed", "1",
               "--store", str(tmp_path / "st"), "--backend", "sequential", "--name", "rnd", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["variants"] == 3
    out = _cli(str(spec), "--grid", "probe.fail=true", "--store", str(tmp_path / "st"), "--backend", "sequential")
    assert out.exit_code == 1 and "1 of 1 variants failed" in out.stderr


@pytest.mark.parametrize("args,needle", [
    (["--grid", "probe.y=1,2"], "unknown grid key; known keys: probe.seconds, probe.seed, probe.x, probe.fail"),
    (["--grid", "probe.x="], "has no values"),
    (["--grid", "probe.seconds=-1"], "key 'probe.seconds': must be in [0, inf]"),
    (["--grid", "probe.x=1", "--backend", "ray", "--address", "127.0.0.1:9"], "ray cluster at 127.0.0.1:9 does not answer"),
    (["--grid", "probe.x=1", "--max-concurrency", "0"], "--max-concurrency: must be >= 1"),
    (["--grid", "probe.x=1", "--name", "../x"], "key '--name'"),
    (["--grid", "probe.x=1", "--kind", "nope"], "unknown runner id"),
    (["--grid", "probe.x=1,2", "--random", "3"], "key '--random': 3 exceeds the grid's 2 variants"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, args, needle):
    assert_one_line_error(_cli(str(probe_spec(tmp_path)), "--store", str(tmp_path / "st"), *args), needle)


XVA_SPEC = """
[run]
seed = 0
steps = 8
paths = 256
layers = ["clean", "xva"]
clean = "analytic"
device = "cpu"
plots = false
[market]
r = 0.02
model = "gbm"
n_assets = 1
spot = 100.0
vol = 0.25
[bank]
model = "none"
[[counterparties]]
name = "C"
model = "intensity"
intensity = 0.10
recovery = 0.3
[[trades]]
type = "forward"
counterparty = "C"
quantity = 1.0
strike = 100.0
maturity = 1.0
[training.xva]
iterations = 5
batch_size = 64
hidden = [4]
"""


def test_xva_sweep_equals_direct_runs(tmp_path):
    """The xva kind: each row's CVA equals XvaRun on the same spec with that seed, run directly."""
    from marketlab.pricing.xva import XvaRun
    from marketlab.sweep.grid import apply

    spec = tmp_path / "xva.toml"
    spec.write_text(XVA_SPEC)
    res = sweep.run(spec, ["run.seed=0,1"], store=tmp_path / "st", backend="sequential")
    assert res.kind == "xva" and res.failed == 0, res.table["error"].to_list()
    import tomllib

    raw = tomllib.loads(XVA_SPEC)
    for row in res.table.iter_rows(named=True):
        direct = XvaRun.from_dict(apply(raw, {"run.seed": row["run.seed"], "run.progress": False})).run()
        assert row["cva_C"] == direct["xva_table"]["C"]["cva"]
    assert res.table["cva_C"].n_unique() == 2


def test_rl_sweep_equals_direct_training(tmp_path):
    """The rl kind: the swept seed's train-period evaluation equals sb3.train run directly with that seed
    (one variant: SB3 is the slow part)."""
    from marketlab.agents.sb3 import AgentSpec, train
    from marketlab.market import market_to_frame, synthetic_market
    from marketlab.store import IngestBatch, Instrument, Store

    store = Store(tmp_path / "store")
    m = synthetic_market(300, 1, seed=4, vol=0.01)
    store.write(IngestBatch("bars1", {"bars": market_to_frame(m)}, [Instrument(m.symbols[0], 0.01, 1.0)]), format="test")
    text = "\n".join([
        'name = "ppo_tiny"', 'algo = "ppo"', "total_timesteps = 64", 'device = "cpu"', f'out_dir = "{tmp_path / "runs"}"',
        "net_arch = [8]", "[hyper]", "n_steps = 32", "batch_size = 16", "n_epochs = 1", "[env]", "episode_length = 30",
        "[env.data]", 'dataset = "bars1"', 'test_start = "2024-01-01T04:00"', "[env.observation]", "window = 4"]) + "\n"
    spec = tmp_path / "ppo.toml"
    spec.write_text(text)
    res = sweep.run(spec, ["seed=5"], store=store.path, backend="sequential")  # not the spec's seed (0)
    assert res.kind == "rl" and res.failed == 0, res.table["error"].to_list()
    for row in res.table.iter_rows(named=True):
        direct = tmp_path / f"direct{row['seed']}.toml"
        direct.write_text(text.replace('name = "ppo_tiny"', f'name = "ppo_tiny"\nseed = {row["seed"]}'))
        run = train(AgentSpec.from_toml(direct), store=store, out_dir=tmp_path / f"d{row['seed']}")
        assert row["train_final_value"] == json.loads((run / "train.json").read_text())["train_eval"]["final_value"]


def test_mine_sweep_equals_direct_mining(tmp_path):
    """The mine kind: the swept seed's test IC equals mine() run directly on the same spec with that seed."""
    import dataclasses

    from marketlab.agents.alphagen.mine import MineSpec, mine
    from marketlab.store import Store

    store, spec = mine_store_and_spec(tmp_path)
    store = Store(store)
    res = sweep.run(spec, ["miner.seed=5"], store=store.path, backend="sequential")  # not the spec's seed (0)
    assert res.kind == "mine" and res.failed == 0, res.table["error"].to_list()
    base = MineSpec.from_toml(spec)
    for row in res.table.iter_rows(named=True):
        s = dataclasses.replace(base, miner=dataclasses.replace(base.miner, seed=row["miner.seed"]),
                                output=dataclasses.replace(base.output, dir=str(tmp_path / f"d{row['seed']}")))
        direct = mine(s, store=store, progress=False)
        assert row["test_ic"] == direct["metrics"]["test"]["ic"] and row["pool_size"] == len(direct["pool"]["alphas"])


def test_driver_killed_mid_sweep_restart_skips_done(tmp_path):
    """SIGKILL the `marketlab sweep` process after two variants landed: the restart runs only the rest and the
    table has exactly one ok row per variant."""
    import signal
    import subprocess
    import sys

    spec = probe_spec(tmp_path, seconds=0.4)
    store = tmp_path / "st"
    cmd = [sys.executable, "-c", "from marketlab.cli.main import app; app()", "sweep", str(spec),
           "--grid", "probe.x=0,1,2,3,4,5", "--backend", "sequential", "--store", str(store), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = store / "sweeps" / "probe" / "variants"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(list(records.glob("*.json")))
    assert 2 <= done < 6 and not (store / "sweeps" / "probe" / "results.parquet").exists()
    res = sweep.run(spec, ["probe.x=0,1,2,3,4,5"], backend="sequential", store=store)
    assert (res.skipped, res.ran) == (done, 6 - done)
    assert res.table.height == 6 and res.table["variant"].n_unique() == 6 and set(res.table["status"]) == {"ok"}


@pytest.mark.slow  # two pools of 2 workers importing marketlab (seconds of CPU in the workers)
def test_kept_local_pool_reuses_its_warm_workers_across_sweeps(tmp_path):
    from marketlab.sweep import backends
    from marketlab.sweep.results import SweepFolder

    spec = probe_spec(tmp_path)
    st = tmp_path / "st"

    def pids(res) -> set[int]:
        folder = SweepFolder(st / "sweeps" / res.name)
        return {folder.load(v)["pid"] for v in res.table["variant"]}

    try:
        first = sweep.run(spec, ["probe.x=0,1,2,3"], store=st, backend="local", max_concurrency=2, name="a",
                          keep_pool=True)
        second = sweep.run(spec, ["probe.x=4,5,6,7"], store=st, backend="local", max_concurrency=2, name="b",
                           keep_pool=True)
        assert first.failed == second.failed == 0
        assert pids(second) <= pids(first) and len(pids(first)) <= 2  # the same (at most 2) worker processes
        seq = sweep.run(spec, ["probe.x=4,5,6,7"], store=st, backend="sequential", name="c")
        assert second.table.select("variant", "value").equals(seq.table.select("variant", "value"))
    finally:
        backends.shutdown_pool()
    assert not backends._KEPT
    cold = sweep.run(spec, ["probe.x=8,9"], store=st, backend="local", max_concurrency=2, name="d")
    assert not backends._KEPT and not (pids(cold) & pids(first))  # without keep_pool: fresh workers, none kept
