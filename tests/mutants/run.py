"""Planted-bug (mutation) check: apply each bug of ``mutants.toml`` to a temporary copy of the repository and
run the tests named for it; a bug is *killed* when those tests go red, time out or crash the test process.

Usage (from the repository root; ``make mutants`` runs the first form)::

    python tests/mutants/run.py                      # every mutant
    python tests/mutants/run.py --area ic --area labels
    python tests/mutants/run.py --only engine-fifo-head --keep   # keep the temp copy to inspect it
    python tests/mutants/run.py --json out.json

The copy holds the working tree's files as git lists them (no ``.git``, no venv, no store); the real datasets are passed through
``MARKETLAB_SHARED_DATA`` so integration tests still run. First the union of all named tests runs on the
unmutated copy (a red baseline aborts: a kill would mean nothing). A mutant whose ``find`` text is not in its
file exactly once is reported ``stale`` (the code moved: update the table). Exit code: 0 when every mutant
was killed, 1 when one survived or went stale, 2 on a red baseline or a bad table.

Not part of ``make test``: every mutant of a numba module recompiles it (tens of seconds each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = Path(__file__).with_name("mutants.toml")


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``find`` (exactly once) by ``replace`` in ``file``; ``tests`` should go red."""

    id: str
    area: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str


def load_table(path: Path = TABLE) -> list[Mutant]:
    """The mutants of ``path`` (``[[mutant]]`` entries; every key required)."""
    raw = tomllib.loads(path.read_text())
    out = []
    for i, m in enumerate(raw.get("mutant", [])):
        missing = {"id", "area", "file", "find", "replace", "tests", "why"} - set(m)
        if missing:
            raise SystemExit(f"error: {path}: mutant #{i + 1} lacks {sorted(missing)}")
        out.append(Mutant(m["id"], m["area"], m["file"], m["find"], m["replace"], tuple(m["tests"]), m["why"]))
    ids = [m.id for m in out]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"error: {path}: duplicate mutant ids")
    return out


def _copy_repo(dst: Path) -> None:
    """Copy the working tree's files (tracked and untracked-but-not-ignored, as git lists them) to ``dst``."""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True)
    for rel in r.stdout.decode().split("\0"):
        src = ROOT / rel
        if not rel or not src.is_file() or rel.startswith("tests/mutants/"):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(work),
        NUMBA_CACHE_DIR=str(work / ".cache" / "numba"),
        MARKETLAB_SHARED_DATA=os.environ.get("MARKETLAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _pytest(work: Path, tests: tuple[str, ...], timeout: float, first_fail: bool,
            verbose: bool = False) -> tuple[str, float, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", *(["-x"] if first_fail else []),
           *tests]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=work, env=_env(work), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    tail = (r.stdout + r.stderr).strip().splitlines()
    last = tail[-1] if tail else ""
    if r.returncode != 0 and verbose:
        print("\n".join(tail[-40:]), file=sys.stderr)
    if r.returncode == 0:
        return "passed", time.perf_counter() - t0, last
    if r.returncode in (1, 3):  # tests failed / internal error while running them (e.g. an import crash)
        return "failed", time.perf_counter() - t0, last
    if r.returncode < 0:  # the test process died of a signal (a planted bug that segfaults numba code): CI goes red too
        return "crashed", time.perf_counter() - t0, f"killed by signal {-r.returncode}"
    return f"rc{r.returncode}", time.perf_counter() - t0, last


def main(argv: list[str] | None = None) -> int:
    """Run the table (filtered by ``--area``/``--only``); print one line per mutant and the kill rate."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--area", action="append", help="only mutants of this area (repeatable)")
    ap.add_argument("--only", action="append", help="only this mutant id (repeatable)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per test run (a timeout counts as killed)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run (when you just ran it)")
    a = ap.parse_args(argv)
    # a kill (timeout, Ctrl-C) still restores nothing in the repo (only the copy is mutated) and removes the copy
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    muts = [m for m in load_table() if (not a.area or m.area in a.area) and (not a.only or m.id in a.only)]
    if not muts:
        print("error: no mutant selected", file=sys.stderr)
        return 2
    shared = Path(_env(ROOT)["MARKETLAB_SHARED_DATA"])
    if not shared.is_dir():
        print(f"warning: no real datasets at {shared} (set MARKETLAB_SHARED_DATA): integration tests will skip and "
              "the mutants only they can see will survive", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="marketlab-mutants-"))
    results = []
    try:
        _copy_repo(work)
        if not a.no_baseline:
            union = tuple(dict.fromkeys(t for m in muts for t in m.tests))
            st, secs, last = _pytest(work, union, a.timeout * 2, first_fail=True, verbose=True)
            print(f"baseline ({len(union)} test paths): {st} in {secs:.0f}s  {last}", flush=True)
            if st != "passed":
                print("error: the named tests fail without any mutant; fix them first", file=sys.stderr)
                return 2
        for m in muts:
            path = work / m.file
            text = path.read_text()
            if text.count(m.find) != 1:
                res = {"id": m.id, "area": m.area, "status": "stale", "seconds": 0.0,
                       "detail": f"find text occurs {text.count(m.find)}x in {m.file}"}
            else:
                st0 = path.stat()
                path.write_text(text.replace(m.find, m.replace))
                # a distinct mtime, so numba's on-disk cache can never serve the unmutated compile
                os.utime(path, ns=(st0.st_atime_ns, st0.st_mtime_ns + 1_000_000_000))
                try:
                    st, secs, last = _pytest(work, m.tests, a.timeout, first_fail=True)
                finally:
                    path.write_text(text)
                    os.utime(path, ns=(st0.st_atime_ns, st0.st_mtime_ns + 2_000_000_000))
                status = "survived" if st == "passed" else ("killed" if st in ("failed", "timeout", "crashed") else st)
                res = {"id": m.id, "area": m.area, "status": status, "seconds": round(secs, 1), "detail": last}
            results.append(res)
            print(f"{res['status']:>8}  {m.area:<8} {m.id:<40} {res['seconds']:6.0f}s  {res['detail'][:90]}", flush=True)
    finally:
        if a.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    killed = sum(r["status"] == "killed" for r in results)
    by_area: dict[str, list[int]] = {}
    for r in results:
        k = by_area.setdefault(r["area"], [0, 0])
        k[0] += r["status"] == "killed"
        k[1] += 1
    print("kill rate: " + f"{killed}/{len(results)}" + "  (" + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in by_area.items()) + ")")
    if a.json:
        a.json.write_text(json.dumps({"killed": killed, "total": len(results), "mutants": results}, indent=1))
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
