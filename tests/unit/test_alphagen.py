"""Miner: pool rules, token env, tiny MaskablePPO run (deterministic), GP, hand baseline, mine + CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from marketlab.agents.alphagen.pool import AlphaPool, fit_weights
from marketlab.features.expr import Evaluator, Vocabulary, parse
from marketlab.features.ic import normalize_by_day
from marketlab.features.panel_tensor import panel_to_tensors, synthetic_panel


@pytest.fixture(scope="module")
def panel():
    return panel_to_tensors(synthetic_panel(220, 30, seed=5), device="cpu")


def _pool(panel, capacity=3, mask=None):
    ev = Evaluator(panel.features)
    y = ev("Ref(close, -5) / close - 1", allow_future=True)
    # a target with planted signal so that alphas have ICs
    y = y + 0.02 * torch.nan_to_num(normalize_by_day(ev("Mean(close, 5) / close")))
    return ev, AlphaPool(capacity=capacity, target_z=normalize_by_day(y, mask), mask=mask), y


def test_fit_weights_lasso_shrinks_and_matches_lstsq_without_l1():
    M = np.array([[1.0, 0.3], [0.3, 1.0]])
    ic = np.array([0.05, 0.02])
    np.testing.assert_allclose(fit_weights(M, ic, 0.0), np.linalg.solve(M, ic), atol=1e-8)
    w = fit_weights(M, ic, 0.05)
    assert w[1] == 0.0 and 0 < w[0] < 0.05


def test_fit_weights_meets_the_lasso_optimality_conditions_at_k_100():
    """Known answers from outside the solver: l1 = 0 gives numpy's linear solve; l1 > 0 satisfies the KKT
    conditions of ``wᵀMw - 2wᵀb + l1|w|₁`` (gradient ``2(Mw - b)`` = ``-l1·sign(w)`` on the support, within
    ``±l1`` off it)."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(400, 100))
    M = A.T @ A / 400 + 0.05 * np.eye(100)
    b = rng.normal(scale=0.05, size=100)
    np.testing.assert_allclose(fit_weights(M, b, 0.0, sweeps=5000, tol=1e-13), np.linalg.solve(M, b), atol=1e-7)
    w = fit_weights(M, b, 0.01, sweeps=5000, tol=1e-13)
    grad = 2 * (M @ w - b)
    on = w != 0
    assert 0 < on.sum() < 100
    np.testing.assert_allclose(grad[on], -0.01 * np.sign(w[on]), atol=1e-7)
    assert np.all(np.abs(grad[~on]) <= 0.01 + 1e-7)


def test_pool_rejects_two_sided_duplicates_and_respects_capacity(panel):
    ev, pool, _ = _pool(panel, capacity=2)
    r1 = pool.try_add(parse("Mean(close, 5) / close"), ev("Mean(close, 5) / close"))
    assert r1.accepted and r1.reward == pytest.approx(pool.objective) and 0 < pool.objective <= 1
    neg = parse("Mul(Div(Mean(close, 5), close), -1)")
    r2 = pool.try_add(neg, ev(neg))
    assert not r2.accepted and "duplicate" in r2.reason and r2.reward == 0.0
    for f in ["Std(close, 10) / close", "Corr(close, volume, 10)", "Delta(close, 5) / close", "Log(volume)"]:
        pool.try_add(parse(f), ev(f))
        assert pool.size <= 2 and pool.objective <= 1.0
    again = pool.try_add(parse("Mean(close, 5) / close"), ev("Mean(close, 5) / close"))
    assert again.reward == 0.0


def test_env_episode_ends_with_valid_formula(panel):
    from marketlab.agents.alphagen.env import AlphaTokenEnv

    seen = []
    env = AlphaTokenEnv(Vocabulary(), lambda e: seen.append(e) or 0.5, max_len=10)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    total, done = 0.0, False
    while not done:
        a = int(rng.choice(np.flatnonzero(env.action_masks())))
        obs, r, done, trunc, info = env.step(a)
        total += r
    assert total == 0.5 and parse(info["formula"]) == seen[0]
    assert env.observation_space.contains(obs)


def _spec(tmp_path: Path, method: str, **miner):
    from marketlab.agents.alphagen.mine import DataSpec, MinerSpec, MineSpec, OutputSpec, SplitSpec

    return MineSpec(
        data=DataSpec(dataset="synth", universe="all"),
        split=SplitSpec(train="2015-01-01:2015-06-30", valid="2015-07-01:2015-08-31", test="2015-09-01:2015-12-31"),
        miner=MinerSpec(method=method, capacity=5, max_len=10, max_lookback=40, n_steps=64, batch_size=32,
                        n_epochs=2, d_model=16, n_layers=1, checkpoint_every=64, **miner),
        output=OutputSpec(dir=str(tmp_path / method), signals_dataset=None),
        target="Ref(close, -5) / close - 1",
    )  # fmt: skip


def test_tiny_ppo_run_is_deterministic_and_checkpoints(panel, tmp_path):
    from marketlab.agents.alphagen.mine import mine

    a = mine(_spec(tmp_path / "a", "alphagen", steps=192, seed=3), panel=panel, progress=False)
    b = mine(_spec(tmp_path / "b", "alphagen", steps=192, seed=3), panel=panel, progress=False)
    fa = [x["formula"] for x in a["pool"]["alphas"]]
    assert fa == [x["formula"] for x in b["pool"]["alphas"]] and len(fa) >= 1
    assert set(a["metrics"]) == {"train", "valid", "test"}
    out = tmp_path / "a" / "alphagen"
    saved = json.loads((out / "pool.json").read_text())
    assert saved["pool"]["alphas"][0]["formula"] == fa[0]
    st = json.loads((out / "checkpoint" / "state.json").read_text())
    assert st["num_timesteps"] == 192 and (out / "checkpoint" / "policy.safetensors").is_file()
    # resume: continues from step 192 to 256 with the saved pool restored
    c = mine(_spec(tmp_path / "a", "alphagen", steps=256, seed=3), panel=panel, progress=False, resume=True)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["num_timesteps"] == 256
    assert c["pool"]["objective_train_ic"] >= a["pool"]["objective_train_ic"] - 1e-9


@pytest.mark.parametrize("n_envs", [1, 3])
def test_resume_equals_uninterrupted_run(panel, tmp_path, n_envs):
    """Stopped after two rollouts and resumed, the miner ends with the same pool (formulas, weights, objective),
    the same policy weights and the same optimizer state as a run that never stopped."""
    from safetensors.torch import load_file

    from marketlab.agents.alphagen.mine import mine

    n = 64 * n_envs  # one rollout
    whole = mine(_spec(tmp_path / "whole", "alphagen", steps=4 * n, seed=7, n_envs=n_envs), panel=panel, progress=False)
    mine(_spec(tmp_path / "split", "alphagen", steps=2 * n, seed=7, n_envs=n_envs), panel=panel, progress=False)
    resumed = mine(_spec(tmp_path / "split", "alphagen", steps=4 * n, seed=7, n_envs=n_envs), panel=panel, progress=False,
                   resume=True)  # fmt: skip
    assert resumed["pool"] == whole["pool"] and resumed["pool"]["n_tried"] > 0
    ck = [tmp_path / run / "alphagen" / "checkpoint" for run in ("whole", "split")]
    assert (ck[0] / "pool.json").read_text() == (ck[1] / "pool.json").read_text()  # incl. the formulas already tried
    for name in ("policy.safetensors", "optimizer.safetensors"):
        a = load_file(str(tmp_path / "whole" / "alphagen" / "checkpoint" / name))
        b = load_file(str(tmp_path / "split" / "alphagen" / "checkpoint" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_config(panel, tmp_path):
    from marketlab.agents.alphagen.mine import mine
    from marketlab.core.errors import SpecError

    mine(_spec(tmp_path / "r", "alphagen", steps=64, seed=1), panel=panel, progress=False)
    with pytest.raises(SpecError, match="miner.l1"):
        mine(_spec(tmp_path / "r", "alphagen", steps=128, seed=1, l1=0.02), panel=panel, progress=False, resume=True)
    # a larger step budget is a deliberate extension, not a different run
    assert mine(_spec(tmp_path / "r", "alphagen", steps=128, seed=1), panel=panel, progress=False, resume=True)["pool"]


@pytest.mark.parametrize("masked", [False, True])
def test_pool_cached_statistics_equal_direct_recomputation(panel, masked):
    """The batched member products and the cached objective equal a direct recomputation with day_inner, after
    adds that pruned an older member (the cached matrix must follow the survivors, not the first k rows; a
    freed buffer row must be reused without overwriting a survivor). Masked: the pool keeps only the stock-days
    that count (a seeded ~half of them, plus a day where none counts), which must not change any product."""
    from marketlab.features.ic import day_inner, pool_ic_from_cache

    mask = None
    if masked:
        mask = torch.from_numpy(np.random.default_rng(3).random(tuple(panel.features["close"].shape)) < 0.5)
        mask[40] = False
    ev, pool, y = _pool(panel, capacity=3, mask=mask)
    pruned_at = set()  # member positions (0 = oldest) that a later add pruned
    for f in [
        "Mean(close, 5) / close",
        "Std(close, 10) / close",
        "Corr(close, volume, 10)",
        "Delta(close, 5) / close",
        "Log(volume)",
        "Mean(volume, 20) / volume",
        "Max(high, 10) / close",
        "Min(low, 10) / close",
        "Std(volume, 5) / Mean(volume, 5)",
        "Corr(high, low, 20)",
        "Delta(volume, 3) / volume",
        "Mean(high, 3) / Mean(low, 3)",
        "Ref(close, 3) / close",
        "Sum(volume, 10) / Sum(volume, 30)",
    ]:
        before = [e.key for e in pool.exprs]
        pool.try_add(parse(f), ev(f))
        after = {e.key for e in pool.exprs}
        pruned_at |= {i for i, key in enumerate(before) if key not in after and len(before) == 3}
        # the members' own values, recomputed from their formulas (not read back from the pool's buffer)
        own = [pool.normalise(ev(str(e))) for e in pool.exprs]
        for a, b in zip(pool.values, own, strict=True):
            torch.testing.assert_close(a, b)
    assert pool.size == 3 and pruned_at - {2}, pruned_at  # a member other than the newest was pruned
    n = (mask if masked else torch.ones_like(pool.target_z, dtype=torch.bool)).sum(1)
    direct = np.array([[day_inner(a, b, n) for b in own] for a in own])
    np.testing.assert_allclose(pool.mutual, direct, rtol=1e-5)
    z = pool.normalise(ev("Mean(close, 10) / close"))
    np.testing.assert_allclose(pool._mutual_with(z), [day_inner(z, v, n) for v in own], rtol=1e-5)
    raw = [day_inner(v, pool.target_z, n) for v in own]
    assert pool.objective == pytest.approx(pool_ic_from_cache(pool.weights, np.array(raw), direct, pool.target_sq), rel=1e-6)


def test_gp_and_hand_baselines(panel, tmp_path):
    from marketlab.agents.alphagen.mine import mine

    g = mine(_spec(tmp_path, "gp", gp_population=16, gp_generations=2), panel=panel, progress=False)
    assert 1 <= len(g["pool"]["alphas"]) <= 5
    for a in g["pool"]["alphas"]:
        e = parse(a["formula"])
        assert e.size <= 9 and e.lookback <= 40
    # The synthetic panel is a random walk: no factor predicts the 5-day return. Out of sample every IC is noise
    # (a 40-day mean of 30-stock daily ICs, days overlapping by the 5-day target: sd about 0.06), so |IC| < 0.2.
    # In sample the models fit noise: least squares on k = 26 factors over n ~ 3,300 stock-days reaches an
    # R^2 ~ k/n, a correlation ~ sqrt(k/n) ~ 0.09; boosted trees (200 rounds) memorise far more.
    for kind, lo, hi in (("linear", 0.05, 0.2), ("gbdt", 0.4, 0.9)):
        h = mine(_spec(tmp_path, "hand", hand_model=kind), panel=panel, progress=False)
        met = h["metrics"]
        assert lo < met["train"]["ic"] < hi, (kind, met["train"])
        assert abs(met["valid"]["ic"]) < 0.2 and abs(met["test"]["ic"]) < 0.2, (kind, met)
        assert met["train"]["days"] > 100 and met["test"]["days"] > 40


def test_mine_writes_signals_to_store(tmp_store, tmp_path):
    import dataclasses

    from marketlab.agents.alphagen.mine import OutputSpec, mine
    from marketlab.store import IngestBatch, Instrument

    df = synthetic_panel(220, 8, seed=1)
    tmp_store.write(IngestBatch("synth", {"panel": df}, [Instrument(s, 0.01, 1.0) for s in df["symbol"].unique()]))
    spec = dataclasses.replace(_spec(tmp_path, "hand"), output=OutputSpec(dir=str(tmp_path / "h"), signals_dataset="synth_alpha"))
    res = mine(spec, store=tmp_store, progress=False)
    sig = tmp_store.scan_signals("synth_alpha").collect()
    assert set(sig.columns) >= {"date", "symbol", "value"} and sig.height == res["signals"]["rows"] > 0


def test_cli_bad_input_one_line(tmp_path):
    from marketlab.cli.main import app
    from marketlab.store import Store

    Store(tmp_path)  # an (empty) store: reading commands refuse a folder that is not one
    r = CliRunner().invoke(app, ["alpha", "eval", "Corr(close,", "--data", "x", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "cannot parse" in r.output and r.output.strip().count("\n") == 0
    r = CliRunner().invoke(app, ["alpha", "eval", "Mean(foo, 5)", "--data", "x", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "unknown feature" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndataset = "x"\n[split]\ntrain = "2015:2016"\n[miner]\nmethod = "dqn"\n')
    r = CliRunner().invoke(app, ["mine", str(bad)])
    assert r.exit_code == 2 and "miner.method" in r.output
    bad.write_text('[data]\ndataset = "x"\nbogus = 1\n[split]\ntrain = "a:b"\n')
    r = CliRunner().invoke(app, ["mine", str(bad)])
    assert r.exit_code == 2 and "data.bogus" in r.output


def test_cli_alpha_eval_json(tmp_store):
    from marketlab.cli.main import app
    from marketlab.store import IngestBatch, Instrument

    df = synthetic_panel(120, 10, seed=2)
    tmp_store.write(IngestBatch("synth", {"panel": df}, [Instrument(s, 0.01, 1.0) for s in df["symbol"].unique()]))
    args = ["alpha", "eval", "Corr(close, volume, 20)", "--data", "synth", "--store", str(tmp_store.path), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"ic", "rank_ic", "icir", "coverage"} <= set(out) and 0 < out["coverage"] <= 1
    r = CliRunner().invoke(app, args[:-1] + ["--period", "2015-03-02:", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["period"].startswith("2015-03-02")
    r = CliRunner().invoke(app, args[:-1] + ["--period", "2030-01-01:2030-02-01"])
    assert r.exit_code == 2 and "holds no days" in r.output


def test_mining_logs_the_pool_to_tensorboard(panel, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from marketlab.agents.alphagen.mine import mine

    started = []
    res = mine(_spec(tmp_path, "alphagen", steps=128, seed=2), panel=panel, progress=False, on_start=started.append)
    assert started == [{"run": str(tmp_path / "alphagen"), "tensorboard": res["tensorboard"]}]
    (events,) = Path(res["tensorboard"]).rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    ic = [e.value for e in acc.Scalars("pool/train_ic")]
    assert len(ic) == 2 and ic[-1] == pytest.approx(res["pool"]["objective_train_ic"], rel=1e-6)
    assert "train/loss" in acc.Tags()["scalars"]  # SB3's own scalars land beside the pool's


def _poisoned_after_training(panel, end: str):
    """``panel`` with every feature value after ``end`` replaced by seeded noise (and the traded mask shuffled)."""
    import dataclasses

    cut = panel.rows(None, end).stop
    rng = np.random.default_rng(11)
    feats = {}
    for k, v in panel.features.items():
        w = v.clone()
        w[cut:] = torch.from_numpy(rng.lognormal(3.0, 1.0, size=tuple(w[cut:].shape)).astype(np.float32))
        feats[k] = w
    traded = panel.traded.clone()
    traded[cut:] = torch.from_numpy(rng.random(tuple(traded[cut:].shape)) < 0.5)
    return dataclasses.replace(panel, features=feats, traded=traded), cut


@pytest.mark.parametrize(
    "method, extra", [("gp", {"gp_population": 16, "gp_generations": 2}), ("gplearn", {"gp_population": 16, "gp_generations": 2})]
)
def test_gp_and_gplearn_fit_on_training_rows_only(panel, tmp_path, method, extra):
    """Both GPs see only the training split: changing every value after it leaves the mined pool and its
    training IC unchanged (valid/test metrics move, so the poison did reach the panel)."""
    from marketlab.agents.alphagen.mine import mine

    spec = _spec(tmp_path, method, **extra)
    bad, cut = _poisoned_after_training(panel, spec.split.train.split(":")[1])
    assert 0 < cut < panel.shape[0]
    a = mine(spec, panel=panel, progress=False)
    b = mine(spec, panel=bad, progress=False)
    assert [x["formula"] for x in a["pool"]["alphas"]] == [x["formula"] for x in b["pool"]["alphas"]]
    assert [x["weight"] for x in a["pool"]["alphas"]] == [x["weight"] for x in b["pool"]["alphas"]]
    assert a["metrics"]["train"] == b["metrics"]["train"]
    assert a["metrics"]["test"]["ic"] != b["metrics"]["test"]["ic"]


def test_gplearn_fitness_is_our_gp_fitness_on_the_same_training_rows(panel, tmp_path):
    """The same split for both GPs, program by program: gplearn's fitness of every program it evaluated equals
    our GP's fitness (|train IC|, ``train_ic``: training rows, purged target) of the same formula. (That
    nothing after the split reaches either is ``test_gp_and_gplearn_fit_on_training_rows_only``.)"""
    from marketlab.agents.alphagen.gp import legal
    from marketlab.agents.alphagen.gplearn_gp import function_set, run_gplearn, terminals_of, to_expr
    from marketlab.agents.alphagen.mine import MiningData, _pool, train_ic, vocabulary

    spec = _spec(tmp_path, "gplearn", gp_population=16, gp_generations=2)
    m = spec.miner
    md = MiningData(spec, panel=panel)
    pool = _pool(md, m)
    seen: list = []
    run_gplearn(md, m, pool, vocabulary(m), on_generation=lambda g, ranked: seen.extend(ranked))
    _, _, terminals = terminals_of(vocabulary(m))
    _, meta = function_set(vocabulary(m), (md.rows["train"].stop, panel.shape[1]))
    checked = 0
    for p in seen:
        e = to_expr(p.program, terminals, meta)
        if not legal(e, 10**6, md.rows["train"].stop - 1):  # any length; grammar rules our evaluator relies on
            continue
        ours = train_ic(md, pool, e)
        if np.isfinite(ours) and p.raw_fitness_ > 0:
            assert p.raw_fitness_ == pytest.approx(abs(ours), rel=1e-4, abs=1e-7), str(e)
            checked += 1
    assert checked >= 10


@pytest.mark.slow  # ~20 s of CPU: 15,000 training rows (LightGBM's qlib settings need them)
@pytest.mark.parametrize("kind", ["lightgbm", "mlp"])
def test_nonlinear_hand_models_recover_a_planted_signal_out_of_sample(kind):
    """target = z0 * z1 (an interaction no linear model sees) + noise: the fitted model ranks held-out
    stock-days by it (correlation with the noiseless signal far above the linear fit's ~0). 20,000 stock-days:
    qlib's LightGBM settings (L1 205, L2 581) make no split at all on a few thousand rows."""
    from marketlab.agents.alphagen.hand import HandModel

    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(200, 100, generator=g) for _ in range(4)]
    signal = zs[0] * zs[1]
    y = signal + 0.5 * torch.randn(200, 100, generator=g)
    mask = torch.zeros(200, 100, dtype=torch.bool)
    mask[:150] = True  # fit on the first 150 days only
    model = HandModel(kind, seed=0).fit(zs, y, mask)
    pred = model.predict(zs)
    held = ~mask
    r = np.corrcoef(pred[held].numpy(), signal[held].numpy())[0, 1]
    lin = HandModel("linear").fit(zs, y, mask).predict(zs)
    r_lin = np.corrcoef(lin[held].numpy(), signal[held].numpy())[0, 1]
    assert r > 0.5 and abs(r_lin) < 0.15, (r, r_lin)
    again = HandModel(kind, seed=0).fit(zs, y, mask).predict(zs)
    torch.testing.assert_close(again, pred)  # seeded


def test_resume_accepts_a_setting_added_later_only_at_its_default(tmp_path):
    """A checkpoint written before a [miner] setting existed resumes while the spec keeps that setting's
    default, and is refused (naming the key) when the spec changes it."""
    import dataclasses

    from marketlab.agents.alphagen.mine import _check_resume_config, _resume_config
    from marketlab.core.errors import SpecError

    spec = _spec(tmp_path, "alphagen")
    old = _resume_config(spec)
    del old["miner.gplearn_seconds"]  # as written by the code before the gplearn baseline
    path = tmp_path / "miner.json"
    path.write_text(json.dumps(old))
    _check_resume_config(path, spec)
    changed = dataclasses.replace(spec, miner=dataclasses.replace(spec.miner, gplearn_seconds=5.0))
    with pytest.raises(SpecError, match="miner.gplearn_seconds"):
        _check_resume_config(path, changed)
    with pytest.raises(SpecError, match="miner.seed"):
        _check_resume_config(path, dataclasses.replace(spec, miner=dataclasses.replace(spec.miner, seed=9)))
