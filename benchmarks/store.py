"""Store benchmark: marketlab store vs plain pandas, each doing the same job end to end in one process.

1. LOBSTER ingest (GOOG level 10, CSV.gz -> Parquet): ``Store.ingest("lobster", ...)`` (parse with
   ``marketlab.store.ingest.lobster.parse``, validate, partition, write, catalog) vs pandas ``read_csv`` of
   both files, the same column mapping, ``to_parquet``. Metric: events/s.
2. 10 M synthetic trades (5 symbols x 20 days) in the store -> 1-minute bars written back: ``scan_trades``
   + ``resample.trades_to_bars`` + ``Store.write`` vs pandas ``read_parquet`` of the same trades (one
   file) + groupby on integer minute buckets + ``to_parquet``.
3. One-symbol one-day range scan out of that 20-day 5-symbol store (partition pruning) vs the best a
   pandas user does with one Parquet file: ``pd.read_parquet(filters=[symbol, ts range], columns=...)``
   (pyarrow pushes the filters down to row-group statistics; the file is sorted by symbol then time, so
   they prune well). Measured for all columns and for a 3-column subset (``columns=`` vs ``.select``).

Appends a run (hardware, load, commit) to benchmarks/results/store.json through ``benchmarks/runlog.py``.
Run: ``.venv/bin/python benchmarks/store.py [--trades N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from marketlab.store import IngestBatch, Instrument, Store  # noqa: E402
from marketlab.store.resample import trades_to_bars  # noqa: E402
from marketlab.store.writer import parquet_options  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from runlog import Run  # noqa: E402

DATA = Path(os.environ.get("MARKETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
LOBSTER = DATA / "lobster_sample_2012-06-21"
GOOG = ("GOOG_2012-06-21_34200000_57600000_message_10.csv.gz", "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz")
NS_DAY = 86_400_000_000_000


CPU_S: dict[int, float] = {}  # id(fn) -> least process CPU seconds (all threads) of its repeats


def best_of(fn, repeats: int) -> float:
    """Least wall time of ``repeats`` runs; the least process CPU time (all threads) goes to ``CPU_S``:
    on a loaded shared machine the wall clock also measures the other jobs, CPU time much less so."""
    times, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    CPU_S[id(fn)] = min(cpus)
    return min(times)


def pandas_lobster(msg: Path, book: Path, out: Path, engine: str = "c",
                   parquet: str = "pandas") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same LOBSTER job in plain pandas: read both CSVs, map to the store's events/book schema (same
    rows and values as the store keeps: LOBSTER price units, halts with price/size/side 0, empty book
    levels (dummy price or size 0) as 0/0), write Parquet. ``engine``: pandas' ``"c"`` or ``"pyarrow"``
    CSV reader; ``parquet``: ``"pandas"`` (``to_parquet`` defaults: snappy, dictionaries) or ``"store"``
    (the store's own file settings, ``writer.parquet_options``: delta-packed integers, no compression).
    The benchmark takes the fastest of the four as the baseline."""
    m = pd.read_csv(msg, header=None, names=["time", "type", "order_id", "size", "price", "direction"], engine=engine)
    b = pd.read_csv(book, header=None, engine=engine)
    midnight = int(pd.Timestamp("2012-06-21", tz="America/New_York").value)
    halt = (m["type"] == 7).to_numpy()
    ev = pd.DataFrame({
        "ts": midnight + np.round(m["time"].to_numpy() * 1e9).astype(np.int64),
        "symbol": "GOOG", "seq": np.arange(len(m), dtype=np.int64), "type": m["type"].astype(np.int8),
        "order_id": m["order_id"].astype(np.int64),
        "side": np.where(halt, 0, m["direction"].to_numpy()).astype(np.int8),
        "price": np.where(halt, 0, m["price"].to_numpy()).astype(np.int64),
        "size": np.where(halt, 0, m["size"].to_numpy()).astype(np.int64),
    })
    names = [f"{k}_{i}" for i in range(1, b.shape[1] // 4 + 1) for k in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
    b.columns = names
    for px, sz in zip(names[0::2], names[1::2], strict=True):
        empty = (b[sz] <= 0) | (b[px].abs() == 9999999999)
        b.loc[empty, [px, sz]] = 0
    b.insert(0, "seq", ev["seq"])
    b.insert(0, "symbol", "GOOG")
    b.insert(0, "ts", ev["ts"])
    out.mkdir(parents=True, exist_ok=True)
    for df, name in ((ev, "events"), (b, "book")):
        if parquet == "store":
            table = pa.Table.from_pandas(df, preserve_index=False)
            pq.write_table(table, out / f"{name}.parquet", **parquet_options(table.schema))
        else:
            df.to_parquet(out / f"{name}.parquet")
    return ev, b


def same_rows(store_df: pl.DataFrame, pandas_df: pd.DataFrame, what: str, *, exact: bool = True) -> None:
    """Assert the store's rows equal pandas' rows (column by column; floats to 1e-9 relative)."""
    other = pl.from_pandas(pandas_df)
    assert store_df.columns == other.columns, (what, store_df.columns, other.columns)
    assert store_df.height == other.height, (what, store_df.height, other.height)
    for c in store_df.columns:
        a, b = store_df.get_column(c), other.get_column(c)
        if a.dtype.is_float():
            ok = np.allclose(a.to_numpy(), b.cast(pl.Float64).to_numpy(), rtol=1e-9, atol=0) if not exact else \
                a.equals(b.cast(a.dtype))
        else:
            ok = a.equals(b.cast(a.dtype))
        assert ok, f"{what}: column {c} differs between the store and pandas"


def make_trades(n: int, symbols: int, days: int, seed: int = 0) -> pl.DataFrame:
    """n trades over ``days`` x 6.5 h sessions for ``symbols`` symbols; random-walk integer prices."""
    rng = np.random.default_rng(seed)
    per = n // (symbols * days)
    frames = []
    start = (dt.date(2024, 1, 1) - dt.date(1970, 1, 1)).days * NS_DAY + 14 * 3600 * 10**9 + 30 * 60 * 10**9
    for s in range(symbols):
        for d in range(days):
            t = start + d * NS_DAY + np.sort(rng.integers(0, int(6.5 * 3600 * 10**9), per))
            p = 10_000 + np.cumsum(rng.integers(-1, 2, per))
            frames.append(pl.DataFrame({
                "ts": t, "symbol": f"S{s}", "seq": np.arange(per, dtype=np.int64), "price": p.astype(np.int64),
                "size": rng.integers(1, 100, per), "aggressor": rng.choice(np.array([1, -1], np.int8), per),
            }))
    return pl.concat(frames)


def pandas_bars(src: Path, out: Path) -> pd.DataFrame:
    """Plain pandas: read all trades, integer-minute buckets, groupby-agg, write Parquet."""
    df = pd.read_parquet(src)
    df["price"] = df["price"] * 0.01
    df["bucket"] = df["ts"] - df["ts"] % (60 * 10**9)
    df["notional"] = df["price"] * df["size"]
    g = df.groupby(["symbol", "bucket"], sort=True).agg(
        open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"),
        volume=("size", "sum"), notional=("notional", "sum"), trades=("price", "size"))
    g["vwap"] = g["notional"] / g["volume"]
    g = g.drop(columns="notional").reset_index().rename(columns={"bucket": "ts"})
    g.to_parquet(out)
    return g


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run = Run("store")
    work = Path(tempfile.mkdtemp(prefix="mlbench_"))
    results: dict = {}
    try:
        # 1. LOBSTER ingest
        msg, book = LOBSTER / GOOG[0], LOBSTER / GOOG[1]
        if msg.exists():
            counter = iter(range(1000))

            def store_ingest() -> None:
                st = Store(work / f"lob{next(counter)}")
                st.ingest("lobster", [msg, book], dataset="goog")

            t_store = best_of(store_ingest, args.repeats)
            c_store = CPU_S[id(store_ingest)]
            # same rows out: the store's events and book equal what the pandas job writes
            ev_pd, book_pd = pandas_lobster(msg, book, work / "pd_lob0")
            done = Store(work / "lob0")
            same_rows(done.read("events", "goog"), ev_pd, "lobster events")
            same_rows(done.read("book", "goog"), book_pd, "lobster book")
            n_ev = len(ev_pd)
            del ev_pd, book_pd
            t_engines, c_engines = {}, {}
            for e in ("c", "pyarrow"):
                for pq_ in ("pandas", "store"):
                    job = lambda e=e, pq_=pq_: pandas_lobster(msg, book, work / "pd_lob", e, pq_)  # noqa: E731
                    t_engines[f"{e}/{pq_}"] = best_of(job, args.repeats)
                    c_engines[f"{e}/{pq_}"] = CPU_S[id(job)]
            best_engine = min(t_engines, key=lambda e: t_engines[e])
            t_pd = t_engines[best_engine]
            results["lobster_ingest"] = {
                "events": n_ev, "store_s": t_store, "pandas_s": t_pd, "pandas_engine": best_engine,
                "pandas_s_by_read_csv_engine_and_parquet_settings": t_engines, "rows_checked_equal": True,
                "store_cpu_s": c_store, "pandas_cpu_s_by_read_csv_engine_and_parquet_settings": c_engines,
                "ratio_cpu": min(c_engines.values()) / c_store,
                "store_events_per_s": n_ev / t_store, "pandas_events_per_s": n_ev / t_pd, "ratio": t_pd / t_store,
                "parser": "marketlab.store.ingest.lobster.parse (+ validation, partitioning, catalog)",
            }
            print(f"lobster ingest: store {n_ev / t_store:,.0f} ev/s, pandas ({best_engine}) {n_ev / t_pd:,.0f} ev/s, "
                  f"ratio {t_pd / t_store:.2f}x, CPU time ratio {min(c_engines.values()) / c_store:.2f}x "
                  "(rows checked equal)")
        else:
            print(f"lobster sample not found at {LOBSTER}; skipped")

        # 2. 10M trades -> 1m bars written back
        symbols, days = 5, 20
        trades = make_trades(args.trades, symbols, days)
        st = Store(work / "big")
        st.write(IngestBatch("bench", {"trades": trades}, [Instrument(f"S{s}", 0.01, 1.0) for s in range(symbols)]))
        flat = work / "trades_all.parquet"
        trades.to_pandas().to_parquet(flat)  # the plain pandas user's single file
        n_trades = trades.height
        del trades
        gc.collect()
        rounds = iter(range(1000))

        def store_bars() -> None:
            bars = trades_to_bars(st.scan_trades("bench", as_float=True), "1m")
            st.write(IngestBatch(f"bars{next(rounds)}", {"bars": bars},
                                 [Instrument(f"S{s}", 0.01, 1.0) for s in range(symbols)]))

        t_store = best_of(store_bars, args.repeats)
        c_store = CPU_S[id(store_bars)]
        bars_pd = pandas_bars(flat, work / "pd_bars.parquet")
        n_bars = len(bars_pd)
        stored_bars = st.read("bars", "bars0").select(bars_pd.columns)
        same_rows(stored_bars, bars_pd, "1m bars", exact=False)
        del bars_pd, stored_bars
        pd_job = lambda: pandas_bars(flat, work / "pd_bars.parquet")  # noqa: E731
        t_pd = best_of(pd_job, args.repeats)
        results["resample_1m"] = {"trades": n_trades, "bars": n_bars, "store_s": t_store, "pandas_s": t_pd,
                                  "ratio": t_pd / t_store, "store_cpu_s": c_store, "pandas_cpu_s": CPU_S[id(pd_job)],
                                  "ratio_cpu": CPU_S[id(pd_job)] / c_store,
                                  "rows_checked_equal": "floats to 1e-9 relative"}
        print(f"10M trades -> 1m bars: store {t_store:.2f}s, pandas {t_pd:.2f}s, ratio {t_pd / t_store:.2f}x")

        # 3. one-symbol one-day range scan
        s, e = "2024-01-11", "2024-01-12"
        s_ns, e_ns = (dt.date(2024, 1, 11) - dt.date(1970, 1, 1)).days * NS_DAY, \
            (dt.date(2024, 1, 12) - dt.date(1970, 1, 1)).days * NS_DAY
        t_store = best_of(lambda: st.scan_trades("bench", "S2", s, e).collect(), max(3, args.repeats))
        got = st.scan_trades("bench", "S2", s, e).collect().height

        def pandas_scan(columns: list[str] | None = None) -> int:
            # The best pandas/pyarrow way: predicate and projection pushdown into the Parquet reader.
            df = pd.read_parquet(flat, columns=columns,
                                 filters=[("symbol", "==", "S2"), ("ts", ">=", s_ns), ("ts", "<", e_ns)])
            return len(df)

        want = pandas_scan()
        assert want == got, (want, got)
        t_pd = best_of(pandas_scan, max(3, args.repeats))
        cols = ["ts", "price", "size"]
        t_store_cols = best_of(lambda: st.scan_trades("bench", "S2", s, e).select(cols).collect(), max(3, args.repeats))
        t_pd_cols = best_of(lambda: pandas_scan(cols), max(3, args.repeats))
        results["range_scan"] = {"rows": got, "files_read": len(st.files("trades", "bench", "S2", s, e)),
                                 "files_total": len(st.files("trades", "bench")), "store_s": t_store,
                                 "pandas_s": t_pd, "ratio": t_pd / t_store,
                                 "store_3cols_s": t_store_cols, "pandas_3cols_s": t_pd_cols,
                                 "ratio_3cols": t_pd_cols / t_store_cols,
                                 "pandas_call": "pd.read_parquet(file, filters=[symbol ==, ts >=, ts <], columns=...)"}
        print(f"range scan 1 symbol x 1 day of 5 x 20: store {t_store * 1e3:.1f} ms, pandas+filters "
              f"{t_pd * 1e3:.1f} ms, ratio {t_pd / t_store:.1f}x (3 columns: {t_pd_cols / t_store_cols:.1f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = run.save({
        "benchmark": "store",
        "goals": {"lobster_ingest": ">= 3x", "resample_1m": ">= 3x", "range_scan": ">= 20x"},
        "results": results,
        "versions": {"polars": pl.__version__, "pandas": pd.__version__},
        "note": f"best of {args.repeats} repeats, wall time, on a machine shared with other work (load in the run "
                "record); pandas baseline (the fastest of read_csv's C and pyarrow engines x pandas' to_parquet "
                "defaults or the store's own Parquet settings, same output rows, checked equal) does no validation and writes one file, the store validates, merges by "
                "natural key, partitions by symbol/day, journals and commits its catalog. The store side may use "
                "both cores (polars, parallel parse and Parquet writes); pandas read_csv/to_parquet use one.",
    })
    print(f"appended a run to {path}")


if __name__ == "__main__":
    main()
