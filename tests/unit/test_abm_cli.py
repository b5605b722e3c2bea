"""CLI: ``marketlab simulate`` writes a day and prints JSON; ``stylized`` prints a table and a PNG; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from marketlab.cli.main import app

REPO = Path(__file__).resolve().parents[2]


def test_simulate_then_stylized(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text((REPO / "specs" / "simulators" / "abm_default.toml").read_text().replace("duration_s = 23400.0", "duration_s = 180.0"))
    store = tmp_path / "store"
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(spec), "--seed", "3", "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["seed"] == 3 and summary["events"] > 500 and summary["written"]["rows"]["events"] == summary["events"]
    png = tmp_path / "facts.png"
    res = runner.invoke(app, ["stylized", "abm_default:ABM", "--store", str(store), "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert "minute return excess kurtosis" in res.stdout and png.stat().st_size > 1000
    res = runner.invoke(app, ["stylized", "abm_default", "--store", str(store), "--out", str(png), "--json"])
    assert json.loads(res.stdout)["facts"][0]["label"] == "abm_default:ABM"


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = 1\n[market]\nduration = 5\n")
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(bad), "--store", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "key 'market.duration': unknown key" in res.output and res.output.count("\n") == 1
    res = runner.invoke(app, ["simulate", str(tmp_path / "missing.toml"), "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "file not found" in res.output
    res = runner.invoke(app, ["stylized", "nope", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and res.output.startswith("error:")
