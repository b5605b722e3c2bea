"""Two ingests and a reader loop on one store: nothing lost, no traceback, "store is busy" in one line
where a lock is held too long."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from tests.support.faults import env, klines_csv, run_cli, wait_all
from marketlab.store import Store

DAY_MIN = 1440

READER = """
import sys, time
from marketlab.core.errors import StoreError
from marketlab.store import Store
root, stop = sys.argv[1], sys.argv[2]
import os
seen, busy, reads = [], 0, 0
while not os.path.exists(stop):
    try:
        st = Store(root, create=False)
        if 'c' in set(st.datasets()['dataset'].to_list()):
            n = st.scan_bars('c').collect().height
            m = int(st.sql('select count(*) as n from bars_c')['n'][0])
            assert n in (0, 20 * 1440, 25 * 1440, 45 * 1440), n
            assert m in (0, 20 * 1440, 25 * 1440, 45 * 1440), m
            seen.append(n)
        reads += 1
    except StoreError as exc:
        assert 'busy' in str(exc) and chr(10) not in str(exc), str(exc)
        busy += 1
print(reads, busy, sorted(set(seen)))
"""


def test_two_ingests_and_a_reader(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    a = klines_csv(tmp_path / "a" / "SOLUSDT.csv", 0, 20 * DAY_MIN)
    b = klines_csv(tmp_path / "b" / "SOLUSDT.csv", 20 * DAY_MIN, 25 * DAY_MIN)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root), str(stop)], env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", "import sys; sys.argv = ['marketlab', 'ingest', 'ohlcv', "
                                 f"{str(f)!r}, '--dataset', 'c', '--store', {str(root)!r}, '--json']; "
                                 "from marketlab.cli.main import app; app()"],
                                env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for f in (a, b)]
    results = wait_all(writers)
    stop.write_text("")
    (rc_r, out_r, err_r), = wait_all([reader])
    for rc, _out, err in results:
        assert rc == 0 and "Traceback" not in err, err
    assert rc_r == 0 and "Traceback" not in err_r, err_r
    reads = int(out_r.split()[0])
    assert reads > 0
    assert Store(root).scan_bars("c").collect().height == 45 * DAY_MIN  # nothing lost


def test_held_lock_is_a_one_line_busy_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    f = klines_csv(tmp_path / "a" / "XRPUSDT.csv", 0, 100)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another writer holds the store
        e = env()
        e["MARKETLAB_LOCK_TIMEOUT"] = "0.5"
        proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['marketlab', 'ingest', 'ohlcv', "
                               f"{str(f)!r}, '--store', {str(root)!r}, '--json']; from marketlab.cli.main import app; app()"],
                              env=e, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "store is busy" in lines[0], proc.stderr
    assert run_cli(["ingest", "ohlcv", str(f), "--store", str(root)]).returncode == 0



REPLACE_ONCE = """
import sys
import polars as pl
from marketlab.store import IngestBatch, Instrument, Store
T0, MIN = 19_724 * 86_400 * 10**9, 60 * 10**9
bars = pl.DataFrame({"ts": [T0 + i * MIN for i in range(5)], "symbol": "AAA", "open": 2.0, "high": 2.0, "low": 2.0,
                     "close": 2.0, "volume": 1.0, "vwap": 2.0, "trades": 1})
Store(sys.argv[1]).replace(IngestBatch("b", {"bars": bars}, [Instrument("AAA", 0.01, 1.0)]))
"""


def test_eager_read_racing_a_replace_returns_one_snapshot(tmp_path: Path, monkeypatch) -> None:
    """The race made deterministic: another process's replace commits (and deletes the superseded file)
    right after this reader listed its files. Store.read must re-list and return the new rows whole, not
    raise (and never mix); the lazy-scan side is in tests/unit/test_store_integrity.py."""
    import polars as pl

    from marketlab.store import IngestBatch, Instrument, catalog

    root = tmp_path / "store"
    t0, minute = 19_724 * 86_400 * 10**9, 60 * 10**9
    first = pl.DataFrame({"ts": [t0 + i * minute for i in range(5)], "symbol": "AAA", "open": 1.0, "high": 1.0,
                          "low": 1.0, "close": 1.0, "volume": 1.0, "vwap": 1.0, "trades": 1})
    Store(root).write(IngestBatch("b", {"bars": first}, [Instrument("AAA", 0.01, 1.0)]))
    listed = catalog.scans.scan
    raced: list[int] = []

    def scan_then_replace(*args, **kwargs):  # type: ignore[no-untyped-def]
        lf = listed(*args, **kwargs)
        if not raced:  # the first listing only: a writer commits between listing and reading
            raced.append(1)
            subprocess.run([sys.executable, "-c", REPLACE_ONCE, str(root)], env=env(), check=True, timeout=120)
        return lf

    monkeypatch.setattr(catalog.scans, "scan", scan_then_replace)
    got = Store(root, create=False).read("bars", "b")
    assert raced and got["close"].to_list() == [2.0] * 5
