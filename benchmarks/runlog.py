"""Append one benchmark run to ``benchmarks/results/<name>.json`` (never hand-merged).

Every run records when and where it ran: UTC time, git commit, the command line, the hardware (CPU model,
cores, memory, GPU) and the load average at its start and end, because on a shared machine the load is
part of the number. A file written by an older script (one run, no ``runs`` list) is kept as the first run
with ``"legacy": true``. ``latest(name)`` returns the newest run, which the README quotes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# Benchmarks run from a checkout (every script imports this module): the shipped real-data specs they load read
# $MARKETLAB_DATA/..., which defaults here to the datasets beside the checkout (the package itself guesses nothing).
os.environ.setdefault("MARKETLAB_DATA", str(RESULTS.parents[2] / "shared" / "data"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def hardware() -> dict[str, Any]:
    """CPU model, logical cores, memory, Python and (when importable) torch / CUDA device."""
    info: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "mem_gib": _mem_gib(),
                            "machine": platform.machine(), "python": platform.python_version()}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent, capture_output=True, text=True,
                           timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Run:
    """Context of one benchmark run: ``Run("expr")`` at the start (records the load), ``.save(payload)`` at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.t0 = time.perf_counter()
        self.load_start = [round(x, 2) for x in os.getloadavg()]

    def save(self, payload: dict[str, Any]) -> Path:
        """Append ``payload`` plus the run's metadata to ``results/<name>.json``; returns the path."""
        path = RESULTS / f"{self.name}.json"
        doc: dict[str, Any] = {}
        if path.is_file():
            doc = json.loads(path.read_text())
        if "runs" not in doc:
            doc = {"runs": [dict(doc, legacy=True)] if doc else []}
        run = {
            "utc": self.started,
            "git_commit": _commit(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "hardware": hardware(),
            "load_average_1_5_15min": {"start": self.load_start, "end": [round(x, 2) for x in os.getloadavg()]},
            "wall_seconds": round(time.perf_counter() - self.t0, 1),
            **payload,
        }
        doc["runs"].append(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float) + "\n")
        tmp.replace(path)
        return path


def latest(name: str) -> dict[str, Any]:
    """The newest run of ``results/<name>.json``."""
    doc = json.loads((RESULTS / f"{name}.json").read_text())
    return doc["runs"][-1] if "runs" in doc else doc
