"""Sweeps on a real local Ray cluster (2 CPUs, started once for this file's tests, which xdist keeps in one
worker): same answers as the sequential run (backtests, mining, fleets), a killed worker retried by Ray (one
row per variant), a variant that raises marked failed while the others complete.

Marked slow (`make test-full`): starting the cluster and its worker processes costs seconds of CPU before the first
task, and each test runs real backtests, mining or simulation twice. `make test` keeps the backend's logic covered
through the sequential and process-pool backends (tests/unit/test_sweep.py) and the Ray option errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from marketlab import sweep
from tests.support.sweep import BACKTEST_SPEC, mine_store_and_spec, probe_spec, run_killing_one_worker, write_panel_store

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]


def test_ray_backtest_sweep_equals_sequential(ray_cluster, tmp_path):
    store = write_panel_store(tmp_path / "store")
    spec = tmp_path / "mom.toml"
    spec.write_text(BACKTEST_SPEC)
    grid = ["costs.commission=0,0.002", "signal.lookback=5,20"]
    seq = sweep.run(spec, grid, store=store, backend="sequential", name="seq")
    on_ray = sweep.run(spec, grid, store=store, backend="ray", name="ray")
    cols = ["variant", "costs.commission", "signal.lookback", "status", "sharpe", "total_return", "final_value"]
    assert on_ray.table.height == 4 and on_ray.failed == 0
    assert on_ray.table.select(cols).equals(seq.table.select(cols))
    assert pl.read_parquet(on_ray.path).select(cols).equals(seq.table.select(cols))


@pytest.mark.parametrize("retries,expect", [(2, "ok"), (0, "failed")])
def test_ray_worker_killed_mid_task(ray_cluster, tmp_path, retries, expect):
    """SIGKILL the Ray worker running a variant: Ray re-runs it (exactly one row per variant, all ok);
    with no retries left the variant is a failed row naming Ray's error, and the others complete."""
    t, _ = run_killing_one_worker(probe_spec(tmp_path, seconds=2.0), tmp_path / "st", 90, backend="ray",
                                  retries=retries)
    if expect == "ok":
        assert t["status"].to_list() == ["ok"] * 3
    else:
        assert t["status"].to_list().count("failed") == 1 and t["status"].to_list().count("ok") == 2
        assert "WorkerCrashedError" in t.filter(pl.col("status") == "failed")["error"][0]


def test_ray_failed_variant_others_complete(ray_cluster, tmp_path):
    res = sweep.run(probe_spec(tmp_path), {"probe.fail": [False, True]}, store=tmp_path / "st", backend="ray")
    assert res.table.sort("probe.fail")["status"].to_list() == ["ok", "failed"]
    assert "probe asked to fail" in res.table.filter(pl.col("status") == "failed")["error"][0]


def test_ray_backend_uses_the_cluster_it_finds(ray_cluster, tmp_path: Path):
    """A sweep inside a running Ray session neither starts nor shuts down a cluster."""
    sweep.run(probe_spec(tmp_path), ["probe.x=0"], store=tmp_path / "st", backend="ray")
    assert ray.is_initialized()


def test_ray_fleet_writes_each_day_and_matches_sequential(ray_cluster, tmp_path):
    """Two days as Ray tasks writing the same store concurrently: both days stored, facts equal the
    sequential fleet's."""
    from marketlab.store import Store
    from marketlab.sweep.fleet import simulate_fleet
    from tests.support.sweep import short_abm_spec

    spec = short_abm_spec(tmp_path, duration_s=120.0)
    on_ray = simulate_fleet(spec, [0, 1], backend="ray", store=tmp_path / "ray")
    seq = simulate_fleet(spec, [0, 1], backend="sequential", store=tmp_path / "seq")
    cols = ["variant", "seed", "status", "n_events", "spread_mean_bps", "ret_std_bps"]
    assert on_ray.failed == 0 and on_ray.table.select(cols).equals(seq.table.select(cols))
    days = Store(tmp_path / "ray").files("events", "abm_default")
    assert len(days) == 2


def test_ray_mining_seeds_match_sequential(ray_cluster, tmp_path):
    """Alpha-mining seeds as Ray tasks: the same pools' ICs as the sequential sweep."""
    store, spec = mine_store_and_spec(tmp_path)
    on_ray = sweep.run(spec, ["miner.seed=5,6"], store=store, backend="ray", name="ray")
    seq = sweep.run(spec, ["miner.seed=5,6"], store=store, backend="sequential", name="seq")
    cols = ["variant", "miner.seed", "status", "train_ic", "test_ic", "pool_size"]
    assert on_ray.failed == 0 and on_ray.table.select(cols).equals(seq.table.select(cols))
