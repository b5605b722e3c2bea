"""PPO (specs/agents/ppo_trading.toml) on BTCUSDT 1-minute bars vs rule baselines on the same test period.

Run: ``nice -n 10 .venv/bin/python benchmarks/ppo_trading.py --train [--seeds 0 1 2] [--timesteps N] [--store DIR]``.

With ``--train`` each seed is trained first: the spec's own seed through the CLI
(``marketlab rl train specs/agents/ppo_trading.toml --out <runs>``), other seeds through the same Python API
with only ``seed`` (and the run name) replaced. Without it, existing run folders under ``--runs`` are
evaluated. Every run is evaluated with ``marketlab rl eval <run> --period test --json`` (the CLI itself, in a
subprocess), and buy-and-hold, an SMA(60)/SMA(240) cross (the ``specs/backtests/ma_cross_btc.toml`` rule,
long-only), a faster SMA(10)/SMA(50) cross and staying flat are run through the same test env (same
costs, same accounting, same metrics). Also recorded per policy: how often it changes its target
(each change pays commission and half spread) and its time long / flat / short.
The test env is the spec's own (decision interval, position limits), so the rules also act once per
decision step. Appends a run (hardware, load, commit) to ``benchmarks/results/ppo_trading.json`` through
``benchmarks/runlog.py``; the README's table is printed from it (``--table``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from marketlab.agents.baselines import BuyAndHold, Flat, MACross  # noqa: E402
from marketlab.agents.sb3 import AgentSpec, load_run, rollout, train  # noqa: E402
from marketlab.core.jsonable import jsonable  # noqa: E402
from marketlab.core.metrics import summary  # noqa: E402
from marketlab.envs.trading import TradingEnv  # noqa: E402
from marketlab.store import Store  # noqa: E402
from runlog import Run, latest  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

CLI = [sys.executable, "-c", "from marketlab.cli.main import app; app()"]  # `marketlab` of this interpreter and checkout
KEEP = ("total_return", "sharpe", "sortino", "max_drawdown", "volatility", "calmar", "benchmark_return", "excess_return")


def position_stats(weights: np.ndarray) -> dict[str, float]:
    """Target changes and time long / flat / short of a (steps, 1) target-weight path."""
    w = weights[:, 0]
    changes = int((np.diff(w) != 0).sum() + (w[0] != 0))
    return {"target_changes": changes, "frac_long": float((w > 0).mean()), "frac_flat": float((w == 0).mean()),
            "frac_short": float((w < 0).mean())}


def run_rule(rule, env: TradingEnv, bh_value: np.ndarray) -> dict:
    """Roll a rule baseline over the env's whole period; metrics as ``marketlab rl eval`` computes them."""
    env.reset(options={"start": env.t_lo})
    vals, ws, done = [], [], False
    while not done:
        a = rule.act(env)
        ws.append(np.asarray(env.action_interp.to_weights(a), dtype=np.float64))
        _, _, done, trunc, info = env.step(a)
        done = done or trunc
        vals.append(info["value"])
    v = np.array(vals)
    m = summary(v, init_cash=env.sim.init_cash, periods_per_year=env.steps_per_year(), benchmark=bh_value)
    return {"final_value": float(v[-1]), **{k: m[k] for k in KEEP}, **position_stats(np.array(ws))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="specs/agents/ppo_trading.toml")
    ap.add_argument("--runs", default="runs/ppo_trading")
    ap.add_argument("--store", default=None, help="store folder for the CLI commands (default: the default store)")
    ap.add_argument("--table", action="store_true", help="print the README table of the latest run and exit")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", action="store_true", help="train the runs first")
    ap.add_argument("--timesteps", type=int, default=None, help="override the spec's total_timesteps")
    ap.add_argument("--extra-runs", nargs="*", default=[], help="more run folders (ablations), evaluated the same way")
    ap.add_argument("--train-note", action="append", default=[], help="how existing runs were trained (recorded verbatim)")
    args = ap.parse_args()
    if args.table:
        print(readme_table(latest("ppo_trading")))
        return
    os.chdir(ROOT)
    bench = Run("ppo_trading")
    store_opt = ["--store", args.store] if args.store else []
    spec = AgentSpec.from_toml(args.spec)
    load = [os.getloadavg()[0]]
    commands, runs = list(args.train_note), []
    for seed in args.seeds:
        name = spec.name if seed == spec.seed else f"{spec.name}_seed{seed}"
        run = Path(args.runs) / name
        if args.train:
            if seed == spec.seed:
                cmd = [*CLI, "rl", "train", args.spec, "--out", args.runs, "--json", *store_opt]
                if args.timesteps:
                    cmd += ["--timesteps", str(args.timesteps)]
                commands.append("marketlab " + " ".join(cmd[len(CLI):]))
                subprocess.run(cmd, check=True, capture_output=True)
            else:
                steps = args.timesteps or spec.total_timesteps
                commands.append(f"python: marketlab.agents.sb3.train(replace(AgentSpec.from_toml('{args.spec}'), seed={seed}, "
                                f"name='{name}'), out_dir='{args.runs}', total_timesteps={steps})")
                train(dataclasses.replace(spec, seed=seed, name=name), out_dir=args.runs, total_timesteps=steps,
                      store=Store(args.store) if args.store else None)
            load.append(os.getloadavg()[0])
        runs.append(run)
    results: dict[str, dict] = {}
    env = None
    extra = [Path(p) for p in args.extra_runs]
    for run in runs + extra:
        cmd = [*CLI, "rl", "eval", str(run), "--period", "test", "--json", *store_opt]
        commands.append("marketlab " + " ".join(cmd[len(CLI):]))
        ev = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        model, env, _ = load_run(run, period="test", store=Store(args.store) if args.store else None)
        roll = rollout(model, env)
        tr = json.loads((run / "train.json").read_text())
        results[run.name] = {
            "final_value": ev["final_value"], **{k: ev[k] for k in KEEP}, **position_stats(roll["weights"]),
            "train_period_total_return": tr["train_eval"]["total_return"],
            "train_timesteps": tr["timesteps"], "train_seconds": tr["seconds"], "train_vec": tr.get("vec"),
        }
        load.append(os.getloadavg()[0])
    assert env is not None, "no runs"
    # The benchmark series of every summary: buy-and-hold's values in the same test env.
    env.reset(options={"start": env.t_lo})
    bh_vals, done = [], False
    while not done:
        _, _, done, _, info = env.step(BuyAndHold(1).act(env))
        bh_vals.append(info["value"])
    bh_value = np.array(bh_vals)
    rules = {"buy_and_hold": BuyAndHold(1), "ma_cross_60_240_long": MACross(60, 240), "ma_cross_10_50_long": MACross(10, 50),
             "flat": Flat()}
    baselines = {name: jsonable(run_rule(rule, env, bh_value)) for name, rule in rules.items()}
    ablations = {p.name: jsonable(results.pop(p.name)) for p in extra}
    for p in extra:
        ablations[p.name]["hyper"] = load_run(p, period="test", store=Store(args.store) if args.store else None)[2].hyper
    ppo = [r["total_return"] for r in results.values()]
    out = {
        "task": "PPO (specs/agents/ppo_trading.toml) vs rule baselines on the BTCUSDT 1-minute test period",
        "spec": args.spec,
        "env": {"decision_interval": env.config.decision_interval, "turnover_penalty": env.config.reward.turnover_penalty,
                "levels": list(env.config.action.levels), "long_only": env.config.action.long_only,
                "max_position": env.config.action.max_position},
        "test_period": {"first_decision_bar": str(np.datetime64(int(env.market.ts[env.t_lo]), "ns")),
                        "last_valued_bar": str(np.datetime64(int(env.market.ts[env.t_hi]), "ns")), "bars": int(env.t_hi - env.t_lo)},
        "costs": dataclasses.asdict(env.config.costs),
        "ppo": {k: jsonable(v) for k, v in results.items()},
        "ppo_total_return_mean": float(np.mean(ppo)),
        "baselines": baselines,
        "ablations": ablations,
        "commands": commands,
        "torch_threads": torch.get_num_threads(),
        "note": f"shared 2-core CPU (load average 1-min {min(load):.1f}..{max(load):.1f} while this ran), nice 10, one torch "
        "thread; returns are over the whole test period with costs; benchmark = buy-and-hold in the same env",
    }
    path = bench.save(out)
    for name, r in {**{f"ppo/{k}": v for k, v in results.items()}, **baselines, **{f"ablation/{k}": v for k, v in ablations.items()}}.items():
        print(f"{name:28s} return {r['total_return']:+.4f}  sharpe {r['sharpe'] if r['sharpe'] is not None else float('nan'):+8.2f}  "
              f"maxdd {r['max_drawdown']:+.4f}  changes {r['target_changes']}")
    print(f"appended to {path}")
    print(readme_table(out))


def readme_table(run: dict) -> str:
    """The README's markdown table of one run: each PPO seed, their mean, and the rules."""
    rows = [("PPO seed " + k.rsplit("seed", 1)[-1] if "seed" in k else "PPO seed 0", v) for k, v in run["ppo"].items()]
    rows += [(name.replace("_", " "), v) for name, v in run["baselines"].items()]
    lines = ["| policy (test period) | return | Sharpe | max drawdown | target changes |", "|---|---:|---:|---:|---:|"]
    for name, v in rows:
        sharpe = "n/a" if v["sharpe"] is None else f"{v['sharpe']:.2f}"
        lines.append(f"| {name} | {v['total_return']:+.2%} | {sharpe} | {v['max_drawdown']:.2%} | {v['target_changes']} |")
    lines.append(f"| PPO mean of {len(run['ppo'])} seeds | {run['ppo_total_return_mean']:+.2%} | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
