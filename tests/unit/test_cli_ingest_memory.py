"""`marketlab ingest` asks polars' allocator to return freed memory at once (a streamed ingest's peak then
follows its batch, benchmarks/ingest_memory.py), only before polars loads and never over a user's own setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from marketlab.cli.data import JEMALLOC_RELEASE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOW = (
    "from marketlab.cli.data import release_freed_memory; release_freed_memory(); import os; "
    "print(os.environ.get('_RJEM_MALLOC_CONF'))"
)


def _child(code: str, conf: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    env["PYTHONPATH"] = REPO
    if conf is not None:
        env["_RJEM_MALLOC_CONF"] = conf
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    "code, conf, want",
    [
        (SHOW, None, JEMALLOC_RELEASE),  # set before polars loads
        (SHOW, "dirty_decay_ms:500", "dirty_decay_ms:500"),  # the user's setting wins
        # too late once polars is loaded (it set its own default, 0.5 s + 1 s): left alone
        ("import polars; " + SHOW, None, "dirty_decay_ms:500,muzzy_decay_ms:1000"),
    ],
)
def test_release_freed_memory(code: str, conf: str | None, want: str) -> None:
    assert _child(code, conf) == want


def test_the_ingest_command_calls_it_before_loading_the_store() -> None:
    import inspect

    from marketlab.cli import data

    src = inspect.getsource(data.ingest)
    assert src.index("release_freed_memory()") < src.index("_store(store)")


ARROW = (
    "from marketlab.cli.data import release_freed_memory; release_freed_memory(); import os, pyarrow; "
    "print(os.environ.get('ARROW_DEFAULT_MEMORY_POOL'), pyarrow.default_memory_pool().backend_name)"
)


@pytest.mark.parametrize(
    "code, pool, want",
    [
        (ARROW, None, "system system"),  # set before pyarrow loads: the Parquet encoder's frees go back at once
        (ARROW, "jemalloc", "jemalloc jemalloc"),  # the user's setting wins
        ("import pyarrow; " + ARROW, None, "None mimalloc"),  # too late once pyarrow is loaded: left alone
    ],
)
def test_release_freed_memory_puts_arrow_on_the_system_allocator(code: str, pool: str | None, want: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["PYTHONPATH"] = REPO
    if pool is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == want


def test_release_freed_memory_fixes_glibc_thresholds_unless_the_user_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from marketlab.cli import data

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: Libc())
    # a copy of the environment, so the allocator variables it sets never reach other tests' children
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
    data.release_freed_memory()
    # glibc's malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3; 128 KiB is glibc's own starting threshold
    assert sorted(calls) == [(-3, 128 * 1024), (-1, 128 * 1024)]
    calls.clear()
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    data.release_freed_memory()
    assert calls == [(-1, 128 * 1024)]
