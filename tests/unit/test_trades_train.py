"""TRADES training: seeded, resumable to the same weights, safetensors + JSON checkpoints, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from marketlab.core.errors import DataError, SpecError
from marketlab.simulators.trades.tokens import encode_day
from marketlab.simulators.trades.train import TradesConfig, load_checkpoint, train_on_day, window_targets
from tests.support.trades import synthetic_tokens

TINY = dict(window=6, depth=1, augment_dim=8, heads=2, batch_size=8, val_every=2, val_batches=1, levels=10)


@pytest.fixture(scope="module")
def day():
    return encode_day(synthetic_tokens(400, seed=3))


def _weights(d: Path, name: str = "ema") -> dict[str, torch.Tensor]:
    return load_file(str(d / f"{name}.safetensors"))


def test_same_seed_same_weights_and_resume_equals_straight_run(day, tmp_path: Path) -> None:
    straight = train_on_day(day, TradesConfig.cpu(**TINY, steps=6, seed=5), tmp_path / "a", device="cpu")
    again = train_on_day(day, TradesConfig.cpu(**TINY, steps=6, seed=5), tmp_path / "b", device="cpu")
    other = train_on_day(day, TradesConfig.cpu(**TINY, steps=6, seed=6), tmp_path / "c", device="cpu")
    train_on_day(day, TradesConfig.cpu(**TINY, steps=3, seed=5), tmp_path / "r", device="cpu")
    resumed = train_on_day(day, TradesConfig.cpu(**TINY, steps=6, seed=5), tmp_path / "r", resume=True, device="cpu")
    assert straight.step == resumed.step == 6
    for name in ("ema", "model"):
        a, b, c, r = (_weights(x.out_dir, name) for x in (straight, again, other, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert all(torch.equal(a[k], r[k]) for k in a), name
        assert not all(torch.equal(a[k], c[k]) for k in a)
    doc = json.loads((straight.out_dir / "config.json").read_text())
    assert doc["step"] == 6 and doc["config"]["window"] == 6 and "order_mean" in doc["stats"]
    assert sorted(p.name for p in straight.out_dir.iterdir()) == [
        "config.json", "ema.safetensors", "model.safetensors", "optim.safetensors"]


def test_training_reduces_the_validation_loss(day, tmp_path: Path) -> None:
    cfg = TradesConfig.cpu(**{**TINY, "val_every": 60, "val_batches": 2}, steps=60, ema_decay=0.9, lr=3e-3)
    first = train_on_day(day, TradesConfig.cpu(**{**TINY, "val_batches": 2}, steps=1), tmp_path / "one", device="cpu")
    res = train_on_day(day, cfg, tmp_path / "t", device="cpu")
    assert res.val_loss < first.val_loss


def test_checkpoint_config_mismatch_is_a_one_line_error(day, tmp_path: Path) -> None:
    train_on_day(day, TradesConfig.cpu(**TINY, steps=1), tmp_path / "k", device="cpu")
    other = TradesConfig.cpu(**{**TINY, "depth": 2}, steps=2)
    with pytest.raises(SpecError, match=r"config.json: key 'depth': checkpoint has 1, the spec asks for 2"):
        load_checkpoint(tmp_path / "k", expect=other)
    with pytest.raises(SpecError, match="key 'depth'"):
        train_on_day(day, other, tmp_path / "k", resume=True, device="cpu")
    model, stats, cfg = load_checkpoint(tmp_path / "k", expect=TradesConfig.cpu(**TINY, steps=1))
    assert cfg.depth == 1 and stats.grid == 100


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="TRADES checkpoint not found"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="not a TRADES checkpoint"):
        load_checkpoint(tmp_path)


def test_a_day_too_short_for_the_window_is_a_one_line_error(tmp_path: Path) -> None:
    short = encode_day(synthetic_tokens(20, seed=1))
    with pytest.raises(DataError, match=r"GOOG.*training split has \d+ orders, too short for window 64"):
        train_on_day(short, TradesConfig.cpu(window=64, steps=1), tmp_path, device="cpu", source="GOOG")


def test_training_windows_stay_inside_the_training_split(day) -> None:
    tr = day.splits["train"]
    t = window_targets(tr, 6)
    assert t.min() == 5 and t.max() == tr.stop - 1  # target and its 5 predecessors are all training rows


def test_config_validation() -> None:
    with pytest.raises(SpecError, match="key 'heads'"):
        TradesConfig.cpu(augment_dim=6, heads=5)
    with pytest.raises(SpecError, match="window"):
        TradesConfig.from_dict({"window": 0})
    assert TradesConfig.paper().shape().width == 128
