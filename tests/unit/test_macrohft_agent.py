"""MacroHFT networks, episodic memory, determinism, checkpoints and a small train -> eval on real minutes."""

from __future__ import annotations

import importlib.util

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from marketlab.agents.macrohft.config import MacroHFTConfig
from marketlab.agents.macrohft.dataset import prepare
from marketlab.agents.macrohft.evaluate import env_pnl, load_trained, paper_metrics, policy_positions
from marketlab.agents.macrohft.memory import EpisodicMemory
from marketlab.agents.macrohft.nets import HyperAgentNet, SubAgentNet
from marketlab.agents.macrohft.train import load_run, return_rate, train_run
from marketlab.core.errors import DataError, SpecError, StoreError
from marketlab.core.timeutil import NS_PER_MIN, to_ns
from marketlab.envs.macrohft_env import MinuteTradingEnv
from tests.support.binance import kline_days

TINY = {
    "chunk": 120, "scheme": "paper",
    "sub": {"epochs": 2, "batch_size": 32, "n_envs": 4, "warmup": 32, "updates_per_block": 2, "block": 50, "max_chunks": 8},
    "hyper": {"epochs": 2, "batch_size": 32, "n_envs": 2, "block": 50, "warmup": 32, "updates_per_block": 2,
              "memory_capacity": 200, "steps_per_epoch": 600},
}


def test_network_sizes_match_the_reference() -> None:
    """45,507 sub-agent parameters for 36 + 9 inputs (the reference's 187 KB checkpoints)."""
    assert sum(p.numel() for p in SubAgentNet(36, 9, 2, 64).parameters()) == 45_507
    hyper = HyperAgentNet(45, 2, 6, 32)
    w = hyper.weights(torch.randn(5, 45), torch.zeros(5, dtype=torch.int64), torch.randn(5, 2))
    torch.testing.assert_close(w, torch.full((5, 6), 1 / 6))  # zero-initialised head: uniform mixing


def test_dueling_mean_is_per_sample() -> None:
    """A sample's Q must not depend on the other samples of the batch (the reference averaged over the batch)."""
    torch.manual_seed(0)
    net = SubAgentNet(5, 3)
    s1, s2, pos = torch.randn(8, 5), torch.randn(8, 3), torch.randint(0, 2, (8,))
    full = net(s1, s2, pos)
    torch.testing.assert_close(full[:1], net(s1[:1], s2[:1], pos[:1]))
    torch.testing.assert_close(full[5:], net(s1[5:], s2[5:], pos[5:]))


def _naive_lookup(keys: np.ndarray, actions: np.ndarray, values: np.ndarray, q: np.ndarray, a: int, k: int, eps: float) -> float:
    """The reference's per-entry loop, written out."""
    kern = [1.0 / (float(np.sum((q - keys[i]) ** 2)) + eps) for i in range(len(keys))]
    top = sorted(range(len(keys)), key=lambda i: -kern[i])[:k]
    total = sum(kern[i] for i in top)
    w = {i: kern[i] / total for i in top if actions[i] == a}
    if not w:
        return float("nan")
    s = sum(w.values())
    return sum(w[i] / s * values[i] for i in w)


def test_memory_lookup_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    cap, dim = 300, 8
    mem = EpisodicMemory(cap, dim, k=5, eps=1e-3)
    keys = rng.normal(size=(cap + 40, dim)).astype(np.float32)
    acts = rng.integers(0, 2, cap + 40)
    vals = rng.normal(size=cap + 40).astype(np.float32)
    assert np.isnan(mem.lookup(torch.zeros(1, dim), torch.zeros(1, dtype=torch.int64))).all()  # not full yet
    for lo in range(0, cap + 40, 70):  # FIFO: the first 40 entries are overwritten
        sl = slice(lo, lo + 70)
        mem.add(torch.from_numpy(keys[sl]), torch.zeros(len(keys[sl]), dtype=torch.int64),
                torch.zeros(len(keys[sl]), dtype=torch.int64), torch.from_numpy(acts[sl]), torch.from_numpy(vals[sl]))
    live_k, live_a, live_v = keys[40:], acts[40:], vals[40:]
    queries = np.r_[rng.normal(size=(20, dim)), keys[100:105] + 1e-3].astype(np.float32)
    qa = rng.integers(0, 2, len(queries))
    got = mem.lookup(torch.from_numpy(queries), torch.from_numpy(qa)).numpy()
    want = np.array([_naive_lookup(live_k, live_a, live_v, queries[i], int(qa[i]), 5, 1e-3) for i in range(len(queries))])
    np.testing.assert_allclose(got, want, rtol=1e-4, equal_nan=True)
    assert np.isfinite(got).sum() >= 15


def test_return_rate_matches_the_env_ledger() -> None:
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    acts = rng.integers(0, 2, 39)
    for start in (0, 1):
        env = MinuteTradingEnv(close, fee=0.0002, size=0.2)
        env.reset()
        env.pos = float(start)
        if start:
            env.ledger.trade(close[0], 1.0)
        for a in acts:
            *_, info = env.step(int(a))
        assert return_rate(close, acts, start, 0.0002, 0.2) == pytest.approx(info["return_rate"])


def test_paper_metrics_by_hand() -> None:
    v = np.array([100.0, 110.0, 99.0, 108.9])
    m = paper_metrics(v, positions=np.array([1, 1, 0, 1]))
    r = np.array([0.1, -0.1, 0.1])
    assert m["total_return"] == pytest.approx(0.089)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(525_600))
    assert m["trades"] == 3.0


def _synthetic(days: int = 6, seed: int = 0) -> pl.DataFrame:
    n = days * 1440
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    vol = rng.uniform(1, 5, n)
    return pl.DataFrame({"ts": to_ns("2022-01-01") + np.arange(n, dtype=np.int64) * NS_PER_MIN, "open": open_,
                         "high": np.maximum(open_, close) * 1.0003, "low": np.minimum(open_, close) * 0.9997,
                         "close": close, "volume": vol, "vwap": (open_ + close) / 2, "trades": np.full(n, 10),
                         "taker_buy_volume": vol * rng.uniform(0.2, 0.8, n)})


def _cfg(**over: object) -> MacroHFTConfig:
    d = {"dataset": "unused", "splits": {"train_start": "2022-01-01", "train_end": "2022-01-04", "val_start": "2022-01-04",
                                          "val_end": "2022-01-05", "test_start": "2022-01-05", "test_end": "2022-01-07"}, **TINY}
    d.update(over)
    return MacroHFTConfig.from_dict(d)


def test_training_is_deterministic_with_a_seed(tmp_path: Path) -> None:
    cfg = _cfg(sub={**TINY["sub"], "epochs": 1, "max_chunks": 4})
    prep = prepare(cfg, _synthetic())
    a = train_run(cfg, prep, tmp_path / "a", progress=False)
    b = train_run(cfg, prep, tmp_path / "b", progress=False)
    for name in ("sub_slope_0", "sub_vol_2", "hyper"):
        ta = (tmp_path / "a" / name / "model.safetensors").read_bytes()
        assert ta == (tmp_path / "b" / name / "model.safetensors").read_bytes(), name
    assert a["phase2"]["history"] == b["phase2"]["history"]
    c = train_run(_cfg(seed=7, sub={**TINY["sub"], "epochs": 1, "max_chunks": 4}), prep, tmp_path / "c", progress=False)
    assert c["phase2"]["history"] != a["phase2"]["history"]
    if importlib.util.find_spec("tensorboard"):  # the event files hold each agent's history, value for value
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        (events,) = Path(a["tensorboard"]).glob("events.out.tfevents.*")
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        hist = a["phase2"]["history"]
        got = [e.value for e in acc.Scalars("hyper/val_return_rate")]
        assert got == pytest.approx([h["val_return_rate"] for h in hist], rel=1e-6)
        assert "sub_slope=0/loss" in acc.Tags()["scalars"]


def test_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(hyper={**TINY["hyper"], "epochs": 1}, sub={**TINY["sub"], "epochs": 1})
    prep = prepare(cfg, _synthetic())
    train_run(cfg, prep, tmp_path, progress=False)
    other = dataclasses.replace(cfg, fee=0.001)  # only the fee differs: Q* targets and rewards would not match
    with pytest.raises(DataError, match="another config"):
        load_run(tmp_path, other, prep)
    subs, hyper = load_run(tmp_path, cfg, prep)  # resume path: loads, does not retrain
    assert hyper is not None and len(subs) == 6


@pytest.fixture(scope="module")
def real(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Config keys reading a few real days from a store: the staged zips of those days, ingested on first use."""
    tmp = tmp_path_factory.mktemp("mh_real")
    folder = kline_days(shared_data, tmp / "klines", {"BTCUSDT": [f"2022-01-0{d}" for d in range(1, 7)],
                                                      "ETHUSDT": [f"2023-03-{d}" for d in range(20, 27)]})
    return {"archives": str(folder), "store": str(tmp / "store"), "dataset": "mh_klines"}


def test_train_eval_end_to_end_on_real_minutes(real: dict[str, str], tmp_path: Path) -> None:
    """A few days of real BTCUSDT minutes: train both phases, roll out on the held-out days, P&L adds up."""
    cfg = _cfg(**real, symbol="BTCUSDT")
    prep = prepare(cfg)
    assert prep.splits["train"].n == 3 * 1440 and prep.splits["test"].n == 2 * 1440
    train_run(cfg, prep, tmp_path, progress=False)
    subs, hyper = load_run(tmp_path, cfg, prep)
    test = prep.splits["test"]
    for policy in ("macrohft", "uniform", "sub_vol_1", "buy_and_hold"):
        pos = policy_positions(policy, prep, "test", subs, hyper)
        assert pos.shape == (test.n,) and set(np.unique(pos)) <= {0, 1}
        pnl = env_pnl(test.close, pos, cfg.fee, cfg.size)
        env = MinuteTradingEnv(test.close, ts=test.ts, fee=cfg.fee, size=cfg.size)
        env.reset()
        total = sum(env.step(int(a))[1] for a in pos[:-1])
        assert pnl.sum() == pytest.approx(total, abs=1e-9)
    # a backtest or `rl eval` re-reads only the test days (+ warm-up) with the run's saved statistics: same inputs
    # as the full preparation (the rolling windows up to float rounding), hence the same positions
    _, part, subs2, hyper2 = load_trained(tmp_path)
    got = part.splits["test"]
    assert set(part.splits) == {"test"} and got.segments == test.segments
    np.testing.assert_array_equal(got.ts, test.ts)
    np.testing.assert_array_equal(got.close, test.close)
    for f in ("s1", "s2", "ctx"):
        np.testing.assert_allclose(getattr(got, f), getattr(test, f), rtol=0, atol=1e-5, err_msg=f)
    for policy in ("macrohft", "uniform", "sub_slope_2"):
        np.testing.assert_array_equal(policy_positions(policy, part, "test", subs2, hyper2),
                                      policy_positions(policy, prep, "test", subs, hyper), err_msg=policy)
    bh = env_pnl(test.close, np.ones(test.n, np.int64), cfg.fee, cfg.size).sum()
    assert bh == pytest.approx(cfg.size * (test.close[-1] - test.close[0]) - cfg.size * cfg.fee * test.close[0])


def test_bad_inputs_are_one_line_errors(real: dict[str, str]) -> None:
    with pytest.raises(DataError, match="'DOGEUSDT' has no bars in dataset 'mh_klines'"):
        prepare(_cfg(**real, symbol="DOGEUSDT"))
    with pytest.raises(StoreError, match="dataset 'nope' is not in the store"):  # no archives to ingest it from
        prepare(_cfg(store=real["store"], dataset="nope"))
    with pytest.raises(DataError, match="test split"):
        prepare(_cfg(), _synthetic(days=4))


def test_the_bars_dataset_is_named_or_taken_from_the_archives_folder() -> None:
    """A run folder written before ``dataset`` existed names only ``archives``: it reads the dataset that
    ``marketlab ingest ohlcv <folder>`` makes of the folder (named after it)."""
    assert _cfg(dataset="btc_minutes", archives="/d/klines").bars_dataset == "btc_minutes"
    assert _cfg(dataset="", archives="/d/binance_spot_1m_klines_2022").bars_dataset == "binance_spot_1m_klines_2022"
    with pytest.raises(SpecError, match="dataset"):
        _cfg(dataset="")


def test_halt_day_gap_is_reported_and_never_inside_an_episode(real: dict[str, str]) -> None:
    """2023-03-24: 80 missing minutes after 12:39 UTC. The validation split is cut there; no chunk crosses it."""
    cfg = _cfg(**real, symbol="ETHUSDT",
               splits={"train_start": "2023-03-20", "train_end": "2023-03-23", "val_start": "2023-03-23",
                       "val_end": "2023-03-26", "test_start": "2023-03-26", "test_end": "2023-03-27"})
    prep = prepare(cfg)
    assert prep.gaps == [{"after": "2023-03-24T12:39:00.000000000", "resume": "2023-03-24T14:00:00.000000000", "missing": 80}]
    val = prep.splits["val"]
    assert len(val.segments) == 2 and val.n == 3 * 1440 - 80
    for lo, hi in prep.decomposition["val"].chunks:
        assert np.all(np.diff(val.ts[lo:hi]) == NS_PER_MIN)
    with pytest.raises(DataError, match="gap"):
        MinuteTradingEnv(val.close, ts=val.ts)
    win = val.window(0, 600)
    assert win.n == 600 and win.segments == [(0, 600)]
