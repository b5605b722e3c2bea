"""Peak memory of a streamed OHLCV ingest (issue 13 item 14): a >= 3 M-row CSV, parse only and end to end.

The CSV is generated in a temporary folder from the real Binance 1-minute klines (2022-2023 BTCUSDT, three
copies shifted by two years each: 3,153,360 rows, ``datetime,open,high,low,close,volume``, ~190 MB) and
deleted afterwards. Each measurement runs in a fresh subprocess: after imports, opening the store and one
1,000-row warm-up ingest of the same layout (polars/duckdb one-off setup), RSS is the baseline; the peak
(``VmHWM``; ``ru_maxrss`` would carry the parent's peak across exec) minus the baseline is what the ingest itself costs, compared with the largest batch the
parser yielded (``estimated_size`` of its frame). Goal: increase <= 2x the largest batch. The RSS right
after imports is recorded too (``cold_rss_after_imports``). The store is measured twice: with the allocators'
defaults, and with them told to return freed memory at once (``RELEASE_ENV``).

The harness holds no batch itself while the parser builds the next one (a ``for b in ...`` loop would keep
the previous batch alive and count it against the ingest). Peak RSS includes what the allocators (polars'
jemalloc, Arrow's mimalloc) keep after frees, so it is above the live memory.

Appends a run (hardware, load, commit) to benchmarks/results/ingest_memory.json through ``benchmarks/runlog.py``.
Run: ``nice -n 10 .venv/bin/python benchmarks/ingest_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import Run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
KLINES = DATA / "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"
TWO_YEARS_NS = 730 * 86_400 * 10**9

CHILD = r"""
import itertools, json, sys, time
import psutil
sys.path.insert(0, {root!r})
from pathlib import Path
from marketlab.core import registry
from marketlab.store import Store
from marketlab.store.ingest.ohlcv import iter_batches
mode, csv, store_dir, batch_rows = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
sizes = []
def measured(paths, **kw):
    # no local may hold a batch while the parser builds the next one (a `for b in ...` loop would keep
    # the previous batch alive through the next next() call and count it against the ingest)
    it = iter_batches(paths, **kw)
    while (box := [next(it, None)])[0] is not None:
        sizes.append(sum(f.estimated_size() for f in box[0].frames.values()))
        yield box.pop()
store = Store(store_dir) if mode == "store" else None
registry.register("ingest/ohlcv-measured", measured)
def run(path, dataset):
    if mode == "store":
        return sum(store.ingest("ohlcv-measured", [path], dataset=dataset, batch_rows=batch_rows).rows.values())
    rows, it = 0, measured([path], batch_rows=batch_rows)
    while (box := [next(it, None)])[0] is not None:
        rows += sum(f.height for f in box.pop().frames.values())
    return rows
cold = psutil.Process().memory_info().rss
head = store_dir.parent / (store_dir.name + "_warm.csv")  # same layout, 1,000 rows: the one-off runtime setup
with csv.open() as fh:
    head.write_text("".join(itertools.islice(fh, 1001)))
run(head, "warm")
sizes.clear()
base = psutil.Process().memory_info().rss
t0 = time.perf_counter()
rows = run(csv, "big")
secs = time.perf_counter() - t0
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child spawned by a big parent reports the parent's peak
peak = next(int(ln.split()[1]) * 1024 for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({{"rows": rows, "seconds": secs, "cold_rss_after_imports": cold, "baseline_rss": base,
                  "peak_rss": peak, "batches": len(sizes), "largest_batch_bytes": max(sizes)}}))
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-rows", type=int, nargs="+", default=[250_000, 1_000_000])
    args = ap.parse_args()
    run = Run("ingest_memory")
    results = []
    with tempfile.TemporaryDirectory(prefix="ingest_memory_") as d:
        csv = Path(d) / "BTCUSDT_1m_2022-2027.csv"
        rows = make_csv(csv)
        size = csv.stat().st_size
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for batch_rows in args.batch_rows:
            for mode, allocators in (("parse", "default"), ("store", "default"), ("store", "release")):
                store = Path(d) / f"store_{mode}_{batch_rows}_{allocators}"
                t0 = time.perf_counter()
                child_env = {**env, **(RELEASE_ENV if allocators == "release" else {})}
                proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, str(csv), str(store),
                                       str(batch_rows)], capture_output=True, text=True, env=child_env, check=True)
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                inc = r["peak_rss"] - r["baseline_rss"]
                results.append({"mode": mode, "allocators": allocators, "batch_rows": batch_rows, **r,
                                "wall_with_startup_s": time.perf_counter() - t0,
                                "increase_bytes": inc, "increase_over_largest_batch": inc / r["largest_batch_bytes"],
                                "goal_at_most_2x_batch": inc <= 2 * r["largest_batch_bytes"]})
                print(json.dumps(results[-1]))
    path = run.save({
        "benchmark": "ingest_memory",
        "file": {"rows": rows, "bytes": size, "layout": "datetime,open,high,low,close,volume (real BTCUSDT 1m klines "
                                                         "2022-2023, 3 copies shifted by 2 years)"},
        "versions": {"polars": pl.__version__},
        "goal": "increase <= 2x the largest batch",
        "metric": "increase_bytes = peak RSS of the ingest (VmHWM) - baseline_rss; baseline_rss = RSS after the "
                  "interpreter, imports, opening the store and a 1,000-row warm-up ingest of the same layout (one-off "
                  "runtime setup), in a fresh process; cold_rss_after_imports = RSS right after the imports. "
                  "increase_over_largest_batch = increase_bytes / the largest batch the parser yielded (polars "
                  "estimated_size). Goal: <= 2. allocators: 'default' = library defaults; 'release' = RELEASE_ENV "
                  "(allocators return freed memory at once).",
        "release_env": RELEASE_ENV,
        "note": "memory numbers do not depend on the load (seconds do).",
        "results": results,
    })
    print(f"appended a run to {path}")


if __name__ == "__main__":
    main()
