"""Peak memory of streamed ingests (issue 13 item 14): >= 3 M-row files, parse only and end to end, two formats.

* ``ohlcv``: a CSV generated from the real Binance 1-minute klines (2022-2023 BTCUSDT, three copies shifted by
  two years each: 3,153,360 rows, ``datetime,open,high,low,close,volume``, ~200 MB);
* ``binance-raw``: the real USD-M capture (``usdm_btcusdt_20240808.gz``, 93,954 lines) repeated 8 times, each copy
  continuing the update-id chain of the one before (ids and receive times shifted; the snapshot once): ~3.4 M
  stored rows (events + book + trades), ~220 MB of text, gzipped.

Both are written in a temporary folder and deleted afterwards. Each measurement runs in a fresh subprocess:
after imports, opening the store and one warm-up ingest of a small file of the same layout (numba, DuckDB and
polars one-off setup), RSS is the baseline; the peak (``VmHWM``; ``ru_maxrss`` would carry the parent's peak
across exec) minus the baseline is what the ingest itself costs, compared with the largest batch the parser
yielded (``estimated_size`` of its frames). Goal: increase <= 2x the largest batch.

The fixed costs are reported beside it, never hidden in the ratio's denominator: ``bare_interpreter_rss`` (a
Python that imports nothing), ``cold_rss_after_imports`` and ``warmup_cost_bytes`` (baseline - cold: what the
first ingest of a process sets up once). Two batch sizes give a line ``increase = fixed + slope * batch``
(``fit``): the slope is what memory per batch costs, the intercept what does not scale with the batch.
``file_backed_growth_bytes`` is how much of the increase is code/library pages mapped for the first time.

The store is measured three times: with the allocators' defaults (the Python API), as ``marketlab ingest`` runs
it (``cli``: polars' jemalloc, Arrow (system allocator) and glibc told to return freed memory at once,
:func:`marketlab.cli.data.release_freed_memory`),
and with every allocator told so (``RELEASE_ENV``). Peak RSS includes what the allocators keep after frees (polars configures its jemalloc to keep
freed pages 0.5 s dirty + 1 s MADV_FREE'd, both counted in RSS), so it is above the live memory. The harness holds no batch itself while the parser builds
the next one (a ``for b in ...`` loop would keep the previous batch alive and count it against the ingest).

Appends a run (hardware, load, commit) to benchmarks/results/ingest_memory.json through ``benchmarks/runlog.py``.
Run: ``nice -n 10 .venv/bin/python benchmarks/ingest_memory.py [--formats ohlcv binance-raw]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# polars writes its jemalloc defaults into os.environ when it loads (so this script's children would inherit them
# and `marketlab ingest`'s own setting would not apply): keep the caller's value, the one a shell would pass
USER_JEMALLOC_CONF = os.environ.get("_RJEM_MALLOC_CONF")

import polars as pl  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
KLINES = DATA / "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"
CAPTURE = DATA / "binance_btcusdt_raw_feed_2024-08-08" / "usdm_btcusdt_20240808.gz"
TWO_YEARS_NS = 730 * 86_400 * 10**9
COPIES = 8  # copies of the USD-M capture: ~3.4 M stored rows

CHILD = r"""
import gzip, itertools, json, sys, time
import psutil
sys.path.insert(0, {root!r})
if sys.argv[7] == "cli":  # what `marketlab ingest` does before it loads polars
    from marketlab.cli.data import release_freed_memory
    release_freed_memory()
from pathlib import Path
from marketlab.core import registry
from marketlab.store import Store
from marketlab.store.ingest import binance_raw, ohlcv
fmt, mode, src, store_dir, batch_rows, warm = sys.argv[1:7]
jemalloc = __import__("os").environ.get("_RJEM_MALLOC_CONF")
batch_rows = int(batch_rows)
iter_batches = ohlcv.iter_batches if fmt == "ohlcv" else binance_raw.iter_batches
sizes = []
def measured(paths, **kw):
    # no local may hold a batch while the parser builds the next one (a `for b in ...` loop would keep
    # the previous batch alive through the next next() call and count it against the ingest)
    it = iter_batches(paths, **kw)
    while (box := [next(it, None)])[0] is not None:
        sizes.append(sum(f.estimated_size() for f in box[0].frames.values()))
        yield box.pop()
store = Store(Path(store_dir)) if mode == "store" else None
registry.register("ingest/measured", measured)
def run(path, dataset):
    if mode == "store":
        return sum(store.ingest("measured", [path], dataset=dataset, batch_rows=batch_rows).rows.values())
    rows, it = 0, measured([path], batch_rows=batch_rows)
    while (box := [next(it, None)])[0] is not None:
        rows += sum(f.height for f in box.pop().frames.values())
    return rows
def status(key):
    return next(int(ln.split()[1]) * 1024 for ln in open("/proc/self/status") if ln.startswith(key + ":"))
cold = psutil.Process().memory_info().rss
run(Path(warm), "warm")
sizes.clear()
base, file_base = status("VmRSS"), status("RssFile")
t0, c0 = time.perf_counter(), time.process_time()
rows = run(Path(src), "big")
secs, cpu = time.perf_counter() - t0, time.process_time() - c0
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child spawned by a big parent reports the parent's peak
print(json.dumps({{"rows": rows, "seconds": secs, "cpu_s": cpu, "cold_rss_after_imports": cold, "baseline_rss": base,
                  "peak_rss": status("VmHWM"), "file_backed_growth_bytes": status("RssFile") - file_base,
                  "batches": len(sizes), "largest_batch_bytes": max(sizes), "jemalloc_conf": jemalloc}}))
"""


# "release": the allocators return freed memory to the OS at once instead of keeping it for reuse: polars'
# jemalloc (no decay), glibc malloc (small mmap/trim thresholds), Arrow on the system allocator. Environment
# variables read when the libraries load, so a user sets them for the process; the writer itself already
# calls Arrow's release_unused() and glibc's malloc_trim(0) after each batch in both configurations.
RELEASE_ENV = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0", "MALLOC_MMAP_THRESHOLD_": "131072",
               "MALLOC_TRIM_THRESHOLD_": "131072", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def make_csv(path: Path) -> int:
    files = sorted(KLINES.glob("BTCUSDT-1m-*.zip"))
    sys.path.insert(0, str(ROOT))
    from marketlab.store.ingest.ohlcv import parse

    bars = parse(files).frames["bars"].select("ts", "open", "high", "low", "close", "volume")
    big = pl.concat([bars.with_columns(pl.col("ts") + k * TWO_YEARS_NS) for k in range(3)])
    big = big.select(pl.col("ts").cast(pl.Datetime("ns")).dt.strftime("%Y-%m-%d %H:%M:%S").alias("datetime"),
                     "open", "high", "low", "close", "volume")
    big.write_csv(path)
    return big.height


def make_capture(path: Path, copies: int = COPIES) -> None:
    """The USD-M capture ``copies`` times over, gzipped (level 1): copy k > 0 is the text after the snapshot line
    with every receive time shifted by k spans and every depth update id (U, u, pu) by k * D, where D makes its
    first diff's ``pu`` equal the previous copy's last ``u`` (so the chain continues; the book state differs
    from the first copy's, which does not matter here)."""
    import gzip
    import re

    sys.path.insert(0, str(ROOT))
    from marketlab.store.ingest._io import read_bytes

    text = read_bytes(CAPTURE)
    ids = re.compile(rb'"U":(\d+),"u":(\d+),"pu":(\d+)')
    snap_end = text.index(b"\n", text.index(b'{"lastUpdateId"')) + 1
    tail = text[snap_end:]
    found = ids.findall(tail)
    first_pu, last_u = int(found[0][2]), int(ids.findall(text)[-1][1])
    shift_id = last_u - first_pu
    ts = [int(m) for m in re.findall(rb"^(\d+) ", tail, flags=re.M)]
    span = max(ts) - min(ts) + 1_000_000
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(text)
        for k in range(1, copies):
            body = ids.sub(lambda m, k=k: b'"U":%d,"u":%d,"pu":%d' % tuple(int(x) + k * shift_id for x in m.groups()), tail)
            out.write(re.sub(rb"^(\d+) ", lambda m, k=k: b"%d " % (int(m.group(1)) + k * span), body, flags=re.M))


def warm_file(fmt: str, big: Path, dest: Path) -> Path:
    """A small file of the same layout as ``big`` for the warm-up ingest: the CSV's first 1,000 rows; the
    capture's first 300 lines (its snapshot is line 55)."""
    import gzip

    if fmt == "ohlcv":
        with big.open() as fh:
            dest.write_text("".join(itertools.islice(fh, 1001)))
        return dest
    with gzip.open(big, "rt") as fh:
        lines = list(itertools.islice(fh, 300))
    dest = dest.with_suffix(".gz")
    with gzip.open(dest, "wt") as out:
        out.write("".join(lines))
    return dest


def bare_interpreter_rss() -> int:
    """RSS of a Python that imports nothing (the floor under every number here)."""
    code = "print(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmRSS:')))"
    return int(subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout)


def fit(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``increase = fixed + slope * largest batch`` through the two extreme batch sizes of each (format, mode,
    allocators): the slope is memory per batch byte, the fixed part what does not scale with the batch."""
    out = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["format"], r["mode"], r["allocators"]), []).append(r)
    for (fmt, mode, alloc), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["largest_batch_bytes"])
        if len(rs) < 2 or rs[-1]["largest_batch_bytes"] == rs[0]["largest_batch_bytes"]:
            continue
        a, b = rs[0], rs[-1]
        slope = (b["increase_bytes"] - a["increase_bytes"]) / (b["largest_batch_bytes"] - a["largest_batch_bytes"])
        out.append({"format": fmt, "mode": mode, "allocators": alloc, "slope_bytes_per_batch_byte": slope,
                    "fixed_bytes": a["increase_bytes"] - slope * a["largest_batch_bytes"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-rows", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--formats", nargs="+", default=["ohlcv", "binance-raw"], choices=["ohlcv", "binance-raw"])
    args = ap.parse_args()
    run = Run("ingest_memory")
    results: list[dict[str, Any]] = []
    files: dict[str, dict[str, Any]] = {}
    bare = bare_interpreter_rss()
    with tempfile.TemporaryDirectory(prefix="ingest_memory_") as d:
        for fmt in args.formats:
            if fmt == "ohlcv":
                big = Path(d) / "BTCUSDT_1m_2022-2027.csv"
                rows = make_csv(big)
                layout = ("datetime,open,high,low,close,volume (real BTCUSDT 1m klines 2022-2023, 3 copies shifted "
                          "by 2 years)")
            else:
                big = Path(d) / "usdm_btcusdt_x8.gz"
                make_capture(big)
                rows = None  # counted by the runs (stored rows: events + book + trades)
                layout = f"{CAPTURE.name} x {COPIES}, update ids and receive times continued (gzip level 1)"
            warm = warm_file(fmt, big, Path(d) / f"warm_{fmt}.csv")
            files[fmt] = {"rows": rows, "bytes": big.stat().st_size, "layout": layout}
            env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
            env.update({"PYTHONPATH": str(ROOT)}, **({"_RJEM_MALLOC_CONF": USER_JEMALLOC_CONF} if USER_JEMALLOC_CONF else {}))
            for batch_rows in args.batch_rows:
                for mode, allocators in (("parse", "default"), ("store", "default"), ("store", "cli"),
                                         ("store", "release")):
                    store = Path(d) / f"store_{fmt}_{mode}_{batch_rows}_{allocators}"
                    t0 = time.perf_counter()
                    child_env = {**env, **(RELEASE_ENV if allocators == "release" else {})}
                    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), fmt, mode, str(big),
                                           str(store), str(batch_rows), str(warm), allocators],
                                          capture_output=True, text=True, env=child_env, check=True)
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    inc = r["peak_rss"] - r["baseline_rss"]
                    files[fmt]["rows"] = files[fmt]["rows"] or r["rows"]
                    results.append({"format": fmt, "mode": mode, "allocators": allocators, "batch_rows": batch_rows,
                                    **r, "bare_interpreter_rss": bare,
                                    "warmup_cost_bytes": r["baseline_rss"] - r["cold_rss_after_imports"],
                                    "wall_with_startup_s": time.perf_counter() - t0,
                                    "increase_bytes": inc, "increase_over_largest_batch": inc / r["largest_batch_bytes"],
                                    "goal_at_most_2x_batch": inc <= 2 * r["largest_batch_bytes"]})
                    print(json.dumps(results[-1]), flush=True)
            big.unlink()
    lines = fit(results)
    for line in lines:
        print(json.dumps(line))
    path = run.save({
        "benchmark": "ingest_memory",
        "files": files,
        "versions": {"polars": pl.__version__},
        "goal": "increase <= 2x the largest batch",
        "metric": "increase_bytes = peak RSS of the ingest (VmHWM) - baseline_rss; baseline_rss = RSS after the "
                  "interpreter, imports, opening the store and a warm-up ingest of a small file of the same layout "
                  "(one-off runtime setup), in a fresh process. Fixed costs reported beside it: bare_interpreter_rss, "
                  "cold_rss_after_imports, warmup_cost_bytes = baseline_rss - cold_rss_after_imports. "
                  "increase_over_largest_batch = increase_bytes / the largest batch the parser yielded (polars "
                  "estimated_size of its frames). Goal: <= 2. allocators: 'default' = library defaults (Python API); "
                  "'cli' = as `marketlab ingest` runs (release_freed_memory: jemalloc, Arrow, glibc); 'release' = "
                  "RELEASE_ENV (every allocator returns freed memory at once). fit: increase = fixed + slope * batch "
                  "through the smallest and largest batch size.",
        "release_env": RELEASE_ENV,
        "fit": lines,
        "note": "memory numbers do not depend on the load (seconds do).",
        "results": results,
    })
    print(f"appended a run to {path}")


if __name__ == "__main__":
    main()
