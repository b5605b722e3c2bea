"""Bad spec values of backtests and RL agents (issue 13 items 5, 6, 10, 13): each is one line
``error: <file>: key '<key>': ...`` on stderr with exit code 2 through the CLI, and nothing is written
outside the output folders; a run folder's config.json that names an importable string runs no code."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.market import market_to_frame, synthetic_market

BACKTEST = """name = "bt"
[data]
dataset = "bars1"
periods_per_year = 252.0
[signal]
kind = "momentum-v1"
lookback = 5
[strategy]
kind = "topk"
top_k = 1
size = 1.0
delay = 0
[costs]
init_cash = 10000.0
[report]
out_dir = "{out}"
html = false
png = false
"""

AGENT = """name = "agent"
algo = "ppo"
seed = 0
total_timesteps = 64
device = "cpu"
out_dir = "{out}"
[hyper]
learning_rate = 0.001
gamma = 0.99
[env.data]
dataset = "bars1"
[env.reward]
kind = "pnl-v1"
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from marketlab.store import IngestBatch, Instrument, Store

    st = Store(tmp_path_factory.mktemp("bad") / "store")
    m = synthetic_market(60, 2, seed=1, vol=0.01)
    st.write(IngestBatch("bars1", {"bars": market_to_frame(m)}, [Instrument(s, 0.01, 1.0) for s in m.symbols]), format="test")
    return st


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def _check(out, spec: Path, key: str) -> None:
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert spec.name in out.stderr and f"'{key}'" in out.stderr, out.stderr


@pytest.mark.parametrize(
    "edit,key",
    [
        (("periods_per_year = 252.0", "periods_per_year = -252.0"), "data.periods_per_year"),
        (("periods_per_year = 252.0", "periods_per_year = 0.0"), "data.periods_per_year"),
        (("init_cash = 10000.0", "init_cash = inf"), "costs.init_cash"),
        (("init_cash = 10000.0", "init_cash = -1.0"), "costs.init_cash"),
        (("size = 1.0", "size = -5.0"), "strategy.size"),
        (("lookback = 5", "lookback = 500"), "signal.lookback"),
        (("delay = 0", "delay = 500"), "strategy.delay"),
        (('name = "bt"', 'name = "../../x"'), "name"),
        (('name = "bt"', 'name = "/tmp/escaped"'), "name"),
        (('kind = "momentum-v1"', 'kind = "os:system"'), "signal.kind"),
        (('kind = "momentum-v1"', 'kind = "momentum"'), "signal.kind"),
        (("top_k = 1", "top_k = 0"), "strategy.top_k"),
    ],
)
def test_bad_backtest_spec_is_one_line_exit_2(edit, key, store, tmp_path):
    spec = tmp_path / "bad_bt.toml"
    spec.write_text(BACKTEST.format(out=tmp_path / "reports").replace(*edit))
    _check(_invoke(["backtest", str(spec), "--store", str(store.path)]), spec, key)
    assert not (tmp_path / "reports").exists() and not Path("/tmp/escaped").exists()


def test_good_backtest_spec_runs(store, tmp_path):
    spec = tmp_path / "bt.toml"
    spec.write_text(BACKTEST.format(out=tmp_path / "reports"))
    out = _invoke(["backtest", str(spec), "--store", str(store.path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["name"] == "bt"


@pytest.mark.parametrize(
    "edit,key",
    [
        (("seed = 0", "seed = -5"), "seed"),
        (("learning_rate = 0.001", "learning_rate = -1.0"), "hyper.learning_rate"),
        (("gamma = 0.99", "gamma = 2.0"), "hyper.gamma"),
        (("total_timesteps = 64", "total_timesteps = 0"), "total_timesteps"),
        (('name = "agent"', 'name = "../../x"'), "name"),
        (('kind = "pnl-v1"', 'kind = "os:system"'), "env.reward.kind"),
        (('kind = "pnl-v1"', 'kind = "pnl"'), "env.reward.kind"),
        (('algo = "ppo"', 'algo = "a2c"'), "algo"),
    ],
)
def test_bad_agent_spec_is_one_line_exit_2(edit, key, store, tmp_path):
    spec = tmp_path / "bad_agent.toml"
    spec.write_text(AGENT.format(out=tmp_path / "runs").replace(*edit))
    _check(_invoke(["rl", "train", str(spec), "--store", str(store.path)]), spec, key)
    assert not (tmp_path / "runs").exists()


def test_run_folder_naming_an_importable_string_runs_no_code(store, tmp_path, monkeypatch):
    """``rl eval`` reads config.json; a ``module:attr`` kind is refused before anything is imported."""
    marker = tmp_path / "imported"
    (tmp_path / "hm_evil_module.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Evil: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    cfg = {"name": "agent", "algo": "ppo", "env": {"data": {"dataset": "bars1"}, "reward": {"kind": "hm_evil_module:Evil"}}}
    (run / "config.json").write_text(json.dumps(cfg))
    out = _invoke(["rl", "eval", str(run), "--store", str(store.path)])
    _check(out, run / "config.json", "env.reward.kind")
    assert not marker.exists()


def test_env_construction_reads_and_never_ingests(tmp_path):
    """``gym.make`` with a spec naming ``[data.ingest]`` files refuses a missing dataset instead of
    writing to the store; the spec runner's explicit step (``prepare_data``) is what ingests."""
    import gymnasium as gym

    import marketlab.envs  # noqa: F401  (gymnasium ids)
    from marketlab.core.errors import StoreError
    from marketlab.market import load_market_spec, prepare_data
    from marketlab.market.spec import DataSpec
    from marketlab.store import Store

    m = synthetic_market(40, 1, seed=3)
    csv = tmp_path / "S000-1m.csv"
    market_to_frame(m).select("ts", "symbol", "open", "high", "low", "close", "volume").with_columns(
        (pl.col("ts") // 1_000_000).alias("ts")).rename({"ts": "timestamp"}).write_csv(csv)
    store = Store(tmp_path / "store")
    data = {"dataset": "fresh", "ingest": {"format": "ohlcv", "paths": [str(csv)]}}
    with pytest.raises(StoreError, match="dataset 'fresh'"):
        gym.make("marketlab/Trading-v0", config={"period": "all", "data": data}, store=store)
    assert "fresh" not in store.datasets()["dataset"].to_list()
    spec = DataSpec.from_dict(data)
    prepare_data(spec, store)
    assert load_market_spec(spec, store).n_steps == 40
