"""Atomic file replacement: a reader sees the old file or the new one, never a partial write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from marketlab.core.faults import point


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on one file system, so a writer killed at any point leaves either the old file
    or the new one (plus nothing: the temporary file is removed on any exception).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        point("atomic-begin")
        write(tmp)
        point("atomic-written")
        os.replace(tmp, target)
        point("atomic-replaced")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
