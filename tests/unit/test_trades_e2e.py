"""TRADES end to end on real data: train a few steps on a GOOG slice from the store, generate orders with
DDIM in few steps across markets, play them into the matching engine, count what happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketlab.simulators.trades.decode import REASONS
from marketlab.simulators.trades.train import TradesConfig, load_checkpoint, load_day, train_from_store
from marketlab.simulators.trades.world import TradesMarkets
from tests.support.trades import goog_slice_store


def test_train_generate_play_into_the_engine(shared_data: Path, tmp_path: Path) -> None:
    store = goog_slice_store(shared_data, tmp_path, rows=2500)
    cfg = TradesConfig.cpu(window=8, depth=1, steps=60, batch_size=32, val_every=60, val_batches=1, seed=1,
                           ema_decay=0.9)
    res = train_from_store(store, "lob", "GOOG", cfg, tmp_path / "ckpt", device="cpu")
    assert res.step == 60 and np.isfinite(res.train_loss) and np.isfinite(res.val_loss)
    model, stats, _ = load_checkpoint(tmp_path / "ckpt", expect=cfg)
    tokens, day = load_day(store, "lob", "GOOG", stats=stats)
    start = day.splits["test"].start  # generation starts where the held-back test part of the day begins

    def run(seed: int, candidates: int = 1) -> TradesMarkets:
        w = TradesMarkets(model, stats, tokens, start=start, n_markets=3, seed=seed, method="ddim", steps=2,
                          max_tries=5, candidates=candidates)
        w.run(8)
        return w

    w = run(0)
    s = w.stats_run.to_dict()
    n_accepted = sum(s["accepted"].values())
    # every sample is accounted for: accepted, discarded by a documented reason, or refused by the engine
    assert s["samples"] == n_accepted + sum(s["discarded"].values()) + s["engine_rejected"] + s["unused"]
    assert set(s["discarded"]) == set(REASONS)
    assert s["engine_rejected"] == 0 and all(b.rejections == {} for b in w.books)
    assert n_accepted > 0  # orders did reach the engine (sampler x0 clamped to the training range)
    assert n_accepted + s["gave_up"] == 3 * 8  # each market: one order per round, or a counted give-up
    for book, vol in zip(w.books, w.volume, strict=True):
        assert not book.is_crossed()
        ev = book.drain_events()
        # the traded-volume counter (the POV buyer's input) equals the lots of the engine's execution events,
        # and the first seed_events events are the seed book's adds (dropped from generated market frames)
        assert vol == int(ev["size"][ev["type"] == 4].sum())
        assert (ev["type"][: w.seed_events] == 1).all() and ev.shape[0] > w.seed_events
    # the conditioning window holds the confirmed orders: its last row is the last accepted order
    assert np.isfinite(w.cond).all() and np.isfinite(w.cond_book).all()
    # same seed -> the same orders
    again = run(0)
    assert [o for _, o in again.log[0]] == [o for _, o in w.log[0]]
    # several candidates per sampler call: fewer give-ups, the same bookkeeping
    many = run(0, candidates=4).stats_run.to_dict()
    assert many["samples"] == (sum(many["accepted"].values()) + sum(many["discarded"].values())
                               + many["engine_rejected"] + many["unused"])
    assert many["gave_up"] <= s["gave_up"] and many["engine_rejected"] == 0


@pytest.mark.slow
def test_demo_step_trains_generates_and_writes_a_market(tmp_path: Path) -> None:
    from marketlab.simulators.stylized import facts_for_dataset
    from marketlab.simulators.trades.demo import demo_market
    from marketlab.store import Store
    from marketlab.store.synth import write_synth

    st = Store(tmp_path / "store")
    write_synth(st, 3, n_symbols=3, n_days=30, n_events=3000)
    out = demo_market(st, 0, tmp_path / "out", source="synth_lob", markets=2, rounds=10, train_steps=3, window_s=10**6)
    ev = st.scan_events("trades_demo").collect()
    assert out["events"] == ev.height > 0 and out["engine_rejected"] == 0
    assert st.scan_book("trades_demo").collect().height == ev.height
    assert np.unique(ev["ts"].to_numpy() // 86_400_000_000_000).size == 2  # one day per generated market
    assert (tmp_path / "out" / "trades_demo_checkpoint" / "ema.safetensors").is_file()
    assert facts_for_dataset(st, "trades_demo")[0].scalars["n_events"] == ev.height
