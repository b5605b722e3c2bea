"""Mining results: AlphaGen (MaskablePPO) vs GP vs hand-factor baselines on CSI300 and S&P 500.

Runs each method at pool capacity k in {10, 20} over several seeds (hand baselines: linear and gradient
boosting), reporting train / valid / test IC, RankIC and ICIR of the combined factor (mean ± std over seeds),
and writes ``benchmarks/results/alphagen_results.json`` after every run (partial results survive a stop).

Sized for a shared 2-core CPU: PPO steps and GP population are far below the paper's (see the json's
``sizes``); the numbers show the pipeline and the train/test gap, not the paper's converged results.
    python benchmarks/alphagen_results.py [--steps 4096] [--seeds 0 1] [--datasets csi300 sp500]
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
    args = ap.parse_args()

    import torch

    from marketlab.agents.alphagen.mine import MineSpec, load_panel, mine
    from marketlab.core.config import from_dict, load_toml

    torch.set_num_threads(1)
    specs = {"csi300": ROOT / "agents" / "alphagen_csi300.toml", "sp500": ROOT / "agents" / "alphagen_sp500.toml"}
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
        base = from_dict(MineSpec, raw, path=specs[ds])
        base.check(specs[ds])
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
