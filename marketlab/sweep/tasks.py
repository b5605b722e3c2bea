"""The unit of work every backend runs: one variant, in whatever process or node it lands on.

A task is a plain dict (picklable, small): ``kind`` (runner name), ``spec_path``, ``raw`` (the spec's TOML
table with the variant's overrides applied), ``params``, ``variant``, ``run_dir``, ``store``, ``options``.
:func:`run_task` returns the variant's record; an exception inside the runner becomes a ``failed`` record
with its error in one line (a crash of the process itself is the backend's to retry).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from marketlab.core.files import atomic_write


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


def base_record(task: dict[str, Any]) -> dict[str, Any]:
    """The fields every record has, before the variant ran."""
    return {
        "variant": task["variant"], "status": "failed", "error": None, "params": dict(task["params"]),
        "metrics": {}, "seed": None, "run_dir": str(task["run_dir"]), "host": socket.gethostname(),
        "pid": os.getpid(), "wall_s": None,
    }


def failed_record(task: dict[str, Any], error: str) -> dict[str, Any]:
    """A ``failed`` record written by the driver (the worker died and retries ran out)."""
    rec = base_record(task)
    rec.update(error=error, host=None, pid=None)
    return rec


def run_task(task: dict[str, Any], shared: Any = None,
             on_iteration: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Run one variant and return its record: status ``ok`` with ``metrics`` or ``failed`` with ``error``.

    ``shared``: the input the runner shares across variants (the mining panel; on Ray a top-level ObjectRef
    argument, which Ray resolves from the node's object store); ``on_iteration``: Ray Tune's report.
    Writes ``started.json`` (pid, host) then ``metrics.json`` into the variant's ``run_dir``."""
    from marketlab.core.registry import resolve
    from marketlab.sweep.runners import RunContext

    t0 = time.perf_counter()
    rec = base_record(task)
    run_dir = Path(task["run_dir"])
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        started = {"pid": rec["pid"], "host": rec["host"], "started": time.time()}
        atomic_write(run_dir / "started.json", lambda p: Path(p).write_text(json.dumps(started)))
        runner = resolve(task["kind"], kind="runner")
        spec = runner.load(task["raw"], task["spec_path"])
        rec["seed"] = runner.seed(spec)
        ctx = RunContext(Path(task["spec_path"]), run_dir, task.get("store"), dict(task.get("options") or {}),
                         on_iteration=on_iteration, shared=shared)
        metrics = runner.run(spec, ctx)
        rec.update(status="ok", metrics=metrics)
        out = {"variant": rec["variant"], "params": rec["params"], "seed": rec["seed"], "metrics": metrics}
        atomic_write(run_dir / "metrics.json",
                     lambda p: Path(p).write_text(json.dumps(out, indent=1, default=str, allow_nan=True)))
    except Exception as exc:  # the variant failed; the others go on (its error is in its record)
        rec["error"] = _one_line(exc)
    rec["wall_s"] = time.perf_counter() - t0
    return rec
