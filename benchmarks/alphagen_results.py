"""Mining results: AlphaGen (MaskablePPO) vs GP, gplearn and hand-factor models on CSI300 and S&P 500 (issue 19).

Each job (method x pool capacity k x seed) mines one spec (``specs/agents/alphagen_<dataset>.toml`` with the
method's settings) and appends one run to ``benchmarks/results/alphagen_results.json``: train / valid / test
IC, RankIC, ICIR of the combined factor, the pool's formulas with weights, wall and process CPU seconds,
hardware, load average, git commit, command. Runs already in the json are skipped (``--redo`` runs them again and
replaces them, recording what was replaced),
so re-issuing a command continues a cut-off sweep; AlphaGen runs checkpoint every ``--checkpoint-every`` steps
in ``--run-root/results_<dataset>_<label>_<seed>/`` and resume from there. Parallel workers share the json
through a file lock.

    python benchmarks/alphagen_results.py --reference --methods alphagen --caps 10 20 --seeds 0 1 2 --datasets csi300
    python benchmarks/alphagen_results.py --methods hand gp gplearn --hand-models linear lightgbm mlp gbdt ...
    python benchmarks/alphagen_results.py --table        # the README table from the json

``--reference``: AlphaGen's step budget per pool size (10: 200k, 20: 250k, 50: 300k, 100: 350k; k = 1, the
single-alpha ablation: 200k). gplearn stops at ``--gplearn-seconds`` of CPU (equal budget with an AlphaGen run).

``--backtests`` instead trades the pools that ``marketlab mine specs/agents/alphagen_csi300*.toml`` wrote into the
store: the top-50 / drop-5 specs ``specs/backtests/alphagen_csi300_top50*.toml`` (0.15% per side, vs the CSI300
index) on both test periods, stored under ``"backtests"`` in the same json (the IC table is kept).
``--backtest-runs`` trades the combined factor of every CSI300 run of this sweep at the reference settings (AlphaGen
at its reference steps, gplearn, our GP, LightGBM and the MLP): a pool is rebuilt from the run folder's
``pool.json`` (formulas and weights; the json's rounded copy when the folder is gone), a hand-factor model is
refitted with the run's seed (its test IC must equal the recorded one); the factor is written to the store as
signals ``ab_<run>_s<seed>`` and backtested with the same two specs; stored per run under
``"backtests_reference"`` (runs already there are skipped).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from runlog import Run, _commit, hardware

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "alphagen_results.json"


REFERENCE_STEPS = {1: 200_000, 10: 200_000, 20: 250_000, 50: 300_000, 100: 350_000}  # research/alphagen.md @HEAD
GP_POPULATION, GP_GENERATIONS = 100, 5  # our GP in the table (the earlier reduced-size runs kept; --gp-pop / --gp-gens)


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4096, help="PPO steps of every AlphaGen run (see --reference)")
    ap.add_argument("--reference", action="store_true",
                    help="AlphaGen at the reference budget per pool size (10: 200k, 20: 250k, 50: 300k, 100: 350k)")
    ap.add_argument("--n-envs", type=int, default=8, help="token envs in lockstep (rollout size kept at the spec's)")
    ap.add_argument("--checkpoint-every", type=int, default=8192)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--caps", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--gp-pop", type=int, default=GP_POPULATION)
    ap.add_argument("--gp-gens", type=int, default=GP_GENERATIONS)
    ap.add_argument("--hand-models", nargs="+", default=["linear", "gbdt"],
                    help="hand-factor combiners: linear, gbdt, lightgbm, mlp (seeded ones run per seed)")
    ap.add_argument("--gplearn-pop", type=int, default=1000, help="gplearn population (reference: 1000)")
    ap.add_argument("--gplearn-gens", type=int, default=40, help="gplearn generation cap (reference: 40)")
    ap.add_argument("--gplearn-seconds", type=float, default=600.0,
                    help="gplearn CPU-second budget (the CPU time of an AlphaGen run at the reference budget)")
    ap.add_argument("--datasets", nargs="+", default=["csi300", "sp500"])
    ap.add_argument("--store", default=os.environ.get("MARKETLAB_STORE"))
    ap.add_argument("--run-root", default=str(ROOT / "runs"), help="run folders (AlphaGen checkpoints resume from here)")
    ap.add_argument("--methods", nargs="+", default=["alphagen", "gp", "hand"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "alphagen_results.json"), help="results json (default benchmarks/results/alphagen_results.json)")
    ap.add_argument("--redo", action="store_true", help="run jobs already recorded in the json again")
    ap.add_argument("--backtests", action="store_true", help="only run the top-k backtests of the mined CSI300 pools")
    ap.add_argument("--backtest-runs", action="store_true",
                    help="only backtest (top-50/drop-5) the pool of every CSI300 reference run in the json")
    ap.add_argument("--table", action="store_true", help="print the README table from the results json and exit")
    args = ap.parse_args()
    OUT = Path(args.out)
    if args.table:
        print(table(read_results()))
        return
    if args.backtests:
        run_backtests(args.store)
        return
    if args.backtest_runs:
        backtest_runs(args.store)
        return

    import torch

    from marketlab.agents.alphagen.mine import MineSpec, load_panel, mine
    from marketlab.core.config import load_toml

    torch.set_num_threads(1)
    specs = {"csi300": ROOT / "specs" / "agents" / "alphagen_csi300.toml", "sp500": ROOT / "specs" / "agents" / "alphagen_sp500.toml"}
    for ds in args.datasets:
        raw = load_toml(specs[ds])
        if args.store:
            raw["data"]["store"] = args.store
        base = MineSpec.from_dict(raw, path=specs[ds])
        t0 = time.perf_counter()
        panel = load_panel(base.data)
        print(f"[{ds}] panel {panel.shape} loaded in {time.perf_counter() - t0:.1f}s", flush=True)
        for method, k, seed, extra in jobs_for(args):
            label = run_label(method, k, extra)
            if not args.redo and any(r["dataset"] == ds and r["method"] == label and r["seed"] == seed
                                     for r in read_results()["runs"]):
                print(f"[{ds}] {label} seed {seed}: already in {OUT.name}, skipped (--redo to run again)", flush=True)
                continue
            m = dataclasses.replace(base.miner, method=method, capacity=max(k, 1), seed=seed, **extra)
            out = dataclasses.replace(base.output, dir=str(Path(args.run_root) / f"results_{ds}_{label}_{seed}"),
                                      signals_dataset=None)  # fmt: skip
            spec = dataclasses.replace(base, miner=m, output=out)
            run = Run("alphagen_results")
            c0, t = time.process_time(), time.perf_counter()
            resumed_at = _checkpoint_steps(Path(out.dir)) if method == "alphagen" else None
            res = mine(spec, panel=panel, progress=False, resume=method == "alphagen", tensorboard=False)
            if "gplearn" in res["pool"]:
                entry_extra = {"gplearn": res["pool"]["gplearn"]}
            else:
                entry_extra = {}
            entry = {"dataset": ds, "method": label, "seed": seed, "seconds": round(time.perf_counter() - t, 1),
                     "cpu_seconds": round(time.process_time() - c0, 1), "utc": run.started, "git_commit": _commit(),
                     "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "hardware": hardware(),
                     "load_average_1_5_15min": {"start": run.load_start, "end": [round(x, 2) for x in os.getloadavg()]},
                     "config": {kk: v for kk, v in dataclasses.asdict(m).items() if kk in CONFIG_KEYS[method]},
                     "resumed_from_step": resumed_at, "run_dir": out.dir,
                     "pool_size": len(res["pool"]["alphas"]), "metrics": res["metrics"],
                     "formulas": _formulas(res["pool"]["alphas"]), **entry_extra}  # fmt: skip
            append_run(entry)
            te = res["metrics"].get("test", {})
            print(f"[{ds}] {label} seed {seed}: train ic {res['metrics']['train']['ic']:.4f} "
                  f"test ic {te.get('ic', float('nan')):.4f} rank {te.get('rank_ic', float('nan')):.4f} "
                  f"({entry['seconds']}s wall, {entry['cpu_seconds']}s cpu)", flush=True)  # fmt: skip


CONFIG_KEYS = {
    "alphagen": ("capacity", "steps", "n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate", "ent_coef",
                 "max_len", "max_lookback", "l1", "d_model", "n_layers"),
    "gp": ("capacity", "gp_population", "gp_generations", "max_len", "max_lookback", "l1"),
    "gplearn": ("capacity", "gp_population", "gp_generations", "gplearn_seconds", "max_len", "max_lookback", "l1"),
    "hand": ("hand_model",),
}


def jobs_for(args: argparse.Namespace) -> list[tuple[str, int, int, dict]]:
    """(method, pool capacity, seed, miner overrides) of every run the arguments ask for, in order."""
    jobs: list[tuple[str, int, int, dict]] = []  # hand models first: cheapest, and the classical reference
    for model in args.hand_models:
        for seed in ([0] if model == "linear" else args.seeds):  # least squares has no seed
            jobs.append(("hand", 0, seed, {"hand_model": model}))
    for k in args.caps:
        steps = REFERENCE_STEPS.get(k, max(REFERENCE_STEPS.values())) if args.reference else args.steps
        for seed in args.seeds:
            jobs.append(("alphagen", k, seed, {"steps": steps, "n_envs": args.n_envs,
                                               "n_steps": max(1, 512 // args.n_envs),
                                               "checkpoint_every": args.checkpoint_every}))
            jobs.append(("gp", k, seed, {"gp_population": args.gp_pop, "gp_generations": args.gp_gens}))
            jobs.append(("gplearn", k, seed, {"gp_population": args.gplearn_pop, "gp_generations": args.gplearn_gens,
                                              "gplearn_seconds": args.gplearn_seconds}))
    return [j for j in jobs if j[0] in args.methods]


def run_label(method: str, k: int, extra: dict) -> str:
    """The table row of a run: ``alphagen-k10-200000steps``, ``gp-k10-pop200x10``, ``hand-gbdt``."""
    if method == "hand":
        return f"hand-{extra['hand_model']}"
    label = f"{method}-k{k}"
    if method == "gp":
        return label + f"-pop{extra['gp_population']}x{extra['gp_generations']}"
    return label + f"-{extra['steps']}steps" if method == "alphagen" else label


def _formulas(alphas: list[dict]) -> list[dict]:
    """Pool members by |weight| (largest first) with weight and per-split IC, for the README."""
    rows = [{"formula": a["formula"], **({"weight": round(float(a["weight"]), 4)} if "weight" in a else {}),
             **({"ic": {s: round(float(v), 4) for s, v in a["ic"].items()}} if isinstance(a.get("ic"), dict) else {})}
            for a in alphas]  # fmt: skip
    return sorted(rows, key=lambda r: -abs(r.get("weight", 0.0)))


def _checkpoint_steps(run_dir: Path) -> int | None:
    """PPO steps of the run's checkpoint (the run resumes there), None when it starts fresh."""
    from marketlab.agents.sb3_state import read_state

    st = read_state(run_dir)
    return None if st is None else int(st.get("num_timesteps", 0))


def read_results() -> dict:
    """The results json (empty skeleton when missing)."""
    return json.loads(OUT.read_text()) if OUT.is_file() else {"runs": [], "summary": {}}


def update_results(change: Callable[[dict], None]) -> None:
    """Apply ``change`` to the results json under a file lock (parallel workers share the json); the summary is
    recomputed from the runs on every write."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = read_results()
        change(doc)
        doc["summary"] = summarize(doc["runs"])
        tmp = OUT.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float))
        tmp.replace(OUT)


def append_run(entry: dict) -> None:
    """Add one run and refresh the summary. A run of the same dataset, method and seed (``--redo``) is replaced, and
    the entry says what it replaced (commit, time, test IC); its backtest, made from the old run, is dropped."""

    def add(doc: dict) -> None:
        same = [r for r in doc["runs"] if (r["dataset"], r["method"], r["seed"]) == (entry["dataset"], entry["method"], entry["seed"])]
        if same:
            entry["replaces"] = [{"git_commit": r.get("git_commit"), "utc": r.get("utc"),
                                  "test_ic": r["metrics"].get("test", {}).get("ic")} for r in same]  # fmt: skip
            doc["runs"] = [r for r in doc["runs"] if all(r is not x for x in same)]
            doc.get("backtests_reference", {}).get("runs", {}).pop(f"{entry['method']}/seed{entry['seed']}", None)
        doc["runs"].append(entry)

    update_results(add)


BACKTEST_SPECS = {"test": "alphagen_csi300_top50", "test2": "alphagen_csi300_top50_test2"}
POOLS = {  # label -> the mining spec whose output (pool.json + signals dataset) is traded
    "alphagen": "specs/agents/alphagen_csi300.toml",
    "gp": "specs/agents/alphagen_csi300_gp.toml",
    "hand": "specs/agents/alphagen_csi300_hand.toml",
}
BT_KEYS = ("total_return", "cagr", "sharpe", "max_drawdown", "turnover", "benchmark_return", "excess_return",
           "volatility", "exposure", "n_bars")


def _backtest_periods(st, ds: str) -> dict:
    """Top-50 / drop-5 backtests of signals dataset ``ds`` on both test periods (``BACKTEST_SPECS``)."""
    from marketlab.backtests import Backtest
    from marketlab.backtests.spec import BacktestSpec
    from marketlab.core.config import load_toml

    out = {}
    for period, name in BACKTEST_SPECS.items():
        path = ROOT / "specs" / "backtests" / f"{name}.toml"
        d = load_toml(path)
        d["signal"]["dataset"] = ds
        t, c = time.perf_counter(), time.process_time()
        m = Backtest(BacktestSpec.from_dict(d, path=path), spec_path=path, store=st).run(report=False).to_dict()
        out[period] = {"spec": f"specs/backtests/{name}.toml", "start": m["start"][:10], "end": m["end"][:10],
                       **{k: m[k] for k in BT_KEYS}, "seconds": round(time.perf_counter() - t, 1),
                       "cpu_seconds": round(time.process_time() - c, 1)}  # fmt: skip
        print(f"  [{ds}] {period} {m['start'][:10]}..{m['end'][:10]}: return {m['total_return']:.3f} "
              f"sharpe {m['sharpe']:.2f} mdd {m['max_drawdown']:.3f} turnover {m['turnover']:.1f} "
              f"excess {m['excess_return']:.3f} (index {m['benchmark_return']:.3f})", flush=True)  # fmt: skip
    return out


def _reference_label(method: str) -> bool:
    """Whether a run label is one of the reference grid's pools (AlphaGen at its reference steps, gplearn)."""
    parts = method.split("-")
    if method.startswith("gplearn-k"):
        return True
    return (method.startswith("alphagen-k") and len(parts) == 3
            and parts[2] == f"{REFERENCE_STEPS.get(int(parts[1][1:]), -1)}steps")  # fmt: skip


def _backtested(method: str) -> bool:
    """Whether ``--backtest-runs`` trades a run: the reference grid's pools, our GP (a population label), and the
    LightGBM and MLP hand-factor models."""
    parts = method.split("-")
    gp_pool = method.startswith("gp-k") and len(parts) == 3 and parts[2].startswith("pop")
    return _reference_label(method) or gp_pool or method in ("hand-lightgbm", "hand-mlp")


def backtest_runs(store: str | None) -> None:
    """Backtest the pool of every CSI300 reference run in the json; results under ``backtests_reference``. A formula
    pool is rebuilt from its formulas and weights; a hand-factor model (LightGBM, MLP) is refitted with the run's
    seed, and its test IC must equal the recorded one (the refit is the run's model, not another)."""
    import torch

    from marketlab.agents.alphagen.mine import (MiningData, MineSpec, evaluate_combination, fit_hand, signal_frame,
                                                write_signals)  # fmt: skip
    from marketlab.core.config import load_toml
    from marketlab.features.expr import parse
    from marketlab.store import Store

    torch.set_num_threads(1)
    doc = read_results()
    done = doc.get("backtests_reference", {}).get("runs", {})
    todo = [r for r in doc["runs"] if r["dataset"] == "csi300" and _backtested(r["method"])
            and f"{r['method']}/seed{r['seed']}" not in done]  # fmt: skip
    if not todo:
        print("every reference run is backtested already", flush=True)
        return
    spec_path = ROOT / "specs" / "agents" / "alphagen_csi300.toml"
    raw = load_toml(spec_path)
    if store:
        raw["data"]["store"] = store
    st = Store(store) if store else Store()
    md = MiningData(MineSpec.from_dict(raw, path=spec_path), store=st)
    for r in todo:
        key = f"{r['method']}/seed{r['seed']}"
        if r["method"].startswith("hand-"):
            miner = dataclasses.replace(md.spec.miner, method="hand", hand_model=r["method"][5:], seed=r["seed"])
            model, exprs = fit_hand(md, miner)
            combine = model.predict
            refit_ic = evaluate_combination(md, exprs, combine)["test"]["ic"]
            if abs(refit_ic - r["metrics"]["test"]["ic"]) > 1e-6:
                raise SystemExit(f"{key}: refitted model's test IC {refit_ic:.6f} != recorded {r['metrics']['test']['ic']:.6f}")
            src = f"model refitted with seed {r['seed']} (test IC {refit_ic:.4f}, as recorded)"
        else:
            pool_json = Path(r.get("run_dir", "")) / "pool.json"
            src = "run_dir/pool.json" if pool_json.is_file() else "results json (weights rounded to 1e-4)"
            alphas = json.loads(pool_json.read_text())["pool"]["alphas"] if pool_json.is_file() else r["formulas"]
            exprs = [parse(a["formula"]) for a in alphas]
            weights = [float(a["weight"]) for a in alphas]

            def combine(zs: list, weights: list[float] = weights) -> torch.Tensor:
                out = torch.zeros_like(zs[0])
                for w, z in zip(weights, zs, strict=True):
                    out += w * z
                return out

        ds = f"ab_{r['method'].replace('-', '_')}_s{r['seed']}"
        c0, t0 = time.process_time(), time.perf_counter()
        rows = write_signals(st, ds, signal_frame(md, exprs, combine), "csi300")
        print(f"[{key}] {len(exprs)} formulas from {src}: {rows} signal rows -> {ds}", flush=True)
        entry = {"method": r["method"], "seed": r["seed"], "pool_from": src, "signals_dataset": ds, "n_alphas": len(exprs),
                 "pool_ic": {k: round(v["ic"], 4) for k, v in r["metrics"].items()}, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                 **_backtest_periods(st, ds), "signal_seconds": round(time.perf_counter() - t0, 1),
                 "signal_cpu_seconds": round(time.process_time() - c0, 1)}  # fmt: skip

        def put(d: dict, key: str = key, entry: dict = entry) -> None:
            sec = d.setdefault("backtests_reference", {"note": BT_NOTE, "runs": {}})
            sec["runs"][key] = entry

        update_results(put)


BT_NOTE = ("top-50 / drop-5 daily, decision at close t traded at close t+1, 0.15% commission per side, adjusted prices, "
           "suspended and out-of-CSI300 stock-days not tradable; benchmark = CSI300 index (SH000300) close; turnover = "
           "annual traded notional / mean value (both sides)")


def run_backtests(store: str | None) -> None:
    """Backtest every CSI300 pool found in the store on both test periods; add them to the results json."""
    from marketlab.core.config import load_toml
    from marketlab.store import Store

    st = Store(store) if store else Store()
    have = set(st.datasets()["dataset"].to_list())
    section: dict = {"note": BT_NOTE, "load_average_at_start": os.getloadavg()[0], "pools": {}}
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
        entry.update(_backtest_periods(st, ds))
        section["pools"][label] = entry
    update_results(lambda d: d.__setitem__("backtests_csi300_top50", section))  # the sweep may be writing runs


def _ms(v: list[float]) -> str:
    """``mean ± std`` of a summary pair (std over seeds; a single seed shows no ±)."""
    return f"{v[0]:.3f}" if len(v) < 2 or v[1] == 0 else f"{v[0]:.3f} ± {v[1]:.3f}"


def missing_runs(runs: list[dict], seeds: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    """The reference grid (issue 19) minus what the json holds: one line per missing cell."""
    have = {(r["dataset"], r["method"], r["seed"]) for r in runs}
    out = []
    for ds in ("csi300", "sp500"):
        cells = [f"alphagen-k{k}-{REFERENCE_STEPS[k]}steps" for k in (10, 20, 50, 100)]
        cells += [f"alphagen-k1-{REFERENCE_STEPS[1]}steps", "hand-lightgbm", "hand-mlp"]
        cells += [f"gplearn-k{k}" for k in (10, 20, 50, 100)]
        cells += [f"gp-k{k}-pop{GP_POPULATION}x{GP_GENERATIONS}" for k in (10, 20, 50, 100)]
        for c in cells:
            miss = [s for s in seeds if (ds, c, s) not in have]
            if miss:
                out.append(f"{ds} {c}: seeds {', '.join(map(str, miss))}")
    return out


def table(doc: dict) -> str:
    """Markdown: per dataset and method, test IC / RankIC / ICIR (mean ± std over seeds), the train-test IC gap,
    seconds; the formulas of the AlphaGen run with the best validation IC; the reference cells not yet run."""
    runs = doc["runs"]
    summ = summarize(runs)
    lines = []
    for ds, methods in summ.items():
        lines += [f"**{ds}** (test = {'2020-2021' if ds == 'csi300' else 'the spec test split'})", "",
                  "| method | seeds | train IC | valid IC | test IC | test RankIC | test ICIR | train − test IC | CPU s / run |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for meth, d in sorted(methods.items()):
            rs = [r for r in runs if r["dataset"] == ds and r["method"] == meth]
            cpu = [r.get("cpu_seconds") for r in rs if r.get("cpu_seconds") is not None]
            gap = np.array([split_metric(r, "train", "ic") - split_metric(r, "test", "ic") for r in rs if "test" in r["metrics"]])
            lines.append(f"| {meth} | {d['n_seeds']} | {_ms(d['train_ic'])} | {_ms(d.get('valid_ic', [np.nan]))} | "
                         f"{_ms(d.get('test_ic', [np.nan]))} | {_ms(d.get('test_rank_ic', [np.nan]))} | "
                         f"{_ms(d.get('test_icir', [np.nan]))} | {gap.mean():.3f} | "
                         f"{f'{np.mean(cpu):.0f}' if cpu else 'n/a'}"
                         f"{_resumed_note(rs)} |")  # fmt: skip
        lines.append("")
    ag = [r for r in runs if r["method"].startswith("alphagen") and r["dataset"] == "csi300" and "valid" in r["metrics"]]
    if ag:
        steps = max(int(r["method"].split("-")[-1].removesuffix("steps")) for r in ag)
        best = max((r for r in ag if r["method"].endswith(f"-{steps}steps")), key=lambda r: r["metrics"]["valid"]["ic"])
        lines += [f"Best-validation AlphaGen pool on CSI300 at the largest budget recorded ({best['method']}, seed "
                  f"{best['seed']}; valid IC {best['metrics']['valid']['ic']:.3f}, test IC {best['metrics']['test']['ic']:.3f}):", ""]  # fmt: skip
        for f in best["formulas"]:
            f = f if isinstance(f, dict) else {"formula": f}
            w = f"weight {f['weight']:+.3f}" if "weight" in f else ""
            ic = f.get("ic", {})
            ics = ", ".join(f"{s} IC {ic[s]:+.3f}" for s in ("train", "test") if s in ic)
            note = "; ".join(x for x in (w, ics) if x)
            lines.append(f"- `{infix(f['formula'])}`" + (f" ({note})" if note else ""))
        lines.append("")
    lines += backtest_table(doc) + verdict(summ)
    flat = flat_runs(runs)
    if flat:
        lines += ["Factors flat across stocks on every day of a split (no daily IC there; counted as IC 0 above):", ""]
        lines += [f"- {f}" for f in flat] + [""]
    miss = missing_runs(runs)
    if miss:
        lines += ["Not yet run at the reference settings (3 seeds each):", ""] + [f"- {m}" for m in miss]
    return "\n".join(lines)


_PREC = {"Add": 1, "Sub": 1, "Mul": 2, "Div": 2}
_SYM = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}


def infix(formula: str) -> str:
    """``formula`` with Add/Sub/Mul/Div written as ``+ - * /`` for reading (left-to-right chains without
    parentheses), checked to parse back to the same tree."""
    from marketlab.features.expr import parse

    def go(x) -> tuple[str, int]:  # (text, precedence: 1 for + -, 2 for * /, 3 for atoms and calls)
        if x.kind == "op" and x.name in _PREC:
            p = _PREC[x.name]
            (a, pa), (b, pb) = go(x.args[0]), go(x.args[1])
            neg = [y.kind == "const" and y.value < 0 for y in x.args]
            a = f"({a})" if pa < p else a
            b = f"({b})" if pb <= p or neg[1] else b  # a right operand of equal rank keeps its parentheses
            return f"{a} {_SYM[x.name]} {b}", p
        if x.kind == "op":
            return f"{x.name}({', '.join(go(a)[0] for a in x.args)})", 3
        return str(x), 3

    e = parse(formula)
    text = go(e)[0]
    if parse(text).key != e.key:  # pragma: no cover - a printer bug must not print a different formula
        raise AssertionError(f"infix({formula!r}) = {text!r} parses to another tree")
    return text


def _resumed_note(rs: list[dict]) -> str:
    """`` (1 resumed from step 8192: CPU after it only)`` for runs that continued an earlier checkpoint."""
    res = [r for r in rs if r.get("resumed_from_step")]
    if not res:
        return ""
    steps = ", ".join(str(r["resumed_from_step"]) for r in res)
    return f" ({len(res)} resumed from step {steps}: CPU after it only)"


def backtest_table(doc: dict) -> list[str]:
    """Markdown lines: top-50 / drop-5 results of the reference runs' pools (mean ± std over seeds per method),
    then the earlier pools of ``backtests_csi300_top50``."""
    ref = doc.get("backtests_reference", {}).get("runs", {})
    old = doc.get("backtests_csi300_top50", {}).get("pools", {})
    if not ref and not old:
        return []
    head = ["| pool | seeds | 2020-21 return | excess vs CSI300 | Sharpe | max DD | turnover | 2022-25 return | excess | Sharpe |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    lines = ["**CSI300 top-50 / drop-5 backtests** (daily, 0.15% per side, decision at close t traded at close t+1, "
             "vs the CSI300 index; `--backtest-runs` and `--backtests`)", "", *head]  # fmt: skip

    def cell(vals: list[float]) -> str:
        return _ms([float(np.mean(vals)), float(np.std(vals))])

    groups: dict[str, list[dict]] = {}
    for e in ref.values():
        groups.setdefault(e["method"], []).append(e)
    for meth, es in sorted(groups.items()):
        row = [meth, str(len(es))]
        for period, keys in (("test", ("total_return", "excess_return", "sharpe", "max_drawdown", "turnover")),
                             ("test2", ("total_return", "excess_return", "sharpe"))):  # fmt: skip
            row += [cell([e[period][k] for e in es]) for k in keys]
        lines.append("| " + " | ".join(row) + " |")
    for label, e in old.items():
        name = f"{label}: earlier `{e.get('mine_spec')}` pool" + (f", {e['steps']} steps" if e.get("steps") else "")
        row = [name, "1"] + [f"{e['test'][k]:.3f}" for k in ("total_return", "excess_return", "sharpe", "max_drawdown", "turnover")]
        row += [f"{e['test2'][k]:.3f}" for k in ("total_return", "excess_return", "sharpe")]
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def verdict(summ: dict) -> list[str]:
    """The issue's goal checked on what the json holds: AlphaGen's mean test IC at each pool size >= 20 on CSI300
    against GP and gplearn at the same pool size and LightGBM."""
    cs = summ.get("csi300", {})
    out = ["Goal check (mean test IC on CSI300, AlphaGen pool >= 20 against GP and gplearn with the same pool size, "
           "and LightGBM):", ""]  # fmt: skip
    ag = {m: d for m, d in cs.items() if _reference_label(m) and m.startswith("alphagen-k") and int(m.split("-")[1][1:]) >= 20}
    if not ag:
        return [*out, "- no AlphaGen run with a pool of 20 or more has finished at the reference budget yet", ""]
    for m, d in sorted(ag.items(), key=lambda kv: int(kv[0].split("-")[1][1:])):
        k = m.split("-")[1]
        rivals = {r: v["test_ic"][0] for r, v in cs.items() if "test_ic" in v and (
            r == "hand-lightgbm" or r.startswith((f"gp-{k}-", f"gplearn-{k}")) or r == f"gp-{k}")}  # fmt: skip
        beats = [r for r, v in rivals.items() if d["test_ic"][0] > v]
        loses = [f"{r} ({v:.3f})" for r, v in sorted(rivals.items()) if d["test_ic"][0] <= v]
        missing = [x for x in (f"gp-{k}", f"gplearn-{k}") if not any(r == x or r.startswith(x + "-") for r in rivals)]
        out.append(f"- {m} ({d['n_seeds']} seed{'s' * (d['n_seeds'] > 1)}): {d['test_ic'][0]:.3f}; "
                   + (f"below {', '.join(loses)}" if loses else f"above all of {', '.join(sorted(beats))}")
                   + (f" (no {' or '.join(missing)} run yet)" if missing else ""))  # fmt: skip
    return [*out, ""]


def split_metric(run: dict, split: str, metric: str) -> float:
    """A run's ``metric`` on ``split``; 0 where its factor is flat across stocks on every day of the split (no day
    with an IC: ``days == 0``). Such a factor predicts nothing, and the pool's objective counts a flat day as 0."""
    m = run["metrics"][split]
    return 0.0 if m.get("days") == 0 else float(m[metric])


def flat_runs(runs: list[dict]) -> list[str]:
    """``dataset method seed N: split, ...`` for every run whose factor is flat on every day of some split."""
    out = []
    for r in runs:
        flat = [s for s, m in r["metrics"].items() if m.get("days") == 0]
        if flat:
            out.append(f"{r['dataset']} {r['method']} seed {r['seed']}: {', '.join(flat)}")
    return out


def summarize(runs: list[dict]) -> dict:
    """mean ± std over seeds per (dataset, method, split, metric); a split on which a run's factor is flat on every
    day counts as 0 (:func:`split_metric`), so every seed counts."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out: dict = {}
    for (ds, meth), rs in groups.items():
        d = out.setdefault(ds, {}).setdefault(meth, {"n_seeds": len(rs)})
        for split in rs[0]["metrics"]:
            for metric in ("ic", "rank_ic", "icir"):
                v = np.array([split_metric(r, split, metric) for r in rs], dtype=float)
                d[f"{split}_{metric}"] = [round(float(np.nanmean(v)), 4), round(float(np.nanstd(v)), 4)]
    return out


if __name__ == "__main__":
    main()
