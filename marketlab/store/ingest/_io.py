"""Shared reading helpers for the ingest parsers: decompress by suffix (whole or in line-aligned chunks),
CSV with one-line errors, progress."""

from __future__ import annotations

import gzip
import lzma
import queue
import threading
import types
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import polars as pl

from marketlab.core.errors import DataError

T = TypeVar("T")

_inflate: types.ModuleType
try:  # ISA-L inflates gzip ~2x faster than zlib (same output); zlib when isal is not installed
    from isal import isal_zlib

    _inflate = isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; keep working without it
    _inflate = zlib
_INFLATE_ERROR: type[Exception] = getattr(_inflate, "error", zlib.error)


def _zip_member(path: Path, zf: zipfile.ZipFile) -> str:
    """The one file inside a Binance-style ``.zip`` (``BTCUSDT-1m-2022-01-01.csv``); more or none is an error."""
    names = [n for n in zf.namelist() if not n.endswith("/")]
    if len(names) != 1:
        raise DataError(
            path, f"zip archive must hold exactly one data file, found {len(names)}", value=", ".join(names[:3]) or None
        )
    return names[0]


def _corrupt(path: Path, exc: BaseException) -> DataError:
    if isinstance(exc, FileNotFoundError):
        return DataError(path, "file not found")
    return DataError(path, f"cannot decompress ({exc.__class__.__name__}: truncated or corrupt archive)")


_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, lzma.LZMAError, zlib.error, zipfile.BadZipFile, _INFLATE_ERROR)


def open_stream(path: Path) -> IO[bytes]:
    """A binary stream of the file's content, decompressed by suffix (``.gz``, ``.xz``, ``.zip`` with one
    member, else plain). Errors while reading it must go through :func:`iter_chunks` to become one line."""
    try:
        if path.suffix == ".gz":
            try:
                from isal import igzip

                return cast(IO[bytes], igzip.open(path, "rb"))  # type: ignore[no-untyped-call]
            except ImportError:  # pragma: no cover - isal is a dependency
                return cast(IO[bytes], gzip.open(path, "rb"))
        if path.suffix == ".xz":
            return lzma.open(path, "rb")
        if path.suffix == ".zip":
            zf = zipfile.ZipFile(path)
            return zf.open(_zip_member(path, zf))
        return open(path, "rb")
    except _ERRORS as exc:
        raise _corrupt(path, exc) from None


def iter_chunks(path: Path, chunk_bytes: int = 64 << 20) -> Iterator[bytes]:
    """The file's (decompressed) bytes in pieces of about ``chunk_bytes``, each ending at a line end (the
    last may lack the final newline), so a CSV chunk never splits a row. A cut or corrupt archive is a
    one-line :class:`DataError`; memory is bounded by the chunk (plus one line), not the file.

    A piece is ``chunk_bytes`` read plus the rest of its last line (``readline``): one copy of the text,
    where cutting at the last line end and carrying the remainder into the next piece cost two."""
    stream = open_stream(path)
    try:
        with stream:
            while True:
                try:
                    block = stream.read(chunk_bytes)
                    if not block:
                        break
                    if not block.endswith(b"\n"):
                        block += stream.readline()
                except _ERRORS as exc:
                    raise _corrupt(path, exc) from None
                yield block
    except _ERRORS as exc:  # errors raised on close (zip CRC check)
        raise _corrupt(path, exc) from None


class Prefetch:
    """``chunks`` pulled one piece ahead by a worker thread: the next piece is decompressed while the
    caller parses this one (zlib/ISA-L and the numba kernels release the GIL). Iterate it like
    ``chunks``; an exception the worker meets is raised here, in order. :meth:`close` stops the worker.
    Memory: the worker starts a piece only after the caller took the previous one, so at most the
    caller's piece and the one being made are held (a stream's text stays ~2 pieces)."""

    _END = object()

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._slot = threading.Semaphore(1)  # released when the caller takes a piece
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(chunks,), daemon=True, name="prefetch")
        self._thread.start()

    def _wait_slot(self) -> bool:
        while not self._stop.is_set():
            if self._slot.acquire(timeout=0.05):
                return True
        return False

    def _run(self, chunks: Iterator[bytes]) -> None:
        try:
            while self._wait_slot():
                c = next(chunks, self._END)
                self._q.put(c)  # never blocks: the slot guarantees the queue is empty
                if c is self._END:
                    return
        except BaseException as exc:  # handed to the consumer, raised where it reads
            self._q.put(exc)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        item = self._q.get()
        self._slot.release()
        if item is self._END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return cast(bytes, item)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _read_zip(path: Path) -> bytes:
    """The one member of a ``.zip``, inflated with ISA-L when deflated (~2x zlib; CRC and size still checked)."""
    import struct

    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(_zip_member(path, zf))
            if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:
                return zf.read(info)
            fp = zf.fp
            assert fp is not None
            fp.seek(info.header_offset)
            head = fp.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            fp.seek(info.header_offset + 30 + name_len + extra_len)
            raw = fp.read(info.compress_size)
        d = _inflate.decompressobj(-15)
        out = d.decompress(raw) + d.flush()
        if len(out) != info.file_size or _inflate.crc32(out) & 0xFFFFFFFF != info.CRC:
            raise zipfile.BadZipFile("size or CRC mismatch")
        return bytes(out)
    except _ERRORS as exc:
        raise _corrupt(path, exc) from None


def read_bytes(path: Path) -> bytes:
    """File bytes, gunzipped/unxz'd/unzipped by suffix; a truncated archive is a one-line :class:`DataError`."""
    if path.suffix == ".zip":
        return _read_zip(path)
    try:
        if path.suffix == ".gz":
            raw = path.read_bytes()
            # One zlib call into one buffer (gzip.open().read() inflates in 64 KiB chunks and joins them:
            # an extra copy of the whole file); multi-member or truncated files take the gzip module.
            d = _inflate.decompressobj(31)
            try:
                out = d.decompress(raw)
            except _INFLATE_ERROR:
                return gzip.decompress(raw)
            if d.eof and not d.unused_data:
                return bytes(out)
            return gzip.decompress(raw)
        if path.suffix == ".xz":
            with lzma.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except _ERRORS as exc:
        raise _corrupt(path, exc) from None


def read_csv(path: Path, *, has_header: bool = True, separator: str = ",", **kw: Any) -> pl.DataFrame:
    """All-string CSV read (types are checked by the caller, so errors can name field and row)."""
    data = read_bytes(path)
    if not data.strip():
        raise DataError(path, "empty file")
    try:
        return pl.read_csv(data, has_header=has_header, separator=separator, infer_schema=False, **kw)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"malformed CSV ({first[:160]})") from None


def to_float(df: pl.DataFrame, col: str, path: Path, *, out: str | None = None) -> pl.Series:
    """Parse string column ``col`` to Float64; a non-numeric cell names its row and value. Empty -> null."""
    s = df.get_column(col)
    f = s.str.strip_chars().replace("", None).cast(pl.Float64, strict=False)
    bad = f.is_null() & s.str.strip_chars().replace("", None).is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise DataError(path, "not a number", field=col, row=row + 1, value=s[row])
    return f.alias(out or col)


def progress(items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar when ``enabled`` (CLI ingests), else iterate plainly."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit="file", leave=False)


def expand(paths: Iterable[Path], patterns: tuple[str, ...]) -> list[Path]:
    """Files from ``paths``; directories expand to their files matching ``patterns`` (sorted)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted({f for pat in patterns for f in p.glob(pat) if f.is_file()})
            if not found:
                raise DataError(p, f"no input files matching {', '.join(patterns)}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(p, "file not found")
    return out


def dataset_from(paths: list[Path]) -> str:
    """Default dataset name: the folder the (first) input lives in, made name-safe."""
    import re

    p = paths[0]
    folder = p if p.is_dir() else p.parent
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", folder.resolve().name).strip("_-") or "data"
    return name
