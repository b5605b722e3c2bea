"""Mining results: AlphaGen (MaskablePPO) vs GP vs hand-factor baselines on CSI300 and S&P 500.

Runs each method at pool capacity k in {10, 20} over several seeds (hand baselines: linear and gradient
boosting), reporting train / valid / test IC, RankIC and ICIR of the combined factor (mean ± std over seeds),
and writes ``benchmarks/results/alphagen_results.json`` after every run (partial results survive a stop).

Sized for a shared 2-core CPU: PPO steps and GP population are far below the paper's (see the json's
``sizes``); the numbers show the pipeline and the train/test gap, not the paper's converged results.
    python benchmarks/alphagen_results.py [--steps 4096] [--seeds 0 1] [--datasets csi300 sp500]

``--backtests`` instead trades the pools that ``marketlab mine specs/agents/alphagen_csi300*.toml`` wrote into the
store: the top-50 / drop-5 specs ``specs/backtests/alphagen_csi300_top50*.toml`` (0.15% per side, vs the CSI300
index) on both test periods, stored under ``"backtests"`` in the same json (the IC table is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "alphagen_results.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4096)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--caps", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--gp-pop", type=int, default=100)
    ap.add_argument("--gp-gens", type=int, default=5)
    ap.add_argument("--datasets", nargs="+", default=["csi300", "sp500"])
    ap.add_argument("--store", default=os.environ.get("MARKETLAB_STORE"))
    ap.add_argument("--methods", nargs="+", default=["alphagen", "gp", "hand"])
    ap.add_argument("--append", action="store_true", help="add runs to the existing json instead of replacing it")
    ap.add_argument("--backtests", action="store_true", help="only run the top-k backtests of the mined CSI300 pools")
    args = ap.parse_args()
    if args.backtests:
        run_backtests(args.store)
        return

    import torch

    from marketlab.agents.alphagen.mine import MineSpec, load_panel, mine
    from marketlab.core.config import load_toml

    torch.set_num_threads(1)
    specs = {"csi300": ROOT / "specs" / "agents" / "alphagen_csi300.toml", "sp500": ROOT / "specs" / "agents" / "alphagen_sp500.toml"}
    result: dict = {
        "hardware": {"processor": platform.processor(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                     "cuda": torch.cuda.is_available()},
        "note": "shared 2-core CPU (other engineers' jobs running); reduced sizes, see 'sizes'",
        "sizes": {"ppo_steps": args.steps, "seeds": args.seeds, "capacities": args.caps,
                  "gp_population": args.gp_pop, "gp_generations": args.gp_gens},
        "runs": [],
        "summary": {},
    }  # fmt: skip
    if args.append and OUT.is_file():
        old = json.loads(OUT.read_text())
        result["runs"] = old["runs"]
        result["sizes"] = {"runs_before": old["sizes"], "appended": result["sizes"]}
    for ds in args.datasets:
        raw = load_toml(specs[ds])
        if args.store:
            raw["data"]["store"] = args.store
        base = MineSpec.from_dict(raw, path=specs[ds])
        t0 = time.perf_counter()
        panel = load_panel(base.data)
        print(f"[{ds}] panel {panel.shape} loaded in {time.perf_counter() - t0:.1f}s", flush=True)
        jobs = []
        for k in args.caps:
            for seed in args.seeds:
                jobs.append(("alphagen", k, seed, {"steps": args.steps}))
                jobs.append(("gp", k, seed, {"gp_population": args.gp_pop, "gp_generations": args.gp_gens}))
        jobs += [("hand", 0, 0, {"hand_model": "linear"}), ("hand", 0, 0, {"hand_model": "gbdt"})]
        jobs = [j for j in jobs if j[0] in args.methods]
        for method, k, seed, extra in jobs:
            m = dataclasses.replace(base.miner, method=method, capacity=max(k, 1), seed=seed, **extra)
            out = dataclasses.replace(base.output, dir=str(ROOT / "runs" / f"results_{ds}_{method}_{k}_{seed}"),
                                      signals_dataset=None)  # fmt: skip
            spec = dataclasses.replace(base, miner=m, output=out)
            t = time.perf_counter()
            res = mine(spec, panel=panel, progress=False)
            label = f"{method}" + (f"-{extra['hand_model']}" if method == "hand" else f"-k{k}")
            if method == "alphagen":
                label += f"-{args.steps}steps"
            run = {"dataset": ds, "method": label, "seed": seed, "seconds": round(time.perf_counter() - t, 1),
                   "pool_size": len(res["pool"]["alphas"]), "metrics": res["metrics"],
                   "formulas": [a["formula"] for a in res["pool"]["alphas"]][:20]}  # fmt: skip
            result["runs"].append(run)
            te = res["metrics"].get("test", {})
            print(f"[{ds}] {label} seed {seed}: train ic {res['metrics']['train']['ic']:.4f} "
                  f"test ic {te.get('ic', float('nan')):.4f} rank {te.get('rank_ic', float('nan')):.4f} "
                  f"({run['seconds']}s)", flush=True)  # fmt: skip
            result["summary"] = summarize(result["runs"])
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(result, indent=1, default=float))


BACKTEST_SPECS = {"test": "alphagen_csi300_top50", "test2": "alphagen_csi300_top50_test2"}
POOLS = {  # label -> the mining spec whose output (pool.json + signals dataset) is traded
    "alphagen": "specs/agents/alphagen_csi300.toml",
    "gp": "specs/agents/alphagen_csi300_gp.toml",
    "hand": "specs/agents/alphagen_csi300_hand.toml",
}
BT_KEYS = ("total_return", "cagr", "sharpe", "max_drawdown", "turnover", "benchmark_return", "excess_return",
           "volatility", "exposure", "n_bars")


def run_backtests(store: str | None) -> None:
    """Backtest every CSI300 pool found in the store on both test periods; add them to the results json."""
    from marketlab.backtests import Backtest
    from marketlab.backtests.spec import BacktestSpec
    from marketlab.core.config import load_toml
    from marketlab.store import Store

    st = Store(store) if store else Store()
    have = set(st.datasets()["dataset"].to_list())
    result = json.loads(OUT.read_text()) if OUT.is_file() else {"runs": [], "summary": {}}
    section: dict = {"note": "top-50 / drop-5 daily, decision at close t traded at close t+1, 0.15% commission per "
                             "side, adjusted prices, suspended and out-of-CSI300 stock-days not tradable; benchmark "
                             "= CSI300 index (SH000300) close; turnover = annual traded notional / mean value (both sides)",
                     "load_average_at_start": os.getloadavg()[0], "pools": {}}  # fmt: skip
    for label, spec_path in POOLS.items():
        mine_spec = load_toml(ROOT / spec_path)
        ds = mine_spec["output"]["signals_dataset"]
        if ds not in have:
            print(f"[{label}] signals dataset {ds!r} not in the store: run `marketlab mine {spec_path}` first", flush=True)
            continue
        pool_json = ROOT / mine_spec["output"]["dir"] / "pool.json"
        pool = json.loads(pool_json.read_text()) if pool_json.is_file() else {}
        entry: dict = {"mine_spec": spec_path, "signals_dataset": ds, "method": pool.get("method"),
                       "steps": pool.get("steps"), "capacity": pool.get("capacity"), "seed": pool.get("seed"),
                       "pool_ic": {k: {m: round(v[m], 4) for m in ("ic", "rank_ic", "icir")}
                                   for k, v in pool.get("metrics", {}).items()}}  # fmt: skip
        for period, name in BACKTEST_SPECS.items():
            path = ROOT / "specs" / "backtests" / f"{name}.toml"
            d = load_toml(path)
            d["signal"]["dataset"] = ds
            t = time.perf_counter()
            res = Backtest(BacktestSpec.from_dict(d, path=path), spec_path=path, store=st).run(report=False)
            m = res.to_dict()
            entry[period] = {"spec": f"specs/backtests/{name}.toml", "start": m["start"][:10], "end": m["end"][:10],
                             **{k: m[k] for k in BT_KEYS}, "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
            print(f"[{label}] {period} {m['start'][:10]}..{m['end'][:10]}: return {m['total_return']:.3f} "
                  f"sharpe {m['sharpe']:.2f} mdd {m['max_drawdown']:.3f} turnover {m['turnover']:.1f} "
                  f"excess {m['excess_return']:.3f} (index {m['benchmark_return']:.3f})", flush=True)  # fmt: skip
        section["pools"][label] = entry
    result["backtests_csi300_top50"] = section
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=float))


def summarize(runs: list[dict]) -> dict:
    """mean ± std over seeds per (dataset, method, split, metric)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out: dict = {}
    for (ds, meth), rs in groups.items():
        d = out.setdefault(ds, {}).setdefault(meth, {"n_seeds": len(rs)})
        for split in rs[0]["metrics"]:
            for metric in ("ic", "rank_ic", "icir"):
                v = np.array([r["metrics"][split][metric] for r in rs], dtype=float)
                d[f"{split}_{metric}"] = [round(float(np.nanmean(v)), 4), round(float(np.nanstd(v)), 4)]
    return out


if __name__ == "__main__":
    main()
