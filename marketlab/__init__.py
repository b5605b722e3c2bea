"""marketlab: a modular financial ML and market-simulation platform.

Importing the root package is cheap and imports no layer. ``import marketlab.envs`` registers the
gymnasium ids (``marketlab/Trading-v0`` ...); :mod:`marketlab.core.registry` resolves every component id.

It does one thing: when ``NUMBA_CACHE_DIR`` is unset, it points numba's cache of compiled kernels at the
user's cache folder (:func:`default_numba_cache_dir`) before any module can import numba, so compiled
kernels never land in ``__pycache__`` folders inside the installed package (CLI and Python API alike).
"""

import os as _os
from pathlib import Path as _Path

__version__ = "0.1.0"


def default_numba_cache_dir() -> _Path:
    """Where numba caches compiled kernels when ``NUMBA_CACHE_DIR`` is unset: the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``; ``%LOCALAPPDATA%`` on Windows) + ``marketlab/numba``."""
    base = _os.environ.get("XDG_CACHE_HOME") or (_os.environ.get("LOCALAPPDATA") if _os.name == "nt" else None)
    return (_Path(base) if base else _Path.home() / ".cache") / "marketlab" / "numba"


# numba reads NUMBA_CACHE_DIR once, when it is first imported; a user's own setting always wins.
if not _os.environ.get("NUMBA_CACHE_DIR"):
    _os.environ["NUMBA_CACHE_DIR"] = str(default_numba_cache_dir())
