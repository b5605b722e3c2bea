"""Backtest overhead: marketlab's ``Backtest.run`` vs calling vectorbt directly (same signal, same costs),
and an SMA cross side by side with backtrader (when importable; not a dependency).

Cases: (1) daily top-k momentum over a 500-symbol x 5-year panel (the real S&P 500 file when
``../shared/data`` is present, else a synthetic panel of the same shape); (2) an SMA(20)/SMA(100) cross on
1M single-symbol bars. Both sides are warmed up (numba compiled) before timing; best of ``--repeats``.
(3) the same SMA cross run by backtrader on the identical bars (``--peer-bars``), final equity checked against
marketlab's before the ratio is quoted. backtrader comes with the ``bench`` extra (``pip install -e '.[bench]'``)
or from ``MARKETLAB_PEERS=<dir>`` holding it.
Run: ``.venv/bin/python benchmarks/backtest.py [--quick]``; appends a run to ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketlab.backtests import Backtest  # noqa: E402
from marketlab.backtests import signals as sg  # noqa: E402
from marketlab.backtests.spec import BacktestSpec  # noqa: E402
from marketlab.market import MarketData, market_from_frame, synthetic_market  # noqa: E402

FEES, SLIP = 0.0005, 0.0001


def best(fn, repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def sp500_panel() -> tuple[MarketData, str]:
    path = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data")) / "sp500_5yr" / "all_stocks_5yr.csv.gz"
    if path.is_file():
        import polars as pl

        df = pl.read_csv(path, try_parse_dates=True).rename({"Name": "symbol"})
        return market_from_frame(df, source=str(path)), "sp500_5yr (505 symbols x 1259 days, real)"
    return synthetic_market(1260, 500, seed=0, vol=0.015, bar_seconds=86_400), "synthetic 500 x 1260"


def topk_case(repeats: int) -> dict:
    import pandas as pd
    import vectorbt as vbt

    market, label = sp500_panel()
    spec = BacktestSpec.from_dict({
        "name": "bench_topk", "data": {"dataset": "mem", "kind": "panel"},
        "signal": {"kind": "momentum-v1", "lookback": 231, "skip": 21},
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
    spec = BacktestSpec.from_dict({
        "name": "bench_sma", "data": {"dataset": "mem"}, "signal": {"kind": "ma-cross-v1", "fast": 20, "slow": 100},
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


def backtrader_case(n_bars: int, repeats: int) -> dict | None:
    """The SMA(20)/SMA(100) cross on the *same* bars as marketlab and vectorbt, with the same rules, and a check
    that the three final equities agree before any ratio is quoted.

    Same rules: a cross up (fast > slow after fast <= slow) buys with all cash at that bar's close, a cross down
    sells everything at that bar's close (backtrader: cheat-on-close, no cash check at submit, fractional size
    cash / (close * (1 + slippage) * (1 + fees))); slippage 1 bp on the close, commission 5 bp of the traded
    value (backtrader: ``set_slippage_perc`` with ``slip_out`` so the slipped close is not capped to the bar's
    range; ``setcommission`` is a fraction for stocks).
    """
    peers = os.environ.get("MARKETLAB_PEERS")
    if peers:
        sys.path.insert(0, peers)
    try:
        import backtrader as bt
    except ImportError:
        return None
    import pandas as pd

    m = synthetic_market(n_bars, 1, seed=1, vol=0.001)
    df = pd.DataFrame({"open": m.open[:, 0], "high": m.high[:, 0], "low": m.low[:, 0], "close": m.close[:, 0],
                       "volume": m.volume[:, 0]}, index=pd.to_datetime(m.ts))

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(self.data.close, period=20), bt.ind.SMA(self.data.close, period=100))
            self.n_orders = 0

        def next(self):
            if not self.position and self.cross[0] > 0:
                px = self.data.close[0] * (1 + SLIP)
                # (1 - 1e-12): the exact all-cash size can exceed the cash by rounding, and the broker then
                # rejects the order for margin (140 of 143 buys on 20k bars)
                self.buy(size=self.broker.getcash() * (1 - 1e-12) / (px * (1 + FEES)))
                self.n_orders += 1
            elif self.position and self.cross[0] < 0:
                self.close()
                self.n_orders += 1

    def run_bt() -> tuple[float, int]:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(SmaCross)
        cerebro.broker.setcash(10_000.0)
        cerebro.broker.setcommission(commission=FEES)
        cerebro.broker.set_slippage_perc(SLIP, slip_open=True, slip_match=True, slip_out=True)
        cerebro.broker.set_coc(True)
        cerebro.broker.set_checksubmit(False)
        strat = cerebro.run()[0]
        return float(cerebro.broker.getvalue()), int(strat.n_orders)

    spec = BacktestSpec.from_dict({
        "name": "bench_sma", "data": {"dataset": "mem"}, "signal": {"kind": "ma-cross-v1", "fast": 20, "slow": 100},
        "costs": {"commission": FEES, "slippage": SLIP}, "benchmark": {"kind": "none"},
    })
    ours_res = Backtest(spec, market=m).run(report=False)  # also compiles the numba kernels
    v_ours = float(ours_res.value[-1])
    n_ours = int(len(ours_res.portfolio.orders.values)) if getattr(ours_res, "portfolio", None) is not None else None
    t = time.perf_counter()
    v_bt, n_bt = run_bt()
    t_bt = time.perf_counter() - t
    t_ours = best(lambda: Backtest(spec, market=m).run(report=False), repeats)
    rel = abs(v_ours - v_bt) / abs(v_bt)
    out = {
        "n_bars": n_bars, "rules": "SMA(20)/SMA(100) cross, long only, all-in at the signal bar's close, 5 bp fees, 1 bp slippage",
        "final_equity": {"marketlab": v_ours, "backtrader": v_bt, "rel_diff": rel},
        "orders": {"marketlab": n_ours, "backtrader": n_bt},
        "equity_agrees": bool(rel < 1e-6),
        "backtrader_s": t_bt, "marketlab_s": t_ours,
        "backtrader_bars_per_s": n_bars / t_bt, "marketlab_bars_per_s": n_bars / t_ours,
    }
    # a ratio is only meaningful when both ran the same trades
    out["speedup_marketlab_vs_backtrader"] = t_bt / t_ours if out["equity_agrees"] else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k bars for the SMA case, 20k for the backtrader case")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bars", type=int, help="bars of the marketlab vs vectorbt SMA case (default 1,000,000)")
    ap.add_argument("--peer-bars", type=int, help="bars of the backtrader case, run by every engine (default 200,000)")
    args = ap.parse_args()
    from runlog import Run

    run = Run("backtest")
    n_bars = args.bars or (100_000 if args.quick else 1_000_000)
    peer_bars = args.peer_bars or (20_000 if args.quick else 200_000)
    res = {"topk_500x5y": topk_case(args.repeats), "sma_cross_single": sma_case(n_bars, args.repeats),
           "backtrader_sma_cross_same_bars": backtrader_case(peer_bars, args.repeats)}
    res["note"] = ("both sides warmed up (numba compiled) and timed in the same process, best of repeats (backtrader: one "
                   "run). marketlab's time includes signals, metrics and trade records; no report. The backtrader case "
                   "runs marketlab on the identical bars and rules and quotes a ratio only when the final equities agree.")
    print(json.dumps(res, indent=2, default=float))
    print(f"appended to {run.save(res)}")


if __name__ == "__main__":
    main()
