"""The store on object storage: ``Store("s3://bucket/prefix")`` reads and writes through the same API.

Layout under ``s3://bucket/prefix`` (data files exactly as in a local store, see :mod:`.catalog`)::

    <kind>/dataset=<name>/.../part-<id>.parquet    data files, written once, never overwritten
    _catalog/<version>-<write_id>.duckdb          catalog snapshots (DuckDB files), immutable
    _manifest.json                                the committed version: {"version", "catalog", "write_id"}
    .journal/<write_id>.json                      files a write in progress adds and supersedes

A DuckDB database cannot be written in place on S3, so the catalog is copy-on-write: a writer copies the
committed snapshot into its local cache, records its commit in the copy (the same transaction as a local
store), uploads the copy as a new immutable object and then PUTs ``_manifest.json`` naming it. That
single PUT is the commit point: readers GET the manifest, open the snapshot it names (downloaded once
into the local cache) and read only the data files it lists, so they see a write entirely or not at all.
Partition pruning is the same file list: a scan of one symbol/day requests only that partition's files
and lists nothing.

What holds and what does not (data/README.md says it for users):

* atomic visibility, no lost or doubled record, idempotent re-ingest, recovery of a killed writer's
  leftovers at the next write: as on a local store;
* writers on ONE machine are serialised by a lock file in the local cache; writers on several machines
  are not: without a conditional PUT in the client, a write checks the manifest version it started from
  just before its commit and refuses if another writer committed meanwhile, which leaves a window of one
  request in which two commits can race (the later one wins, the earlier one's files become orphans that
  are never read). Run one writer per store at a time;
* recovery assumes no other writer is alive (it rolls back every journal it finds);
* a scan planned just before a write commits may find a superseded file deleted: it fails whole (never
  mixes) and ``Store.read`` retries it on the new snapshot; the last :data:`KEEP_CATALOGS` snapshots are
  kept for readers that just fetched the manifest;
* ``Store.sql`` is not available (DuckDB would need its httpfs extension).

Credentials come from the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``) or a profile (``AWS_PROFILE``, default ``default``, in
``AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``); the region from ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / the profile (default us-east-1); a non-AWS endpoint (MinIO, an emulator) from
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``. pyarrow's S3 filesystem writes; Polars' object store
reads. Local state (catalog snapshots, staging, the writers' lock) lives in ``$MARKETLAB_S3_CACHE`` or
``~/.cache/marketlab/s3``.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.errors import StoreError
from marketlab.store import duck, faults
from marketlab.store.catalog import _DATA_DIRS, Store
from marketlab.store.journal import STAGING_PREFIX

MANIFEST = "_manifest.json"
CATALOG_DIR = "_catalog"
JOURNAL_DIR = ".journal"
KEEP_CATALOGS = 4  # committed catalog snapshots kept on S3 (readers may have just read an older manifest)
FORMAT = "marketlab-s3-store/1"


def s3_uri(path: str | Path | None) -> str | None:
    """``s3://bucket/prefix`` (no trailing slash) when ``path`` names an S3 location, else None. A ``Path``
    collapses ``s3://`` to ``s3:/``; both spellings are accepted."""
    if path is None:
        return None
    s = str(path)
    if s.startswith("s3://"):
        rest = s[5:]
    elif s.startswith("s3:/"):
        rest = s[4:]
    else:
        return None
    return "s3://" + rest.strip("/")


@dataclass(frozen=True)
class Credentials:
    """Resolved S3 access: keys, region and an optional endpoint URL (``http://host:port``)."""

    access_key: str
    secret_key: str
    session_token: str | None
    region: str
    endpoint: str | None


def _profile_value(files: Sequence[Path], sections: Sequence[str], key: str) -> str | None:
    for f in files:
        if not f.is_file():
            continue
        cp = configparser.ConfigParser()
        try:
            cp.read(f)
        except configparser.Error:
            continue
        for sec in sections:
            if cp.has_option(sec, key):
                return cp.get(sec, key).strip() or None
    return None


def credentials(uri: str, env: dict[str, str] | None = None) -> Credentials:
    """The credentials for ``uri`` from the standard AWS variables or profile (see the module docstring);
    none found is a :class:`StoreError` naming the URI and what to set."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    cred_file = [Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")]
    conf_file = [Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")]
    conf_sections = [profile if profile == "default" else f"profile {profile}"]
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    token = env.get("AWS_SESSION_TOKEN")
    if not (key and secret):
        key = _profile_value(cred_file, [profile], "aws_access_key_id")
        secret = _profile_value(cred_file, [profile], "aws_secret_access_key")
        token = _profile_value(cred_file, [profile], "aws_session_token")
    if not (key and secret):
        raise StoreError(
            f"{uri}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming "
            f"a profile in {cred_file[0]}"
        )
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
              or _profile_value(conf_file, conf_sections, "region") or "us-east-1")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    return Credentials(key, secret, token, region, endpoint)


def cache_dir(uri: str) -> Path:
    """Local folder of one S3 store's snapshots, staging and writers' lock."""
    base = Path(os.environ.get("MARKETLAB_S3_CACHE") or Path.home() / ".cache" / "marketlab" / "s3")
    return base / uri.removeprefix("s3://")


class Bucket:
    """The objects under one ``s3://bucket/prefix`` through pyarrow's S3 filesystem (store-relative keys)."""

    def __init__(self, uri: str, creds: Credentials) -> None:
        import pyarrow.fs as pafs

        self.uri = uri
        rest = uri.removeprefix("s3://")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise StoreError(f"{uri}: no bucket named (expected s3://bucket/prefix)")
        self.base = f"{self.bucket}/{prefix}".rstrip("/")
        kw: dict[str, Any] = {}
        if creds.endpoint:
            scheme, _, host = creds.endpoint.partition("://")
            kw = {"endpoint_override": host.rstrip("/"), "scheme": scheme} if host else {"endpoint_override": scheme}
        self.fs = pafs.S3FileSystem(
            access_key=creds.access_key, secret_key=creds.secret_key, session_token=creds.session_token,
            region=creds.region, connect_timeout=5, request_timeout=60,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3), **kw,
        )
        self.options: dict[str, str] = {"aws_access_key_id": creds.access_key,
                                         "aws_secret_access_key": creds.secret_key, "aws_region": creds.region}
        if creds.session_token:
            self.options["aws_session_token"] = creds.session_token
        if creds.endpoint:
            self.options["aws_endpoint_url"] = creds.endpoint
            self.options["aws_allow_http"] = str(creds.endpoint.startswith("http://")).lower()
        self._selector = pafs.FileSelector

    def key(self, rel: str) -> str:
        """``bucket/prefix/rel``: the path pyarrow's filesystem takes."""
        return f"{self.base}/{rel}"

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """An S3 failure other than a missing object as one :class:`StoreError` line naming the store."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as exc:
            first = " ".join(str(exc).split())[:300]
            raise StoreError(f"{self.uri}: {what} failed: {first}") from None

    def get(self, rel: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        with self.errors(f"reading {rel}"):
            try:
                with self.fs.open_input_stream(self.key(rel)) as fh:
                    data: bytes = fh.read()
                    return data
            except FileNotFoundError:
                return None

    def put(self, rel: str, data: bytes) -> None:
        """Write one object whole (an S3 PUT is atomic: readers see the old object or the new one)."""
        with self.errors(f"writing {rel}"), self.fs.open_output_stream(self.key(rel)) as fh:
            fh.write(data)

    def upload(self, local: Path, rel: str) -> None:
        """Upload a local file as object ``rel``."""
        with self.errors(f"uploading {rel}"), open(local, "rb") as src, \
                self.fs.open_output_stream(self.key(rel)) as dst:
            shutil.copyfileobj(src, dst, 8 << 20)

    def delete(self, rels: Sequence[str]) -> int:
        """Delete these objects if present; returns how many were deleted."""
        n = 0
        with self.errors("deleting objects"):
            for rel in rels:
                try:
                    self.fs.delete_file(self.key(rel))
                    n += 1
                except FileNotFoundError:
                    pass
        return n

    def listdir(self, rel: str, recursive: bool = False) -> list[str]:
        """Store-relative keys of the objects under ``rel`` (empty when there are none)."""
        import pyarrow.fs as pafs

        with self.errors(f"listing {rel}"):
            infos = self.fs.get_file_info(self._selector(self.key(rel), recursive=recursive, allow_not_found=True))
        return sorted(i.path[len(self.base) + 1:] for i in infos if i.type == pafs.FileType.File)


class S3Store(Store):
    """A :class:`Store` whose files live under ``s3://bucket/prefix`` (see the module docstring)."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        from marketlab.store.catalog import default_store_path

        uri = s3_uri(path if path is not None else default_store_path())
        if uri is None:
            raise StoreError(f"{path}: not an s3:// URI")
        self.uri = uri
        self.bucket = Bucket(uri, credentials(uri))
        self.path = cache_dir(uri)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "catalogs").mkdir(exist_ok=True)
        self._lock_path = self.path / ".lock"
        self._cache: tuple[Any, dict[str, Any]] | None = None
        self.recovered: list[str] = []
        self._version: int | None = None
        self._catalog_file: Path | None = None
        if self._manifest() is None:
            self._no_manifest(create)

    @property
    def label(self) -> str:
        """The store's ``s3://`` URI."""
        return self.uri

    # ------------------------------------------------------------------ the committed catalog snapshot
    @property
    def catalog_path(self) -> Path:
        """The local copy of the committed catalog snapshot (fetched when the manifest moved on)."""
        self._sync()
        assert self._catalog_file is not None
        return self._catalog_file

    @catalog_path.setter
    def catalog_path(self, value: Path) -> None:
        raise AttributeError("an S3 store's catalog is the snapshot its manifest names")

    def _manifest(self) -> dict[str, Any] | None:
        raw = self.bucket.get(MANIFEST)
        if raw is None:
            return None
        try:
            m: dict[str, Any] = json.loads(raw)
            int(m["version"]), str(m["catalog"])
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"{self.uri}/{MANIFEST}: not a marketlab store manifest") from None
        return m

    def _sync(self) -> None:
        """Point at the snapshot the manifest names now (one GET; the snapshot is downloaded once)."""
        for _ in range(3):
            m = self._manifest()
            if m is None:
                raise StoreError(f"{self.uri}: no store here ({MANIFEST} is missing)")
            if m["version"] == self._version:
                return
            local = self.path / "catalogs" / Path(m["catalog"]).name
            if not local.exists():
                data = self.bucket.get(m["catalog"])
                if data is None:  # a writer committed twice since this GET and pruned that snapshot
                    continue
                tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}")
                tmp.write_bytes(data)
                os.replace(tmp, local)
            self._version, self._catalog_file = int(m["version"]), local
            self._prune_local()
            return
        raise StoreError(f"{self.uri}: the manifest names a catalog snapshot that does not exist")

    def _prune_local(self) -> None:
        snaps = sorted(p for p in (self.path / "catalogs").glob("*.duckdb") if not p.name.startswith("."))
        for p in snaps[:-KEEP_CATALOGS]:
            if p != self._catalog_file:
                p.unlink(missing_ok=True)

    def _catalog_sig(self) -> tuple[Any, ...]:
        self._sync()
        return (self._version,)

    def _no_manifest(self, create: bool) -> None:
        data = [d for d in _DATA_DIRS if self.bucket.listdir(d, recursive=True)]
        if data:
            raise StoreError(
                f"{self.uri}: {MANIFEST} is missing but the store holds data ({', '.join(data)}); refusing to "
                "start an empty catalog over it"
            )
        if not create:
            raise StoreError(f"{self.uri}: no store here (create one with `marketlab ingest --store {self.uri} ...`)")
        with self._write_lock():
            if self._manifest() is not None:
                return
            wid = uuid.uuid4().hex
            local = self.path / "catalogs" / f".new-{wid}.duckdb"
            duck.create_catalog(local, self.path)
            self._publish_catalog(local, 1, wid)

    def _publish_catalog(self, local: Path, version: int, write_id: str) -> None:
        """Upload ``local`` as snapshot ``version`` and commit it with the manifest PUT."""
        name = f"{version:010d}-{write_id}.duckdb"
        self.bucket.upload(local, f"{CATALOG_DIR}/{name}")
        faults.point("catalog")
        manifest = {"format": FORMAT, "version": version, "catalog": f"{CATALOG_DIR}/{name}", "write_id": write_id,
                    "committed_at": dt.datetime.now(dt.UTC).isoformat()}
        self.bucket.put(MANIFEST, json.dumps(manifest).encode())  # THE commit point
        faults.point("committed")
        final = self.path / "catalogs" / name
        os.replace(local, final)
        self._version, self._catalog_file = version, final

    # ------------------------------------------------------------------ where data files live
    def _data_root(self) -> str:
        return self.uri

    def _storage_options(self) -> dict[str, str]:
        return dict(self.bucket.options)

    def _read_files(self, rels: Sequence[str]) -> pl.DataFrame:
        return pl.read_parquet([f"{self.uri}/{r}" for r in rels], storage_options=self._storage_options())

    def _journal_begin(self, write_id: str, entry: dict[str, Any]) -> None:
        self.bucket.put(f"{JOURNAL_DIR}/{write_id}.json", json.dumps(entry).encode())

    def _journal_end(self, write_id: str) -> None:
        self.bucket.delete([f"{JOURNAL_DIR}/{write_id}.json"])

    def _publish(self, staged: Path, rel: str) -> None:
        self.bucket.upload(staged, rel)
        staged.unlink()

    def _remove(self, rels: Sequence[str]) -> None:
        self.bucket.delete(rels)

    def _commit_catalog(self, **commit: Any) -> list[pl.DataFrame]:
        """Copy-on-write catalog commit: record the write in a copy of the committed snapshot, upload it,
        check that nobody committed since (best effort, see the module docstring), PUT the manifest."""
        base = self.catalog_path
        version = self._version
        assert version is not None
        wid = str(commit["write_id"])
        local = self.path / "catalogs" / f".new-{wid}.duckdb"
        shutil.copyfile(base, local)
        try:
            fresh = duck.record_commit(local, **commit)
            now = self._manifest()
            if now is None or int(now["version"]) != version:
                raise StoreError(
                    f"{self.uri}: another writer committed (version {None if now is None else now['version']}) while "
                    f"this write was based on version {version}; nothing of this write is visible, run it again"
                )
            self._publish_catalog(local, version + 1, wid)
        finally:
            local.unlink(missing_ok=True)
        return fresh

    # ------------------------------------------------------------------ recovery and pruning
    def _recover_locked(self) -> None:
        """At the start of a write: roll back or complete what dead writers left, drop snapshots nobody
        can reach (uploaded but never committed, or older than the last :data:`KEEP_CATALOGS`)."""
        self._sync()  # the committed version decides what is committed and which snapshots are unreachable
        msgs: list[str] = []
        for rel in self.bucket.listdir(JOURNAL_DIR):
            raw = self.bucket.get(rel)
            try:
                entry = json.loads(raw) if raw is not None else None
                wid = entry["write_id"] if entry else None
            except (ValueError, KeyError, TypeError):
                entry, wid = None, None
            if entry is None or wid is None:
                self.bucket.delete([rel])
                continue
            if duck.is_committed(self.catalog_path, wid):
                n = self.bucket.delete(entry["obsolete"])
                msgs.append(f"completed interrupted write {wid} into '{entry['dataset']}' (deleted {n} superseded file(s))")
            else:
                n = self.bucket.delete(entry["new"])
                msgs.append(f"rolled back interrupted write {wid} into '{entry['dataset']}' (deleted {n} uncommitted file(s))")
            self.bucket.delete([rel])
        version = self._version
        assert version is not None and self._catalog_file is not None
        current = f"{CATALOG_DIR}/{self._catalog_file.name}"
        snaps = self.bucket.listdir(CATALOG_DIR)
        committed = [s for s in snaps if _snap_version(s) <= version]
        drop = [s for s in snaps if _snap_version(s) > version] + committed[:-KEEP_CATALOGS]
        drop = [s for s in drop if s != current]  # never the snapshot the manifest names
        self.bucket.delete(drop)
        for d in self.path.iterdir():
            if d.name.startswith(STAGING_PREFIX):
                shutil.rmtree(d, ignore_errors=True)
        if msgs:
            self._cache = None
            for m in msgs:
                sys.stderr.write(f"marketlab store {self.uri}: {m}\n")
            self.recovered.extend(msgs)

    def _try_recover(self) -> None:
        return None  # readers never recover on S3: only a writer, under its lock (see the module docstring)

    def _migrate(self) -> None:
        return None  # S3 stores are created with the files table

    def sql(self, query: str) -> pl.DataFrame:
        """Not available on object storage (DuckDB would need its httpfs extension)."""
        raise StoreError(f"{self.uri}: SQL over an s3:// store is not supported; scan it with the Python API "
                         "(Store.scan_*) or ingest the data into a local store")


def _snap_version(rel: str) -> int:
    name = rel.rsplit("/", 1)[-1]
    try:
        return int(name.split("-", 1)[0])
    except ValueError:
        return 0


__all__ = ["KEEP_CATALOGS", "MANIFEST", "Bucket", "Credentials", "S3Store", "cache_dir", "credentials", "s3_uri"]
