"""The layer rule of DESIGN.md, enforced: imports point down only, siblings in a layer don't import each other.

core < lob < store < features < models | simulators | pricing | market < envs < agents < backtests < sweep < cli

The root ``marketlab/__init__.py`` imports no layer at all (``import marketlab.core.errors`` stays cheap).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "marketlab"
LAYER = {
    "core": 0,
    "lob": 1,
    "store": 2,
    "features": 3,
    "models": 4,
    "simulators": 4,
    "pricing": 4,
    "market": 4,
    "envs": 5,
    "agents": 6,
    "backtests": 7,
    "sweep": 8,
    "cli": 9,
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``marketlab.*`` import in ``path``, lazy ones inside functions too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return [(line, m) for line, m in out if m.startswith("marketlab.")]


def test_imports_point_down_only() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0]
        if layer not in LAYER:
            continue
        for line, module in imported_modules(path):
            target = module.split(".")[1]
            if target in LAYER and target != layer and LAYER[target] >= LAYER[layer]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert violations == []


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert packages <= set(LAYER), packages - set(LAYER)


def test_root_package_imports_no_layer() -> None:
    assert imported_modules(PACKAGE / "__init__.py") == []
