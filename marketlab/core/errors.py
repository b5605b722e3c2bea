"""Errors that reach users as one line naming the file, field or value.

Every error a user can cause by bad input derives from :class:`MarketlabError`; the CLI prints
``error: <message>`` and exits with status 2. Internal bugs stay ordinary exceptions.
"""

from __future__ import annotations

from pathlib import Path


class MarketlabError(ValueError):
    """Base of all user-facing errors. ``str(err)`` is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataError(MarketlabError):
    """A data file is malformed: names the file, and the row/field/value where known."""

    def __init__(
        self,
        path: str | Path | None,
        problem: str,
        *,
        field: str | None = None,
        row: int | None = None,
        value: object = None,
    ) -> None:
        parts = [str(path)] if path is not None else []
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        where = ", ".join(parts)
        tail = f" (value {value!r})" if value is not None else ""
        super().__init__(f"{where}: {problem}{tail}" if where else f"{problem}{tail}")
        self.path = path
        self.field = field
        self.row = row
        self.value = value


class SpecError(MarketlabError):
    """A TOML spec or config is invalid: names the file and the key."""

    def __init__(self, path: str | Path | None, key: str | None, problem: str) -> None:
        where = f"{path}" if path is not None else "spec"
        if key:
            where += f": key '{key}'"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key


class StoreError(MarketlabError):
    """The store cannot satisfy a request (unknown dataset, symbol, empty range...)."""
