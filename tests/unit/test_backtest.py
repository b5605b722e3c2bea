"""Backtester: env <-> vectorbt cross-check, signals, metrics, report, specs and bad input, CLI parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.backtests import Backtest, run_demo
from marketlab.backtests import signals as sg
from marketlab.core.metrics import summary
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.errors import DataError, SpecError, StoreError
from marketlab.market import market_to_frame, synthetic_market
from marketlab.envs.execution import simulate_weights_nb
from marketlab.envs.trading import TradingEnv

COSTS = {"commission": 0.001, "spread": 0.0004, "slippage": 0.0003}


@pytest.fixture(scope="session")
def vbt():
    """vectorbt, imported once per session (its numba kernels compile/load once, cached on disk)."""
    import vectorbt

    return vectorbt


@pytest.fixture(scope="module")
def daily3():
    return synthetic_market(400, 3, seed=8, vol=0.015, bar_seconds=86_400)


def _env_actions(env: TradingEnv, rng: np.random.Generator, n_steps: int):
    """Random actions through the env; returns decision rows' target weights (NaN = unchanged) and values."""
    w = np.full((env.market.n_steps, env.market.n_assets), np.nan)
    env.reset()
    values, prev, first = [], None, True
    for _ in range(n_steps):
        if not env.action_interp.discrete:
            a = rng.uniform(-1, 1, env.market.n_assets).astype(np.float32)
        else:
            a = int(rng.integers(0, 3)) if rng.random() < 0.3 or first else 2
        target = env.action_interp.to_weights(a)
        if first or not np.array_equal(target, prev):
            w[env.t] = target
        prev, first = target, False
        _, _, done, _, info = env.step(a)
        values.append(info["value"])
        if done:
            break
    return w, np.array(values)


@pytest.mark.parametrize("action,n", [("discrete", 1), ("weights", 3)])
def test_env_and_vectorbt_net_value_agree(action, n, vbt, daily3):
    """Same action sequence: the env's net value and vectorbt's agree to 1e-9 relative at every bar."""
    import pandas as pd

    m = synthetic_market(400, 1, seed=9, vol=0.02) if n == 1 else daily3
    env = TradingEnv({"costs": COSTS, "period": "all", "action": {"kind": action + "-v1"}}, market=m)
    w, env_values = _env_actions(env, np.random.default_rng(0), 300)
    s = env.start
    close = pd.DataFrame(m.close[s:], columns=list(m.symbols))
    pf = vbt.Portfolio.from_orders(
        close, size=w[s:], size_type="targetpercent", group_by=True, cash_sharing=True, call_seq="auto",
        fees=COSTS["commission"], slippage=COSTS["spread"] / 2 + COSTS["slippage"], init_cash=10_000.0,
    )
    cash = np.asarray(pf.cash()).reshape(-1)
    assets = np.asarray(pf.assets()).reshape(len(cash), n)
    k = len(env_values)
    # env value after step i = holdings after trading at row s+i valued at close s+i+1
    vbt_values = cash[:k] + (assets[:k] * m.close[s + 1 : s + 1 + k]).sum(axis=1)
    np.testing.assert_allclose(env_values, vbt_values, rtol=1e-9, atol=0)
    assert np.ptp(env_values) > 100  # the path moved: the comparison is not trivial
    # and the kernel replay used by the docs/benchmarks gives the same thing
    v_kernel, _, _ = simulate_weights_nb(m.close[s:], w[s:], 10_000.0, COSTS["commission"], COSTS["spread"] / 2 + COSTS["slippage"])
    np.testing.assert_allclose(v_kernel, np.asarray(pf.value()).reshape(-1), rtol=1e-9)


def test_rl_style_backtest_equals_env_rollout(daily3):
    """Backtest with strategy 'weights' replays exactly what the env did (final value to 1e-9)."""
    env = TradingEnv({"costs": COSTS, "period": "all", "action": {"kind": "weights-v1"}}, market=daily3)
    w, env_values = _env_actions(env, np.random.default_rng(3), 10_000)
    bt = Backtest(BacktestSpec.from_dict({"name": "w", "data": {"dataset": "mem"}, "signal": {"kind": "weights-v1"},
                                  "strategy": {"kind": "weights"}, "costs": COSTS}), market=daily3)
    res = bt.simulate(daily3, 0, "weights", w)
    assert res.value[-1] == pytest.approx(env_values[-1], rel=1e-9)


def test_topk_weights_rank_and_drop():
    scores = np.array([[5.0, 4, 3, 2, 1], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]])
    ok = np.ones_like(scores, dtype=bool)
    w = sg.topk_weights(scores, ok, top_k=2, rebalance=1)
    np.testing.assert_allclose(w[0], [0.5, 0.5, 0, 0, 0])
    np.testing.assert_allclose(w[1], [0, 0, 0, 0.5, 0.5])
    ls = sg.topk_weights(scores, ok, top_k=1, rebalance=2, long_short=True)
    np.testing.assert_allclose(ls[0], [0.5, 0, 0, 0, -0.5])
    assert np.isnan(ls[1]).all()  # between rebalances: no orders
    drop = sg.topk_weights(scores, ok, top_k=2, rebalance=1, n_drop=1)
    np.testing.assert_allclose(drop[1], [0, 0.5, 0, 0, 0.5])  # only the worst-ranked old name replaced
    masked = ok.copy()
    masked[0, 0] = False
    w2 = sg.topk_weights(scores, masked, top_k=2, rebalance=1)
    assert np.isnan(w2[0, 0]) and w2[0, 1] == 0.5 and w2[0, 2] == 0.5  # untradable: skipped, not sold


def test_rules_are_causal():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 2)), axis=0))
    bumped = close.copy()
    bumped[200:] *= 1.5
    for fn in (lambda c: sg.ma_cross(c, 5, 20).entries, lambda c: sg.momentum(c, 10, 2), lambda c: sg.mean_reversion(c, 20, 1, 0).exits):
        np.testing.assert_array_equal(fn(close)[:200], fn(bumped)[:200])
    np.testing.assert_allclose(sg.sma(close, 3)[2], close[:3].mean(axis=0))


def test_ma_cross_backtest_known_answer(vbt):
    """Zero costs, one long trade: final value = init * exit close / entry close."""
    close = np.array([10, 9, 8, 7, 8, 9, 10, 11, 12, 11, 10, 9, 8, 7.0])
    m = synthetic_market(len(close), 1, seed=0, bar_seconds=86_400)
    m = type(m)(m.ts, m.symbols, close[:, None], close[:, None], close[:, None], close[:, None], m.volume, m.tradable, {}, "mem")
    bt = Backtest(BacktestSpec.from_dict({"name": "ka", "data": {"dataset": "mem"}, "signal": {"kind": "ma-cross-v1", "fast": 2, "slow": 3},
                                  "benchmark": {"kind": "none"}}), market=m)
    res = bt.run(report=False)
    e = sg.ma_cross(close[:, None], 2, 3)
    t_in, t_out = int(np.argmax(e.entries[:, 0])), int(np.argmax(e.exits[:, 0] & (np.arange(len(close)) > np.argmax(e.entries[:, 0]))))
    assert res.value[-1] == pytest.approx(10_000 * close[t_out] / close[t_in], rel=1e-12)
    assert res.metrics["n_trades"] == 1 and res.metrics["hit_rate"] == 1.0


def test_metrics_match_vectorbt(vbt, daily3):
    bt = Backtest(BacktestSpec.from_dict({"name": "m", "data": {"dataset": "mem", "periods_per_year": 252.0}, "signal": {"kind": "momentum-v1", "lookback": 10},
                                  "strategy": {"kind": "topk", "top_k": 1, "rebalance": 5}, "costs": COSTS}), market=daily3)
    res = bt.run(report=False)
    pf = res.portfolio
    assert res.metrics["total_return"] == pytest.approx(float(pf.total_return()), rel=1e-9)
    assert res.metrics["max_drawdown"] == pytest.approx(float(pf.max_drawdown()), rel=1e-9)
    r = np.diff(np.concatenate([[10_000.0], res.value])) / np.concatenate([[10_000.0], res.value[:-1]])
    assert res.metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    m = summary(np.array([100.0, 110, 99, 120]), init_cash=100.0, periods_per_year=1)
    assert m["max_drawdown"] == pytest.approx(-0.1) and m["total_return"] == pytest.approx(0.2)


def test_report_is_self_contained_html_and_pngs(tmp_path, daily3):
    bt = Backtest(BacktestSpec.from_dict({"name": "rep", "data": {"dataset": "mem"}, "signal": {"kind": "ma-cross-v1", "fast": 5, "slow": 20},
                                  "costs": COSTS, "report": {"out_dir": str(tmp_path)}}), market=daily3)
    res = bt.run()
    html = Path(res.report_path).read_text()
    assert res.report_path == tmp_path / "rep" / "report.html"
    assert "Plotly.newPlot" in html and "<script src=\"http" not in html  # plotly.js inlined
    for name in ("equity", "drawdown", "positions", "rolling_sharpe"):
        assert (tmp_path / "rep" / f"{name}.png").stat().st_size > 1000
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["final_value"] == pytest.approx(res.value[-1])


# ---- stored data, specs and bad input ----------------------------------------------------------------

@pytest.fixture(scope="module")
def panel_store(tmp_path_factory):
    from marketlab.store import IngestBatch, Instrument, Store

    store = Store(tmp_path_factory.mktemp("bt") / "store")
    m = synthetic_market(260, 12, seed=2, vol=0.015, bar_seconds=86_400)
    frame = market_to_frame(m)
    panel = frame.with_columns(
        pl.from_epoch(pl.col("ts"), time_unit="ns").dt.date().alias("date"),
        pl.lit(None, dtype=pl.Float64).alias("vwap"), pl.lit(None, dtype=pl.Float64).alias("amount"),
        pl.lit(1.0).alias("adj_factor"), pl.lit(True).alias("in_universe"), pl.lit(False).alias("suspended"),
    ).drop("ts")
    ins = [Instrument(s, 0.01, 1.0) for s in m.symbols]
    store.write(IngestBatch("panel12", {"panel": panel}, ins), format="test")
    scores = frame.select(pl.from_epoch(pl.col("ts"), time_unit="ns").dt.date().alias("date"), "symbol", (pl.col("close").log().diff().over("symbol")).alias("alpha"))
    store.write(IngestBatch("alpha12", {"signals": scores.drop_nulls()}, ins), format="test")
    return store


def _write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SPEC = """
name = "alpha_topk"
[data]
dataset = "panel12"
kind = "panel"
test_start = "2024-05-01"
period = "test"
[signal]
kind = "alpha-v1"
dataset = "alpha12"
columns = ["alpha"]
[strategy]
kind = "topk"
top_k = 3
rebalance = 5
[costs]
commission = 0.001
[report]
out_dir = "{out}"
"""


def test_stored_alpha_spec_and_cli_json_parity(tmp_path, panel_store):
    from typer.testing import CliRunner

    from marketlab.cli.main import app

    spec = _write_spec(tmp_path / "a.toml", SPEC.format(out=tmp_path / "reports"))
    py = Backtest.from_spec(spec, store=panel_store).run().to_dict()
    out = CliRunner().invoke(app, ["backtest", str(spec), "--store", str(panel_store.path), "--json"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.stdout)
    assert cli == json.loads(json.dumps(py))
    assert py["n_bars"] > 50 and py["start"].startswith("2024-05-01")


def test_run_demo_on_synth_panel(tmp_path):
    from marketlab.store import Store
    from marketlab.store.synth import write_synth

    store = Store(tmp_path / "store")
    write_synth(store, seed=1, n_symbols=30, n_days=150, n_events=500)
    out = run_demo(store, out_dir=tmp_path / "reports")
    assert Path(out["report"]).is_file() and np.isfinite(out["final_value"])


@pytest.mark.parametrize(
    "edit,exc,pattern",
    [
        (("[costs]", "[costs]\nfees = 0.1"), SpecError, r"a\.toml: key 'costs\.fees': unknown key"),
        (("top_k = 3", 'top_k = "three"'), SpecError, r"a\.toml: key 'strategy\.top_k': expected an integer"),
        (('dataset = "panel12"', 'dataset = "nope"'), StoreError, r"dataset 'nope'"),
        (('test_start = "2024-05-01"', 'test_start = "2031-01-01"'), SpecError, r"a\.toml: key 'data\.test_start': empty test period"),
        (('kind = "alpha-v1"', 'kind = "oracle"'), SpecError, r"key 'signal\.kind'"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, panel_store, edit, exc, pattern):
    from typer.testing import CliRunner

    from marketlab.cli.main import app

    text = SPEC.format(out=tmp_path).replace(*edit)
    spec = _write_spec(tmp_path / "a.toml", text)
    with pytest.raises(exc, match=pattern) as err:
        Backtest.from_spec(spec, store=panel_store).run(report=False)
    assert "\n" not in str(err.value)
    out = CliRunner().invoke(app, ["backtest", str(spec), "--store", str(panel_store.path)])
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1


def test_signal_with_look_ahead_is_rejected(panel_store):
    m = synthetic_market(50, 2, seed=0, bar_seconds=86_400)
    sig = pl.DataFrame({"ts": m.ts[:10] + 86_400 * 10**9, "bar_ts": m.ts[:10], "symbol": [m.symbols[0]] * 10, "alpha": np.arange(10.0)})
    spec = BacktestSpec.from_dict({"name": "la", "data": {"dataset": "mem"}, "signal": {"kind": "alpha-v1", "dataset": "preds", "columns": ["alpha"]},
                           "strategy": {"kind": "topk", "top_k": 1}})
    with pytest.raises(DataError, match=r"dataset 'preds', row 0, field 'ts': look-ahead"):
        Backtest(spec, market=m, signal_frame=sig).run(report=False)


def test_missing_file_spec(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        BacktestSpec.from_toml(tmp_path / "none.toml")


def test_shipped_specs_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETLAB_DATA", str(tmp_path))  # the real-data ones read $MARKETLAB_DATA/... (checked on use)
    root = Path(__file__).resolve().parents[2] / "specs" / "backtests"
    specs = sorted(root.glob("*.toml"))
    assert len(specs) >= 4
    for p in specs:
        assert BacktestSpec.from_toml(p).name == p.stem


def test_predictor_probabilities_set_positions():
    m = synthetic_market(30, 1, seed=0, bar_seconds=60)
    p_up = np.where(np.arange(30) < 10, 0.7, 0.1)
    p_down = np.where(np.arange(30) < 10, 0.2, 0.8)
    frame = pl.DataFrame({"ts": m.ts, "symbol": [m.symbols[0]] * 30, "p_up": p_up, "p_stationary": 1 - p_up - p_down, "p_down": p_down,
                          "label": np.zeros(30, dtype=np.int8)})
    spec = BacktestSpec.from_dict({"name": "p", "data": {"dataset": "mem"}, "strategy": {"kind": "weights"}, "benchmark": {"kind": "none"},
                           "signal": {"kind": "predictions-v1", "dataset": "preds", "columns": ["p_down", "p_stationary", "p_up"]}})
    res = Backtest(spec, market=m, signal_frame=frame).run(report=False)
    assert res.weights[5, 0] > 0.99 and res.weights[20, 0] < -0.99  # long while p_up leads, short after


# ---- own signals and weights from Python frames ------------------------------------------------------

def _same_run(a, b) -> None:
    """Same equity to 1e-12 (relative) at every bar and the same trade list."""
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=0)
    assert len(a.trades) == len(b.trades) > 0
    for c in ("symbol", "direction", "entry_time", "exit_time", "status"):
        assert (a.trades[c].to_numpy() == b.trades[c].to_numpy()).all(), c
    for c in ("size", "entry_price", "exit_price", "pnl"):
        np.testing.assert_allclose(a.trades[c].to_numpy(), b.trades[c].to_numpy(), rtol=1e-12, atol=0)


def test_from_signals_equals_the_stored_alpha_spec(tmp_path, panel_store):
    """The alpha the spec reads from the store, passed as a frame instead (long Polars, wide pandas)."""
    spec = _write_spec(tmp_path / "a.toml", SPEC.format(out=tmp_path / "reports"))
    want = Backtest.from_spec(spec, store=panel_store).run(report=False)
    long = panel_store.scan_signals("alpha12").collect().select("date", "symbol", pl.col("alpha").alias("value"))
    kw = dict(data={"dataset": "panel12", "kind": "panel", "test_start": "2024-05-01", "period": "test"},
              strategy={"kind": "topk", "top_k": 3, "rebalance": 5}, costs={"commission": 0.001}, store=panel_store)
    _same_run(Backtest.from_signals(long, **kw).run(report=False), want)
    wide = long.to_pandas().pivot(index="date", columns="symbol", values="value")  # date index, one column per symbol
    _same_run(Backtest.from_signals(wide, **kw).run(report=False), want)


def test_from_weights_equals_the_momentum_topk_spec(daily3):
    """Top-k weights computed in Python from the same momentum scores, given only on rebalance rows."""
    d = {"name": "mom", "data": {"dataset": "mem"}, "signal": {"kind": "momentum-v1", "lookback": 20},
         "strategy": {"kind": "topk", "top_k": 1, "rebalance": 5}, "costs": COSTS}
    want = Backtest(BacktestSpec.from_dict(d), market=daily3).run(report=False)
    w = sg.topk_weights(sg.momentum(daily3.close, 20), daily3.tradable, top_k=1, rebalance=5)
    rows = np.nonzero(np.isfinite(w).any(axis=1))[0]
    frame = pl.DataFrame({"ts": pl.Series(daily3.ts[rows]).cast(pl.Datetime("ns")),
                          **{s: w[rows, j] for j, s in enumerate(daily3.symbols)}})
    got = Backtest.from_weights(frame, data=daily3, costs=COSTS).run(report=False)
    _same_run(got, want)


def test_python_built_specs_are_checked_like_toml(daily3):
    with pytest.raises(SpecError, match=r"key 'data': expected a table"):
        BacktestSpec(name="x", data="panel12", signal={"kind": "momentum-v1"})  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"key 'data\.bogus': unknown key"):
        BacktestSpec(name="x", data={"dataset": "d", "bogus": 1}, signal={"kind": "momentum-v1"})  # type: ignore[arg-type]
    spec = BacktestSpec(name="x", data={"dataset": "d"}, signal={"kind": "momentum-v1"})  # type: ignore[arg-type]
    assert spec.data.dataset == "d" and spec.signal.lookback == 20  # dict tables became spec objects
    frame = pl.DataFrame({"ts": pl.Series(daily3.ts).cast(pl.Datetime("ns")), **{s: daily3.close[:, j] for j, s in enumerate(daily3.symbols)}})
    with pytest.raises(SpecError, match=r"key 'costs\.commission'"):
        Backtest.from_signals(frame, data=daily3, costs={"commission": 2.0})
    with pytest.raises(DataError, match="symbols not in the market data: ZZZ"):
        Backtest.from_signals(frame.with_columns(pl.lit(1.0).alias("ZZZ")), data=daily3).run(report=False)
    with pytest.raises(DataError, match="no time column"):
        Backtest.from_weights(frame.drop("ts"), data=daily3)


def test_unknown_spec_symbols_are_named(panel_store):
    d = {"name": "u", "data": {"dataset": "panel12", "kind": "panel", "symbols": ["NOPE", "S000", "ZZZ"]},
         "signal": {"kind": "momentum-v1"}}
    with pytest.raises(SpecError, match=r"key 'data\.symbols'.*NOPE, ZZZ"):
        Backtest(BacktestSpec.from_dict(d), store=panel_store).run(report=False)


def test_times_print_as_dates_or_datetimes(daily3):
    from marketlab.core.timeutil import format_times

    assert list(format_times(np.array([0, 86_400 * 10**9]))) == ["1970-01-01", "1970-01-02"]
    assert list(format_times(np.array([0, 60 * 10**9]))) == ["1970-01-01 00:00:00", "1970-01-01 00:01:00"]
    assert list(format_times(np.array([], np.int64))) == []  # a flat backtest has no trades to print
    assert list(format_times(np.array([0, 1]), "s")) == ["1970-01-01 00:00:00", "1970-01-01 00:00:00"]
    d = {"name": "t", "data": {"dataset": "mem"}, "signal": {"kind": "ma-cross-v1", "fast": 3, "slow": 8}, "costs": COSTS}
    res = Backtest(BacktestSpec.from_dict(d), market=daily3).run(report=False)
    assert res.to_dict()["start"] == "2024-01-01" and res.trades["entry_time"].iloc[0].count("-") == 2
    assert len(res.trades["entry_time"].iloc[0]) == 10
    minute = synthetic_market(300, 1, seed=1, vol=0.003, bar_seconds=60)
    res = Backtest(BacktestSpec.from_dict(d), market=minute).run(report=False)
    assert res.to_dict()["start"] == "2024-01-01 00:00:00" and res.to_dict()["end"] == "2024-01-01 04:59:00"
    assert all(len(t) == 19 and t[10] == " " for t in res.trades["entry_time"])
