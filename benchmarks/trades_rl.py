"""Benchmark: SB3 PPO trained inside TRADES-generated markets against TWAP on implementation shortfall (issue 16,
"In the market").

``marketlab/LOBExecution-v0`` runs on ``venue = "trades-v1"`` (the one id that changes against the replay or
agent-based spec; ``sim_spec`` names the TRADES session). The agent buys ``--quantity`` lots within
``--horizon`` decision steps of ``--step-seconds`` market seconds. Out of sample twice over:

- PPO trains on markets that start where the day's **validation** part starts (history window and book from
  the real data there); it is evaluated on markets that start where the held-back **test** part starts;
- the evaluation markets' seeds (``reset(seed=EVAL_SEED_BASE + k)``) are never used in training (the training
  markets' seeds are drawn by the env's own generator from the PPO seed).

Policies on the same evaluation markets (same reset seeds, so paired): TWAP with market orders (action 3 each
step: a ``ceil(unplaced / steps_left)`` market child), TWAP with passive joins (action 1 each step, the rest
swept at the horizon), and PPO (deterministic) for each training seed. Implementation shortfall in bps of the
arrival notional: the filled lots' shortfall (``info["shortfall_bps"]`` at the episode's end) plus the env's
unfilled penalty (100 bps x the fraction the book could not absorb), i.e. minus the episode's summed reward;
lower is better. ``--abm`` runs the same
experiment on ``venue = "abm-v1"`` (PPO trained and evaluated in the agent-based market; different seeds of the
same default day for training and evaluation).

Appends a run (hardware, load, command) to ``benchmarks/results/trades_rl.json``; ``--table`` prints the
README table from the latest run.

Run: ``nice -n 15 .venv/bin/python benchmarks/trades_rl.py --checkpoint runs/trades_goog --store data/store
--timesteps 6000 --seeds 0 1 2 --eval-episodes 30 --workers 2 --abm``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import RESULTS, Run  # noqa: E402

EVAL_SEED_BASE = 900_000  # evaluation markets: reset(seed=EVAL_SEED_BASE + k)
TWAP_MARKET, TWAP_JOIN = 3, 1  # LOBExecution-v0 actions


def session_spec(folder: Path, args: argparse.Namespace, split: str) -> Path:
    """A TRADES session spec (``specs/simulators/trades_goog.toml`` format) starting at ``split``."""
    dur = args.horizon * args.step_seconds + 10.0  # the venue's episode clock must outlast the env's horizon
    p = folder / f"trades_{split}.toml"
    p.write_text(f'checkpoint = "{Path(args.checkpoint).resolve()}"\nduration_s = {dur}\nsampler = "ddim"\n'
                 f'steps = {args.ddim_steps}\nweights = "{args.weights}"\n\n[source]\nstore = "{Path(args.store).resolve()}"\n'
                 f'dataset = "{args.dataset}"\nsymbol = "{args.symbol}"\nsplit = "{split}"\n')
    return p


def env_config(venue: str, spec: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    """The ``[env]`` table: only ``venue`` (and, for TRADES, ``sim_spec``) differ between the venues."""
    cfg: dict[str, Any] = {"venue": venue, "step_seconds": args.step_seconds, "horizon": args.horizon,
                           "quantity": args.quantity if venue == "trades-v1" else args.abm_quantity, "side": 1}
    if spec is not None:
        cfg["sim_spec"] = str(spec)
    return cfg


def make_env(cfg: dict[str, Any], store_path: str | None) -> Any:
    import gymnasium as gym

    import marketlab.envs  # noqa: F401  (registers the gymnasium ids)
    from marketlab.store import Store

    store = Store(store_path) if store_path else None
    return gym.make("marketlab/LOBExecution-v0", config=cfg, store=store)


def episodes(env: Any, act: Any, n: int) -> dict[str, list[float]]:
    """``n`` evaluation episodes (reset seeds EVAL_SEED_BASE + k) with ``act(obs) -> action``. Per episode:
    ``shortfall_bps`` (the filled lots' cost against the arrival mid, bps of the parent's notional),
    ``filled_by_horizon`` (lots; a thin generated book may not absorb the final sweep)."""
    out: dict[str, list[float]] = {"shortfall_bps": [], "filled_by_horizon": [], "actions_market": []}
    for k in range(n):
        obs, _ = env.reset(seed=EVAL_SEED_BASE + k)
        done, n_mkt, steps = False, 0, 0
        info: dict[str, Any] = {}
        while not done:
            a = int(act(obs))
            n_mkt += a == TWAP_MARKET
            steps += 1
            obs, _, term, trunc, info = env.step(a)
            done = term or trunc
        out["shortfall_bps"].append(float(info["shortfall_bps"]))
        out["filled_by_horizon"].append(float(info["filled"]))
        out["actions_market"].append(n_mkt / steps)
    return out


def job(kind: str, venue: str, seed: int, args: argparse.Namespace, train_spec: str | None,
        eval_spec: str | None) -> dict[str, Any]:
    """One unit of work in a worker process: a baseline's evaluation or one PPO seed's training + evaluation."""
    import torch

    torch.set_num_threads(1)
    store = args.store if venue == "trades-v1" else None
    ev_env = make_env(env_config(venue, Path(eval_spec) if eval_spec else None, args), store)
    t0, c0 = time.perf_counter(), time.process_time()
    res: dict[str, Any] = {"kind": kind, "venue": venue, "seed": seed}
    if kind in ("twap_market", "twap_join"):
        action = TWAP_MARKET if kind == "twap_market" else TWAP_JOIN
        res.update(episodes(ev_env, lambda _o: action, args.eval_episodes))
    else:
        from stable_baselines3 import PPO

        tr_env = make_env(env_config(venue, Path(train_spec) if train_spec else None, args), store)
        model = PPO("MlpPolicy", tr_env, seed=seed, device="cpu", n_steps=args.n_steps, batch_size=args.batch_size,
                    n_epochs=10, learning_rate=3e-4, gamma=1.0, gae_lambda=0.95, ent_coef=0.01,
                    policy_kwargs={"net_arch": [64, 64]}, verbose=0)
        model.learn(total_timesteps=args.timesteps)
        res["train_wall_s"] = round(time.perf_counter() - t0, 1)
        res["train_cpu_s"] = round(time.process_time() - c0, 1)
        res.update(episodes(ev_env, lambda o: model.predict(o, deterministic=True)[0], args.eval_episodes))
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["cpu_s"] = round(time.process_time() - c0, 1)
    print(f"[trades_rl] {venue} {kind} seed {seed}: shortfall {np.mean(res['shortfall_bps']):.3f} bps "
          f"({res['wall_s']} s wall)", flush=True)
    return res


def _load_partial(path: str | None) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Jobs finished by an earlier, interrupted run with the same options (one JSON line each)."""
    if not path or not Path(path).is_file():
        return {}
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {(r["kind"], r["venue"], r["seed"]): r for r in rows}


def cost_bps(r: dict[str, Any], quantity: int) -> np.ndarray:
    """Per episode: implementation shortfall of the filled lots + the env's unfilled penalty (default
    ``unfilled_penalty_bps`` x the unfilled fraction) = minus the episode's summed reward, bps."""
    from marketlab.envs.lob_execution import ExecutionConfig

    pen = ExecutionConfig().unfilled_penalty_bps
    return np.asarray(r["shortfall_bps"]) + pen * (1.0 - np.asarray(r["filled_by_horizon"]) / quantity)


def summarize(results: list[dict[str, Any]], venue: str, quantity: int) -> dict[str, Any]:
    """Per policy: mean ± std of the episodes' cost (shortfall + unfilled penalty; the shortfall of the filled
    lots and the filled fraction beside it); PPO: mean ± std over seeds of each seed's mean cost, the paired
    difference against TWAP (market orders) per episode pooled over seeds, its standard error and win rate."""
    rows = [dict(r, shortfall_bps=cost_bps(r, quantity).tolist(), filled_shortfall_bps=r["shortfall_bps"])
            for r in results if r["venue"] == venue]
    twap = next(r for r in rows if r["kind"] == "twap_market")
    out: dict[str, Any] = {}
    for kind in ("twap_market", "twap_join"):
        r = next(x for x in rows if x["kind"] == kind)
        sf = np.asarray(r["shortfall_bps"])
        out[kind] = {"mean_bps": float(sf.mean()), "std_bps": float(sf.std(ddof=1)), "episodes": int(sf.size),
                     "filled_lots_shortfall_mean_bps": float(np.mean(r["filled_shortfall_bps"])),
                     "filled_fraction_mean": float(np.mean(r["filled_by_horizon"]) / quantity)}
    ppo = sorted((r for r in rows if r["kind"] == "ppo"), key=lambda r: r["seed"])
    if ppo:
        means = np.array([np.mean(r["shortfall_bps"]) for r in ppo])
        diffs = np.concatenate([np.asarray(r["shortfall_bps"]) - np.asarray(twap["shortfall_bps"]) for r in ppo])
        seed_diffs = np.array([np.mean(np.asarray(r["shortfall_bps"]) - np.asarray(twap["shortfall_bps"])) for r in ppo])
        out["ppo"] = {
            "seed_means_bps": means.tolist(), "mean_bps": float(means.mean()),
            "std_over_seeds_bps": float(means.std(ddof=1)) if means.size > 1 else 0.0,
            "episode_std_bps": float(np.std(np.concatenate([r["shortfall_bps"] for r in ppo]), ddof=1)),
            "minus_twap_market_bps": float(diffs.mean()),
            "minus_twap_market_se_bps": float(diffs.std(ddof=1) / np.sqrt(diffs.size)),
            "minus_twap_market_per_seed_bps": seed_diffs.tolist(),
            "seeds_beating_twap_market": int((seed_diffs < 0).sum()),
            "episode_win_rate_vs_twap_market": float((diffs < 0).mean()),
            "market_action_share": float(np.mean([np.mean(r["actions_market"]) for r in ppo])),
            "filled_lots_shortfall_mean_bps": float(np.mean([np.mean(r["filled_shortfall_bps"]) for r in ppo])),
            "filled_fraction_mean": float(np.mean([np.mean(r["filled_by_horizon"]) for r in ppo]) / quantity),
            "train_wall_s": [r["train_wall_s"] for r in ppo], "train_cpu_s": [r["train_cpu_s"] for r in ppo],
        }
    return out


def table(run: dict[str, Any]) -> str:
    """Markdown table of the latest run (the README's section)."""
    lines = ["| venue | TWAP market orders, bps (filled) | TWAP passive joins, bps (filled) | PPO, bps (mean ± std over seeds) | "
             "PPO − TWAP market, bps (± s.e.) | seeds beating TWAP | episode win rate |", "|---|---|---|---|---|---|---|"]
    for venue, s in run["summary"].items():
        tm, tj, p = s["twap_market"], s["twap_join"], s.get("ppo")
        ppo = f"{p['mean_bps']:.3f} ± {p['std_over_seeds_bps']:.3f}" if p else "n/a"
        diff = f"{p['minus_twap_market_bps']:+.3f} ± {p['minus_twap_market_se_bps']:.3f}" if p else "n/a"
        seeds = f"{p['seeds_beating_twap_market']} of {len(p['seed_means_bps'])}" if p else "n/a"
        win = f"{p['episode_win_rate_vs_twap_market']:.2f}" if p else "n/a"
        lines.append(f"| {venue} | {tm['mean_bps']:.2f} ± {tm['std_bps']:.2f} ({tm['filled_fraction_mean']:.0%}) | "
                     f"{tj['mean_bps']:.2f} ± {tj['std_bps']:.2f} ({tj['filled_fraction_mean']:.0%}) | "
                     f"{ppo} | {diff} | {seeds} | {win} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="TRADES checkpoint directory (marketlab trades train --out)")
    ap.add_argument("--store", help="store holding the real day the markets start from")
    ap.add_argument("--dataset", default="lobster")
    ap.add_argument("--symbol", default="GOOG")
    ap.add_argument("--weights", choices=("ema", "raw"), default="raw")
    ap.add_argument("--ddim-steps", type=int, default=10)
    ap.add_argument("--quantity", type=int, default=500, help="parent order, lots (shares for LOBSTER), TRADES venue")
    ap.add_argument("--abm-quantity", type=int, default=100, help="parent order, lots, agent-based venue")
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--step-seconds", type=float, default=5.0)
    ap.add_argument("--timesteps", type=int, default=6000, help="PPO training env steps per seed")
    ap.add_argument("--n-steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="PPO training seeds (none: the baselines only)")
    ap.add_argument("--eval-episodes", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partial", help="JSON-lines file: each finished job is appended; a rerun with the same options "
                    "skips the jobs found there (an interrupted run resumes)")
    ap.add_argument("--abm", action="store_true", help="also the same experiment on venue abm-v1")
    ap.add_argument("--table", action="store_true", help="print the README table of the latest run and exit")
    args = ap.parse_args()
    if args.table:
        doc = json.loads((RESULTS / "trades_rl.json").read_text())
        print(table(doc["runs"][-1]))
        return
    if not args.checkpoint or not args.store:
        ap.error("--checkpoint and --store are required")
    run = Run("trades_rl")
    with tempfile.TemporaryDirectory() as tmp:
        train_spec = str(session_spec(Path(tmp), args, "val"))
        eval_spec = str(session_spec(Path(tmp), args, "test"))
        jobs: list[tuple[Any, ...]] = []
        for venue in ["trades-v1"] + (["abm-v1"] if args.abm else []):
            ts, es = (train_spec, eval_spec) if venue == "trades-v1" else (None, None)
            jobs += [("ppo", venue, s, args, ts, es) for s in args.seeds]
            jobs += [(k, venue, 0, args, ts, es) for k in ("twap_market", "twap_join")]
        done = _load_partial(args.partial)
        results = [done[(k, v, s)] for k, v, s, *_ in jobs if (k, v, s) in done]
        todo = [j for j in jobs if (j[0], j[1], j[2]) not in done]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for fut in as_completed([pool.submit(job, *j) for j in todo]):
                res = fut.result()
                results.append(res)
                if args.partial:
                    with open(args.partial, "a") as f:
                        f.write(json.dumps(res) + "\n")
    venues = ["trades-v1"] + (["abm-v1"] if args.abm else [])
    payload = {
        "setup": {k: v for k, v in vars(args).items() if k not in ("table", "partial")},
        "jobs_loaded_from_partial": len(jobs) - len(todo),  # finished by an earlier run: its timings are in there
        "design": "PPO trains on TRADES markets started at the day's validation part, is evaluated on markets "
                  "started at the held-back test part with reset seeds never used in training; all policies "
                  "see the same evaluation markets (paired). Shortfall = bps of arrival notional, lower is better.",
        "summary": {v: summarize(results, v, args.quantity if v == "trades-v1" else args.abm_quantity) for v in venues},
        "episodes": results,
    }
    path = run.save(payload)
    print(table({"summary": payload["summary"]}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
