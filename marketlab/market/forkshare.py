"""Reads that a forked worker takes from its parent instead of repeating them through Polars.

Why this exists: Polars is not fork-safe. Its first parallel operation starts a thread pool (threads
``polars-N``, ``tokio-rt-worker``, ``async-executor-*``); a process forked after that inherits the pool's
state but none of its threads, so the child's first parallel Polars call (a ``collect``, a sort) waits
forever for workers that do not exist. gymnasium's ``AsyncVectorEnv`` (``gym.make_vec(...,
vectorization_mode="async")``, start method ``fork`` on Linux) builds one env in the parent to read the
spaces and then forks the workers, which build the env again: every env that reads the store
(``Trading-v0``, ``LOBExecution-v0`` on ``replay-v1``) hung in its workers at 0 % CPU (py-spy: the
worker's main thread parked in ``polars ... tokio::runtime::park`` under ``LazyFrame.collect`` in
``load_events``).

The fix at the root: the store reads an env makes are wrapped in :func:`fork_shared`. A forked process
that needs a read its parent already made (same key) uses the parent's result, inherited copy-on-write
with the fork, and never calls Polars; so the workers of an async vector env make no Polars call at all.
Within one process nothing is reused (each read sees the store as it is). A forked process that would
have to read through a pool the fork broke raises :class:`ForkUnsafeError` naming the remedy instead of
hanging. ``spawn`` / ``forkserver`` workers (SB3's ``SubprocVecEnv`` default) start clean and read normally.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: How many recent reads a process keeps for its future forks (the parent of a vector env reads once).
MAX_SHARED_READS = 4
#: Thread names (``/proc/self/task/*/comm``, 15 bytes) of Polars' pool and its async runtime.
POLARS_THREAD_PREFIXES = ("polars-", "tokio-rt-worker", "async-executor")

_reads: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
_pool_broken = False  # this process was forked while Polars' pool ran (in it or an ancestor)
_pool_broken_at_fork = False


class ForkUnsafeError(RuntimeError):
    """A forked process would call Polars, whose thread pool the fork left without threads."""


def polars_pool_running() -> bool:
    """Whether this process runs Polars' thread pool (Linux: thread names; False where /proc is absent)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith(POLARS_THREAD_PREFIXES):
            return True
    return False


def _before_fork() -> None:
    global _pool_broken_at_fork
    _pool_broken_at_fork = _pool_broken or polars_pool_running()


def _after_fork_in_child() -> None:
    global _pool_broken
    _pool_broken = _pool_broken_at_fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def check_polars_usable(what: str) -> None:
    """Raise :class:`ForkUnsafeError` when this process was forked while Polars' pool ran (a Polars
    call here would wait forever); ``what`` names the read for the message."""
    if _pool_broken:
        raise ForkUnsafeError(
            f"{what}: this process was forked after Polars started its thread pool (Polars is not fork-safe) "
            "and its parent did not make this read first; build the env once in the parent before forking, "
            "or start workers with 'spawn' / 'forkserver' (gymnasium: vector_kwargs={'context': 'spawn'})"
        )


def fork_shared(key: Hashable, read: Callable[[], T], what: str = "store read") -> T:
    """``read()``, or in a forked process its parent's result for the same ``key``.

    ``key`` must identify the read completely (store folder, dataset, symbols, period ...). The result
    is shared with forked children only: treat it as read-only (a child's writes are copy-on-write
    anyway). Raises :class:`ForkUnsafeError` where reading would hang (see the module docstring).
    """
    hit = _reads.get(key)
    if hit is not None and hit[0] != os.getpid():
        return hit[1]
    check_polars_usable(what)
    value = read()
    _reads[key] = (os.getpid(), value)
    _reads.move_to_end(key)
    while len(_reads) > MAX_SHARED_READS:
        _reads.popitem(last=False)
    return value


def store_key(store: Any) -> str:
    """The part of a read's key that names the store: its resolved folder (or the object's id)."""
    path = getattr(store, "path", None)
    return str(Path(path).resolve()) if path is not None else f"id:{id(store)}"
