"""The batched torch Trading env on CUDA agrees with the single env (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.envs.batched import BatchedTradingEnv
from marketlab.market import synthetic_market
from marketlab.envs.trading import TradingEnv


@pytest.mark.gpu
def test_batched_env_on_cuda_matches_single_env():
    m = synthetic_market(300, 3, seed=5, vol=0.01)
    cfg = {"costs": {"commission": 0.001, "spread": 0.0004}, "period": "all", "action": {"kind": "weights-v1"}, "episode_length": 50, "random_start": True}
    benv = BatchedTradingEnv(cfg, market=m, num_envs=4, device="cuda", seed=0)
    obs = benv.reset(seed=1)
    assert obs.device.type == "cuda"
    singles = [TradingEnv(cfg, market=m) for _ in range(4)]
    for e, s in zip(singles, benv.t.tolist(), strict=True):
        e.reset(options={"start": int(s)})
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.uniform(-1, 1, (4, 3))
        _, _, _, _, info = benv.step(torch.as_tensor(a, device="cuda"))
        for i, e in enumerate(singles):
            _, _, _, _, inf = e.step(a[i])
            assert inf["value"] == pytest.approx(info["value"][i].item(), rel=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("action,n", [("weights", 3), ("discrete", 1)])
def test_compiled_cuda_step_matches_eager(action, n):
    """compile=True (torch.compile of the step arithmetic, CUDA only) gives the eager engine's values."""
    m = synthetic_market(300, n, seed=5, vol=0.01)
    cfg = {"costs": {"commission": 0.001, "spread": 0.0004}, "period": "all", "action": {"kind": action + "-v1"},
           "reward": {"kind": "diff-sharpe-v1"}, "episode_length": 50, "random_start": True}
    envs = [BatchedTradingEnv(cfg, market=m, num_envs=64, device="cuda", compile=c) for c in (False, True)]
    for e in envs:
        e.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = rng.uniform(-1, 1, (64, n)) if action == "weights" else rng.integers(0, 3, 64)
        outs = [e.step(torch.as_tensor(a, device="cuda")) for e in envs]
        torch.testing.assert_close(outs[0][4]["value"], outs[1][4]["value"], rtol=1e-12, atol=0)
        torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=1e-6)
