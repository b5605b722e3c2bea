"""The store on object storage against moto's standalone S3 server (an EMULATOR of S3, not AWS: it speaks
the protocol, it does not reproduce AWS's consistency or latency), started and stopped by this module.

A real month of Binance 1-minute klines (BTCUSDT + ETHUSDT, 2024-01) is ingested into an ``s3://`` store
and a local one: scans are equal, a one-symbol-one-day scan requests only that partition's object and
lists nothing (counted in the server's request log), a re-ingest writes nothing, a killed writer's
uploads are rolled back by the next write, one killed after its commit is completed by the next write, a
commit raced by a writer on another machine is refused whole, and missing credentials are one line, exit 2.

moto_server is found next to this interpreter (``pip install 'marketlab[s3]'`` puts it there) or
at ``$MARKETLAB_MOTO_SERVER``; the tests skip when there is none.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.store import Store
from tests.support.faults import run_python
from tests.support.sweep import assert_one_line_error

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("moto")]
DATA = "binance_spot_1m_btc_eth_2024_01"
BUCKET = "marketlab-test"


def _moto_server() -> str | None:
    # Not any moto_server on PATH: another install's moto (another version) failed multipart uploads here.
    for cand in (os.environ.get("MARKETLAB_MOTO_SERVER"), str(Path(sys.executable).parent / "moto_server")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


class Server:
    """A running moto server: its endpoint and request log (one line per HTTP request)."""

    def __init__(self, endpoint: str, log: Path) -> None:
        self.endpoint = endpoint
        self.log = log

    def mark(self) -> int:
        """The log's size now: :meth:`requests` after it."""
        return self.log.stat().st_size

    def requests(self, since: int) -> list[tuple[str, str]]:
        """(method, path) of every request logged after ``since``, once the log stops growing."""
        size = -1
        while size != self.log.stat().st_size:  # werkzeug logs a request just after answering it
            size = self.log.stat().st_size
            time.sleep(0.3)
        with open(self.log, "rb") as fh:
            fh.seek(since)
            text = re.sub(r"\x1b\[[0-9;]*m", "", fh.read().decode(errors="replace"))  # werkzeug colours statuses
        return re.findall(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP', text)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    exe = _moto_server()
    if exe is None:
        pytest.skip("moto_server not installed (pip install 'marketlab[s3]', or set MARKETLAB_MOTO_SERVER)")
    tmp = tmp_path_factory.mktemp("moto")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp / "requests.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                                            "AWS_REGION", "MARKETLAB_S3_CACHE", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"moto_server did not start: {log.read_text()[-500:]}")
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=endpoint,
                          AWS_REGION="us-east-1", MARKETLAB_S3_CACHE=str(tmp / "cache"))
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        import pyarrow.fs as pafs

        pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1", scheme="http",
                          endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True).create_dir(BUCKET)
        yield Server(endpoint, log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def klines(shared_data: Path) -> Path:
    """The real month of Binance 1-minute klines these tests store (skipped when not staged)."""
    folder = shared_data / DATA
    if not folder.is_dir():
        pytest.skip(f"{DATA} not staged")
    return folder


@pytest.fixture(scope="module")
def stores(s3: Server, klines: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Store, str]:
    """(local store, s3 store, dataset) with the same real month of klines ingested into both."""
    local = Store(tmp_path_factory.mktemp("local") / "store")
    rep = local.ingest("ohlcv", [klines])
    remote = Store(f"s3://{BUCKET}/stores/klines")
    rep_s3 = remote.ingest("ohlcv", [klines])
    assert rep_s3.dataset == rep.dataset and rep_s3.rows == rep.rows == {"bars": 89_282}
    return local, remote, rep.dataset


def _objects(store: Store, under: str) -> list[str]:
    return store.bucket.listdir(under, recursive=True)  # type: ignore[attr-defined]


@pytest.mark.slow  # moto's server start and a month of klines ingested twice (module fixture)
def test_s3_scans_equal_the_local_store(stores: tuple[Store, Store, str]) -> None:
    local, remote, ds = stores
    assert type(remote).__name__ == "S3Store" and repr(remote) == f"Store('s3://{BUCKET}/stores/klines')"
    assert local.scan_bars(ds).collect().equals(remote.scan_bars(ds).collect())
    cols = ["dataset", "kind", "partitioning", "rows", "ts_min", "ts_max"]
    assert remote.tables().select(cols).equals(local.tables().select(cols))
    assert remote.instruments().equals(local.instruments())
    # every data object is a file the catalog lists, and the reverse
    listed = sorted(f.removeprefix(f"s3://{BUCKET}/stores/klines/") for f in remote.files("bars", ds))
    # 2 symbols x 32 days: each file's 44,641 rows run to 2024-02-01 00:00 (wc -l of the files, minus the header)
    assert _objects(remote, "bars") == listed and len(listed) == 64


@pytest.mark.slow
def test_one_symbol_day_requests_only_its_object(stores: tuple[Store, Store, str], s3: Server) -> None:
    local, remote, ds = stores
    want = remote.files("bars", ds, "BTCUSDT", "2024-01-15", "2024-01-16")
    assert len(want) == 1 and "symbol=BTCUSDT/date=2024-01-15/" in want[0]
    since = s3.mark()
    got = remote.scan_bars(ds, "BTCUSDT", "2024-01-15", "2024-01-16").collect()
    reqs = s3.requests(since)
    assert got.height == 1440 and got.equals(local.scan_bars(ds, "BTCUSDT", "2024-01-15", "2024-01-16").collect())
    data = {path.split("?")[0] for _, path in reqs if "/bars/" in path}
    assert data == {want[0].removeprefix("s3:/")}  # s3://bkt/key -> /bkt/key: the one partition's object only
    assert not [p for _, p in reqs if "list-type" in p]  # pruning by the catalog: nothing listed
    assert {m for m, _ in reqs} <= {"GET", "HEAD"}  # a reader writes nothing


@pytest.mark.slow
def test_reingest_writes_nothing(stores: tuple[Store, Store, str], s3: Server, klines: Path) -> None:
    _, remote, ds = stores
    before = _objects(remote, "")
    since = s3.mark()
    rep = remote.ingest("ohlcv", [klines])
    assert rep.skipped and "already ingested" in (rep.reason or "")
    # the same records through another door (no source hash): merged by natural key, nothing added
    one = remote.scan_bars(ds, "ETHUSDT", "2024-01-20", "2024-01-21").collect()
    from marketlab.store import IngestBatch, Instrument

    rep2 = remote.write(IngestBatch(ds, {"bars": one}, [Instrument("ETHUSDT", 0.01, 0.0001)]))
    assert rep2.skipped and rep2.added == {}
    assert not [p for m, p in s3.requests(since) if m in ("PUT", "POST", "DELETE")]
    assert _objects(remote, "") == before


@pytest.mark.slow
def test_killed_writer_is_rolled_back_by_the_next_write(s3: Server, klines: Path) -> None:
    uri = f"s3://{BUCKET}/stores/killed"
    st = Store(uri)
    st.ingest("ohlcv", [klines / "BTCUSDT_1m_2024-01.csv.gz"], dataset="k")
    before = st.scan_bars("k").collect()
    code = (f"from marketlab.store import Store\nprint('READY', flush=True)\n"
            f"Store({uri!r}).ingest('ohlcv', [{str(klines / 'ETHUSDT_1m_2024-01.csv.gz')!r}], dataset='k')\n")
    p = run_python(code, fault="renamed#5")  # killed after uploading 5 of ETH's 32 partition files
    assert p.returncode != 0
    assert len(_objects(st, ".journal")) == 1 and len(_objects(st, "bars")) == 32 + 5
    assert Store(uri, create=False).scan_bars("k").collect().equals(before)  # readers never saw the uploads
    after = Store(uri)
    rep = after.ingest("ohlcv", [klines / "ETHUSDT_1m_2024-01.csv.gz"], dataset="k")
    assert rep.added == {"bars": 44_641}  # the file's rows (wc -l minus the header)
    assert any("rolled back interrupted write" in m for m in after.recovered)
    assert _objects(after, ".journal") == []
    listed = sorted(f.removeprefix(f"{uri}/") for f in after.files("bars", "k"))
    assert _objects(after, "bars") == listed and len(listed) == 64
    assert after.scan_bars("k").collect().height == before.height + 44_641


def test_missing_credentials_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from marketlab.cli.main import app

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    out = CliRunner().invoke(app, ["data", "list", "--store", f"s3://{BUCKET}/nowhere"])
    assert_one_line_error(out, f"s3://{BUCKET}/nowhere: no AWS credentials")


def test_credentials_from_a_profile(tmp_path: Path) -> None:
    from marketlab.store.objstore import credentials

    (tmp_path / "creds").write_text("[default]\naws_access_key_id = A\n\n[research]\naws_access_key_id = KEY\n"
                                    "aws_secret_access_key = SECRET\n")
    (tmp_path / "config").write_text("[profile research]\nregion = eu-west-1\n")
    env = {"HOME": str(tmp_path), "AWS_PROFILE": "research", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"),
           "AWS_CONFIG_FILE": str(tmp_path / "config")}
    c = credentials("s3://b/p", env)
    assert (c.access_key, c.secret_key, c.region, c.endpoint) == ("KEY", "SECRET", "eu-west-1", None)
    with pytest.raises(Exception, match="no AWS credentials"):
        credentials("s3://b/p", {**env, "AWS_PROFILE": "default"})  # default has a key but no secret


@pytest.mark.slow
def test_a_commit_raced_by_another_machine_is_refused_whole(s3: Server, klines: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers on two machines (two local caches): the one whose base version moved refuses, nothing of it
    visible, and its uploaded files are removed; the other's write stands."""
    from marketlab.store import objstore

    uri = f"s3://{BUCKET}/stores/raced"
    Store(uri).ingest("ohlcv", [klines / "BTCUSDT_1m_2024-01.csv.gz"], dataset="r")
    loser = Store(uri)
    real = objstore.duck.record_commit
    raced: list[int] = []

    def other_machine_commits_first(path, **commit):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(1)
            monkeypatch.setenv("MARKETLAB_S3_CACHE", str(tmp_path / "machine-b"))
            Store(uri).ingest("ohlcv", [klines / "ETHUSDT_1m_2024-01.csv.gz"], dataset="r")
        return real(path, **commit)

    monkeypatch.setattr(objstore.duck, "record_commit", other_machine_commits_first)
    one_day = Store(uri).scan_bars("r", "BTCUSDT", "2024-01-10", "2024-01-11").collect()
    from marketlab.core.errors import StoreError
    from marketlab.store import IngestBatch, Instrument

    with pytest.raises(StoreError, match="another writer committed"):
        loser.write(IngestBatch("r", {"bars": one_day.with_columns(symbol=pl.lit("XRPUSDT"))},
                                [Instrument("XRPUSDT", 0.0001, 0.1)]))
    after = Store(uri)
    assert after.instruments("r")["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]  # the winner's write stands
    listed = sorted(f.removeprefix(f"{uri}/") for f in after.files("bars", "r"))
    assert _objects(after, "bars") == listed and len(listed) == 64  # the loser's upload was removed
    assert _objects(after, ".journal") == []


@pytest.mark.slow
def test_writer_killed_after_its_commit_is_completed_by_the_next_write(s3: Server, klines: Path) -> None:
    uri = f"s3://{BUCKET}/stores/killed-after"
    Store(uri).ingest("ohlcv", [klines / "BTCUSDT_1m_2024-01.csv.gz"], dataset="k")
    code = (
        "import polars as pl\nfrom marketlab.store import Store, IngestBatch\n"
        f"st = Store({uri!r})\n"
        "days = st.scan_bars('k', 'BTCUSDT', '2024-01-10', '2024-01-12').collect()\n"
        "print('READY', flush=True)\n"
        "st.replace(IngestBatch('k', {'bars': days.with_columns(pl.col('close') + 1.0)}, [st.instrument('k', 'BTCUSDT')]))\n"
    )
    p = run_python(code, fault="obsolete#1")  # killed after the manifest PUT, one of 2 superseded files deleted
    assert p.returncode != 0
    reader = Store(uri, create=False)
    listed = sorted(f.removeprefix(f"{uri}/") for f in reader.files("bars", "k"))
    assert len(listed) == 32 and len(_objects(reader, "bars")) == 33  # committed; one superseded file left over
    day = reader.scan_bars("k", "BTCUSDT", "2024-01-10", "2024-01-11").collect()
    btc = pl.read_csv(klines / "BTCUSDT_1m_2024-01.csv.gz")  # the file itself: closes of 2024-01-10, plus 1
    want = btc.filter(pl.col("datetime").str.starts_with("2024-01-10"))["close"] + 1.0
    assert day["close"].to_list() == want.to_list()
    writer = Store(uri)
    writer.ingest("ohlcv", [klines / "ETHUSDT_1m_2024-01.csv.gz"], dataset="k")
    assert any("completed interrupted write" in m for m in writer.recovered)
    listed = sorted(f.removeprefix(f"{uri}/") for f in writer.files("bars", "k"))
    assert _objects(writer, "bars") == listed and len(listed) == 64 and _objects(writer, ".journal") == []
