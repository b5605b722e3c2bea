"""The CLI is a shell and package code never reads the checkout (issue 12): no module locates files from
its own ``__file__`` or the working directory, the demo's simulation spec ships with the package, and the
raw-data root comes from ``$MARKETLAB_DATA`` or an explicit path."""

from __future__ import annotations

import ast
from importlib.resources import as_file, files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app

PACKAGE = Path(__file__).resolve().parents[2] / "marketlab"


def _checkout_reads(path: Path) -> list[str]:
    """``__file__``, ``Path.cwd()`` and ``os.getcwd()`` uses in one module (how code finds the checkout)."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name) and node.id == "__file__":
            hits.append(f"{path.name}:{node.lineno} __file__")
        if isinstance(node, ast.Attribute) and node.attr in ("cwd", "getcwd"):
            hits.append(f"{path.name}:{node.lineno} {node.attr}()")
    return hits


def test_no_package_module_locates_files_from_the_checkout() -> None:
    hits = [h for p in sorted(PACKAGE.rglob("*.py")) for h in _checkout_reads(p)]
    assert hits == []


def test_planted_checkout_read_is_caught(tmp_path) -> None:
    p = tmp_path / "m.py"
    p.write_text("from pathlib import Path\nROOT = Path(__file__).parents[2]\nHERE = Path.cwd()\n")
    assert len(_checkout_reads(p)) == 2


def test_demo_simulation_spec_ships_with_the_package() -> None:
    from marketlab.cli.demo import DEMO_SIM_SPEC
    from marketlab.simulators.config import SimSpec

    with as_file(files("marketlab.cli").joinpath(DEMO_SIM_SPEC)) as spec:
        assert SimSpec.from_toml(spec).market.dataset == "abm_default"
    # the checkout's spec of the same name is that file, not a second copy
    repo_spec = PACKAGE.parent / "specs" / "simulators" / "abm_default.toml"
    assert repo_spec.resolve() == (PACKAGE / "cli" / DEMO_SIM_SPEC).resolve()


def test_data_root_comes_from_the_environment_only(monkeypatch, tmp_path) -> None:
    from marketlab.core.errors import DataError
    from marketlab.models.sources import data_root

    monkeypatch.delenv("MARKETLAB_DATA", raising=False)
    with pytest.raises(DataError, match="MARKETLAB_DATA"):
        data_root()
    r = CliRunner().invoke(app, ["train", "binctabl", "--data", "fi2010", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "MARKETLAB_DATA" in r.output, r.output
    monkeypatch.setenv("MARKETLAB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    r = CliRunner().invoke(app, ["train", "binctabl", "--data", "fi2010", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "fi2010_noauction_zscore" in r.output, r.output
