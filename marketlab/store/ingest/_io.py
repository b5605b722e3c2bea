"""Shared reading helpers for the ingest parsers: decompress by suffix, CSV with one-line errors, progress."""

from __future__ import annotations

import gzip
import lzma
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import polars as pl

from marketlab.core.errors import DataError

T = TypeVar("T")

try:  # ISA-L inflates gzip ~2x faster than zlib (same output); zlib when isal is not installed
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; keep working without it
    _inflate = zlib  # type: ignore[no-redef]


def read_bytes(path: Path) -> bytes:
    """File bytes, gunzipped/unxz'd by suffix; a truncated archive is a one-line :class:`DataError`."""
    try:
        if path.suffix == ".gz":
            raw = path.read_bytes()
            # One zlib call into one buffer (gzip.open().read() inflates in 64 KiB chunks and joins them:
            # an extra copy of the whole file); multi-member or truncated files take the gzip module.
            d = _inflate.decompressobj(31)
            try:
                out = d.decompress(raw)
            except _inflate.error:
                out, d = b"", None
            if d is not None and d.eof and not d.unused_data:
                return out
            return gzip.decompress(raw)
        if path.suffix == ".xz":
            with lzma.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(path, "file not found") from None
        raise DataError(path, f"cannot decompress ({exc.__class__.__name__}: truncated or corrupt archive)") from None


def read_csv(path: Path, *, has_header: bool = True, separator: str = ",", **kw) -> pl.DataFrame:
    """All-string CSV read (types are checked by the caller, so errors can name field and row)."""
    data = read_bytes(path)
    if not data.strip():
        raise DataError(path, "empty file")
    try:
        return pl.read_csv(
            data, has_header=has_header, separator=separator, infer_schema=False, **kw
        )
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
