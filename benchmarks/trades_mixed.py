"""Benchmark: the mixed TRADES market (issue 16, "In the market"): the agent-based market's agents trade in a
TRADES-generated market, against the world agent, in one matching engine.

1. **POV market impact** (TRADES paper §7.1): the ABM's own participation-of-volume trader
   (:class:`marketlab.simulators.agents.POVTrader`, ``--pov`` of the others' volume, waking every
   ``--pov-interval`` s from ``--pov-start`` to ``--pov-end``) A/B over ``--seeds`` seeds, in TRADES through the
   mixed market (:func:`marketlab.simulators.eval_run.trades_impact`) and in the agent-based market
   (:func:`marketlab.simulators.eval_run.abm_impact`), side by side in one process, the same budget.
2. **A mixed session**: the agents of ``--abm-spec`` (its noise / value / momentum / market-maker sections,
   fundamental, activity and latency) in the TRADES market for ``--mixed-seconds`` of market time, and the
   same session without them: counts per agent kind, lots traded per taker->maker kind, wall and CPU seconds.

Appends a run (hardware, load, command) to ``benchmarks/results/trades_mixed.json``.

Run: ``nice -n 10 .venv/bin/python benchmarks/trades_mixed.py --store /tmp/store --checkpoint runs/trades_goog``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

from marketlab.simulators.config import SimSpec  # noqa: E402
from marketlab.simulators.eval_run import EvalBudget, _strip, abm_impact, trades_impact  # noqa: E402
from marketlab.simulators.trades.mixed import MarketAgents  # noqa: E402
from marketlab.simulators.trades.simulation import SourceSpec, TradesSimSpec, TradesSimulation  # noqa: E402
from marketlab.simulators.trades.train import load_checkpoint, load_day  # noqa: E402
from marketlab.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - w, 2), round(time.process_time() - c, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", default="lobster")
    ap.add_argument("--symbol", default="GOOG")
    ap.add_argument("--abm-spec", default=str(ROOT / "specs" / "simulators" / "abm_default.toml"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--pov", type=float, default=0.1)
    ap.add_argument("--pov-start", type=float, default=300.0)
    ap.add_argument("--pov-end", type=float, default=1500.0)
    ap.add_argument("--pov-interval", type=float, default=60.0)
    ap.add_argument("--impact-seconds", type=float, default=1800.0)
    ap.add_argument("--impact-max-rounds", type=int, default=3000)
    ap.add_argument("--mixed-seconds", type=float, default=300.0)
    ap.add_argument("--steps", type=int, default=10, help="DDIM steps")
    ap.add_argument("--weights", choices=("ema", "raw"), default="raw")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Run("trades_mixed")
    store = Store(args.store, create=False)
    budget = EvalBudget(
        impact_seeds=args.seeds,
        impact_seconds=args.impact_seconds,
        pov=args.pov,
        pov_start_s=args.pov_start,
        pov_end_s=args.pov_end,
        pov_interval_s=args.pov_interval,
        impact_max_rounds=args.impact_max_rounds,
        ddim_steps=args.steps,
        weights=args.weights,
    )
    model, stats, cfg = load_checkpoint(args.checkpoint, ema=args.weights == "ema")
    tokens, day = load_day(store, args.dataset, args.symbol, cfg.levels, stats=stats)
    start = max(day.splits["test"].start, cfg.window - 1)

    torch.manual_seed(budget.seed)
    ti, ti_wall, ti_cpu = timed(trades_impact, model, stats, tokens, start, budget)
    ai, ai_wall, ai_cpu = timed(abm_impact, args.abm_spec, budget)
    impact = {
        f"trades:{args.symbol}": {**_strip(ti), "wall_s": ti_wall, "cpu_s": ti_cpu},
        "abm": {**_strip(ai), "wall_s": ai_wall, "cpu_s": ai_cpu},
    }
    for k, r in impact.items():
        print(
            f"impact {k}: during {r['impact_during_bps']:+.2f} bps, after {r['impact_after_bps']} bps, "
            f"executed {r['executed_lots']}, {r['wall_s']} s wall / {r['cpu_s']} CPU-s",
            flush=True,
        )

    abm = SimSpec.from_toml(args.abm_spec)
    agents = MarketAgents(
        noise=abm.noise,
        value=abm.value,
        momentum=abm.momentum,
        market_maker=abm.market_maker,
        fundamental=abm.fundamental,
        activity=abm.activity,
        latency=abm.latency,
    )
    base = TradesSimSpec(
        checkpoint=str(Path(args.checkpoint).resolve()),
        dataset="trades_mixed_bench",
        duration_s=args.mixed_seconds,
        steps=args.steps,
        candidates=4,
        weights=args.weights,
        source=SourceSpec(store=str(Path(args.store).resolve()), dataset=args.dataset, symbol=args.symbol),
    )
    sessions = {}
    for label, spec in (("trades_alone", base), ("trades_with_abm_agents", replace(base, agents=agents))):
        sim, wall, cpu = timed(lambda s=spec: TradesSimulation(s, store=store).run())
        sessions[label] = {**sim.summary(), "wall_s": wall, "cpu_s": cpu}
        print(
            f"{label}: {sessions[label]['events']} events, accepted {sessions[label]['accepted']}, {wall} s wall / {cpu} CPU-s",
            flush=True,
        )
    path = run.save(
        {
            "device": "cpu",
            "torch_threads": args.threads,
            "budget": budget.to_dict(),
            "checkpoint": {"path": args.checkpoint, "config": cfg.to_dict()},
            "abm_spec": args.abm_spec,
            "impact": impact,
            "sessions": sessions,
        }
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
