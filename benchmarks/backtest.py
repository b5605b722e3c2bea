"""Backtest overhead: marketlab's ``Backtest.run`` vs calling vectorbt directly (same signal, same costs),
and an SMA cross side by side with backtrader (when importable; not a dependency).

Cases: (1) daily top-k momentum over a 500-symbol x 5-year panel (the real S&P 500 file when
``../shared/data`` is present, else a synthetic panel of the same shape); (2) an SMA(20)/SMA(100) cross on
1M single-symbol bars. Both sides are warmed up (numba compiled) before timing; best of ``--repeats``.
Peers: ``pip install --no-deps --target /tmp/peers backtrader`` and ``MARKETLAB_PEERS=/tmp/peers``.
Run: ``.venv/bin/python benchmarks/backtest.py [--quick]``; writes ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketlab.backtests import Backtest  # noqa: E402
from marketlab.backtests import signals as sg  # noqa: E402
from marketlab.backtests.spec import spec_from_dict  # noqa: E402
from marketlab.envs.data import MarketData, market_from_frame, synthetic_market  # noqa: E402

FEES, SLIP = 0.0005, 0.0001


def best(fn, repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def sp500_panel() -> tuple[MarketData, str]:
    path = ROOT.parent / "shared" / "data" / "sp500_5yr" / "all_stocks_5yr.csv.gz"
    if path.is_file():
        import polars as pl

        df = pl.read_csv(path, try_parse_dates=True).rename({"Name": "symbol"})
        return market_from_frame(df, source=str(path)), "sp500_5yr (505 symbols x 1259 days, real)"
    return synthetic_market(1260, 500, seed=0, vol=0.015, bar_seconds=86_400), "synthetic 500 x 1260"


def topk_case(repeats: int) -> dict:
    import pandas as pd
    import vectorbt as vbt

    market, label = sp500_panel()
    spec = spec_from_dict({
        "name": "bench_topk", "data": {"dataset": "mem", "kind": "panel"},
        "signal": {"kind": "momentum", "lookback": 231, "skip": 21},
        "strategy": {"kind": "topk", "top_k": 50, "rebalance": 21},
        "costs": {"commission": FEES, "slippage": SLIP}, "benchmark": {"kind": "equal_weight"},
    })

    def ours() -> float:
        return Backtest(spec, market=market).run(report=False).value[-1]

    def direct() -> float:
        scores = sg.momentum(market.close, 231, 21)
        w = sg.topk_weights(scores, market.tradable, top_k=50, rebalance=21)
        close = pd.DataFrame(market.close, index=pd.to_datetime(market.ts), columns=list(market.symbols))
        pf = vbt.Portfolio.from_orders(close, size=w, size_type="targetpercent", group_by=True, cash_sharing=True,
                                       call_seq="auto", fees=FEES, slippage=SLIP, init_cash=10_000.0, freq="1D")
        return float(pf.value().iloc[-1])

    assert abs(ours() - direct()) <= 1e-9 * abs(direct())  # same result (also warms both up)
    t_ours, t_direct = best(ours, repeats), best(direct, repeats)
    return {"data": label, "marketlab_s": t_ours, "vectorbt_direct_s": t_direct, "overhead": t_ours / t_direct - 1.0}


def sma_case(n_bars: int, repeats: int) -> dict:
    import pandas as pd
    import vectorbt as vbt

    market = synthetic_market(n_bars, 1, seed=1, vol=0.001)
    spec = spec_from_dict({
        "name": "bench_sma", "data": {"dataset": "mem"}, "signal": {"kind": "ma_cross", "fast": 20, "slow": 100},
        "costs": {"commission": FEES, "slippage": SLIP}, "benchmark": {"kind": "equal_weight"},
    })

    def ours() -> float:
        return Backtest(spec, market=market).run(report=False).value[-1]

    close = pd.Series(market.close[:, 0], index=pd.to_datetime(market.ts))

    def direct() -> float:
        fast = vbt.MA.run(close, 20, short_name="fast")
        slow = vbt.MA.run(close, 100, short_name="slow")
        pf = vbt.Portfolio.from_signals(close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow), size=1.0,
                                        size_type="percent", direction="longonly", fees=FEES, slippage=SLIP, init_cash=10_000.0, freq="1min")
        return float(pf.value().iloc[-1])

    v_ours, v_direct = ours(), direct()
    t_ours, t_direct = best(ours, repeats), best(direct, repeats)
    return {
        "n_bars": n_bars, "marketlab_s": t_ours, "vectorbt_direct_s": t_direct, "overhead": t_ours / t_direct - 1.0,
        "marketlab_bars_per_s": n_bars / t_ours, "vectorbt_bars_per_s": n_bars / t_direct,
        "final_value_rel_diff": abs(v_ours - v_direct) / abs(v_direct),
    }


def backtrader_case(n_bars: int) -> dict | None:
    peers = os.environ.get("MARKETLAB_PEERS")
    if peers:
        sys.path.insert(0, peers)
    try:
        import backtrader as bt
    except ImportError:
        return None
    import pandas as pd

    m = synthetic_market(n_bars, 1, seed=1, vol=0.001)
    df = pd.DataFrame({"open": m.open[:, 0], "high": m.high[:, 0], "low": m.low[:, 0], "close": m.close[:, 0], "volume": m.volume[:, 0]},
                      index=pd.to_datetime(m.ts))

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=20), bt.ind.SMA(period=100))

        def next(self):
            if not self.position and self.cross > 0:
                self.order_target_percent(target=0.99)
            elif self.position and self.cross < 0:
                self.close()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(10_000.0)
    cerebro.broker.setcommission(commission=FEES)
    t = time.perf_counter()
    cerebro.run()
    dt = time.perf_counter() - t
    return {"n_bars": n_bars, "seconds": dt, "bars_per_s": n_bars / dt}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backtest.json"))
    args = ap.parse_args()
    n_bars = 100_000 if args.quick else 1_000_000
    res = {"topk_500x5y": topk_case(args.repeats), "sma_cross_single": sma_case(n_bars, args.repeats),
           "backtrader_sma_cross": backtrader_case(20_000 if args.quick else 100_000)}
    if res["backtrader_sma_cross"]:
        res["ratio_vectorbt_marketlab_vs_backtrader_bars_per_s"] = res["sma_cross_single"]["marketlab_bars_per_s"] / res["backtrader_sma_cross"]["bars_per_s"]
    res["hardware"] = {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "python": platform.python_version()}
    res["note"] = ("shared 2-core machine (other engineers' jobs running); both sides warmed up (numba compiled) and timed in the "
                   "same process, best of repeats. marketlab's time includes signals, metrics and trade records; no report.")
    print(json.dumps(res, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
