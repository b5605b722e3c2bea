"""The ``make demo`` step of TRADES: train a tiny denoiser on the demo's own agent-based day, generate a
short market with it and write that market to the store, so the demo's stylized-facts figure shows it
beside the agent-based day. No download: the checkpoint is made here, in seconds (window 8, depth 1,
width 16, a few dozen Adam steps, DDIM with 2 steps). The model is far too small and too briefly trained
to be realistic — the step shows the pipeline (store -> tokens -> train -> batched generation -> engine ->
store), not TRADES' quality (see ``marketlab evaluate-sim`` for that)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S

#: the tiny model of the demo (trains in about a second on one core)
DEMO_CONFIG = dict(window=8, depth=1, augment_dim=8, heads=2, levels=5, batch_size=32, steps=40, val_every=40,
                   val_batches=1, ema_decay=0.9, checkpoint_every=0)


def demo_market(store: Any, seed: int, out_dir: str | Path, *, source: str = "abm_default", dataset: str = "trades_demo",
                markets: int = 4, rounds: int = 100, train_steps: int = 40, window_s: int = 1200) -> dict[str, Any]:
    """Train on the last ``window_s`` seconds of ``source`` (its first symbol), generate ``markets`` markets of ``rounds`` orders in lockstep
    and write them to ``dataset`` (market k on day k after the source day, so facts never mix them).
    Returns counts, seconds and the checkpoint path (``<out_dir>/trades_demo_checkpoint``)."""
    import polars as pl
    import torch

    from marketlab.simulators.trades.simulation import engine_frames
    from marketlab.simulators.trades.train import TradesConfig, load_checkpoint, load_day, train_on_day
    from marketlab.simulators.trades.world import TradesMarkets
    from marketlab.store import IngestBatch

    t0 = time.perf_counter()
    symbol = sorted(store.instruments(source)["symbol"].to_list())[0]
    cfg = TradesConfig.cpu(**{**DEMO_CONFIG, "steps": train_steps, "val_every": train_steps, "seed": seed})
    last = int(store.scan_events(source, symbol).select(pl.col("ts").max()).collect().item())
    tokens, day = load_day(store, source, symbol, cfg.levels, start=last - window_s * NS_PER_S)  # the day's end only
    ck = Path(out_dir) / "trades_demo_checkpoint"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only add overhead
    try:
        res = train_on_day(day, cfg, ck, device="cpu", source=f"dataset '{source}' symbol '{symbol}'")
        model, stats, _ = load_checkpoint(ck)
        t_train = time.perf_counter() - t0
        start = max(day.splits["test"].start, cfg.window - 1)
        w = TradesMarkets(model, stats, tokens, start=start, n_markets=markets, seed=seed, steps=2, candidates=2)
        w.run(rounds)
    finally:
        torch.set_num_threads(threads)
    ev, bk = [], []
    for k, ob in enumerate(w.books):
        fr = engine_frames(ob.drain_events(), symbol, cfg.levels, ts_shift=(k + 1) * NS_PER_DAY, skip=w.seed_events)
        ev.append(fr["events"])
        bk.append(fr["book"])
    events = pl.concat(ev)
    events = events.with_columns(pl.Series("seq", np.arange(events.height, dtype=np.int64)))
    book = pl.concat(bk).with_columns(pl.Series("seq", np.arange(events.height, dtype=np.int64)))
    counts = w.stats_run.to_dict()
    batch = IngestBatch(dataset=dataset, frames={"events": events, "book": book},
                        instruments=[store.instrument(source, symbol)],
                        meta={"source": "marketlab.simulators.trades.demo", "synthetic": True, "book_levels": cfg.levels,
                              "counts": counts})
    store.replace(batch, format="trades")
    return {"events": events.height, "orders": sum(counts["accepted"].values()), "discarded": sum(counts["discarded"].values()),
            "engine_rejected": counts["engine_rejected"], "train_loss": round(res.train_loss, 4),
            "train_s": round(t_train, 2), "checkpoint": str(ck)}
