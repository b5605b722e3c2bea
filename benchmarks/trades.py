"""Benchmark: TRADES generation and training throughput (issue 16, "Performance").

* generation: orders accepted by the engine per second, one market vs ``--markets`` markets advanced in
  lockstep (one batched denoiser call per round), DDIM with ``--steps`` steps; also samples/s (accepted +
  discarded), since an under-trained model discards more.
* training: windows per second of the CPU config (batch 64).
* with ``--abm-seconds same``: the agent-based market over the simulated time the single TRADES market
  covered, events/s and CPU-seconds per simulated second side by side (``side_by_side``).
* the paper config's denoiser: seconds per forward pass at batch 1 (the reference measured ~1.4-1.7 s on
  2 CPU threads with its einsum attention).

Weights: a checkpoint from ``marketlab trades train`` (``--checkpoint``), else a fresh CPU-config model
whose statistics come from the data (speed does not depend on the weights; acceptance rates do).
Appends a run (hardware, load, command) to benchmarks/results/trades.json.

Run: ``nice -n 15 .venv/bin/python benchmarks/trades.py --store /tmp/store --dataset lobster --symbol GOOG``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

from marketlab.simulators.trades.model import PAPER, Denoiser  # noqa: E402
from marketlab.simulators.trades.train import TradesConfig, load_checkpoint, load_day, train_on_day  # noqa: E402
from marketlab.simulators.trades.world import TradesMarkets  # noqa: E402
from marketlab.store import Store  # noqa: E402


def generation(model: Denoiser, stats, tokens, start: int, markets: int, rounds: int, steps: int,
               candidates: int = 1) -> dict:
    w = TradesMarkets(model, stats, tokens, start=start, n_markets=markets, seed=0, method="ddim", steps=steps,
                      candidates=candidates)
    w.run(1)  # warm-up
    now0 = list(w.now)
    t = time.perf_counter()
    cpu = time.process_time()
    before_s, before_a = w.stats_run.samples, sum(w.stats_run.accepted.values())
    w.run(rounds)
    secs = time.perf_counter() - t
    cpu_secs = time.process_time() - cpu
    acc = sum(w.stats_run.accepted.values()) - before_a
    smp = w.stats_run.samples - before_s
    sim_s = float(np.mean([(a - b) / 1e9 for a, b in zip(w.now, now0, strict=True)]))
    return {"markets": markets, "candidates": candidates, "rounds": rounds, "ddim_steps": steps,
            "seconds": round(secs, 3), "simulated_s_per_market": round(sim_s, 3),
            "wall_s_per_simulated_s": round(secs / sim_s, 3) if sim_s > 0 else None,
            "orders_accepted": acc, "orders_per_s": round(acc / secs, 2), "samples_per_s": round(smp / secs, 2),
            # on a shared machine the wall clock measures the other jobs too: orders per CPU-second of this
            # process (one torch thread) is what one idle core would give
            "cpu_seconds": round(cpu_secs, 3), "orders_per_cpu_s": round(acc / cpu_secs, 2) if cpu_secs > 0 else None,
            "counts": w.stats_run.to_dict()}


def abm_events(seconds: float) -> dict:
    """Events/s of the agent-based market (specs/simulators/abm_default.toml) over ``seconds`` simulated."""
    from marketlab.simulators.abm import Simulation
    from marketlab.simulators.config import SimSpec

    spec = SimSpec.from_toml(Path(__file__).resolve().parents[1] / "specs" / "simulators" / "abm_default.toml")
    spec = replace(spec, market=replace(spec.market, duration_s=seconds))
    t, cpu = time.perf_counter(), time.process_time()
    sim = Simulation(spec, seed=0).run()
    secs, cpu_secs = time.perf_counter() - t, time.process_time() - cpu
    n = int(sim.summary()["messages"])
    return {"simulated_s": seconds, "messages": n, "seconds": round(secs, 3), "messages_per_s": round(n / secs, 1),
            "cpu_seconds": round(cpu_secs, 3), "messages_per_cpu_s": round(n / cpu_secs, 1) if cpu_secs > 0 else None,
            "wall_s_per_simulated_s": round(secs / seconds, 4)}


def side_by_side(trades: dict, abm: dict) -> dict:
    """TRADES (one market) and the agent-based market over the same simulated time: events per second and
    CPU-seconds per simulated second."""
    sim = trades["simulated_s_per_market"]
    return {"simulated_s": sim,
            "trades_orders_per_s": trades["orders_per_s"], "trades_orders_per_cpu_s": trades["orders_per_cpu_s"],
            "trades_cpu_s_per_simulated_s": round(trades["cpu_seconds"] / sim, 4) if sim > 0 else None,
            "abm_messages_per_s": abm["messages_per_s"], "abm_messages_per_cpu_s": abm["messages_per_cpu_s"],
            "abm_cpu_s_per_simulated_s": round(abm["cpu_seconds"] / abm["simulated_s"], 4)}


def realism(model: Denoiser, stats, tokens, day, start: int, markets: int, rounds: int, steps: int) -> dict:
    """Generated vs real order flow over the held-back test part of the day: order-type shares, and KS
    distances of sizes, log inter-arrival times and spreads (grid steps) after each order."""
    from scipy.stats import ks_2samp

    from marketlab.simulators.trades.tokens import KIND_NAMES

    w = TradesMarkets(model, stats, tokens, start=start, n_markets=markets, seed=0, method="ddim", steps=steps,
                      candidates=4)
    spreads: list[int] = []
    for _ in range(rounds):
        w.step()
        for ob in w.books:
            b, a = ob.quotes()
            if a is not None and b is not None:
                spreads.append((a - b) // tokens.grid)
    gen = [o for log in w.log for _, o in log]
    te = day.splits["test"]
    real = tokens.take(te)
    real_dt = np.diff(real.ts) / 1e9
    gen_dt = np.array([o.dt_ns / 1e9 for o in gen])
    real_spread = (real.book[:, 0] - real.book[:, 2])[(real.book[:, 0] > 0) & (real.book[:, 2] > 0)] // tokens.grid
    gen_sizes = np.array([o.size for o in gen if o.kind != 1])
    real_sizes = real.size[real.kind != 1]
    eps = 1e-6
    return {
        "markets": markets, "rounds": rounds, "ddim_steps": steps, "generated_orders": len(gen),
        "counts": w.stats_run.to_dict(),
        "type_share_generated": {k: round(float(np.mean([o.kind == i for o in gen])), 4) for i, k in enumerate(KIND_NAMES)},
        "type_share_real_test": {k: round(float(np.mean(real.kind == i)), 4) for i, k in enumerate(KIND_NAMES)},
        "ks_size_limit_market": round(float(ks_2samp(gen_sizes, real_sizes).statistic), 4),
        "ks_log_interarrival": round(float(ks_2samp(np.log(gen_dt + eps), np.log(real_dt + eps)).statistic), 4),
        "ks_spread_grid_steps": round(float(ks_2samp(spreads, real_spread).statistic), 4),
        "median_interarrival_s": {"generated": float(np.median(gen_dt)), "real_test": float(np.median(real_dt))},
        "median_spread_steps": {"generated": float(np.median(spreads)), "real_test": float(np.median(real_spread))},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--dataset", default="lobster")
    ap.add_argument("--symbol", default="GOOG")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--markets", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--eval-rounds", type=int, default=0, help="realism check: rounds over --markets markets")
    ap.add_argument("--abm-seconds", default="0",
                    help="also run the agent-based market for this much simulated time (events/s side by side); "
                         "'same': the simulated time the single TRADES market covered")
    ap.add_argument("--weights", choices=("ema", "raw"), default="ema",
                    help="checkpoint weights: EMA (paper) or the last ones (better after a short CPU run)")
    ap.add_argument("--generation-only", action="store_true",
                    help="only the single and batched generation rows (a loaded machine: the headline number)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Run("trades")
    store = Store(args.store)
    if args.checkpoint:
        model, stats, cfg = load_checkpoint(args.checkpoint, ema=args.weights == "ema")
        weights = f"checkpoint {args.checkpoint} ({args.weights} weights)"
    else:
        cfg = TradesConfig.cpu()
        torch.manual_seed(0)
        model, stats, weights = Denoiser(cfg.shape()).eval(), None, "untrained (fresh CPU-config model)"
    tokens, day = load_day(store, args.dataset, args.symbol, cfg.levels, stats=stats)
    stats = day.stats
    start = max(day.splits["test"].start, cfg.window - 1)
    out: dict = {"weights": weights, "config": cfg.to_dict(), "torch_threads": args.threads, "device": "cpu"}
    out["generation_single"] = generation(model, stats, tokens, start, 1, args.rounds * 4, args.steps)
    out["generation_batched"] = generation(model, stats, tokens, start, args.markets, args.rounds, args.steps)
    if args.generation_only:
        path = run.save(out)
        g1, gb = out["generation_single"], out["generation_batched"]
        print(f"single: {g1['orders_per_s']} orders/s ({g1['orders_per_cpu_s']} per CPU-s); {args.markets} markets: "
              f"{gb['orders_per_s']} orders/s ({gb['orders_per_cpu_s']} per CPU-s)\nwrote {path}")
        return
    out["generation_batched_4_candidates"] = generation(model, stats, tokens, start, args.markets, args.rounds,
                                                        args.steps, candidates=4)
    # training throughput, CPU config
    tcfg = TradesConfig.cpu(steps=args.train_steps, val_every=10**6, checkpoint_every=0)
    tmp = Path(args.store) / "_bench_trades_ckpt"
    res = train_on_day(day, tcfg, tmp, device="cpu")
    out["train_cpu_config"] = {"steps": args.train_steps, "batch": tcfg.batch_size,
                               "windows_per_s": round(res.windows_per_s, 1)}
    # paper-config denoiser forward, batch 1, real attention and the reference einsum
    for flag in (False, True):
        shape = replace(PAPER, reference_einsum_attention=flag)
        torch.manual_seed(0)
        m = Denoiser(shape).eval()
        x = torch.randn(1, 1, 8)
        cond = torch.randn(1, shape.window - 1, 8)
        book = torch.randn(1, shape.window, 40)
        t = torch.tensor([50])
        with torch.no_grad():
            m(x, t, cond, book)
            reps = 3
            t0 = time.perf_counter()
            for _ in range(reps):
                m(x, t, cond, book)
            out[f"paper_forward_s_batch1_{'einsum' if flag else 'sdpa'}"] = round((time.perf_counter() - t0) / reps, 4)
    abm_s = out["generation_single"]["simulated_s_per_market"] if args.abm_seconds == "same" else float(args.abm_seconds)
    if abm_s > 0:
        out["abm_same_simulated_time"] = abm_events(abm_s)
        out["side_by_side"] = side_by_side(out["generation_single"], out["abm_same_simulated_time"])
    if args.eval_rounds:
        out["realism_vs_real_test"] = realism(model, stats, tokens, day, start, args.markets, args.eval_rounds,
                                              args.steps)
    path = run.save(out)
    g1, gb, g4 = out["generation_single"], out["generation_batched"], out["generation_batched_4_candidates"]
    print(f"single: {g1['orders_per_s']} orders/s; {gb['markets']} markets: {gb['orders_per_s']} orders/s "
          f"(samples/s {gb['samples_per_s']}), with 4 candidates {g4['orders_per_s']} orders/s; train {out['train_cpu_config']['windows_per_s']} windows/s; "
          f"paper fwd sdpa {out['paper_forward_s_batch1_sdpa']} s, einsum {out['paper_forward_s_batch1_einsum']} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
