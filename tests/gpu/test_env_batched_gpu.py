"""The batched torch Trading env on CUDA agrees with the single env (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.envs.batched import BatchedTradingEnv
from marketlab.envs.data import synthetic_market
from marketlab.envs.trading import TradingEnv


@pytest.mark.gpu
def test_batched_env_on_cuda_matches_single_env():
    m = synthetic_market(300, 3, seed=5, vol=0.01)
    cfg = {"costs": {"commission": 0.001, "spread": 0.0004}, "period": "all", "action": {"kind": "weights"}, "episode_length": 50, "random_start": True}
    benv = BatchedTradingEnv(cfg, market=m, num_envs=4, device="cuda", seed=0)
    obs = benv.reset(seed=1)
    assert obs.device.type == "cuda"
    singles = [TradingEnv(cfg, market=m) for _ in range(4)]
    for e, s in zip(singles, benv.t.tolist()):
        e.reset(options={"start": int(s)})
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.uniform(-1, 1, (4, 3))
        _, _, _, _, info = benv.step(torch.as_tensor(a, device="cuda"))
        for i, e in enumerate(singles):
            _, _, _, _, inf = e.step(a[i])
            assert inf["value"] == pytest.approx(info["value"][i].item(), rel=1e-9)
