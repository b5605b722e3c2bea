"""Walk-forward CNN/LSTM forecasters of next week's S&P 500 opens (Mehtab, Sen & Dasgupta 2020 setup).

Series: ^GSPC daily (``shared/data/us_index_daily/GSPC_daily.csv.gz``; columns open, close, volume --
no high/low), 2013-02-08 .. 2018-02-07. Initial fit on the days before 2017-01-02, then 55 test weeks
(5-trading-day blocks), each predicted, revealed and followed by a warm-start refit. Writes
``benchmarks/results/forecasters.json``: RMSE, RMSE / mean actual open, RMSE per day of the week and
execution time per model, next to a persistence baseline (next opens = last open).
The paper's own numbers are on NIFTY 50 (2014-2020) and are not comparable; none are quoted here.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from marketlab.core.device import set_torch_threads  # noqa: E402
from marketlab.models.forecasters import forecaster, forecaster_names, read_daily_csv, walk_forward  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "benchmarks" / "results" / "forecasters.json"


def main() -> None:
    set_torch_threads(1)
    quick = "--quick" in sys.argv
    frame = read_daily_csv(DATA / "us_index_daily" / "GSPC_daily.csv.gz", start="2013-02-08", end="2018-02-07")
    res: dict = {
        "hardware": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                     "torch": torch.__version__, "cuda": torch.cuda.is_available(), "torch_threads": 1},
        "note": ("CPU, 1 torch thread, on a 2-core machine shared with other jobs (times are inflated and "
                 "noisy). Inputs/targets are relative to the last known open (see marketlab.models.forecasters); "
                 "weekly refit = 1 warm-start epoch over all revealed windows."),
        "series": "^GSPC 2013-02-08..2018-02-07", "test_start": "2017-01-02", "models": {},
    }
    for name in forecaster_names():
        r = walk_forward(name, frame, test_start="2017-01-02", refit_epochs=1, seed=0,
                         max_test_weeks=4 if quick else None)
        res["models"][name] = {k: r[k] for k in ("rmse", "rmse_over_mean", "rmse_per_day", "seconds", "test_weeks",
                                                  "first_test_day", "last_test_day", "columns", "parameters")}
        res["models"][name]["epochs"] = forecaster(name).epochs
        print(f"{name:15s} RMSE {r['rmse']:8.2f}  RMSE/mean {r['rmse_over_mean']:.5f}  {r['seconds']:7.1f}s", flush=True)
    base = res["models"]["naive"]["rmse"]
    for v in res["models"].values():
        v["rmse_vs_naive"] = v["rmse"] / base
    if not quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
