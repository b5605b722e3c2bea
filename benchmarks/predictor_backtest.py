"""Full-size predictor -> signal -> backtest run of ``specs/backtests/predictor_signal.toml``: runs the spec's
documented CLI commands into a fresh store, then the backtest with the spec's costs and with zero costs,
next to buy-and-hold GOOG over the same bars. Writes benchmarks/results/predictor_backtest.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/predictor_backtest.py [--store /tmp/pb_store]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOB = "../shared/data/lobster_sample_2012-06-21"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="/tmp/predictor_backtest_store")
    ap.add_argument("--runs", default="/tmp/predictor_backtest_runs")
    a = ap.parse_args()
    st = ["--store", a.store]
    run = f"{a.runs}/binctabl_goog_h10"
    cmds = [
        ["ingest", "lobster", f"{LOB}/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz",
         f"{LOB}/GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz", "--dataset", "lobster_goog", *st],
        ["train", "binctabl", "--data", "lobster_goog", "--horizon", "10", "--config", "specs/train/binctabl_goog.toml",
         "--out", run, "--fresh", *st],
        ["predict", f"{run}/best", "--data", "lobster_goog", "--split", "test", "--out", f"{run}/test.parquet",
         "--signals", "binctabl_goog_h10", *st],
        ["data", "bars", "lobster_goog", "GOOG", "--freq", "10s", "--to-dataset", "lobster_goog_10s", *st],
        ["backtest", "specs/backtests/predictor_signal.toml", "--no-report", *st],
    ]
    out: dict = {"commands": [], "steps": {}}
    exe = str(Path(sys.executable).with_name("marketlab"))
    for c in cmds:
        t0 = time.perf_counter()
        p = subprocess.run([exe, *c, "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
        out["commands"].append("marketlab " + shlex.join(c))
        out["steps"][c[0] if c[0] != "data" else "bars"] = {"seconds": round(time.perf_counter() - t0, 2),
                                                          **json.loads(p.stdout[p.stdout.index("{"):])}
    # the same backtest without costs: how much of the result is the signal and how much the costs
    from marketlab.backtests import Backtest
    from marketlab.backtests.spec import BacktestSpec
    from marketlab.store import Store

    spec = BacktestSpec.from_toml(ROOT / "specs/backtests/predictor_signal.toml")
    free = dataclasses.replace(spec, costs=dataclasses.replace(spec.costs, commission=0.0, spread=0.0, slippage=0.0))
    out["steps"]["backtest_zero_costs"] = Backtest(free, store=Store(a.store)).run(report=False).to_dict()
    import torch

    out["hardware"] = {"processor": platform.processor(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                       "cuda": torch.cuda.is_available(), "torch_threads": torch.get_num_threads(),
                       "python": platform.python_version()}
    out["note"] = ("CPU run on a 2-core machine shared with other jobs (timings are indicative). Test = last 10% of "
                   "the volume-sampled GOOG 2012-06-21 day (19:37:44-20:00 UTC, ~22 min); F1 is on that split's "
                   "windows. 10 s bars from executions; costs 0.5 bp commission + 3 bp spread (half per trade); "
                   "benchmark = buy-and-hold GOOG over the same bars, no costs.")
    b = out["steps"]["backtest"]
    z = out["steps"]["backtest_zero_costs"]
    out["summary"] = {"test_macro_f1": out["steps"]["predict"]["macro_f1"],
                      "test_accuracy": out["steps"]["predict"]["accuracy"],
                      **{f"{k}": b[k] for k in ("total_return", "sharpe", "turnover", "n_trades", "hit_rate", "exposure",
                                                  "benchmark_return", "excess_return", "n_bars")},
                      "zero_cost_total_return": z["total_return"], "zero_cost_sharpe": z["sharpe"]}
    path = ROOT / "benchmarks/results/predictor_backtest.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["summary"], indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
