"""CUDA against the CPU: a bf16 train step per predictor, compiled forward vs eager, a seeded trainer run."""

from __future__ import annotations

import copy

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
def test_autocast_bf16_train_step_matches_cpu_float32(name: str) -> None:
    """One bf16-autocast step on CUDA against the same step in float32 on the CPU: same loss to bf16 precision,
    gradients pointing the same way (cosine > 0.99 over all parameters)."""
    torch.manual_seed(0)
    cpu = build_model(name, TINY[name]).train()
    gpu = copy.deepcopy(cpu).cuda()
    c = cpu.config
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, c.seq_size, c.num_features, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    for m in (cpu, gpu):  # dropout off, batch statistics on: the two steps see the same function
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
    loss_cpu = torch.nn.functional.cross_entropy(cpu(x), y)
    loss_cpu.backward()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss_gpu = torch.nn.functional.cross_entropy(gpu(x.cuda()).float(), y.cuda())
    loss_gpu.backward()
    assert loss_gpu.item() == pytest.approx(loss_cpu.item(), rel=3e-2)
    g_cpu = torch.cat([p.grad.reshape(-1) for p in cpu.parameters() if p.grad is not None])
    g_gpu = torch.cat([p.grad.reshape(-1).float().cpu() for p in gpu.parameters() if p.grad is not None])
    assert torch.isfinite(g_gpu).all()
    assert torch.nn.functional.cosine_similarity(g_cpu, g_gpu, dim=0).item() > 0.99


@pytest.mark.parametrize("name", ["tlob", "mlplob"])
def test_compile_matches_eager(name: str) -> None:
    torch.manual_seed(0)
    m = build_model(name, TINY[name]).cuda().eval()
    x = torch.randn(8, 32, 40, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(m)(x), m(x), atol=1e-4, rtol=1e-4)


def test_trainer_on_cuda_matches_cpu_run(tmp_path) -> None:
    """The same seeded one-epoch run on CUDA (bf16 autocast, compiled) and on the CPU (float32, eager) ends
    with the same test loss to a few percent and the same test windows."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((800, 40)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 800))
    mk = lambda lo, hi: WindowSet(x, y, *window_index([(lo, hi)], 10, 9, y.numpy()), 10)  # noqa: E731
    sets = {"train": mk(0, 500), "val": mk(500, 650), "test": mk(650, 800)}
    outs = {}
    for dev, comp in (("cuda", "on"), ("cpu", "off")):
        outs[dev] = train_predictor("binctabl", sets, tmp_path / dev, train_config=TrainConfig(
            epochs=1, progress=False, device=dev, compile=comp, seed=0))
    assert outs["cuda"]["device"].startswith("cuda") and outs["cpu"]["device"] == "cpu"
    assert outs["cuda"]["test"]["n"] == outs["cpu"]["test"]["n"] == len(sets["test"])
    assert outs["cuda"]["test"]["loss"] == pytest.approx(outs["cpu"]["test"]["loss"], rel=5e-2)
