"""The class boundary is strict: a move of exactly α is stationary (DeepLOB / TLOB: up iff Δ > α, down iff Δ < -α)."""

from __future__ import annotations

import numpy as np

from marketlab.features.labels import DOWN, STATIONARY, UNDEFINED, UP, deeplob_labels, tlob_labels


def test_move_of_exactly_alpha_is_stationary() -> None:
    # k = 1: Δ(t) = (mid[t+1] - mid[t]) / mid[t]; 4 -> 5 is +0.25 and 4 -> 3 is -0.25, both exact in binary
    up, down = np.array([4.0, 5.0]), np.array([4.0, 3.0])
    assert deeplob_labels(up, 1, 0.25)[0] == STATIONARY and deeplob_labels(down, 1, 0.25)[0] == STATIONARY
    assert deeplob_labels(up, 1, 0.2499)[0] == UP and deeplob_labels(down, 1, 0.2499)[0] == DOWN
    assert deeplob_labels(up, 1, 0.25)[1] == UNDEFINED
    # TLOB with h = 1 (λ = 1): the same single-step ratio
    assert tlob_labels(up, 1, 0.25)[0] == STATIONARY and tlob_labels(down, 1, 0.25)[0] == STATIONARY
    assert tlob_labels(up, 1, 0.2499)[0] == UP and tlob_labels(down, 1, 0.2499)[0] == DOWN
