"""`make demo`'s research-loop step (issue 15): a formula of the alpha language, its IC, its values backtested."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from marketlab.cli.demo import DEMO_FORMULA, _steps, formula_scores
from marketlab.store import Store
from marketlab.store.synth import write_synth


def test_alpha_step_scores_are_the_formula_and_get_backtested(tmp_path: Path) -> None:
    st = Store(tmp_path / "store")
    write_synth(st, 4, n_symbols=9, n_days=90, n_events=200)
    scores = formula_scores(st, DEMO_FORMULA, "synth_daily")
    # the same formula computed naively from the stored panel: 5-day over 20-day mean of close, minus 1
    panel = st.scan_panel("synth_daily").collect().sort("symbol", "date")
    naive = panel.with_columns(
        (pl.col("close").rolling_mean(5).over("symbol") / pl.col("close").rolling_mean(20).over("symbol") - 1).alias("v")
    ).pivot(on="symbol", index="date", values="v").sort("date")
    syms = [c for c in scores.columns if c != "date"]
    assert syms == sorted(panel["symbol"].unique().to_list())
    a = scores.select(syms).to_numpy()
    b = naive.select(syms).to_numpy()
    both = np.isfinite(a) & np.isfinite(b)
    assert both.sum() > 0.5 * a.size
    np.testing.assert_allclose(a[both], b[both], rtol=0, atol=1e-6)  # the evaluator works in float32
    assert np.isnan(a[:19]).all()  # no value before 20 days of history

    steps = dict(_steps(st, 4, tmp_path / "reports", progress=False))
    res = steps["alpha formula -> IC -> top-k backtest"]()
    assert res["formula"] == DEMO_FORMULA and -1 <= res["ic"] <= 1 and np.isfinite(res["total_return"])
    assert Path(res["report"]).is_file()
