"""Shared CLI plumbing: one-line errors, --json output, progress bars, store option, --debug.

Every command is wrapped by :func:`command`:

* a user's mistake (:class:`MarketlabError`, a missing file, a path that is a folder, a permission
  problem) prints ``error: <one line>`` on stderr and exits with status 2;
* anything else is a bug: one line ``error: internal error: <Type>: <message>`` plus a hint to rerun
  with ``marketlab --debug ...`` (which re-raises it with its traceback), exit status 1.

``--json`` output is always valid JSON: NaN and infinities become ``null``. Progress bars go to stderr
and are off with ``--json`` or ``--quiet`` (:func:`show_progress`). Typer's own usage errors (unknown
option, missing argument) are one line too: :class:`OneLineErrors` is the root group's class.
"""

from __future__ import annotations

import functools
import json as jsonlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from marketlab.core.errors import MarketlabError
from marketlab.core.jsonable import jsonable

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary (no progress bars).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default: $MARKETLAB_STORE or data/store)."),
]

DEBUG = {"on": bool(os.environ.get("MARKETLAB_DEBUG"))}


def set_debug(on: bool) -> None:
    """``marketlab --debug``: let unexpected exceptions through with their traceback."""
    DEBUG["on"] = on or DEBUG["on"]


def show_progress(as_json: bool, quiet: bool = False) -> bool:
    """Whether a command draws progress bars: never with ``--json`` or ``--quiet`` (bars go to stderr)."""
    return not (as_json or quiet)


class OneLineErrors(TyperGroup):
    """Root command group whose usage errors print ``error: <one line>`` (exit 2) instead of Typer's box."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        """Run the CLI; in standalone mode (the console entry) a usage error is ``error: ...`` and exit 2."""
        extra["windows_expand_args"] = windows_expand_args
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's exceptions (Typer vendors click)
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: Typer prints its help
                return super().main(args, prog_name, complete_var, standalone_mode=True, **extra)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            typer.echo(f"error: {one_line(message)}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        # not standalone, click returns an Exit's code (or the command's return value, None here)
        sys.exit(rv if isinstance(rv, int) else 0)


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


def input_files(*paths: Path) -> None:
    """Each path is an existing file, else a one-line :class:`DataError` saying which and why (checked
    before a reader guesses anything from the name or the bytes)."""
    from marketlab.core.errors import DataError

    for p in paths:
        if p.is_dir():
            raise DataError(p, "is a directory, expected a file")
        if not p.is_file():
            raise DataError(p, "file not found")


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
