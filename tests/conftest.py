"""Shared fixtures: the real datasets beside the checkout, temporary stores, single-threaded torch.

Determinism: every test starts with the global ``random``, NumPy and torch generators seeded from
``--seed`` (default 0) and the test's id, and Hypothesis runs derandomized (profile ``ci``). So ``make test``
is the same run every time. ``make test-flaky`` hunts flakes: it repeats the suite with other ``--seed``
values, ``--shuffle`` (test order permuted by the seed, which also reshuffles tests across xdist workers)
and the Hypothesis profile ``explore`` (fresh random examples).
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# The raw-data root: $MARKETLAB_DATA, the one variable the package reads (MARKETLAB_SHARED_DATA: its old name).
SHARED_DATA = Path(
    os.environ.get("MARKETLAB_DATA") or os.environ.get("MARKETLAB_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data"
)

# One thread: on 2 shared cores torch with 2 threads ran RL ~80x slower than with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".cache" / "numba"))


hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("marketlab determinism")
    group.addoption("--seed", type=int, default=0, help="base seed of the per-test global RNG seeding (default 0)")
    group.addoption("--shuffle", action="store_true", help="permute the test order with --seed (flake hunting)")


def _test_seed(base: int, nodeid: str) -> int:
    digest = hashlib.blake2b(f"{base}:{nodeid}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


@pytest.fixture(autouse=True)
def _seed_global_rngs(request: pytest.FixtureRequest) -> None:
    """Seed ``random``, NumPy's and torch's global generators per test (tests should still pass their own)."""
    seed = _test_seed(request.config.getoption("--seed"), request.node.nodeid)
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")  # not imported yet: its default seed is fixed anyway; spare the import
    if torch is not None:
        torch.manual_seed(seed)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``$MARKETLAB_DATA`` (default ``../shared/data``); integration tests are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set MARKETLAB_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_trades(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """(store, checkpoint dir) of a tiny TRADES model (window 8, depth 1, 60 steps) on a 2,500-row GOOG slice,
    trained once per session and worker; modules using it share ``xdist_group("tiny_trades")``."""
    from marketlab.simulators.trades.train import TradesConfig, train_from_store
    from tests.support.trades import goog_slice_store

    root = tmp_path_factory.mktemp("tiny_trades")
    store = goog_slice_store(shared_data, root, rows=2500)
    cfg = TradesConfig.cpu(window=8, depth=1, steps=60, batch_size=32, val_every=60, val_batches=1, seed=1, ema_decay=0.9)
    train_from_store(store, "lob", "GOOG", cfg, root / "ck", device="cpu")
    return store, root / "ck"


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
    if config.getoption("--shuffle"):
        # Same permutation in every xdist worker (they must collect identical lists).
        random.Random(config.getoption("--seed")).shuffle(items)
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        # tests/gpu/ skips as a whole without CUDA, marked or not
        if ("gpu" in item.keywords or "tests/gpu/" in item.nodeid) and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 worker CPUs, shared by one test module's tests (Ray's start costs seconds);
    started and shut down here unless the test session already runs one."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()
