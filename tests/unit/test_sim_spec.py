"""Simulator specs: loaded through core.config.Spec, absurd values refused with file + key (issue 13
items 10, 11), the simulator resolvable by its registry id and satisfying core.protocols.Simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlab.core.errors import SpecError
from marketlab.simulators.config import SimSpec

DEFAULT = Path(__file__).resolve().parents[2] / "specs" / "simulators" / "abm_default.toml"


@pytest.mark.parametrize(
    "old,new,key,problem",
    [
        ("limit_rate = 2.0", "limit_rate = inf", "noise.limit_rate", "finite"),  # used to hang
        ("limit_rate = 2.0", "limit_rate = nan", "noise.limit_rate", "finite"),
        ("limit_rate = 2.0", "limit_rate = 1e12", "noise.limit_rate", "<= 10000 per second"),
        ("wake_rate = 0.03", "wake_rate = 5e5", "value.wake_rate", "<= 10000 per second"),
        ("seed = 20240102", "seed = -5", "seed", "must be in [0, 2**63)"),
        ("duration_s = 23400.0", "duration_s = 1e9", "market.duration_s", "<= 604800"),
        ("step_s = 1.0\n\n[activity]", "step_s = 1e-6\n\n[activity]", "fundamental.step_s", "grid points"),
        ("count = 20", "count = 10000000", "value.count", "<= 10000"),
        ("interval_s = 5.0", "interval_s = 1e-9", "market_maker.interval_s", ">= 0.001"),
        ("max_size = 5000", "max_size = 10000000000000", "noise.max_size", "lots"),
        ("base_us = 50.0", "base_us = 1e12", "latency.base_us", "<= 6e+07 us"),
        ('dataset = "abm_default"', 'dataset = "../../x"', "market.dataset", "identifier"),
        ("size_sigma = 0.7", "size_sigma = 400.0", "noise.size_sigma", "[0, 5]"),
    ],
)
def test_absurd_values_are_refused_naming_file_and_key(tmp_path, old, new, key, problem):
    text = DEFAULT.read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        SimSpec.from_toml(bad)
    msg = str(err.value)
    assert "bad.toml" in msg and f"key '{key}'" in msg and problem in msg, msg


def test_default_specs_load_and_round_trip():
    spec = SimSpec.from_toml(DEFAULT)
    assert SimSpec.from_dict(spec.to_dict()) == spec


def test_cli_refuses_inf_rate_and_negative_seed_in_one_line(tmp_path):
    from marketlab.cli.main import app

    bad = tmp_path / "inf.toml"
    bad.write_text(DEFAULT.read_text().replace("limit_rate = 2.0", "limit_rate = inf"))
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(bad), "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and res.output.startswith("error:") and res.output.count("\n") == 1
    assert "noise.limit_rate" in res.output
    res = runner.invoke(app, ["simulate", str(DEFAULT), "--seed", "-5", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "key 'seed'" in res.output and res.output.count("\n") == 1
    res = runner.invoke(app, ["simulate", str(DEFAULT), "--dataset", "../x", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "--dataset" in res.output and res.output.count("\n") == 1
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.parquet"))


def test_simulator_is_resolved_by_id_and_satisfies_the_protocol():
    from marketlab.core.protocols import Simulator
    from marketlab.core.registry import resolve
    from marketlab.simulators.abm import Simulation

    cls = resolve("abm-v1", kind="simulator")
    assert cls is Simulation
    assert isinstance(Simulation(SimSpec.from_toml(DEFAULT)), Simulator)
