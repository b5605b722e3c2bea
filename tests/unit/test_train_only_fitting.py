"""Everything fitted is fitted on the training split alone.

Method: build the splits once, then change every validation and test row wildly (prices x3 with noise,
sizes x10) and build them again. Whatever was fitted -- the TLOB label threshold α, the z-score statistics,
the training windows and labels, AlphaGen's normalised training target and the hand model's weights -- must
not move. Where an outside reference exists the fitted value is also compared with it (α from the training
mids by a direct formula, z-score statistics by NumPy on the training rows).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.models.datasets import tlob_windowsets

T_ROWS, LEVELS = 3000, 10
SPLITS = (0.8, 0.9)


def _rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Book features ``(n, 4L + 6)`` (prices ~100, sizes ~ hundreds, 6 message columns), the mid, day, ts."""
    rng = np.random.default_rng(seed)
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 2e-4, T_ROWS)))
    f = np.empty((T_ROWS, 4 * LEVELS + 6))
    for i in range(LEVELS):
        f[:, 4 * i] = mid + 0.01 * (i + 1)
        f[:, 4 * i + 1] = rng.integers(100, 900, T_ROWS)
        f[:, 4 * i + 2] = mid - 0.01 * (i + 1)
        f[:, 4 * i + 3] = rng.integers(100, 900, T_ROWS)
    f[:, 40] = rng.exponential(0.5, T_ROWS)  # inter-event time
    f[:, 41] = rng.integers(0, 3, T_ROWS)  # event type (a category, never z-scored)
    f[:, 42:] = rng.normal(size=(T_ROWS, 4)) * [100, 1, 1, 10] + [300, 100, 0, 5]
    return f, mid, np.zeros(T_ROWS, dtype=np.int64), np.arange(T_ROWS, dtype=np.int64)


def _perturb_after(f: np.ndarray, mid: np.ndarray, cut: int, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f2, mid2 = f.copy(), mid.copy()
    scale = 3.0 * np.exp(np.cumsum(rng.normal(0, 5e-3, len(mid) - cut)))
    mid2[cut:] = mid[cut:] * scale
    f2[cut:, 0:40:2] = f[cut:, 0:40:2] * scale[:, None]
    f2[cut:, 1:40:2] = f[cut:, 1:40:2] * 10
    f2[cut:, 42:] = f[cut:, 42:] * 7 + 50
    return f2, mid2


def _sets(f: np.ndarray, mid: np.ndarray, day: np.ndarray, ts: np.ndarray) -> dict:
    return tlob_windowsets(f, mid, day, ts, "SYM", horizon=10, seq_size=16, splits=SPLITS, levels=LEVELS)


def test_tlob_alpha_normalisation_and_train_windows_ignore_val_and_test_rows() -> None:
    f, mid, day, ts = _rows()
    c1 = int(T_ROWS * SPLITS[0])
    a = _sets(f, mid, day, ts)
    f2, mid2 = _perturb_after(f, mid, c1)
    b = _sets(f2, mid2, day, ts)
    # α: same number, and the direct formula on the training mids (λ = 10, h = 10): mean|Δ| / 2
    w = np.array([mid[t : t + 10].mean() for t in range(c1 - 9)])
    delta = (w[10:] - w[:-10]) / w[:-10]
    alpha_ref = np.abs(delta).mean() / 2
    for k in ("train", "val", "test"):
        assert a[k].meta["alpha"] == pytest.approx(alpha_ref, rel=1e-12)
        assert b[k].meta["alpha"] == a[k].meta["alpha"]
    # training windows, labels and normalised features: bit for bit the same
    np.testing.assert_array_equal(a["train"].starts, b["train"].starts)
    np.testing.assert_array_equal(a["train"].label_index, b["train"].label_index)
    assert torch.equal(a["train"].labels, b["train"].labels)
    assert torch.equal(a["train"].features, b["train"].features)
    # the statistics the test split is scaled with are the training rows' (pooled prices, pooled sizes)
    px, sz = f[:c1, 0:40:2], f[:c1, 1:40:2]
    test_rows = f2[int(T_ROWS * SPLITS[1]) :]
    want_px = (test_rows[:, 0:40:2] - px.mean()) / px.std()
    want_sz = (test_rows[:, 1:40:2] - sz.mean()) / sz.std()
    want_msg = (test_rows[:, 42:] - f[:c1, 42:].mean(0)) / f[:c1, 42:].std(0)
    got = b["test"].features.numpy()
    np.testing.assert_allclose(got[:, 0:40:2], want_px, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(got[:, 1:40:2], want_sz, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(got[:, 42:46], want_msg, rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(got[:, 41], test_rows[:, 41])  # the event type stays a category code
    # and the perturbation really moved the test split (else the test above proves nothing)
    assert not torch.equal(a["test"].features, b["test"].features)


@pytest.fixture(scope="module")
def mining_pair():
    """MiningData and a hand-model run on a synthetic panel, and again with every row after training changed."""
    import polars as pl

    from marketlab.features.panel_tensor import panel_to_tensors, synthetic_panel

    df = synthetic_panel(220, 20, seed=5)
    train_end = np.datetime64("2015-06-30")
    later = pl.col("date") > pl.lit(train_end)
    rng = np.random.default_rng(1)
    noise = pl.Series(rng.uniform(0.5, 3.0, df.height))
    df2 = df.with_columns(
        *[pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")],
        pl.when(later).then(pl.col("volume") * 5).otherwise(pl.col("volume")).alias("volume"),
    )
    return panel_to_tensors(df, device="cpu"), panel_to_tensors(df2, device="cpu")


def _mine_spec(tmp_path, **miner):
    from marketlab.agents.alphagen.mine import DataSpec, MinerSpec, MineSpec, OutputSpec, SplitSpec

    return MineSpec(
        data=DataSpec(dataset="synth", universe="all"),
        split=SplitSpec(train="2015-01-01:2015-06-30", valid="2015-07-01:2015-08-31", test="2015-09-01:2015-12-31"),
        miner=MinerSpec(method="hand", capacity=5, max_len=10, max_lookback=40, hand_model="linear", **miner),
        output=OutputSpec(dir=str(tmp_path), signals_dataset=None),
        target="Ref(close, -5) / close - 1",
    )  # fmt: skip


def test_alphagen_training_target_and_values_ignore_later_rows(mining_pair, tmp_path) -> None:
    from marketlab.agents.alphagen.mine import MiningData
    from marketlab.features.expr import parse

    p1, p2 = mining_pair
    a, b = MiningData(_mine_spec(tmp_path), panel=p1), MiningData(_mine_spec(tmp_path), panel=p2)
    tr = a.rows["train"]
    assert tr == b.rows["train"] and tr.stop < p1.features["close"].shape[0]
    assert not torch.equal(a.target[tr.stop :].nan_to_num(), b.target[tr.stop :].nan_to_num())
    # the last 5 training days' targets read validation closes: they are purged from the training mask ...
    assert not a.masks["train"][-5:].any() and a.masks["train"][:-5].any()
    # ... so the normalised training target (per-day z-scores over the mask) is unchanged bit for bit
    assert torch.equal(a.train_target_z, b.train_target_z)
    e = parse("Corr(close, Log(volume + 1), 20)")
    assert torch.equal(a.train_values(e).nan_to_num(), b.train_values(e).nan_to_num())


def test_hand_model_weights_fit_on_training_rows_only(mining_pair, tmp_path) -> None:
    from marketlab.agents.alphagen.hand import ALPHA158_SUBSET
    from marketlab.agents.alphagen.mine import MiningData, mine
    from marketlab.features.expr import parse

    p1, p2 = mining_pair
    ra = mine(_mine_spec(tmp_path / "a"), panel=p1, progress=False, write=False)
    rb = mine(_mine_spec(tmp_path / "b"), panel=p2, progress=False, write=False)
    wa = np.array([x["weight"] for x in ra["pool"]["alphas"]])
    wb = np.array([x["weight"] for x in rb["pool"]["alphas"]])
    np.testing.assert_array_equal(wa, wb)
    assert ra["metrics"]["train"] == rb["metrics"]["train"]
    assert ra["metrics"]["test"]["ic"] != rb["metrics"]["test"]["ic"]
    # outside reference: least squares of the training target z-scores on the per-day z-scores of the factors
    md = MiningData(_mine_spec(tmp_path), panel=p1)
    tr, m = md.rows["train"], md.masks["train"].numpy()
    cols = []
    for f in ALPHA158_SUBSET.values():
        v = md.full(parse(f))[tr].numpy().astype(np.float64)
        z = np.zeros_like(v)
        for t in range(v.shape[0]):
            ok = m[t] & np.isfinite(v[t])
            if ok.sum() and v[t, ok].std() > 1e-12:
                z[t, ok] = (v[t, ok] - v[t, ok].mean()) / v[t, ok].std()
        cols.append(z[m])
    y = md.train_target_z.numpy().astype(np.float64)[m]
    w_ref = np.linalg.lstsq(np.stack(cols, 1), y, rcond=None)[0]
    np.testing.assert_allclose(wa, w_ref, rtol=2e-3, atol=2e-3)
