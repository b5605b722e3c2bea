"""Tiny real `mine` and `train` runs for the checkpoint kill tests (run in a subprocess by tests/faults).

Both are seeded and deterministic on the CPU: the same run killed at different points writes the same
weights at the same checkpoint step, which is what lets the tests tell a torn checkpoint (weights of one
step beside the counters of another) from a whole one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MINE_EVERY = 64  # steps between alphagen checkpoints


def mine_run(out: str, steps: int, resume: bool) -> dict[str, Any]:
    """AlphaGen (MaskablePPO) on a small synthetic panel; checkpoints every 64 steps into ``out/alphagen``."""
    from marketlab.agents.alphagen.mine import DataSpec, MinerSpec, MineSpec, OutputSpec, SplitSpec, mine
    from marketlab.features.panel_tensor import panel_to_tensors, synthetic_panel

    panel = panel_to_tensors(synthetic_panel(220, 30, seed=5), device="cpu")
    spec = MineSpec(
        data=DataSpec(dataset="synth", universe="all"),
        split=SplitSpec(train="2015-01-01:2015-06-30", valid="2015-07-01:2015-08-31", test="2015-09-01:2015-12-31"),
        miner=MinerSpec(method="alphagen", capacity=5, max_len=10, max_lookback=40, n_steps=64, batch_size=32,
                        n_epochs=2, d_model=16, n_layers=1, checkpoint_every=MINE_EVERY, steps=steps, seed=3),
        output=OutputSpec(dir=str(Path(out) / "alphagen"), signals_dataset=None),
        target="Ref(close, -5) / close - 1",
    )
    result: dict[str, Any] = mine(spec, panel=panel, progress=False, resume=resume)
    return result


def train_sets() -> dict[str, Any]:
    """Seeded separable 3-class windows (the label shows in the window's last row): train/val/test."""
    import numpy as np
    import torch

    from marketlab.models.datasets import WindowSet, window_index

    t, f, n = 10, 40, 600
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, f)).astype(np.float32)
    y = rng.integers(0, 3, n)
    x[:, :5] += 2.0 * (y[:, None] - 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    out = {}
    for k, (lo, hi) in {"train": (0, 360), "val": (360, 480), "test": (480, n)}.items():
        s, li = window_index([(lo, hi)], t, t - 1, y)
        out[k] = WindowSet(xt, yt, s, li, t)
    return out


def train_run(out: str) -> dict[str, Any]:
    """binctabl, 2 epochs of 11 batches, a resumable state every 2 batches; resumes from ``out`` if present."""
    from marketlab.models.train import TrainConfig, train_predictor

    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-3, progress=False, seed=3, ema_decay=0.9, device="cpu",
                      checkpoint_every=2, patience=5)
    result: dict[str, Any] = train_predictor("binctabl", train_sets(), out, train_config=cfg)
    return result


if __name__ == "__main__":  # python -m tests.support.checkpoints mine|train <out> [steps] [resume]
    what, out = sys.argv[1], sys.argv[2]
    if what == "mine":
        mine_run(out, int(sys.argv[3]), sys.argv[4] == "1")
    else:
        train_run(out)
    print("DONE", flush=True)
