"""The README run is long (minutes of CPU: a fresh numba cache compiles every kernel): `make test` skips it,
`make test-readme` (``-m readme``, called by ``.ci/run``) runs it."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "readme" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="runs with `make test-readme`")
    for item in items:
        if "readme" in item.keywords and item.get_closest_marker("readme") is not None:
            item.add_marker(skip)
