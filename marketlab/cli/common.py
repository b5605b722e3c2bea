"""Shared CLI plumbing: one-line errors, --json output, store option, --debug.

Every command is wrapped by :func:`command`:

* a user's mistake (:class:`MarketlabError`, a missing file, a path that is a folder, a permission
  problem) prints ``error: <one line>`` on stderr and exits with status 2;
* anything else is a bug: one line ``error: internal error: <Type>: <message>`` plus a hint to rerun
  with ``marketlab --debug ...`` (which re-raises it with its traceback), exit status 1.

``--json`` output is always valid JSON: NaN and infinities become ``null``.
"""

from __future__ import annotations

import functools
import json as jsonlib
import math
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.core.errors import MarketlabError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default: $MARKETLAB_STORE or data/store)."),
]

DEBUG = {"on": bool(os.environ.get("MARKETLAB_DEBUG"))}


def set_debug(on: bool) -> None:
    """``marketlab --debug``: let unexpected exceptions through with their traceback."""
    DEBUG["on"] = on or DEBUG["on"]


def jsonable(o: Any) -> Any:
    """``o`` with NaN/inf -> None, numpy scalars/arrays -> Python, paths and other objects -> str."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [jsonable(v) for v in o]
    if o is None or isinstance(o, (bool, int, str)):
        return o
    if isinstance(o, Decimal):
        return jsonable(float(o))
    try:
        import numpy as np

        if isinstance(o, np.ndarray):
            return jsonable(o.tolist())
        if isinstance(o, np.generic):
            return jsonable(o.item())
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def dumps(summary: Any) -> str:
    """Strict JSON text of ``summary`` (never ``NaN``/``Infinity``)."""
    return jsonlib.dumps(jsonable(summary), indent=2, allow_nan=False)


def emit(summary: dict[str, Any], as_json: bool, title: str = "") -> None:
    """Print ``summary`` as JSON on stdout, or as a readable key/value table."""
    if as_json:
        sys.stdout.write(dumps(summary) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_header=False)
    for k, v in summary.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        elif isinstance(v, (dict, list)):
            v = jsonlib.dumps(jsonable(v))
            if len(v) > 200:
                v = v[:200] + "..."
        table.add_row(str(k), str(v))
    Console().print(table)


def one_line(message: object) -> str:
    """``message`` with all whitespace runs (newlines included) folded to one space."""
    return " ".join(str(message).split())


def fail(message: str) -> None:
    """Print a one-line error and exit 2."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(2)


def _os_error(exc: OSError) -> str:
    name = exc.filename or ""
    reason = {FileNotFoundError: "file not found", IsADirectoryError: "is a directory",
              NotADirectoryError: "not a directory", PermissionError: "permission denied"}.get(type(exc))
    return f"{name}: {reason or exc.strerror or exc}" if name else one_line(exc)


def _unreadable_parquet(exc: Exception) -> bool:
    """Whether ``exc`` is Polars/DuckDB/pyarrow failing to decode a Parquet file."""
    text = str(exc).lower()
    return type(exc).__name__ in ("ComputeError", "InvalidInputException", "ArrowInvalid", "IOException") and (
        "parquet" in text or "magic bytes" in text)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for CLI commands: bad input -> one line + exit 2; a bug -> one line + --debug hint, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MarketlabError as exc:
            fail(str(exc))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            fail(_os_error(exc))
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if DEBUG["on"]:
                raise
            first = one_line(str(exc).splitlines()[0] if str(exc) else "")
            if _unreadable_parquet(exc):  # a damaged data file (in the store or given): not a bug in marketlab
                fail(f"unreadable Parquet data: {first[:300]}")
            typer.echo(f"error: internal error: {type(exc).__name__}: {first[:300]} "
                       "(rerun as `marketlab --debug ...` for the traceback)", err=True)
            raise typer.Exit(1) from None

    return wrapper
