"""CUDA: every predictor trains under bf16 autocast, compiled forward matches eager, trainer on GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.models.datasets import WindowSet, window_index
from marketlab.models.train import TrainConfig, train_predictor
from marketlab.models.zoo import build_model

pytestmark = pytest.mark.gpu

TINY = {
    "tlob": {"num_features": 40, "hidden_dim": 40, "seq_size": 32, "num_layers": 2},
    "mlplob": {"num_features": 40, "hidden_dim": 40, "seq_size": 32, "num_layers": 2},
    "deeplob": {"seq_size": 50},
    "binctabl": {},
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_autocast_bf16_train_step(name: str) -> None:
    torch.manual_seed(0)
    m = build_model(name, TINY[name]).cuda()
    c = m.config
    x = torch.randn(16, c.seq_size, c.num_features, device="cuda")
    y = torch.randint(0, 3, (16,), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(m(x).float(), y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("name", ["tlob", "mlplob"])
def test_compile_matches_eager(name: str) -> None:
    torch.manual_seed(0)
    m = build_model(name, TINY[name]).cuda().eval()
    x = torch.randn(8, 32, 40, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(m)(x), m(x), atol=1e-4, rtol=1e-4)


def test_trainer_on_cuda(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((800, 40)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 800))
    mk = lambda lo, hi: WindowSet(x, y, *window_index([(lo, hi)], 10, 9, y.numpy()), 10)  # noqa: E731
    sets = {"train": mk(0, 500), "val": mk(500, 650), "test": mk(650, 800)}
    out = train_predictor("binctabl", sets, tmp_path, train_config=TrainConfig(epochs=1, progress=False,
                                                                                device="cuda", compile="on"))
    assert out["device"].startswith("cuda") and out["test"]["n"] == len(sets["test"])
