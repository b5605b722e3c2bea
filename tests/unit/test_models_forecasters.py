"""OHLC forecasters: shapes, walk-forward uses only revealed weeks, metrics, CSV errors, CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.core.errors import DataError, SpecError
from marketlab.models.forecasters import HORIZON, forecaster, forecaster_names, read_daily_csv, walk_forward


def _frame(n: int = 160, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opn = close * np.exp(rng.normal(0, 0.002, n))
    dates = pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 12, 31), "1d", eager=True)[:n]
    return pl.DataFrame({"date": dates, "open": opn, "close": close, "volume": rng.uniform(1e6, 2e6, n)})


@pytest.mark.parametrize("name", [n for n in forecaster_names() if forecaster(n).build is not None])
def test_model_shapes(name: str) -> None:
    spec = forecaster(name)
    f = 3 if spec.multivariate else 1
    m = spec.build(spec.n_in, f)
    assert m(torch.randn(4, spec.n_in, f)).shape == (4, HORIZON)


@pytest.mark.parametrize("name", ["naive", "cnn_univ_5", "cnn_multv_10"])
def test_walk_forward_uses_only_revealed_weeks(name: str) -> None:
    fr = _frame()
    kw = dict(test_start="2020-05-01", epochs=1, refit_epochs=1, seed=0, max_test_weeks=3)
    a = walk_forward(name, fr, **kw)
    # change everything from the second test week on: predictions of weeks 1 and 2 must not move
    first = int(np.searchsorted(fr["date"].to_numpy(), np.datetime64(a["first_test_day"])))
    cut = first + HORIZON
    bumped = fr.with_columns(pl.Series("open", np.r_[fr["open"][:cut].to_numpy(), fr["open"][cut:].to_numpy() * 1.5]),
                             pl.Series("close", np.r_[fr["close"][:cut].to_numpy(), fr["close"][cut:].to_numpy() * 1.5]))
    b = walk_forward(name, bumped, **kw)
    np.testing.assert_array_equal(a["predictions"][:2], b["predictions"][:2])
    assert not np.array_equal(a["actual"][1], b["actual"][1])
    assert a["test_weeks"] == 3 and a["predictions"].shape == (3, HORIZON)


def test_naive_metrics_known_answer() -> None:
    # Opens 100, 101, ..., 141 on 42 days. Weeks are blocks of 5 counted back from the last day: starts
    # 2, 7, ..., 37; test weeks start at/after day 22 -> 22, 27, 32, 37. The persistence forecast of every day of
    # week s is open[s-1] = 99 + s, the actual opens are 100 + s .. 104 + s: errors -1..-5 in every week, so
    # RMSE = sqrt((1+4+9+16+25)/5) = sqrt(11), per day [1, 2, 3, 4, 5], mean actual open = mean(122..141) = 131.5.
    n = 42
    dates = pl.date_range(pl.date(2021, 1, 1), pl.date(2021, 3, 31), "1d", eager=True)[:n]
    fr = pl.DataFrame({"date": dates, "open": 100.0 + np.arange(n), "close": 100.5 + np.arange(n)})
    r = walk_forward("naive", fr, test_start=str(dates[22]))
    assert r["test_weeks"] == 4
    assert r["first_test_day"] == str(dates[22]) and r["last_test_day"] == str(dates[41])
    assert r["rmse"] == pytest.approx(np.sqrt(11.0), rel=1e-12)
    assert r["rmse_per_day"] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0], rel=1e-12)
    assert r["rmse_over_mean"] == pytest.approx(np.sqrt(11.0) / 131.5, rel=1e-12)
    np.testing.assert_array_equal(r["predictions"][:, 0], [121.0, 126.0, 131.0, 136.0])


def test_read_daily_csv_errors(tmp_path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("date,open,close\n2020-01-01,1,1\n")
    with pytest.raises(DataError, match="only 1 rows"):
        read_daily_csv(p)
    p.write_text("date,close\n2020-01-01,1\n")
    with pytest.raises(DataError, match="field 'open'"):
        read_daily_csv(p)
    rows = "\n".join(f"2020-01-{d:02d},{-1 if d == 5 else 10},{10}" for d in range(1, 29))
    p.write_text("date,open,close\n" + rows + "\n")
    with pytest.raises(DataError, match="row 4"):
        read_daily_csv(p)
    with pytest.raises(SpecError, match="unknown forecaster id 'prophet'.*forecaster/naive-v1"):
        walk_forward("prophet", _frame(), test_start="2020-05-01")


def test_cli_forecast_json(tmp_path) -> None:
    p = tmp_path / "s.csv"
    _frame().write_csv(p)
    r = CliRunner().invoke(app, ["forecast", "--data", str(p), "--models", "naive,cnn_univ_5", "--start", "2020-01-01",
                                 "--test-start", "2020-05-20", "--end", "2020-12-31", "--epochs", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["results"]) == {"naive", "cnn_univ_5"}
    assert out["results"]["naive"]["rmse"] > 0
