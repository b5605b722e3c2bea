"""Benchmark: the TRADES evaluation table (issue 16, "Evaluation") for GOOG and AMZN.

For each ``--case SYMBOL=STORE=CHECKPOINT`` (a store holding the LOBSTER day as dataset ``lobster`` and a
checkpoint from ``marketlab trades train``) it runs :func:`marketlab.simulators.eval_run.run_evaluation`:
TRADES vs the agent-based market vs market replay on the held-back last 20% of the day — predictive
score (LSTM 2 x 128, window 100, horizon 10 events, time-ordered split), stylized facts as numbers, PCA
hull coverage, POV market-impact A/B over 5 seeds — at the CPU config and the budget given by the
options (all recorded in the results file). Appends a run (hardware, load, command) to
``benchmarks/results/trades_eval.json``; the per-symbol report PNG and JSON go to ``--out``.

Run: ``nice -n 15 .venv/bin/python benchmarks/trades_eval.py --case GOOG=/tmp/store=runs/trades_goog
--case AMZN=/tmp/store_amzn=runs/trades_amzn``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

from marketlab.simulators.eval_run import EvalBudget, run_evaluation  # noqa: E402
from marketlab.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def table(cases: dict) -> str:
    """Markdown table of the headline numbers (the README's TRADES section)."""
    rows = ["| | " + " | ".join(f"{s} {m}" for s in cases for m in ("replay/real", "TRADES", "ABM")) + " |",
            "|---|" + "---|" * (3 * len(cases))]

    def fmt(v: object, f: str) -> str:
        return "n/a" if v is None else format(v, f)

    def row(label: str, get, f: str) -> str:
        vals = []
        for s, r in cases.items():
            for key in (f"real:{s}", f"trades:{s}", "abm"):
                vals.append(fmt(get(r, key), f))
        return f"| {label} | " + " | ".join(vals) + " |"

    def pred(r: dict, k: str) -> object:
        return r["predictive"]["replay" if k.startswith("real") else k]["mae_bps"]

    rows.append(row("predictive MAE, bps (LSTM on it, tested on real)", pred, ".3f"))
    for key, label, f in (("ret_excess_kurtosis", "minute-return excess kurtosis", ".2f"),
                          ("ret_acf_lag1", "return ACF lag 1", "+.3f"),
                          ("absret_acf_lag1", "abs-return ACF lag 1", "+.3f"),
                          ("volume_volatility_corr", "corr(volume, abs return)", "+.3f"),
                          ("leverage_corr", "corr(r, next abs r)", "+.3f"),
                          ("spread_mean_bps", "spread mean, bps", ".2f"),
                          ("ks_spread_bps", "KS spread vs real", ".3f"),
                          ("ks_log_interarrival", "KS log inter-arrival vs real", ".3f"),
                          ("share_add", "share add", ".3f"), ("share_delete", "share delete", ".3f"),
                          ("share_execute", "share execute", ".3f")):
        rows.append(row(label, lambda r, k, key=key: r["facts"].get(k, {}).get(key), f))
    rows.append(row("PCA hull coverage of real", lambda r, k: r["pca_coverage"].get(k, {}).get("coverage"), ".3f"))
    rows.append(row("POV impact during, bps (5 seeds)", lambda r, k: r["impact"].get(k, {}).get("impact_during_bps"), "+.2f"))
    rows.append(row("POV impact after, bps", lambda r, k: r["impact"].get(k, {}).get("impact_after_bps"), "+.2f"))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="append", help="SYMBOL=STORE=CHECKPOINT (repeatable)")
    ap.add_argument("--table", action="store_true",
                    help="print the README table from the latest recorded run of each symbol, run nothing")
    ap.add_argument("--dataset", default="lobster")
    ap.add_argument("--abm-spec", default=str(ROOT / "specs" / "simulators" / "abm_default.toml"))
    ap.add_argument("--out", default=str(ROOT / "reports" / "trades_eval"))
    ap.add_argument("--markets", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--lstm-epochs", type=int, default=3)
    ap.add_argument("--lstm-max-train", type=int, default=6000)
    ap.add_argument("--impact-seconds", type=float, default=600.0)
    ap.add_argument("--pov-start", type=float, default=60.0)
    ap.add_argument("--pov-end", type=float, default=420.0)
    ap.add_argument("--pov-interval", type=float, default=60.0)
    ap.add_argument("--impact-max-rounds", type=int, default=3000)
    ap.add_argument("--lstm-max-test", type=int, default=4000)
    ap.add_argument("--abm-seconds", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", choices=("ema", "raw"), default="ema")
    args = ap.parse_args()
    if args.table:
        import json

        latest: dict = {}
        for r in json.loads((ROOT / "benchmarks" / "results" / "trades_eval.json").read_text())["runs"]:
            latest.update(r["cases"])  # runs are in time order: a later run of a symbol replaces an earlier one
        print(table(dict(sorted(latest.items(), key=lambda kv: kv[0] != "GOOG"))))
        return
    if not args.case:
        ap.error("--case is required (or --table)")
    torch.set_num_threads(args.threads)
    run = Run("trades_eval")
    budget = EvalBudget(markets=args.markets, rounds=args.rounds, lstm_epochs=args.lstm_epochs,
                        lstm_max_train=args.lstm_max_train, lstm_max_test=args.lstm_max_test,
                        impact_seconds=args.impact_seconds, pov_start_s=args.pov_start, pov_end_s=args.pov_end,
                        pov_interval_s=args.pov_interval,
                        impact_max_rounds=args.impact_max_rounds, abm_seconds=args.abm_seconds,
                        weights=args.weights)
    cases = {}
    for c in args.case:
        sym, store, ck = c.split("=")
        cases[sym] = run_evaluation(Store(store, create=False), args.dataset, sym, ck, args.abm_spec, budget, args.out)
        print(f"{sym}: {cases[sym]['seconds']} s", flush=True)
    md = table(cases)
    path = run.save({"device": "cpu", "torch_threads": args.threads, "budget": budget.to_dict(),
                     "note": "CPU config, small budgets (see budget); not the paper's GPU config", "cases": cases,
                     "table_markdown": md})
    print(md)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
