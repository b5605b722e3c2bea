"""`make demo`'s research-loop step (issue 15): a formula of the alpha language, its IC, its values backtested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

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


@pytest.mark.slow
def test_warmup_compiles_every_kernel_the_full_demo_needs(tmp_path: Path) -> None:
    """`make setup` runs `marketlab warmup` (the demo's steps on a small store) so that `make demo` starts warm:
    in one fresh interpreter, the full-size demo after the warmup must call no numba kernel signature that the
    warmup did not already hold in memory (compiled or loaded from the on-disk cache, so the check holds
    whatever that cache holds)."""
    code = f"""
import contextlib, gc, io, json
from numba.core.registry import CPUDispatcher
from marketlab.cli.main import app

def held():
    return {{f"{{d.py_func.__module__}}.{{d.py_func.__qualname__}}{{s}}" for d in gc.get_objects()
             if isinstance(d, CPUDispatcher) for s in d.signatures}}

def run(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        app([*args, "--json", "--quiet"], standalone_mode=False)
    return json.loads(out.getvalue())

warm = run("warmup")
before = held()
demo = run("demo", "--store", {str(tmp_path / "store")!r}, "--out", {str(tmp_path / "reports")!r})
print(json.dumps({{"warm": warm, "demo": demo, "new": sorted(held() - before)}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["new"] == []  # kernel signatures the full demo called that the warmup had not
    assert len(out["demo"]["steps"]) == len(_steps(Store(tmp_path / "s"), 0, tmp_path, progress=False))
    assert Path(out["demo"]["report"]).is_file() and out["warm"]["compiled"] >= 0
