"""CUDA parity: the torch kernels on the GPU agree with the numba kernels on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.features.expr import Evaluator
from marketlab.features.ic import ic_summary

pytestmark = pytest.mark.gpu


def test_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    close = (20 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 50)), 0))).astype(np.float32)
    close[rng.random(close.shape) < 0.02] = np.nan
    vol = rng.lognormal(14, 1, close.shape).astype(np.float32)
    feats = {k: torch.from_numpy(close) for k in ("open", "high", "low", "close", "vwap")}
    feats["volume"] = torch.from_numpy(vol)
    cpu = Evaluator(feats, device="cpu")
    gpu = Evaluator(feats, device="cuda")
    for f in ["Corr(close, volume, 20)", "Med(close, 10)", "CSRank(Std(close, 20))", "WMA(close, 10)", "Max(close, 5)"]:
        np.testing.assert_allclose(gpu(f).cpu().numpy(), cpu(f).numpy(), rtol=1e-3, atol=1e-4, equal_nan=True, err_msg=f)
    y = cpu("Ref(close, -5) / close - 1", allow_future=True)
    a = ic_summary(cpu("Corr(close, volume, 20)"), y)
    b = ic_summary(gpu("Corr(close, volume, 20)"), y.cuda())
    assert abs(a["ic"] - b["ic"]) < 1e-4 and abs(a["rank_ic"] - b["rank_ic"]) < 1e-4
