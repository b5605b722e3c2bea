"""Shared fixtures: the real datasets beside the checkout, temporary stores, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# One thread: on 2 shared cores torch with 2 threads ran RL ~80x slower than with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".cache" / "numba"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; integration tests are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set MARKETLAB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def tmp_store(tmp_path: Path):
    """A fresh, empty store in a temporary directory."""
    from marketlab.store import Store

    return Store(tmp_path / "store")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
