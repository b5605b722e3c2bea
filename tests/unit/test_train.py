"""The trainer: CPU determinism, interruption + resume equals an uninterrupted run, early stopping,
LR halving, EMA, learning on a separable toy task; metrics against known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from marketlab.models.datasets import WindowSet, window_index
from marketlab.models.metrics import accuracy, classification_report, confusion_matrix, macro_f1, mcc
from marketlab.models.train import TrainConfig, Trainer, train_predictor

T, F = 10, 40


def _sets(n: int = 900, signal: float = 2.0, seed: int = 0) -> dict[str, WindowSet]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, F)).astype(np.float32)
    y = rng.integers(0, 3, n)
    x[:, :5] += signal * (y[:, None] - 1)  # the label is visible in the window's last row
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    cut1, cut2 = int(0.6 * n), int(0.8 * n)
    out = {}
    for k, (lo, hi) in {"train": (0, cut1), "val": (cut1, cut2), "test": (cut2, n)}.items():
        s, li = window_index([(lo, hi)], T, T - 1, y)
        out[k] = WindowSet(xt, yt, s, li, T)
    return out


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=32, lr=1e-3, progress=False, seed=3, ema_decay=0.9, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "best" / "model.safetensors"))


def test_same_seed_same_weights_on_cpu(tmp_path) -> None:
    sets = _sets()
    a = train_predictor("binctabl", sets, tmp_path / "a", train_config=_cfg())
    b = train_predictor("binctabl", sets, tmp_path / "b", train_config=_cfg())
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["test"]["confusion"] == b["test"]["confusion"]
    c = train_predictor("binctabl", sets, tmp_path / "c", train_config=_cfg(seed=4))
    wc = _weights(tmp_path / "c")
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert c["parameters"] == 11_446


class Interrupt(RuntimeError):
    pass


@pytest.mark.parametrize("name", ["binctabl", "deeplob"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, name: str) -> None:
    sets = _sets(600) if name == "binctabl" else None
    if name == "deeplob":  # DeepLOB has BatchNorm buffers and an LSTM: a stricter resume check
        rng = np.random.default_rng(1)
        x = torch.from_numpy(rng.standard_normal((300, 40)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 3, 300))
        mk = lambda lo, hi: WindowSet(x, y, *window_index([(lo, hi)], 20, 19, y.numpy()), 20)  # noqa: E731
        sets = {"train": mk(0, 200), "val": mk(200, 250), "test": mk(250, 300)}
    cfg = _cfg(checkpoint_every=2, epochs=2, patience=5)
    ref = train_predictor(name, sets, tmp_path / "ref", train_config=cfg)

    calls = {"n": 0}

    def kill_after_5(trainer, epoch, batch, loss) -> None:
        calls["n"] += 1
        if epoch == 1 and batch == 2:  # mid-epoch of the second epoch, one batch after a checkpoint
            raise Interrupt("killed")

    with pytest.raises(Interrupt):
        train_predictor(name, sets, tmp_path / "run", train_config=cfg, callbacks=[kill_after_5])
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["epoch"] == 1 and state["batch"] == 2  # the checkpoint written mid-epoch
    res = train_predictor(name, sets, tmp_path / "run", train_config=cfg, resume=True)
    assert res["epochs_run"] == ref["epochs_run"] == 2
    wr, wx = _weights(tmp_path / "ref"), _weights(tmp_path / "run")
    assert set(wr) == set(wx)
    for k in wr:
        assert torch.equal(wr[k], wx[k]), k
    assert res["history"] == ref["history"]


def test_learns_separable_task_and_ema_differs_from_raw(tmp_path) -> None:
    sets = _sets(1500)
    trainer_out = train_predictor("binctabl", sets, tmp_path, train_config=_cfg(epochs=4))
    hist = trainer_out["history"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert trainer_out["test"]["macro_f1"] > 0.6
    st = load_file(str(tmp_path / "state.safetensors"))
    ema = {k[4:]: v for k, v in st.items() if k.startswith("ema.")}
    raw = {k[6:]: v for k, v in st.items() if k.startswith("model.")}
    assert ema.keys() == raw.keys() and any(not torch.equal(ema[k], raw[k]) for k in ema)


def test_early_stopping_and_lr_halving(tmp_path) -> None:
    from marketlab.models.zoo import build_model

    sets = _sets(600, signal=0.0)  # nothing to learn: validation loss stalls
    tr = Trainer(build_model("binctabl"), "binctabl", _cfg(epochs=30, patience=2, lr_patience=0, lr=1e-2),
                 tmp_path)
    state = tr.fit(sets["train"], sets["val"])
    assert state["stopped_early"] and state["epoch"] < 30
    lrs = [h["lr"] for h in state["history"]]
    assert min(lrs) < lrs[0]  # halved after a non-improving epoch
    assert any(b == pytest.approx(a / 2) for a, b in zip(lrs, lrs[1:], strict=False))


def test_max_train_windows_subsamples(tmp_path) -> None:
    out = train_predictor("binctabl", _sets(), tmp_path, train_config=_cfg(epochs=1, max_train_windows=64))
    assert out["train_windows"] == 64


# ---- metrics ----------------------------------------------------------------------------------------

def test_metrics_known_answers() -> None:
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(t, p)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # F1: class0 2*1/(2+2)=0.5, class1 2*2/(3+2)=0.8, class2 2*1/(1+2)=2/3
    assert macro_f1(t, p) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert accuracy(t, p) == pytest.approx(4 / 6)
    assert mcc(t, t) == pytest.approx(1.0)
    assert mcc(t, np.zeros_like(t)) == 0.0
    rep = classification_report(t, p)
    assert rep["n"] == 6 and rep["confusion"] == cm.tolist()


def test_metrics_agree_with_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    p[:200] = t[:200]
    assert macro_f1(t, p) == pytest.approx(sk.f1_score(t, p, average="macro"))
    assert mcc(t, p) == pytest.approx(sk.matthews_corrcoef(t, p))


def _scalars(tb) -> dict[str, list[float]]:
    """Every scalar series in the TensorBoard event files under ``tb`` (read by tensorboard itself)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for f in sorted(tb.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_tensorboard_logs_the_history(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    res = train_predictor("binctabl", _sets(), tmp_path, train_config=_cfg(epochs=2))
    s = _scalars(tmp_path / "tb")
    # per epoch: what the run's own history says, value for value
    assert s["epoch/val_loss"] == pytest.approx([h["val_loss"] for h in res["history"]], rel=1e-6)
    assert s["epoch/train_loss"] == pytest.approx([h["train_loss"] for h in res["history"]], rel=1e-6)
    assert len(s["train/loss"]) >= 2
    off = train_predictor("binctabl", _sets(), tmp_path / "off", train_config=_cfg(epochs=1, tensorboard=False))
    assert "tensorboard" not in off and not (tmp_path / "off" / "tb").exists()
