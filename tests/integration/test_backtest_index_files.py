"""The benchmark ``kind = "file"`` reads the shipped US index CSVs (no symbol column): GSPC (``date``,
``close``, oldest first) and SPY (``timestamp``, ``adjusted_close``, newest first). Known answer: the index
return over the backtest period read straight from the file with pandas (last quote at or before each end)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.backtests import Backtest
from marketlab.market import synthetic_market

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name,tcol,pcol", [("GSPC_daily.csv.gz", "date", "close"),
                                            ("SPY_daily_adjusted.csv.gz", "timestamp", "adjusted_close")])
def test_benchmark_file_reads_the_us_index_csvs(shared_data, name, tcol, pcol):
    path = shared_data / "us_index_daily" / name
    m = synthetic_market(90, 3, seed=4, vol=0.01, bar_seconds=86_400, start="2020-06-06")  # a Saturday start
    frame = pd.DataFrame({"date": pd.to_datetime(m.ts), **{s: m.close[:, j] for j, s in enumerate(m.symbols)}})
    bt = Backtest.from_signals(frame, data=m, benchmark={"kind": "file", "path": str(path)})
    res = bt.run(report=False)
    raw = pd.read_csv(path, parse_dates=[tcol]).sort_values(tcol).set_index(tcol)[pcol]
    first, last = raw.loc[: pd.Timestamp(m.ts[0])].iloc[-1], raw.loc[: pd.Timestamp(m.ts[-1])].iloc[-1]
    assert res.metrics["benchmark_return"] == pytest.approx(last / first - 1, rel=1e-12)
    assert res.benchmark is not None and np.isfinite(res.benchmark).all()
    assert res.to_dict()["start"] == "2020-06-06"
