"""Ablation: real scaled-dot-product attention vs the reference code's non-mixing einsum (issue 16).

Trains the same CPU-config TRADES twice on one symbol (same seed, data, steps), once with
``reference_einsum_attention=True``, and reports the EMA model's hybrid loss on the validation and
test parts of the day (time split 70/10/20; fixed seeded batches, uniform t). Appends a run to
benchmarks/results/trades_ablation.json.

Run: ``nice -n 15 .venv/bin/python benchmarks/trades_ablation.py --store /tmp/store --steps 800``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

from marketlab.simulators.trades.train import TradesConfig, evaluate, load_checkpoint, load_day, train_on_day  # noqa: E402
from marketlab.store import Store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--dataset", default="lobster")
    ap.add_argument("--symbol", default="GOOG")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-batches", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Run("trades_ablation")
    _, day = load_day(Store(args.store), args.dataset, args.symbol)
    rows = {}
    for flag in (False, True):
        cfg = TradesConfig.cpu(steps=args.steps, seed=args.seed, ema_decay=0.99, val_every=args.steps,
                               reference_einsum_attention=flag)
        with tempfile.TemporaryDirectory() as tmp:
            res = train_on_day(day, cfg, tmp, device="cpu")
            model, _, _ = load_checkpoint(tmp)
        name = "reference_einsum" if flag else "sdpa"
        rows[name] = {"train_loss_last50": round(res.train_loss, 4),
                      "val_loss_ema": round(evaluate(model, day, cfg, "val", batches=args.eval_batches), 4),
                      "test_loss_ema": round(evaluate(model, day, cfg, "test", batches=args.eval_batches), 4),
                      "train_seconds": round(res.seconds, 1)}
        print(name, rows[name], flush=True)
    path = run.save({"symbol": args.symbol, "dataset": args.dataset, "steps": args.steps, "seed": args.seed,
                     "config": TradesConfig.cpu().to_dict(), "ema_decay": 0.99, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
