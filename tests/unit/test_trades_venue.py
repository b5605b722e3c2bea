"""``venue/trades-v1``: an outside agent trades against the TRADES world agent in one matching engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlab.core.protocols import Venue
from marketlab.core.registry import resolve
from marketlab.simulators.trades.train import TradesConfig, train_from_store
from tests.support.trades import goog_slice_store


@pytest.fixture(scope="module")
def setup(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("trades_venue")
    store = goog_slice_store(shared_data, root, rows=2500)
    cfg = TradesConfig.cpu(window=8, depth=1, steps=60, batch_size=32, val_every=60, val_batches=1, seed=1,
                           ema_decay=0.9)
    train_from_store(store, "lob", "GOOG", cfg, root / "ck", device="cpu")
    return store, root / "ck"


def _venue(setup, **kw):
    store, ck = setup
    cls = resolve("venue/trades-v1")
    return cls(ck, store, "lob", "GOOG", step_seconds=0.5, horizon_seconds=3.0, steps=2, **kw)


def test_agent_trades_against_the_generator(setup) -> None:
    v = _venue(setup)
    assert isinstance(v, Venue)
    v.reset(seed=3)
    t0 = v.now_ns
    bid, ask = v.quotes()
    assert bid is not None and ask is not None and bid < ask
    # a market buy takes liquidity the generator placed (seeded from the real book)
    fills = v.market(+1, 5)
    assert sum(f.size for f in fills) == 5 and all(f.side == 1 and not f.maker for f in fills)
    # a resting bid at the touch is never cancelled by the generator; it either rests or fills
    bid, _ = v.quotes()
    assert v.limit(+1, bid, 7) == []
    assert v.resting() == 7
    # the generator's cancel candidates are its own orders only
    w = v.world
    assert w is not None
    own = w._own_resting(0)[:, 0].tolist()
    everyone = w.books[0].resting_orders()[:, 0].tolist()
    assert set(everyone) - set(own) == set(v._mine) and len(v._mine) == 1
    got = []
    while not v.exhausted:
        got += v.advance()
        assert v.resting() + sum(f.size for f in got if f.maker) == 7
    assert v.now_ns >= t0 + 3_000_000_000
    assert w.stats_run.engine_rejected == 0
    v.cancel_all()
    assert v.resting() == 0


def test_same_seed_same_market(setup) -> None:
    def path(seed: int) -> list:
        v = _venue(setup)
        v.reset(seed=seed)
        out = []
        for _ in range(3):
            v.advance()
            out.append((v.now_ns, v.quotes()))
        return out

    assert path(1) == path(1)


def test_simulated_session_goes_to_the_store_in_the_real_schemas(setup, tmp_path: Path) -> None:
    from marketlab.core.schema import EVENTS_SCHEMA
    from marketlab.lob import OrderBook
    from marketlab.simulators.trades.simulation import TradesSimSpec, simulate_trades_day

    store, ck = setup
    spec = tmp_path / "s.toml"
    spec.write_text(f'checkpoint = "{ck}"\ndataset = "gen"\nduration_s = 2.0\nsteps = 2\n'
                    '[source]\ndataset = "lob"\nsymbol = "GOOG"\n')
    assert resolve("simulator/trades-v1").__name__ == "TradesSimulation"
    out = simulate_trades_day(spec, store, seed=4)
    assert out["events"] > 0 and out["engine_rejected"] == 0
    ev = store.scan_events("gen", "GOOG").collect()
    bk = store.scan_book("gen", "GOOG").collect()
    assert ev.schema == EVENTS_SCHEMA and ev.height == out["events"] == bk.height
    assert store.instrument("gen", "GOOG") == store.instrument("lob", "GOOG")
    # the stored book after the last event equals an independent replay of the stored events
    ob = OrderBook()
    for r in ev.iter_rows(named=True):
        if r["type"] == 1:
            assert ob.submit_limit(r["order_id"], r["side"], r["price"], r["size"], ts=r["ts"]) == 0
        elif r["type"] == 3:
            assert ob.cancel(r["order_id"], ts=r["ts"]) == 0
        else:  # partial cancel or execution of a resting order: reduce it
            assert ob.cancel(r["order_id"], r["size"], ts=r["ts"]) == 0
    last = bk.row(-1)[3:]
    assert list(ob.snapshot(10)) == list(last)
    # bad spec key: one-line error naming it
    spec.write_text('checkpoint = "x"\ndurration_s = 2.0\n')
    from marketlab.core.errors import SpecError

    with pytest.raises(SpecError, match="durration_s"):
        TradesSimSpec.from_toml(spec)


def test_lob_execution_env_runs_on_trades_flow_by_one_id(setup, tmp_path: Path) -> None:
    """The LOB execution env on generated order flow: the spec changes only ``venue`` (and names the
    TRADES session spec); the agent's fills come from the generator's book, seeded episodes repeat."""
    import gymnasium as gym
    import numpy as np

    import marketlab.envs  # noqa: F401  (registers the gymnasium ids)

    store, ck = setup
    spec = tmp_path / "trades_session.toml"
    spec.write_text(f'checkpoint = "{ck}"\nduration_s = 4.0\nsteps = 2\n\n[source]\ndataset = "lob"\nsymbol = "GOOG"\n')
    config = {"venue": "trades-v1", "sim_spec": str(spec), "step_seconds": 0.5, "horizon": 6, "quantity": 20, "side": 1}

    def episode(seed: int) -> tuple[list[float], list[int]]:
        env = gym.make("marketlab/LOBExecution-v0", config=config, store=store)
        env.reset(seed=seed)
        rewards, filled, done = [], [], False
        while not done:
            _, r, term, trunc, info = env.step(3)  # a market child order of this step's slice
            rewards.append(float(r))
            filled.append(int(info["filled"]))
            done = term or trunc
        env.close()
        return rewards, filled

    r1, filled = episode(5)
    # step 1 of 6 with market time left: no end-of-episode sweep yet, so these fills are the child order's
    assert filled[0] > 0
    assert np.all(np.isfinite(r1))
    assert episode(5) == (r1, filled)  # same seed, same generated market, same episode
