"""Kill real writers (SIGKILL, SIGTERM) at every stage of a write and at random times; the store must
come back whole: all or nothing, no leftovers, a retry gives exactly the right rows (issue 13 item 1).

Stage kills use ``MARKETLAB_FAULT`` (:mod:`marketlab.store.faults`): the writer kills itself when it
passes the named stage, so each case is deterministic; time kills hit wherever the writer happens to be.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
from pathlib import Path

import pytest

from tests.support.binance import long_capture_lines, write_capture
from tests.support.faults import REPO, check_store, kill_points, killed, klines_csv, rows, run_cli, run_python
from marketlab.store import Store

DAY_MIN = 1440
A_ROWS = 2 * DAY_MIN + DAY_MIN // 2  # file A: day 0 to the middle of day 2
# file B: days 2..4; the first half of day 2 overlaps A (same records), the second half is new
B_FIRST, B_ROWS = 2 * DAY_MIN, 3 * DAY_MIN
UNION = B_FIRST + B_ROWS

# Every stage an overlapping ingest passes; "renamed" fires per file (B adds 3: day 2 merged with A's,
# days 3, 4), "obsolete" per superseded file (A's day 2).
INGEST_STAGES = ["parsed", "staged", "merged", "journal", "renamed#1", "renamed#2", "renamed#3", "catalog",
                 "committed", "obsolete#1", "done"]
POINTS = [(s, sig) for s in INGEST_STAGES for sig in ("SIGKILL", "SIGTERM")]
# `make test`: the first stage, one before the commit point for each kind of file work, mid-rename (either outcome),
# the commit point itself and the end; `make test-full` the rest.
QUICK = {("parsed", "SIGKILL"), ("journal", "SIGTERM"), ("renamed#2", "SIGKILL"), ("catalog", "SIGTERM"),
         ("committed", "SIGKILL"), ("done", "SIGTERM")}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store holding file A (committed), and file B to ingest into it."""
    d = tmp_path_factory.mktemp("faults")
    a = klines_csv(d / "a" / "BTCUSDT.csv", 0, A_ROWS)
    b = klines_csv(d / "b" / "BTCUSDT.csv", B_FIRST, B_ROWS)
    Store(d / "store").ingest("ohlcv", [a], dataset="k")
    return d / "store", b


def ingest_code(root: Path, f: Path) -> str:
    return f"from marketlab.store import Store; Store({str(root)!r}).ingest('ohlcv', [{str(f)!r}], dataset='k')"


@pytest.mark.parametrize("stage, sig", kill_points(POINTS, QUICK))
def test_ingest_killed_at_each_stage(base: tuple[Path, Path], tmp_path: Path, stage: str, sig: str) -> None:
    root = tmp_path / "store"
    shutil.copytree(base[0], root)
    proc = run_python(ingest_code(root, base[1]), fault=f"{stage}:{sig}")
    assert killed(proc), (proc.returncode, proc.stderr[-500:])  # the stage was reached
    store = check_store(root)
    n = rows(store, "bars", "k")
    assert n in (A_ROWS, UNION)  # all or nothing
    if stage in ("committed", "obsolete#1", "done"):
        assert n == UNION  # past the commit point the write is complete
    if stage in ("parsed", "staged", "merged", "journal", "renamed#1", "renamed#3", "catalog"):
        assert n == A_ROWS
    rep = store.ingest("ohlcv", [base[1]], dataset="k")  # retry
    assert rows(check_store(root), "bars", "k") == UNION
    assert rep.skipped or rep.added == {"bars": UNION - A_ROWS}
    got = Store(root).scan_bars("k").collect()
    assert got["ts"].n_unique() == UNION and got["ts"].is_sorted()


@pytest.mark.parametrize("k", [0, 1] + [pytest.param(k, marks=pytest.mark.slow) for k in range(2, 6)])
def test_ingest_killed_at_a_random_time(tmp_path: Path, k: int) -> None:
    """A 40-day file into a store holding its first 10 days, killed after a seeded random delay."""
    root = tmp_path / "store"
    first = klines_csv(tmp_path / "a" / "ETHUSDT.csv", 0, 10 * DAY_MIN)
    big = klines_csv(tmp_path / "b" / "ETHUSDT.csv", 0, 40 * DAY_MIN)
    Store(root).ingest("ohlcv", [first], dataset="e")
    delay = random.Random(1000 + k).uniform(0.0, 0.6)  # the write takes ~0.5-1 s after READY
    sig = signal.SIGKILL if k % 2 == 0 else signal.SIGTERM
    code = ("import marketlab.store.ingest.ohlcv; import marketlab.store.writer; print('READY', flush=True); "
            + ingest_code(root, big).replace("'k'", "'e'"))
    proc = run_python(code, kill_after=delay, sig=sig)
    assert proc.returncode in (0, -signal.SIGKILL, -signal.SIGTERM), proc.stderr[-500:]
    store = check_store(root)
    assert rows(store, "bars", "e") in (10 * DAY_MIN, 40 * DAY_MIN)
    store.ingest("ohlcv", [big], dataset="e")
    assert rows(check_store(root), "bars", "e") == 40 * DAY_MIN


BARS_STAGES = [("staged", "SIGKILL"), ("journal", "SIGTERM"), ("renamed#1", "SIGKILL"), ("catalog", "SIGTERM"),
               ("committed", "SIGKILL"), ("obsolete#1", "SIGTERM")]
# `data bars --to-dataset` and `simulate` commit through the same staged write as the ingests above (whose kill points
# `make test` keeps); each of their points costs two CLI runs of the LOB kernels, so all of them run in `make test-full`.
BARS_QUICK: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def lob_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lob") / "store"
    # the LOB day is what the bars are built from; the daily panel beside it is kept tiny (unused here)
    proc = run_cli(["data", "synth", "--store", str(root), "--symbols", "2", "--days", "5", "--events", "3000"])
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["data", "bars", "synth_lob", "SYN", "--freq", "1m", "--to-dataset", "syn_bars", "--store", str(root)])
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize("stage, sig", kill_points(BARS_STAGES, BARS_QUICK))
def test_bars_to_dataset_killed(lob_store: Path, tmp_path: Path, stage: str, sig: str) -> None:
    """A re-run of `data bars --to-dataset` (5m bars replacing the 1m bars) killed at each stage."""
    root = tmp_path / "store"
    shutil.copytree(lob_store, root)
    before = Store(root)
    n1 = rows(before, "bars", "syn_bars")
    src = {k: rows(before, k, "synth_lob") for k in ("events", "book", "trades")}
    args = ["data", "bars", "synth_lob", "SYN", "--freq", "5m", "--to-dataset", "syn_bars", "--store", str(root), "--json"]
    proc = run_cli(args, fault=f"{stage}:{sig}")
    assert killed(proc), proc.stderr[-500:]
    store = check_store(root)
    n = rows(store, "bars", "syn_bars")
    assert {k: rows(store, k, "synth_lob") for k in src} == src  # the source is never touched
    retry = run_cli(args)
    assert retry.returncode == 0, retry.stderr
    n5 = json.loads(retry.stdout)["bars"]
    assert n in (n1, n5) and n5 < n1
    assert rows(check_store(root), "bars", "syn_bars") == n5


SIM_STAGES = [("staged", "SIGTERM"), ("renamed#2", "SIGKILL"), ("committed", "SIGTERM")]


@pytest.mark.parametrize("stage, sig", kill_points(SIM_STAGES, set()))
def test_simulate_killed(tmp_path: Path, stage: str, sig: str) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text((REPO / "specs" / "simulators" / "abm_default.toml").read_text()
                    .replace("duration_s = 23400.0", "duration_s = 30.0"))
    root = tmp_path / "store"
    args = ["simulate", str(spec), "--seed", "3", "--store", str(root), "--json"]
    proc = run_cli(args, fault=f"{stage}:{sig}")
    assert killed(proc), proc.stderr[-500:]
    store = check_store(root)
    n = rows(store, "events", "abm_default")
    retry = run_cli(args)
    assert retry.returncode == 0, retry.stderr
    want = json.loads(retry.stdout[retry.stdout.index("{"):])["events"]
    assert n in (0, want)
    assert rows(check_store(root), "events", "abm_default") == want


# A streamed binance-raw ingest (issue 13): its batches are staged one by one and commit as one transaction, so a
# kill between two batches (mid-stream) or anywhere after leaves all or nothing of the capture.
RAW_STAGES = [("parsed#3", "SIGKILL"), ("staged#5", "SIGTERM"), ("staged#5", "SIGKILL"), ("merged", "SIGTERM"),
              ("journal", "SIGKILL"), ("renamed#7", "SIGTERM"), ("catalog", "SIGKILL"), ("committed", "SIGTERM"),
              ("done", "SIGKILL")]
RAW_QUICK = {("staged#5", "SIGTERM")}


@pytest.fixture(scope="module")
def raw_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A capture that streams as ~30 batches of 20 level rows over two days, and its whole-file row counts."""
    from marketlab.store.ingest.binance_raw import parse

    p = write_capture(tmp_path_factory.mktemp("raw"), long_capture_lines(150, seed=11))
    return p, {k: f.height for k, f in parse([p]).frames.items()}


@pytest.mark.parametrize("stage, sig", kill_points(RAW_STAGES, RAW_QUICK))
def test_streamed_binance_raw_ingest_killed(raw_capture: tuple[Path, dict[str, int]], tmp_path: Path, stage: str,
                                            sig: str) -> None:
    cap, want = raw_capture
    root = tmp_path / "store"
    code = (f"from marketlab.store import Store; Store({str(root)!r}).ingest('binance-raw', [{str(cap)!r}], "
            "dataset='raw', batch_rows=20)")
    proc = run_python(code, fault=f"{stage}:{sig}")
    assert killed(proc), (proc.returncode, proc.stderr[-500:])
    store = check_store(root)
    got = {k: rows(store, k, "raw") for k in want}
    assert got in ({k: 0 for k in want}, want)  # all or nothing, over every kind
    assert (got == want) == (stage in ("committed", "done"))
    rep = store.ingest("binance-raw", [cap], dataset="raw", batch_rows=20)  # retry
    assert rep.skipped == (got == want)
    store = check_store(root)
    assert {k: rows(store, k, "raw") for k in want} == want
    assert store.read("events", "raw")["seq"].n_unique() == want["events"]  # no record twice
