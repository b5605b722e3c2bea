"""The predictor -> stored signal -> backtest chain on the LOBSTER GOOG 2012-06-21 level-10 day, run
through the CLI commands that ``specs/backtests/predictor_signal.toml`` documents (tiny: 1 epoch, 2,000
training windows). Skipped when ../shared/data is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.backtests import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.cli.main import app
from marketlab.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "backtests" / "predictor_signal.toml"
pytestmark = pytest.mark.integration


def _cli(*args: str) -> dict:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def _chain(store: Path, runs: Path, shared: Path) -> tuple[dict, pl.DataFrame]:
    """ingest (once) -> train -> predict --signals -> bars --to-dataset (once); returns (train summary, signals)."""
    spec = BacktestSpec.from_toml(SPEC)
    st = ["--store", str(store)]
    if not (store / "catalog.duckdb").exists():
        d = shared / "lobster_sample_2012-06-21"
        _cli("ingest", "lobster", str(d / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"),
             str(d / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"), "--dataset", "lobster_goog", *st)
        _cli("data", "bars", "lobster_goog", "GOOG", "--freq", "10s", "--to-dataset", spec.data.dataset, *st)
    tr = _cli("train", "binctabl", "--data", "lobster_goog", "--horizon", "10", "--config",
              str(ROOT / "specs" / "train" / "binctabl_goog.toml"), "--out", str(runs), "--fresh",
              "--epochs", "1", "--max-train-windows", "2000", *st)
    pr = _cli("predict", str(runs / "best"), "--data", "lobster_goog", "--out", str(runs / "test.parquet"),
              "--signals", spec.signal.dataset, *st)
    assert pr["signals_rows"] == pr["rows"] > 0
    tr["predict"] = pr
    return tr, Store(store).scan_signals(spec.signal.dataset).collect().sort("ts")


def test_predictor_signal_backtest_chain(shared_data, tmp_path):
    store = tmp_path / "store"
    tr, sig = _chain(store, tmp_path / "run_a", shared_data)
    # predict's macro F1 is scikit-learn's on the rows it wrote (one per timestamp: the last window wins) ...
    from sklearn.metrics import f1_score

    pred = pl.read_parquet(tmp_path / "run_a" / "test.parquet")
    probs = pred.select("p_up", "p_stationary", "p_down").to_numpy()
    np.testing.assert_array_equal(pred["pred"].to_numpy(), probs.argmax(1))
    want = f1_score(pred["label"].to_numpy(), pred["pred"].to_numpy(), average="macro", labels=[0, 1, 2], zero_division=0)
    assert tr["predict"]["macro_f1"] == pytest.approx(want, abs=1e-12)
    # ... and train's, over every test window, differs from it only through the few windows sharing a timestamp
    assert tr["test_macro_f1"] == pytest.approx(want, abs=2e-3)
    spec = BacktestSpec.from_toml(SPEC)
    res = Backtest(spec, spec_path=SPEC, store=Store(store)).run(report=False)

    # the spec is coherent with the data: the backtest starts at the first 10 s bar at or after the
    # test split's first forecast, and the bars and signals cover the same day
    first_sig = int(sig["ts"].min())
    bar = 10 * 10**9
    assert int(res.ts[0]) == -(-first_sig // bar) * bar
    assert int(res.ts[-1]) <= int(sig["ts"].max()) + bar

    # backwards alignment: each bar's decision comes from the latest forecast with ts <= bar open
    t_sig = sig["ts"].to_numpy()
    used = np.searchsorted(t_sig, res.ts, side="right") - 1
    assert (used >= 0).all() and (t_sig[used] <= res.ts).all()
    # positions follow the argmax class of that forecast (down -> -1, stationary -> 0, up -> +1)
    probs = sig.select("p_down", "p_stationary", "p_up").to_numpy()
    want = np.array([-1.0, 0.0, 1.0])[probs[used].argmax(1)]
    w = res.weights[:, 0]
    assert np.array_equal(np.sign(np.round(w, 6)), want)
    assert np.abs(w[want != 0]).min() > 0.95  # fully invested in the predicted direction
    assert res.metrics["n_trades"] > 0 and res.traded.sum() > 0
    assert np.isfinite(res.metrics["benchmark_return"]) and np.isfinite(res.metrics["turnover"])

    # no look-ahead: dropping every forecast after a time T leaves the positions up to T unchanged
    cut = int(res.ts[len(res.ts) // 2])
    part = Backtest(spec, spec_path=SPEC, store=Store(store),
                    signal_frame=sig.filter(pl.col("ts") <= cut)).run(report=False)
    upto = res.ts <= cut
    np.testing.assert_array_equal(part.weights[upto], res.weights[upto])

    # same seed -> identical forecasts and identical backtest
    _, sig_b = _chain(store, tmp_path / "run_b", shared_data)
    assert sig_b.select("ts", "p_up", "p_stationary", "p_down").equals(sig.select("ts", "p_up", "p_stationary", "p_down"))
    res_b = Backtest(spec, spec_path=SPEC, store=Store(store)).run(report=False)
    np.testing.assert_array_equal(res_b.value, res.value)
    assert res_b.metrics == res.metrics
