"""Device selection and seeding: the one place that decides where torch runs and how RNGs are made.

Random generators are passed explicitly (``numpy.random.Generator``, ``torch.Generator``); nothing here
touches global state except :func:`seed_everything`, which exists for third-party code (SB3, torch
dropout) that reads the global RNGs.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is heavy; import it only when a caller needs a device
    import torch


def get_device(device: str = "auto") -> "torch.device":
    """Return a torch device: ``"auto"`` picks CUDA when available, else CPU; anything else is passed on."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int, *, deterministic: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and torch global RNGs; return a fresh ``np.random.Generator`` for explicit use.

    With ``deterministic=True`` torch uses deterministic algorithms where they exist (CPU runs are then
    bit-for-bit reproducible).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    except ImportError:  # pragma: no cover - torch is a hard dependency, kept optional here for tools
        pass
    return np.random.default_rng(seed)


def child_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators derived from one master seed (NumPy SeedSequence spawning)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def set_torch_threads(n: int | None = None) -> None:
    """Limit torch intra-op threads (default: ``MARKETLAB_TORCH_THREADS`` or 1).

    On small shared machines two threads made PPO 80x slower than one; RL and CI use one thread.
    """
    import torch

    n = n or int(os.environ.get("MARKETLAB_TORCH_THREADS", "1"))
    torch.set_num_threads(n)


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (extra ``[rl]``) is installed: SB3 and ``torch.utils.tensorboard``
    need it to write event files (training logs to TensorBoard only when it is)."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None
