"""Fault-injection harness: run a real writer in a subprocess, kill it (a named stage or a timer),
reopen the store and check the integrity invariants.

Invariants after any kill, once the store is reopened (recovery runs on open):

* all or nothing: each dataset's rows equal either the state before the write or the state after it;
* no leftovers: no ``.staging-*`` folder, no journal, and the Parquet files on disk are exactly the
  files the catalog lists (no orphan, none missing);
* the catalog's row totals equal what a scan reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from marketlab.store import KINDS, Store

REPO = Path(__file__).resolve().parents[2]  # tests/support/faults.py -> repo root
NS_DAY = 86_400_000_000_000
T0_MS = 19_724 * 86_400_000  # 2024-01-02 00:00 UTC in ms


def klines_csv(path: Path, first_minute: int, n: int, close_bump: float = 0.0) -> Path:
    """Binance spot klines (headerless, 12 columns, ms open times), one row per minute from
    ``first_minute`` after 2024-01-02 00:00 UTC: ``n`` rows cover ``n / 1440`` days."""
    lines = []
    for i in range(first_minute, first_minute + n):
        t = T0_MS + i * 60_000
        c = 100.0 + (i % 97) * 0.01 + close_bump
        lines.append(f"{t},100.0,101.0,99.0,{c:.2f},10.0,{t + 59_999},1000.0,5,5.0,500.0,0\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def env(fault: str | None = None) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    e.pop("MARKETLAB_FAULT", None)
    if fault:
        e["MARKETLAB_FAULT"] = fault
    return e


READY = "READY"


def run_python(code: str, *, fault: str | None = None, kill_after: float | None = None,
               sig: int = signal.SIGKILL, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; with ``kill_after`` send ``sig`` that many seconds after the
    code prints ``READY`` (its imports done, the write about to start)."""
    p = subprocess.Popen([sys.executable, "-c", code], env=env(fault), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = ""
    if kill_after is not None:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert first.strip() == READY, first
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    out = first + out
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def run_cli(args: list[str], *, fault: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.argv = ['marketlab'] + {args!r}; from marketlab.cli.main import app; app()"
    return run_python(code, fault=fault, timeout=timeout)


def killed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode in (-signal.SIGKILL, -signal.SIGTERM)


def rows(store: Store, kind: str, dataset: str) -> int:
    if dataset not in set(store.datasets()["dataset"].to_list()):
        return 0
    if store._table(dataset, kind) is None:
        return 0
    return int(store.read(kind, dataset).height)


def check_store(root: Path) -> Store:
    """Reopen ``root`` (recovery runs) and assert no leftovers and catalog == disk == scans."""
    store = Store(root)
    names = os.listdir(root)
    assert not [n for n in names if n.startswith(".staging-")], names
    assert not (root / ".journal").exists() or not os.listdir(root / ".journal")
    on_disk = {str(p.relative_to(root)) for k in KINDS if (root / k).is_dir() for p in (root / k).rglob("*.parquet")}
    listed = set()
    for r in store.tables().iter_rows(named=True):
        files = store.files(r["kind"], r["dataset"])
        listed |= {str(Path(f).relative_to(root)) for f in files}
        assert store.read(r["kind"], r["dataset"]).height == r["rows"], r
    assert on_disk == listed, (sorted(on_disk - listed)[:3], sorted(listed - on_disk)[:3])
    return store


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[tuple[int, str, str]]:
    out = []
    deadline = time.monotonic() + timeout
    for p in procs:
        o, e = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        out.append((p.returncode, o, e))
    return out


def kill_points(points: list[tuple[str, str]], quick: set[tuple[str, str]]) -> list[Any]:
    """``(stage, signal)`` kill points as pytest params with ids ``stage-signal``: the ``quick`` ones run in
    `make test`, the others are marked slow (`make test-full`; CI runs both). Each point costs a writer subprocess
    or two (~1-5 s of CPU), so the quick set keeps one point per kind of outcome (before the commit point, across
    it, after it; both signals) and the full run kills at every one."""
    unknown = quick - set(points)
    assert not unknown, unknown  # a renamed stage must not silently drop out of `make test`
    return [pytest.param(st, sig, id=f"{st}-{sig}", marks=() if (st, sig) in quick else pytest.mark.slow)
            for st, sig in points]
