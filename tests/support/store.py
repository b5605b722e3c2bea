"""Helpers shared by the store tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_hash(root: Path) -> str:
    """Hash of every path (files and directories) and every file's bytes under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        h.update(dirpath.encode())
        for name in sorted(filenames):
            h.update(name.encode())
            h.update((Path(dirpath) / name).read_bytes())
    return h.hexdigest()
