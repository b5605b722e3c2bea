"""The write journal and recovery: what a dead writer left is removed or completed on the next open.

Before a writer renames its first file into the data tree it writes ``<store>/.journal/<write_id>.json``
naming every file it will add (``new``) and every file the write supersedes (``obsolete``). The catalog
commit (:func:`marketlab.store.duck.record_commit`) records the ``write_id``; after it the writer deletes
the obsolete files, then the journal, then its ``.staging-<write_id>`` folder.

Recovery (under the store's write lock, so no writer is alive) reads each journal left behind:

* write not committed -> delete its ``new`` files (readers never saw them: they are not in the catalog);
* write committed -> delete its remaining ``obsolete`` files (readers no longer see them);

then removes every ``.staging-*`` folder and folds a leftover DuckDB write-ahead log into the catalog.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from marketlab.store import duck

JOURNAL_DIR = ".journal"
STAGING_PREFIX = ".staging-"
# Leftovers of a catalog creation that was killed (the template, the file before its rename).
_SCRATCH_PREFIXES = (STAGING_PREFIX, ".catalog-template-", "catalog.duckdb.tmp-")


def journal_path(root: Path, write_id: str) -> Path:
    """``<store>/.journal/<write_id>.json``."""
    return root / JOURNAL_DIR / f"{write_id}.json"


def write_journal(root: Path, write_id: str, entry: dict[str, Any]) -> Path:
    """Write the journal of ``write_id`` atomically (temp file + rename): it exists whole or not at all."""
    path = journal_path(root, write_id)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(entry, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def remove_files(root: Path, rel_paths: list[str]) -> int:
    """Delete these store-relative files if present and prune directories they leave empty."""
    n = 0
    dirs: set[Path] = set()
    for rel in rel_paths:
        p = root / rel
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            pass
        dirs.add(p.parent)
    prune_empty_dirs(root, dirs)
    return n


def prune_empty_dirs(root: Path, dirs: set[Path]) -> None:
    """Remove each directory of ``dirs`` and its parents up to ``root`` (excluded) while empty."""
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        while d != root and root in d.parents:
            try:
                d.rmdir()
            except OSError:  # not empty (or gone)
                break
            d = d.parent


def pending(root: Path) -> bool:
    """Whether a writer left anything behind (a journal, a staging folder): cheap, two listings."""
    jdir = root / JOURNAL_DIR
    if jdir.is_dir() and any(True for _ in jdir.iterdir()):
        return True
    return any(n.startswith(_SCRATCH_PREFIXES) for n in os.listdir(root))


def recover(root: Path, catalog: Path) -> list[str]:
    """Roll back or complete every interrupted write; returns one message per action taken.

    Must run under the store's write lock (no writer alive).
    """
    messages: list[str] = []
    jdir = root / JOURNAL_DIR
    if jdir.is_dir():
        for j in sorted(jdir.iterdir()):
            if j.suffix != ".json":
                j.unlink()
                continue
            entry = json.loads(j.read_text())
            wid = entry["write_id"]
            if duck.is_committed(catalog, wid):
                n = remove_files(root, entry["obsolete"])
                messages.append(f"completed interrupted write {wid} into '{entry['dataset']}' "
                                f"(deleted {n} superseded file(s))")
            else:
                n = remove_files(root, entry["new"])
                messages.append(f"rolled back interrupted write {wid} into '{entry['dataset']}' "
                                f"(deleted {n} uncommitted file(s))")
            j.unlink()
        try:
            jdir.rmdir()
        except OSError:
            pass
    for name in sorted(os.listdir(root)):
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(root / name, ignore_errors=True)
            messages.append(f"removed staging folder {name} of an interrupted write")
        elif name.startswith(_SCRATCH_PREFIXES):
            (root / name).unlink(missing_ok=True)
    if catalog.with_name(catalog.name + ".wal").exists():
        duck.checkpoint(catalog)
    return messages
