"""MacroHFT on Binance BTCUSDT / ETHUSDT minutes: train, trade the held-out test months through vectorbt, time it.

    PYTHONPATH=. python benchmarks/macrohft.py                       # reduced budget (labelled), 2 symbols x 3 seeds
    PYTHONPATH=. python benchmarks/macrohft.py --budget paper        # the reference budget (needs days on 2 CPUs)

For each symbol and seed: phase 1 (six regime sub-agents) and phase 2 (hyper-agent) are trained from
``specs/agents/macrohft_{btc,eth}.toml`` (with ``marketlab.agents.macrohft.config.REDUCED_BUDGET`` unless ``--budget paper``), then
the greedy policies are rolled out on the test split (2023-05-01 -> 2023-12-31) and traded with marketlab's
vectorbt backtester (stored-signal source: position 1 = long all-in, 0 = flat; commission = the spec's fee,
2 bp per side): MacroHFT, the ablation without the hyper-agent (the six sub-agents mixed uniformly) and each
sub-agent alone, next to buy-and-hold and flat. Metrics are the paper's (per-minute returns, 525,600 per
year). Writes ``benchmarks/results/macrohft.json`` with the hardware, the machine load and timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from marketlab.agents.macrohft import baselines as bl
from marketlab.agents.macrohft.config import REDUCED_BUDGET, REDUCED_LONG_CHUNKS, MacroHFTConfig, with_budget
from marketlab.agents.macrohft.dataset import REGIMES, Prepared, prepare
from marketlab.agents.macrohft.evaluate import env_pnl, net_positions, paper_metrics, policy_positions, segment_positions
from marketlab.agents.macrohft.memory import EpisodicMemory
from marketlab.agents.macrohft.train import load_run, train_hyper, train_run
from marketlab.backtests.engine import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.core.jsonable import jsonable
from runlog import hardware  # benchmarks/ is on sys.path when a script runs
from marketlab.market import market_from_frame
from marketlab.envs.macrohft_env import MinuteTradingEnv

ROOT = Path(__file__).resolve().parents[1]
SPECS = {"BTCUSDT": ROOT / "specs/agents/macrohft_btc.toml", "ETHUSDT": ROOT / "specs/agents/macrohft_eth.toml"}
ARCHIVES = "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"

#: Baseline budgets. DQN / DDQN: BASELINE_CHUNK_MULT x one sub-agent's chunks per epoch (same epochs, batch,
#: cadence, network); PPO: SB3 env steps on random training chunks.
BASELINE_BUDGET = {"reduced": {"chunk_mult": 1, "ppo_steps": 32_768}, "paper": {"chunk_mult": 6, "ppo_steps": 1_000_000}}
METRICS = ("total_return", "sharpe", "max_drawdown", "annual_volatility", "calmar", "sortino", "trades")


def shared_data() -> Path:
    return Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


def config_for(symbol: str, budget: str, seed: int) -> MacroHFTConfig:
    cfg = MacroHFTConfig.from_toml(SPECS[symbol])
    cfg = dataclasses.replace(cfg, archives=str(shared_data() / ARCHIVES), seed=cfg.seed + seed)
    return with_budget(cfg, "reduced" if budget == "reduced" else "paper")


def backtest(prep: Prepared, positions: np.ndarray, fee: float, name: str) -> dict[str, Any]:
    """Trade ``positions`` on the test split through marketlab's vectorbt backtester (stored-signal source)."""
    test = prep.splits["test"]
    sym = prep.symbol
    bars = pl.DataFrame({"ts": test.ts, "symbol": sym, "open": test.close, "high": test.close, "low": test.close,
                         "close": test.close, "volume": np.ones(test.n)})
    signals = pl.DataFrame({"ts": test.ts, "symbol": sym, "position": positions.astype(np.float64)})
    spec = BacktestSpec.from_dict({
        "name": name,
        "data": {"dataset": f"{sym}_test", "kind": "bars", "symbols": [sym], "period": "all", "periods_per_year": 525_600.0},
        "signal": {"kind": "predictions-v1", "dataset": f"macrohft_{sym}", "columns": ["position"], "threshold": 0.5},
        "strategy": {"kind": "signals", "direction": "long", "size": 1.0},
        "costs": {"commission": fee, "init_cash": 10_000.0},
        "benchmark": {"kind": "none"},
        "report": {"html": False, "png": False},
    })
    res = Backtest(spec, market=market_from_frame(bars), signal_frame=signals).run(report=False)
    out = paper_metrics(res.value, positions, init=10_000.0)
    out["vectorbt_sharpe"] = res.metrics.get("sharpe")
    out["final_value"] = float(res.value[-1])
    return out


def timings(prep: Prepared, cfg: MacroHFTConfig) -> dict[str, Any]:
    """Env steps/s, SB3 DQN steps/s on the same env, memory lookup per step vs a Python loop."""
    test = prep.splits["test"]
    n = min(20_000, test.n - 1)
    feats = np.concatenate([test.s1, test.s2], axis=1)[:n + 1]
    env = MinuteTradingEnv(test.close[:n + 1], feats, fee=cfg.fee, size=cfg.size)
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, 2, n)
    t0 = time.perf_counter()
    for a in acts:
        env.step(int(a))
    env_sps = n / (time.perf_counter() - t0)
    out: dict[str, Any] = {"env_steps_per_s": env_sps}
    try:
        from stable_baselines3 import DQN

        torch.manual_seed(0)
        model = DQN("MlpPolicy", MinuteTradingEnv(test.close[:n + 1], feats, fee=cfg.fee, size=cfg.size), learning_starts=500,
                    train_freq=10, gradient_steps=1, batch_size=256, policy_kwargs={"net_arch": [64, 256]}, seed=0, verbose=0)
        t0 = time.perf_counter()
        model.learn(min(5_000, n))
        out["sb3_dqn_env_steps_per_s"] = min(5_000, n) / (time.perf_counter() - t0)
    except Exception as exc:  # pragma: no cover - SB3 missing or incompatible: say so
        out["sb3_dqn_error"] = str(exc)
    cap, dim = cfg.hyper.memory_capacity, 2 * cfg.hyper.hidden
    mem = EpisodicMemory(cap, dim, k=cfg.hyper.memory_k)
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(cap, dim, generator=g)
    mem.add(keys, torch.zeros(cap, dtype=torch.int64), torch.zeros(cap, dtype=torch.int64),
            torch.randint(0, 2, (cap,), generator=g), torch.randn(cap, generator=g))
    q = torch.randn(1024, dim, generator=g)
    a = torch.randint(0, 2, (1024,), generator=g)
    t0 = time.perf_counter()
    for i in range(200):
        mem.lookup(q[i:i + 1], a[i:i + 1])
    one = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    mem.lookup(q, a)
    batched = (time.perf_counter() - t0) / 1024
    kl, al, vl = keys.numpy().tolist(), mem.actions.tolist(), mem.values.tolist()
    t0 = time.perf_counter()
    for i in range(5):  # the reference's loop: one kernel per entry in Python
        qi = q[i].tolist()
        kern = [1.0 / (sum((x - y) ** 2 for x, y in zip(qi, k, strict=True)) + 1e-3) for k in kl]
        top = sorted(range(cap), key=lambda j: -kern[j])[:5]
        _ = [vl[j] for j in top if al[j] == int(a[i])]
    loop = (time.perf_counter() - t0) / 5
    out["memory_lookup_s_per_step"] = {"vectorised_single_query": one, "vectorised_batched_1024": batched, "python_loop": loop,
                                       "capacity": cap, "key_dim": dim}
    return out


def machine() -> dict[str, Any]:
    return {"cpu": hardware()["cpu"], "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.is_available(), "python": sys.version.split()[0], "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budget", choices=["reduced", "paper"], default="reduced")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "macrohft"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "macrohft.json"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--ablations", action="store_true",
                    help="add the hyper-agent ablations (without memory, without the conditional adapter) to an existing "
                         "--out file, retraining phase 2 only on the saved phase-1 sub-agents")
    ap.add_argument("--baselines", action="store_true",
                    help="add the rule baselines and the trained DQN / Double DQN / PPO baselines (per seed) to an existing "
                         "--out file, without retraining MacroHFT")
    ap.add_argument("--table", action="store_true", help="print the README table (markdown) of the --out file")
    ap.add_argument("--signal-timing", metavar="RUN",
                    help="time what a backtest of the trained run RUN (signal/macrohft-v1) and `rl eval` spend preparing "
                         "its test split, split-only vs the full two-year preparation; appends to results/macrohft_signal.json")
    ap.add_argument("--combine", nargs="+", metavar="PART",
                    help="merge per-symbol result files (runs launched side by side with --out PART) into --out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.combine:
        combine([Path(p) for p in args.combine], Path(args.out))
        return
    if args.signal_timing:
        signal_timing(Path(args.signal_timing))
        return
    if args.ablations:
        ablations(args)
        return
    if args.baselines:
        add_baselines(args)
        return
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return
    result: dict[str, Any] = {
        "benchmark": "macrohft", "budget": args.budget,
        "budget_note": ("REDUCED budget on a shared CPU, not the paper's: " + json.dumps(REDUCED_BUDGET | {"long_chunks": REDUCED_LONG_CHUNKS})
                        if args.budget == "reduced" else "reference budget (specs/agents/macrohft_*.toml)"),
        "baseline_budget": BASELINE_BUDGET[args.budget] | {
            "note": "dqn/ddqn: the sub-agent net (hidden 64), adapter and KL off, chunk_mult x the sub-agent chunks per "
                    "epoch over ALL train chunks; ppo: SB3 PPO, [64, 256] MLPs, ppo_steps on random train chunks; "
                    "macd/taker_flow: grid point chosen on validation Sharpe (marketlab.agents.macrohft.baselines)"},
        "full_run_command": "PYTHONPATH=. python benchmarks/macrohft.py --budget paper --symbols BTCUSDT ETHUSDT --seeds 0 1 2",
        "machine_start": machine(), "symbols": {},
    }
    t_all = time.perf_counter()
    for sym in args.symbols:
        cfg0 = config_for(sym, args.budget, 0)
        t0 = time.perf_counter()
        prep = prepare(cfg0)
        entry: dict[str, Any] = {"prepare_s": time.perf_counter() - t0, "rows": {k: v.n for k, v in prep.splits.items()},
                                 "gaps": prep.gaps, "seeds": {}, "config": cfg0.to_dict()}
        entry["regime_chunks_train"] = {f"{k}_{lbl}": len(prep.decomposition["train"].chunks_for(k, lbl, training=True))
                                        for k, lbl in REGIMES}
        entry["references"] = rule_references(prep, cfg0.fee, cfg0.size)
        agents = ["macrohft", "uniform", *(f"sub_{k}_{lbl}" for k, lbl in REGIMES)]
        for seed in args.seeds:
            cfg = config_for(sym, args.budget, seed)
            run_dir = Path(args.runs) / args.budget / sym / f"seed{seed}"
            t1 = time.perf_counter()
            summary = train_run(cfg, prep, run_dir, progress=not args.no_progress)
            train_s = time.perf_counter() - t1
            subs, hyper = load_run(run_dir, cfg, prep)
            cache: dict[str, Any] = {}
            res: dict[str, Any] = {"train_s": train_s, "run_dir": str(run_dir),
                                   "phase1": [{k: p.get(k) for k in ("kind", "label", "env_steps", "updates", "seconds", "best_val_return_rate")}
                                              for p in summary["phase1"]],
                                   "phase2": {k: summary["phase2"].get(k) for k in ("env_steps", "updates", "seconds", "best_val_return_rate")},
                                   "test": {}}
            for pol in agents:
                pos = policy_positions(pol, prep, "test", subs, hyper, cache)
                m = backtest(prep, pos, cfg.fee, f"{sym}_{pol}_s{seed}")
                m["env_pnl_fixed_size"] = float(env_pnl(prep.splits["test"].close, pos, cfg.fee, cfg.size).sum())
                res["test"][pol] = m
            runs = ablation_runs(cfg, prep, subs, cache, not args.no_progress) | baseline_runs(cfg, prep, args.budget, not args.no_progress)
            for name, (pos, meta) in runs.items():
                m = backtest(prep, pos, cfg.fee, f"{sym}_{name}_s{seed}")
                m["env_pnl_fixed_size"] = float(env_pnl(prep.splits["test"].close, pos, cfg.fee, cfg.size).sum())
                res["test"][name] = m | meta
            entry["seeds"][str(seed)] = res
            entry["summary"] = summarise(entry)  # over the seeds done so far (a cut-short run keeps them)
            entry["speed"] = train_speed(entry)
            result["symbols"][sym] = entry
            write(result, Path(args.out))
            print(f"{sym} seed {seed}: train {train_s:.0f}s  MacroHFT test {json.dumps(jsonable(res['test']['macrohft']))}", flush=True)
        entry["timings"] = timings(prep, cfg0)
        result["symbols"][sym] = entry
        write(result, Path(args.out))
    result["total_s"] = time.perf_counter() - t_all
    result["machine_end"] = machine()
    write(result, Path(args.out))
    print(f"wrote {args.out} in {result['total_s']:.0f}s")


ABLATIONS = {"no_memory": {"memory": False}, "no_adapter": {"adapter": False}}
#: Paper Table 1 (test period of the paper, NOT the same months: BTC 2023-06-22..10-15, ETH 2023-06-01..10-31),
#: transcribed in ../shared/research/macrohft.md: TR %, ASR (Sharpe), MDD %, number of trades. IV is the paper's
#: book Imbalance-Volume rule, the counterpart of our taker-flow rule.
PAPER_TABLE1 = {
    "BTCUSDT": {"macrohft": (3.03, 0.61, 5.41, 19), "dqn": (-10.41, -0.90, 21.97, 58), "ddqn": (-9.14, -11.52, 9.91, 282),
                "ppo": (-9.15, -0.75, 21.66, 1), "macd": (-18.99, -3.07, 22.57, 234), "taker_flow": (-9.24, -1.57, 14.62, 120),
                "no_memory": (2.03, 0.49, 6.49, None), "no_adapter": (1.69, 0.36, 7.24, None)},
    "ETHUSDT": {"macrohft": (39.28, 3.89, 9.67, 20), "dqn": (-4.14, -0.09, 25.59, 7), "ddqn": (-8.72, -0.43, 28.52, 111),
                "ppo": (-2.12, 0.05, 24.76, 1), "macd": (-7.96, -0.72, 22.86, 286), "taker_flow": (0.56, 0.17, 9.98, 80),
                "no_memory": (12.73, 1.26, 20.87, None), "no_adapter": (14.27, 2.42, 7.57, None)},
}
LABELS = {"macrohft": "MacroHFT", "no_memory": "MacroHFT without memory", "no_adapter": "MacroHFT without conditional adapter",
          "uniform": "six sub-agents, uniform mix (no hyper-agent)", "dqn": "DQN", "ddqn": "Double DQN", "ppo": "PPO (SB3)",
          "macd": "MACD", "taker_flow": "taker-flow rule", "buy_and_hold": "buy & hold"}


def table(result: dict[str, Any]) -> str:
    """The README table (markdown) from a result file: mean ± std over seeds (n seeds shown when not 3), rules and
    buy & hold once, the single-seed ablations when only those exist, and the paper's Table 1 beside."""
    def pct(x: float | None) -> str:
        return "–" if x is None or not np.isfinite(x) else f"{100 * x:.2f}".replace("-", "−")

    def num(x: float | None, d: int = 2) -> str:
        return "–" if x is None or not np.isfinite(x) else f"{x:.{d}f}".replace("-", "−")

    rows = ["| symbol | policy | seeds | TR % | Sharpe | Sortino | Calmar | MDD % | AVOL % | trades | paper TR % | paper Sharpe | paper MDD % | paper trades |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sym, entry in result["symbols"].items():
        paper = PAPER_TABLE1.get(sym, {})
        single = result.get("ablations_single_seed", {}).get(f"{sym}_seed0", {})
        for pol in ("macrohft", "no_memory", "no_adapter", "uniform", "dqn", "ddqn", "ppo", "macd", "taker_flow", "buy_and_hold"):
            if pol in entry.get("summary", {}):
                sm = entry["summary"][pol]

                def f(k: str, scale: float = 1.0, d: int = 2, sm: dict[str, Any] = sm) -> str:
                    m, sd = sm[k]["mean"], sm[k]["std"]
                    fmt = (lambda v: pct(v)) if scale == 100 else (lambda v: num(v, d))
                    return f"{fmt(m)} ± {fmt(sd)}"
                cells = [str(sm["sharpe"]["n"]), f("total_return", 100), f("sharpe"), f("sortino"), f("calmar"),
                         f("max_drawdown", 100), f("annual_volatility", 100), f("trades", d=0)]
            elif pol in entry.get("references", {}) or pol in single:
                m = entry["references"].get(pol) or single[pol]
                cells = ["1 (seed 0)" if pol in single else "–", pct(m["total_return"]), num(m["sharpe"]), num(m["sortino"]),
                         num(m["calmar"]), pct(m["max_drawdown"]), pct(m["annual_volatility"]), num(m["trades"], 0)]
            else:
                continue
            p = paper.get(pol)
            pc = ["–"] * 4 if p is None else [num(p[0]), num(p[1]), num(p[2]), "–" if p[3] is None else str(p[3])]
            rows.append(f"| {sym[:3]} | {LABELS[pol]} | " + " | ".join(cells + pc) + " |")
    return "\n".join(rows)


def ablation_runs(cfg: MacroHFTConfig, prep: Prepared, subs: list[Any], cache: dict[str, Any],
                  progress: bool) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Test positions of the seed's hyper-agent ablations: phase 2 retrained on the same frozen sub-agents
    without memory / without the macro adaLN adapter."""
    out: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    for name, over in ABLATIONS.items():
        cfg_a = dataclasses.replace(cfg, hyper=dataclasses.replace(cfg.hyper, **over))
        t0 = time.perf_counter()
        hyper, meta = train_hyper(cfg_a, prep, subs, progress=progress)
        pos = policy_positions("macrohft", prep, "test", subs, hyper.eval(), cache)
        out[name] = pos, {"train_s": time.perf_counter() - t0, "best_val_return_rate": meta["best_val_return_rate"]}
    return out


def baseline_runs(cfg: MacroHFTConfig, prep: Prepared, budget: str, progress: bool) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Test positions of the trained baselines of the seed (DQN, Double DQN, PPO), each with its training summary."""
    out: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    test = prep.splits["test"]
    bb = BASELINE_BUDGET[budget]
    for name, double in (("dqn", False), ("ddqn", True)):
        net, meta = bl.train_value_baseline(cfg, prep, double=double, chunk_mult=bb["chunk_mult"], progress=progress)
        out[name] = net_positions(net.eval(), test), {"train_s": meta["seconds"], "env_steps": meta["env_steps"],
                                                      "updates": meta["updates"], "best_val_return_rate": meta["best_val_return_rate"]}
    t0 = time.perf_counter()
    model = bl.train_ppo(cfg, prep, timesteps=bb["ppo_steps"], seed=cfg.seed)
    out["ppo"] = (segment_positions(test, bl.ppo_best_actions(model, test)),
                  {"train_s": time.perf_counter() - t0, "env_steps": bb["ppo_steps"]})
    return out


def rule_references(prep: Prepared, fee: float, size: float) -> dict[str, dict[str, Any]]:
    """Buy-and-hold, flat and the two rules (parameters tuned on validation) on the test split."""
    test = prep.splits["test"]
    ref_pos = {p: policy_positions(p, prep, "test", []) for p in ("buy_and_hold", "flat")}
    tuned = bl.tune_rules(prep.splits["val"], fee)  # rule parameters chosen on validation only
    ref_pos |= {r: bl.rule_positions(r, tuned[r], test) for r in tuned}
    out = {}
    for p, pos in ref_pos.items():
        out[p] = backtest(prep, pos, fee, f"{prep.symbol}_{p}") | tuned.get(p, {})
        out[p]["env_pnl_fixed_size"] = float(env_pnl(test.close, pos, fee, size).sum())
    return out


def add_baselines(args: argparse.Namespace) -> None:
    """Add the rules and the trained baselines (per seed, the seed's config) to an existing ``--out`` file
    without retraining MacroHFT; written after each symbol's rules and after each seed."""
    out = Path(args.out)
    result = json.loads(out.read_text())
    budget = result["budget"]
    result["baselines_run"] = {"command": "python benchmarks/macrohft.py --baselines " + " ".join(sys.argv[2:]),
                               "budget": BASELINE_BUDGET[budget], "machine_start": machine()}
    preps: dict[str, Prepared] = {}
    for sym in args.symbols:  # the cheap rules of every symbol first
        cfg0 = config_for(sym, budget, 0)
        preps[sym] = prepare(cfg0)
        result["symbols"][sym]["references"] = rule_references(preps[sym], cfg0.fee, cfg0.size)
        write(result, out)
        print(f"{sym} rules: " + json.dumps(jsonable({k: v["sharpe"] for k, v in result["symbols"][sym]["references"].items()})), flush=True)
    for sym in args.symbols:
        entry = result["symbols"][sym]
        for seed in args.seeds:
            cfg = config_for(sym, budget, seed)
            res = entry["seeds"][str(seed)]
            for name, (pos, meta) in baseline_runs(cfg, preps[sym], budget, not args.no_progress).items():
                m = backtest(preps[sym], pos, cfg.fee, f"{sym}_{name}_s{seed}")
                m["env_pnl_fixed_size"] = float(env_pnl(preps[sym].splits["test"].close, pos, cfg.fee, cfg.size).sum())
                res["test"][name] = m | meta
                print(f"{sym} seed {seed} {name}: sharpe {m['sharpe']}", flush=True)
            entry["summary"] = summarise(entry)
            entry["speed"] = train_speed(entry)
            result["baselines_run"]["machine_end"] = machine()
            write(result, out)


def summarise(entry: dict[str, Any]) -> dict[str, Any]:
    """Mean and std (ddof 0) of every metric of every per-seed policy over the seeds that ran it (``n``)."""
    agg: dict[str, Any] = {}
    seeds = list(entry["seeds"].values())
    for pol in dict.fromkeys(p for s in seeds for p in s["test"]):
        have = [s for s in seeds if pol in s["test"]]
        for key in METRICS:
            vals = np.array([np.nan if s["test"][pol][key] is None else s["test"][pol][key] for s in have], dtype=np.float64)
            agg.setdefault(pol, {})[key] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals)), "n": len(vals)}
    return agg


def train_speed(entry: dict[str, Any]) -> dict[str, float]:
    """Training env steps per second of the sub-agent, hyper-agent and baseline loops, over all seeds."""
    seeds = list(entry["seeds"].values())
    p1 = [p for s in seeds for p in s["phase1"]]
    sps = {"subagent_env_steps_per_s": sum(p["env_steps"] for p in p1) / sum(p["seconds"] for p in p1),
           "hyper_env_steps_per_s": sum(s["phase2"]["env_steps"] for s in seeds) / sum(s["phase2"]["seconds"] for s in seeds)}
    for name in ("dqn", "ddqn", "ppo"):
        have = [s["test"][name] for s in seeds if name in s["test"]]
        if have:
            sps[f"{name}_env_steps_per_s"] = sum(h["env_steps"] for h in have) / sum(h["train_s"] for h in have)
    return sps


def ablations(args: argparse.Namespace) -> None:
    """Phase 2 again without memory / without the adaLN macro adapter, on each seed's frozen sub-agents.

    A seed whose checkpoints are gone is retrained first with its own config (seeded: on CPU with one torch
    thread the run is bit-for-bit the original), and its MacroHFT test metrics are stored again under
    ``retrained_macrohft`` so the file shows whether the retrained agent reproduces the reported one. Ablations of
    an earlier ``ablations_single_seed`` record are moved into their seed's results."""
    out = Path(args.out)
    result = json.loads(out.read_text())
    runs = result.setdefault("ablations_runs", [])  # one record per invocation (command, machine and load)
    if "ablations_run" in result:  # the single record of an earlier file format
        runs.insert(0, result.pop("ablations_run"))
    record = {"command": "python benchmarks/macrohft.py --ablations " + " ".join(sys.argv[2:]), "machine_start": machine()}
    runs.append(record)
    for sym in args.symbols:
        entry = result["symbols"].get(sym)
        if not entry:
            continue
        single = result.get("ablations_single_seed", {}).get(f"{sym}_seed0", {})
        if "0" in entry["seeds"]:
            for name in ABLATIONS:
                if name in single and name not in entry["seeds"]["0"]["test"]:
                    entry["seeds"]["0"]["test"][name] = single[name]
        prep = prepare(config_for(sym, result["budget"], 0))
        for seed in args.seeds:
            res = entry["seeds"].get(str(seed))
            if res is None:
                continue
            cfg = config_for(sym, result["budget"], seed)
            run_dir = Path(res["run_dir"])
            if not (run_dir / "hyper" / "config.json").is_file():
                t0 = time.perf_counter()
                train_run(cfg, prep, run_dir, progress=not args.no_progress, tensorboard=False)
                subs, hyper = load_run(run_dir, cfg, prep)
                assert hyper is not None
                pos = policy_positions("macrohft", prep, "test", subs, hyper, {})
                res["retrained_macrohft"] = backtest(prep, pos, cfg.fee, f"{sym}_macrohft_retrained_s{seed}") | {
                    "train_s": time.perf_counter() - t0}
                print(f"{sym} seed {seed} retrained: sharpe {res['retrained_macrohft']['sharpe']} "
                      f"(reported {res['test']['macrohft']['sharpe']})", flush=True)
            subs, _ = load_run(run_dir, cfg, prep)
            cache: dict[str, Any] = {}
            for name, over in ABLATIONS.items():
                if name in res["test"]:
                    continue
                cfg_a = dataclasses.replace(cfg, hyper=dataclasses.replace(cfg.hyper, **over))
                t0 = time.perf_counter()
                hyper, meta = train_hyper(cfg_a, prep, subs, progress=not args.no_progress)
                pos = policy_positions("macrohft", prep, "test", subs, hyper.eval(), cache)
                m = backtest(prep, pos, cfg.fee, f"{sym}_{name}_s{seed}")
                m["env_pnl_fixed_size"] = float(env_pnl(prep.splits["test"].close, pos, cfg.fee, cfg.size).sum())
                m["phase2_s"] = time.perf_counter() - t0
                m["best_val_return_rate"] = meta["best_val_return_rate"]
                res["test"][name] = m
                print(f"{sym} seed {seed} {name}: sharpe {m['sharpe']}", flush=True)
            entry["summary"] = summarise(entry)
            record["machine_end"] = machine()
            write(result, out)


def signal_timing(run_dir: Path) -> None:
    """Seconds a trained run's test split costs to prepare: :func:`load_trained` (the test months + a 2-day warm-up,
    scaled with the run's saved statistics) against the full two-year :func:`prepare` it replaced, whether every
    policy's test positions agree, the largest feature difference, and one backtest of the run through the
    ``signal/macrohft-v1`` source (vectorbt, store bars) end to end. Appends to ``results/macrohft_signal.json``."""
    from runlog import Run

    from marketlab.agents.macrohft.data import ensure_bars
    from marketlab.agents.macrohft.evaluate import load_trained
    from marketlab.market.loading import open_store

    rec = Run("macrohft_signal")
    saved = json.loads((run_dir / "run.json").read_text())
    cfg = MacroHFTConfig.from_dict(saved["config"])
    store = open_store(cfg.store or None)
    t0 = time.perf_counter()
    ensure_bars(store, cfg.bars_dataset, cfg.archives)  # a first use ingests the kline folder (not part of the timing)
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cfg, part, subs, hyper = load_trained(run_dir)
    split_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = prepare(cfg)
    full_s = time.perf_counter() - t0
    a, b = part.splits["test"], full.splits["test"]
    policies = ["macrohft", "uniform", *(f"sub_{k}_{lbl}" for k, lbl in REGIMES)]
    ca: dict[str, Any] = {}
    cb: dict[str, Any] = {}  # each preparation's frozen sub-agent Q table, computed once
    same = {p: bool(np.array_equal(policy_positions(p, part, "test", subs, hyper, ca),
                                   policy_positions(p, full, "test", subs, hyper, cb))) for p in policies}
    spec = BacktestSpec.from_dict({
        "name": "macrohft_signal_timing",
        "data": {"dataset": cfg.bars_dataset, "kind": "bars", "symbols": [cfg.symbol], "start": cfg.splits.test_start,
                 "end": cfg.splits.test_end, "periods_per_year": 525_600.0},
        "signal": {"kind": "macrohft-v1", "run": str(run_dir)}, "strategy": {"kind": "weights"},
        "costs": {"commission": cfg.fee, "init_cash": 10_000.0}, "benchmark": {"kind": "none"},
        "report": {"html": False, "png": False}})
    t0 = time.perf_counter()
    res = Backtest(spec, store=store).run(report=False)
    backtest_s = time.perf_counter() - t0
    payload = {"run": str(run_dir), "symbol": cfg.symbol, "test_minutes": a.n, "first_use_ingest_s": ingest_s,
               "split_only_prepare_s": split_s, "full_prepare_s": full_s, "speedup": full_s / split_s,
               "backtest_via_signal_source_s": backtest_s, "backtest_final_value": float(res.value[-1]),
               "test_rows_equal": bool(np.array_equal(a.ts, b.ts) and np.array_equal(a.close, b.close)),
               "max_abs_scaled_feature_diff": {f: float(np.max(np.abs(getattr(a, f) - getattr(b, f)))) for f in ("s1", "s2", "ctx")},
               "positions_equal": same}
    path = rec.save(payload)
    print(json.dumps(jsonable(payload), indent=1))
    print(f"appended to {path}")


def combine(parts: list[Path], out: Path) -> None:
    """One result file from per-symbol runs: their ``symbols`` merged, each part's machine/load/time kept."""
    loaded = [json.loads(p.read_text()) for p in parts]
    if len({r["budget"] for r in loaded}) != 1:
        raise SystemExit("error: --combine: the parts were run at different budgets")
    result = {k: v for k, v in loaded[0].items() if k not in ("symbols", "machine_start", "machine_end", "total_s")}
    result["symbols"] = {}
    result["parts"] = []
    for p, r in zip(parts, loaded, strict=True):
        result["symbols"].update(r["symbols"])
        result["parts"].append({"file": p.name, "symbols": list(r["symbols"]), "machine_start": r.get("machine_start"),
                                "machine_end": r.get("machine_end"), "total_s": r.get("total_s")})
    write(result, out)
    print(f"wrote {out} from {len(parts)} parts")


def write(result: dict[str, Any], out: Path) -> None:
    """Write the JSON (NaN -> null) after every seed, so an interrupted run keeps what it measured."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(jsonable(result), indent=2))


if __name__ == "__main__":
    main()
