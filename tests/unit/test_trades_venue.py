"""``venue/trades-v1``: an outside agent trades against the TRADES world agent in one matching engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlab.core.protocols import Venue
from marketlab.core.registry import resolve

pytestmark = pytest.mark.xdist_group("tiny_trades")  # one worker trains the shared tiny model once


@pytest.fixture(scope="module")
def setup(tiny_trades):
    return tiny_trades


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
    spec.write_text(
        f'checkpoint = "{ck}"\ndataset = "gen"\nduration_s = 2.0\nsteps = 2\n[source]\ndataset = "lob"\nsymbol = "GOOG"\n'
    )
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


def _session_spec(setup, tmp_path: Path) -> Path:
    _, ck = setup
    spec = tmp_path / "trades_session.toml"
    spec.write_text(f'checkpoint = "{ck}"\nduration_s = 3600.0\nsteps = 2\n\n[source]\ndataset = "lob"\nsymbol = "GOOG"\n')
    return spec


def test_agent_quotes_must_lie_on_the_venue_grid(setup) -> None:
    """The venue's tick is the data's price grid (LOBSTER GOOG: 100 units = $0.01); an off-grid agent quote
    would shift every generated order placed relative to the touch off the grid, so it is refused."""
    v = _venue(setup)
    v.reset(seed=2)
    assert v.tick == 100
    bid, _ = v.quotes()
    assert bid is not None and bid % 100 == 0
    with pytest.raises(ValueError, match="tick 100"):
        v.limit(+1, bid + 1, 5)
    assert v.resting() == 0


def test_execution_env_moves_prices_in_venue_ticks(setup, tmp_path: Path) -> None:
    """Action 2 (improve by one tick) on TRADES flow quotes one *grid* tick inside the spread, and the
    spread observation is in ticks: an episode of joins, improvements and cancels keeps every agent quote on
    the grid and the generator's orders valid."""
    import gymnasium as gym

    import marketlab.envs  # noqa: F401

    store, _ = setup
    config = {
        "venue": "trades-v1",
        "sim_spec": str(_session_spec(setup, tmp_path)),
        "step_seconds": 0.5,
        "horizon": 6,
        "quantity": 30,
        "side": 1,
    }
    env = gym.make("marketlab/LOBExecution-v0", config=config, store=store)
    obs, _ = env.reset(seed=7)
    venue = env.unwrapped.venue
    b, a = venue.quotes()
    assert obs[4] == pytest.approx((a - b) / 100 / 10, rel=1e-6)  # spread in ticks / 10
    improved = 0
    for action in (2, 1, 4, 2, 2, 2):
        b, a = venue.quotes()
        before = set(venue._mine)
        _, _, term, trunc, _ = env.step(action)
        new = [venue._mine[o][1] for o in set(venue._mine) - before]
        if action == 2 and b is not None and a is not None and a - b > 100 and new:
            assert new == [b + 100]
            improved += 1
        assert all(px % 100 == 0 for _, px in venue._mine.values())
        if term or trunc:
            break
    assert improved > 0
    assert venue.world.stats_run.engine_rejected == 0


def test_market_making_env_runs_on_trades_flow_by_one_id(setup, tmp_path: Path) -> None:
    """MarketMaking-v0 on generated flow: only ``venue`` (+ ``sim_spec``) changes; quotes ``offset`` grid
    ticks behind the touch, PnL in ticks, and seeded episodes repeat."""
    import gymnasium as gym
    import numpy as np

    import marketlab.envs  # noqa: F401

    store, _ = setup
    config = {
        "venue": "trades-v1",
        "sim_spec": str(_session_spec(setup, tmp_path)),
        "step_seconds": 0.5,
        "horizon": 5,
        "quote_size": 5,
        "n_offsets": 3,
        "max_inventory": 50,
    }

    def episode(seed: int) -> list[tuple[float, int]]:
        env = gym.make("marketlab/MarketMaking-v0", config=config, store=store)
        env.reset(seed=seed)
        venue = env.unwrapped.venue
        out = []
        for a in (8, 0, 5, 1, 4):  # (bid offset, ask offset) = divmod(a, 3)
            venue.cancel_all()  # what the step does first: the touch it quotes behind is the others' touch
            b, ask = venue.quotes()
            _, r, term, trunc, info = env.step(a)
            off_b, off_a = divmod(a, 3)
            quoted = {px for _, px in venue._mine.values()}
            # the quotes still resting sit offset grid ticks behind the touch seen when they were placed
            assert quoted <= {b - off_b * 100 if b else None, ask + off_a * 100 if ask else None}
            assert np.isfinite(r)
            out.append((round(float(r), 9), int(info["inventory"])))
            if term or trunc:
                break
        assert venue.world.stats_run.engine_rejected == 0
        env.close()
        return out

    first = episode(11)
    assert len(first) == 5
    assert episode(11) == first


def test_session_weights_pick_the_checkpoint_file(setup, tmp_path: Path) -> None:
    """``weights = "raw"`` generates with model.safetensors, the default with ema.safetensors (they differ
    after training), in both the venue (through the env's sim_spec) and the simulated session."""
    from safetensors.torch import load_file

    from marketlab.envs.lob_venue import VenueFields
    from marketlab.simulators.trades.simulation import TradesSimulation, TradesSimSpec
    from marketlab.simulators.trades.venue import TradesVenue

    store, ck = setup
    files = {w: load_file(str(ck / f"{w}.safetensors")) for w in ("ema", "model")}
    name = next(k for k in files["ema"] if not (files["ema"][k] == files["model"][k]).all())
    for weights, file in (("ema", "ema"), ("raw", "model")):
        spec = tmp_path / f"{weights}.toml"
        spec.write_text(f'checkpoint = "{ck}"\nweights = "{weights}"\n[source]\ndataset = "lob"\nsymbol = "GOOG"\n')
        v = TradesVenue.from_config(VenueFields(venue="trades-v1", sim_spec=str(spec)), store=store)
        sim = TradesSimulation(TradesSimSpec.from_toml(spec), store=store)
        for model in (v.model, sim.model):
            assert (model.state_dict()[name] == files[file][name]).all()


def test_an_order_the_engine_refuses_is_counted_and_kept_out_of_the_history(setup) -> None:
    """A generated order the engine rejects (here: every new order reuses a live order id) is counted as
    ``engine_rejected``, appears in the engine's rejections, and never enters the log or the conditioning
    window (the history is the exchange-confirmed orders)."""
    import numpy as np

    from marketlab.simulators.trades.train import load_checkpoint, load_day
    from marketlab.simulators.trades.world import TradesMarkets

    store, ck = setup
    model, stats, cfg = load_checkpoint(ck)
    tokens, day = load_day(store, "lob", "GOOG", cfg.levels, stats=stats)
    w = TradesMarkets(model, stats, tokens, start=day.splits["test"].start, n_markets=1, seed=0, method="ddim", steps=2)
    for _ in range(40):
        w.next_id[0] = int(w.books[0].resting_orders()[0, 0])  # a live id: a new limit/market order is refused
        cond, book, n_log, before = w.cond.copy(), w.cond_book.copy(), len(w.log[0]), w.stats_run.engine_rejected
        w.step()
        if w.stats_run.engine_rejected > before:
            break
    else:
        pytest.fail("no limit or market order was generated in 40 rounds")
    assert w.books[0].rejections == {"duplicate_order_id": 1}
    assert len(w.log[0]) == n_log and np.array_equal(w.cond, cond) and np.array_equal(w.cond_book, book)
    s = w.stats_run.to_dict()
    assert s["samples"] == sum(s["accepted"].values()) + sum(s["discarded"].values()) + s["engine_rejected"] + s["unused"]


def test_markets_advance_in_lockstep_with_one_batched_denoiser_call_per_sampler_step(setup) -> None:
    """M markets x K candidates share each denoiser call: a round with DDIM-3 and one try is exactly three
    forward passes of batch M*K, and every market moves by one order or a counted give-up."""
    from marketlab.simulators.trades.train import load_checkpoint, load_day
    from marketlab.simulators.trades.world import TradesMarkets

    store, ck = setup
    model, stats, cfg = load_checkpoint(ck)
    tokens, day = load_day(store, "lob", "GOOG", cfg.levels, stats=stats)
    w = TradesMarkets(
        model,
        stats,
        tokens,
        start=day.splits["test"].start,
        n_markets=5,
        seed=0,
        method="ddim",
        steps=3,
        candidates=2,
        max_tries=1,
    )
    batches: list[int] = []
    hook = w.model.register_forward_hook(lambda _m, inp, _out: batches.append(int(inp[0].shape[0])))
    try:
        got = w.step()
    finally:
        hook.remove()
    assert batches == [10, 10, 10]
    assert sum(o is not None for o in got) + w.stats_run.gave_up == 5
