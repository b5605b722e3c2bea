"""Optimal-value supervisor Q* (EarnHFT/MacroHFT ``make_q_table_reward``) by backward dynamic programming.

For a price path p_0..p_{T-1} and target positions A (default {0, 1}),

    Q*[t, i, j] = r(t, A_i -> A_j) + gamma * max_k Q*[t+1, j, k],     Q*[T-1, :, :] = 0,

where r is :func:`marketlab.envs.macrohft_env.transition_reward` with the env's fee and size: the
supervisor and the env share one reward function, so they cannot disagree on costs. (The reference
computes Q* with a 10 bp commission while its env charges 2 bp; here both take ``fee`` from one config.)
Row ``Q*[t, prev, :]`` is the KL target at step t with previous position ``prev``.
"""

from __future__ import annotations

import numpy as np

from marketlab.envs.macrohft_env import transition_reward


def optimal_q(close: np.ndarray, *, fee: float, size: float = 1.0, gamma: float = 0.99,
              positions: tuple[float, ...] = (0.0, 1.0)) -> np.ndarray:
    """(T, K, K) float64 Q*[t, prev_index, action_index] of the price path ``close`` (T,)."""
    p = np.asarray(close, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    t_len, k = len(p), len(pos)
    q = np.zeros((t_len, k, k))
    if t_len < 2:
        return q
    # rewards for every step, previous and next position at once: (T-1, K, K)
    r = transition_reward(p[:-1, None, None], p[1:, None, None], pos[None, :, None], pos[None, None, :], fee, size)
    future = np.zeros(k)
    for t in range(t_len - 2, -1, -1):
        q[t] = r[t] + gamma * future[None, :]
        future = q[t].max(axis=1)  # V*(t, j) = max_k Q*[t, j, k]: value of entering step t with position j
    return q
