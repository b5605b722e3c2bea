"""Ray Tune with ASHA for training-type specs, and the mining panel broadcast once through Ray's object
store, on a real local Ray cluster (2 CPUs, started once for this file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab import sweep
from tests.support.sweep import assert_one_line_error, mine_store_and_spec

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")
pytestmark = pytest.mark.xdist_group("ray")


def _curve_spec(tmp_path: Path) -> Path:
    p = tmp_path / "curve.toml"
    p.write_text("[probe]\nseconds = 0.2\nseed = 3\niterations = 4\n")
    return p


@pytest.mark.slow
def test_asha_stops_weak_trials_early_one_row_per_trial(ray_cluster, tmp_path):
    # score_i = x * i: the best curve goes first, so every later (weaker) trial is below the rung's cutoff
    spec = _curve_spec(tmp_path)
    grid = ["probe.x=8,4,1,0.5"]
    res = sweep.run(spec, grid, store=tmp_path / "st", backend="ray", scheduler="asha", metric="score", mode="max",
                    max_concurrency=2, name="asha")
    t = res.table.sort("probe.x", descending=True)
    assert t.height == 4 and t["variant"].n_unique() == 4 and res.failed == 0
    assert pl.read_parquet(res.path).height == 4  # the same Parquet table as every sweep
    iters = dict(zip(t["probe.x"].to_list(), t["iterations"].to_list(), strict=True))
    status = dict(zip(t["probe.x"].to_list(), t["status"].to_list(), strict=True))
    assert status[8.0] == "ok" and iters[8.0] == 4  # the best ran to the end
    stopped = [x for x, s in status.items() if s == "stopped"]
    assert stopped and all(iters[x] < 4 for x in stopped)  # ASHA cut them short
    assert {1.0, 0.5} <= set(stopped)  # started after both better curves passed rung 1: below its cutoff
    for x in stopped:  # a stopped row carries its last reported iteration's score: x * iterations
        row = t.filter(pl.col("probe.x") == x).row(0, named=True)
        assert row["score"] == pytest.approx(x * row["iterations"]) and row["seed"] == 3
    # the completed trial's final metrics equal a sequential run of the same variant (value = x + normals)
    seq = sweep.run(spec, ["probe.x=8"], store=tmp_path / "st", backend="sequential", name="seq")
    assert t.filter(pl.col("probe.x") == 8.0)["value"][0] == seq.table["value"][0]
    # a restart skips every trial (ok and stopped rows are decisions, not failures)
    again = sweep.run(spec, grid, store=tmp_path / "st", backend="ray", scheduler="asha", metric="score",
                      max_concurrency=2, name="asha")
    assert again.ran == 0 and again.skipped == 4


def test_scheduler_bad_input_is_one_line(tmp_path):  # refused before Ray starts: no cluster needed
    from marketlab.cli.main import app

    spec = str(_curve_spec(tmp_path))
    st = str(tmp_path / "st")

    def cli(*args: str):
        return CliRunner().invoke(app, ["sweep", spec, "--grid", "probe.x=1,2", "--store", st, *args])

    assert_one_line_error(cli("--scheduler", "asha", "--backend", "ray"), "--metric")
    assert_one_line_error(cli("--scheduler", "hyperband", "--metric", "score", "--backend", "ray"), "unknown scheduler")
    assert_one_line_error(cli("--scheduler", "asha", "--metric", "score"), "--backend ray")
    assert_one_line_error(cli("--scheduler", "asha", "--metric", "score", "--backend", "ray", "--mode", "up"), "max or min")
    bt = tmp_path / "bt.toml"
    from tests.support.sweep import BACKTEST_SPEC

    bt.write_text(BACKTEST_SPEC)
    out = CliRunner().invoke(app, ["sweep", str(bt), "--grid", "costs.commission=0,0.001", "--store", st,
                                   "--scheduler", "asha", "--metric", "sharpe", "--backend", "ray"])
    assert_one_line_error(out, "needs a training-type spec")


@pytest.mark.slow
def test_mining_panel_is_broadcast_once_not_read_by_workers(ray_cluster, tmp_path, monkeypatch):
    from marketlab.sweep.runners import MineRunner

    store, spec = mine_store_and_spec(tmp_path)
    seq = sweep.run(spec, ["miner.seed=5,6"], store=store, backend="sequential", name="seq")
    loads: list[str] = []
    puts: list[object] = []
    original_load = MineRunner.load_shared.__func__  # type: ignore[attr-defined]
    original_put = ray.put

    def load_then_drop_store(cls, spec_, ctx):  # the driver reads the panel once, then the store's data is gone
        panel = original_load(cls, spec_, ctx)
        loads.append(ctx.store)
        shutil.rmtree(Path(store) / "panel")
        (Path(store) / "catalog.duckdb").unlink()
        return panel

    def counting_put(value, *a, **kw):
        puts.append(type(value).__name__)
        return original_put(value, *a, **kw)

    monkeypatch.setattr(MineRunner, "load_shared", classmethod(load_then_drop_store))
    monkeypatch.setattr(ray, "put", counting_put)
    on_ray = sweep.run(spec, ["miner.seed=5,6"], store=store, backend="ray", name="ray", max_concurrency=2)
    assert len(loads) == 1 and puts == ["PanelTensors"]  # one read, one put, for both tasks
    assert not (Path(store) / "catalog.duckdb").exists()  # so the workers, which all succeeded, read no store
    cols = ["variant", "miner.seed", "status", "train_ic", "test_ic", "pool_size"]
    assert on_ray.failed == 0 and on_ray.table.select(cols).equals(seq.table.select(cols))
