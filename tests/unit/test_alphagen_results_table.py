"""The README table helpers of ``benchmarks/alphagen_results.py``: the infix printer of mined formulas, which runs
count as the reference grid, and the goal check (AlphaGen pool >= 20 against GP, gplearn and LightGBM)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ar():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling runlog
    try:
        spec = importlib.util.spec_from_file_location("alphagen_results", ROOT / "benchmarks" / "alphagen_results.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.mark.parametrize("formula, text", [
    ("Sub(Sub(close, Sub(open, high)), Div(close, Mul(open, -5)))", "close - (open - high) - close / (open * (-5))"),
    ("Div(Div(close, open), Div(high, low))", "close / open / (high / low)"),
    ("Mul(Add(close, 1), Mean(Sub(high, low), 10))", "(close + 1) * Mean(high - low, 10)"),
    ("Add(close, Add(open, high))", "close + (open + high)"),  # right-nested: the parentheses keep the tree
    ("Corr(close, volume, 20)", "Corr(close, volume, 20)"),
    ("Div(-0.5, Abs(close))", "-0.5 / Abs(close)"),
])  # fmt: skip
def test_infix_known_answers(ar, formula, text):
    assert ar.infix(formula) == text


def test_reference_labels(ar):
    assert ar._reference_label("alphagen-k10-200000steps") and ar._reference_label("alphagen-k20-250000steps")
    assert ar._reference_label("alphagen-k1-200000steps") and ar._reference_label("gplearn-k20")
    assert not ar._reference_label("alphagen-k10-4096steps") and not ar._reference_label("alphagen-k20-200000steps")
    assert not ar._reference_label("gp-k10") and not ar._reference_label("hand-lightgbm")
    # backtested: the reference pools, our GP's population-labelled pools, LightGBM and the MLP
    assert ar._backtested("alphagen-k100-350000steps") and ar._backtested("gp-k50-pop100x5")
    assert ar._backtested("hand-lightgbm") and ar._backtested("hand-mlp")
    assert not ar._backtested("gp-k10") and not ar._backtested("hand-gbdt") and not ar._backtested("alphagen-k10-4096steps")


def test_goal_check_compares_pools_of_20_and_more_with_every_rival(ar):
    summ = {"csi300": {
        "alphagen-k10-200000steps": {"n_seeds": 3, "test_ic": [0.09, 0.0]},  # pool 10: not part of the goal
        "alphagen-k20-250000steps": {"n_seeds": 3, "test_ic": [0.046, 0.004]},
        "alphagen-k50-300000steps": {"n_seeds": 1, "test_ic": [0.060, 0.0]},
        "alphagen-k20-4096steps": {"n_seeds": 2, "test_ic": [0.2, 0.0]},  # not at the reference budget
        "gp-k20": {"n_seeds": 2, "test_ic": [0.047, 0.005]},
        "gp-k50-pop200x10": {"n_seeds": 1, "test_ic": [0.055, 0.0]},
        "gp-k10": {"n_seeds": 2, "test_ic": [0.070, 0.005]},  # another pool size: not compared
        "gplearn-k20": {"n_seeds": 3, "test_ic": [0.030, 0.002]},
        "hand-lightgbm": {"n_seeds": 3, "test_ic": [0.045, 0.001]},
        "hand-mlp": {"n_seeds": 1, "test_ic": [0.5, 0.0]},  # not a rival named by the goal
    }}  # fmt: skip
    lines = [x for x in ar.verdict(summ) if x.startswith("- ")]
    assert lines == ["- alphagen-k20-250000steps (3 seeds): 0.046; below gp-k20 (0.047)",
                     "- alphagen-k50-300000steps (1 seed): 0.060; above all of gp-k50-pop200x10, hand-lightgbm "
                     "(no gplearn-k50 run yet)"]
    assert "no AlphaGen run" in ar.verdict({"csi300": {"gp-k20": {"n_seeds": 1, "test_ic": [0.04, 0.0]}}})[2]


def test_missing_runs_lists_every_grid_cell_short_of_three_seeds(ar):
    full = [("alphagen-k10-200000steps", s) for s in (0, 1, 2)] + [("gp-k100-pop100x5", s) for s in (0, 1)]
    full += [("gplearn-k50", 2), ("gp-k100-pop200x10", 2)]  # another GP setting does not fill the grid's cell
    runs = [{"dataset": "csi300", "method": m, "seed": s} for m, s in full]
    miss = ar.missing_runs(runs)
    assert "csi300 gp-k100-pop100x5: seeds 2" in miss and "csi300 gplearn-k50: seeds 0, 1" in miss
    assert not any(m.startswith("csi300 alphagen-k10-") for m in miss)
    assert "sp500 alphagen-k10-200000steps: seeds 0, 1, 2" in miss and "sp500 gplearn-k100: seeds 0, 1, 2" in miss
    # the grid: AlphaGen at pools 1, 10, 20, 50, 100; gplearn and our GP at 10, 20, 50, 100; LightGBM; the MLP
    assert len([m for m in miss if m.startswith("sp500 ")]) == 5 + 4 + 4 + 2


def test_a_split_without_any_daily_ic_counts_as_zero_and_is_listed(ar):
    def run(seed, test):
        return {"dataset": "sp500", "method": "alphagen-k1-200000steps", "seed": seed,
                "metrics": {"train": {"ic": 0.05, "rank_ic": 0.02, "icir": 0.5, "days": 185}, "test": test}}  # fmt: skip

    flat = {"ic": float("nan"), "rank_ic": float("nan"), "icir": float("nan"), "days": 0}
    runs = [run(0, {"ic": -0.04, "rank_ic": -0.02, "icir": -0.3, "days": 257}), run(1, flat)]
    s = ar.summarize(runs)["sp500"]["alphagen-k1-200000steps"]
    assert s["n_seeds"] == 2 and s["test_ic"] == [-0.02, 0.02]  # mean and std of (-0.04, 0): the flat seed counts
    assert s["train_ic"] == [0.05, 0.0]
    assert ar.flat_runs(runs) == ["sp500 alphagen-k1-200000steps seed 1: test"]
