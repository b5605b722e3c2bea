"""The reward kernels against known answers from outside the code: the differential Sharpe ratio of
Moody & Saffell (2001) by hand on a short series, and as the derivative of the EMA Sharpe ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketlab.envs.rewards import DiffSharpeReward, LogReturnReward, PnLReward
from marketlab.envs.spec import RewardConfig


def _run(reward, values: list[float]) -> list[float]:
    reward.reset(values[0])
    return [reward(a, b) for a, b in zip(values[:-1], values[1:], strict=True)]


def test_diff_sharpe_matches_hand_computed_series():
    """Returns +10%, -10%, +10% with eta = 1/2 (Moody & Saffell eq. 4 with A_0 = B_0 = 0):
    t=1: variance B_0 - A_0^2 = 0 -> D_1 = 0;   A_1 = 0.05,   B_1 = 0.005
    t=2: dA = -0.15, dB = 0.005, var = 0.0025 -> D_2 = (0.005*-0.15 - 0.5*0.05*0.005) / 0.0025^1.5 = -7
         A_2 = -0.025, B_2 = 0.0075
    t=3: dA = 0.125, dB = 0.0025, var = 0.006875 -> D_3 = (0.0075*0.125 + 0.5*0.025*0.0025) / 0.006875^1.5
    """
    r = DiffSharpeReward(RewardConfig(kind="diff-sharpe-v1", eta=0.5, scale=1.0), 100.0)
    got = _run(r, [100.0, 110.0, 99.0, 108.9])
    want = [0.0, -7.0, (0.0075 * 0.125 + 0.5 * 0.025 * 0.0025) / 0.006875**1.5]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert r.state.tolist() == pytest.approx([-0.025 + 0.5 * 0.125, 0.0075 + 0.5 * 0.0025], rel=1e-12)
    r.reset(100.0)
    assert r.state.tolist() == [0.0, 0.0] and _run(r, [100.0, 110.0]) == [0.0]  # reset forgets the moments


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diff_sharpe_is_the_derivative_of_the_ema_sharpe_ratio(seed):
    """D_t = dS_t/d(eta) at eta = 0, S = A / sqrt(B - A^2) (the paper's definition), by finite differences."""
    rng = np.random.default_rng(seed)
    a0 = float(rng.normal(0.001, 0.002))
    b0 = a0 * a0 + float(rng.uniform(1e-4, 4e-4))
    eta = 1e-7
    r = DiffSharpeReward(RewardConfig(kind="diff-sharpe-v1", eta=eta, scale=1.0), 1.0)
    for ret in rng.normal(0.0, 0.02, 5):
        r.state[:] = (a0, b0)
        d = r(100.0, 100.0 * (1.0 + ret))
        a1, b1 = a0 + eta * (ret - a0), b0 + eta * (ret * ret - b0)
        ds = (a1 / math.sqrt(b1 - a1 * a1) - a0 / math.sqrt(b0 - a0 * a0)) / eta
        assert d == pytest.approx(ds, rel=1e-4)


def test_pnl_and_log_return_kernels():
    assert _run(PnLReward(RewardConfig(scale=2.0), 1_000.0), [1_000.0, 1_010.0, 990.0]) == pytest.approx([0.02, -0.04])
    assert _run(LogReturnReward(RewardConfig(scale=1.0), 1.0), [100.0, 110.0, 0.0]) == pytest.approx([math.log(1.1), math.log(1e-12)])
