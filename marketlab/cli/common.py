"""Shared CLI plumbing: one-line errors, --json output, store option.

Every command is wrapped by :func:`command`, which turns a :class:`MarketlabError` (bad input) into
``error: <one line>`` on stderr and exit status 2, and prints the returned summary either as JSON
(``--json``) or as a small rich table.
"""

from __future__ import annotations

import functools
import json as jsonlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.core.errors import MarketlabError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default: $MARKETLAB_STORE or data/store)."),
]


def _default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    return str(o)


def emit(summary: dict[str, Any], as_json: bool, title: str = "") -> None:
    """Print ``summary`` as JSON on stdout, or as a readable key/value table."""
    if as_json:
        sys.stdout.write(jsonlib.dumps(summary, default=_default, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_header=False)
    for k, v in summary.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        elif isinstance(v, (dict, list)):
            v = jsonlib.dumps(v, default=_default)
            if len(v) > 200:
                v = v[:200] + "..."
        table.add_row(str(k), str(v))
    Console().print(table)


def fail(message: str) -> None:
    """Print a one-line error and exit 2."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(2)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for CLI commands: MarketlabError/FileNotFoundError -> one line on stderr, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MarketlabError as exc:
            fail(str(exc))
        except FileNotFoundError as exc:
            fail(f"{exc.filename or exc}: file not found")

    return wrapper
