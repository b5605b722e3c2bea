"""Specs documented by the code (issue 15): `marketlab spec schema|example KIND` and docs/specs.md are generated
from the config classes, agree with what the loader accepts and refuses, and the checked-in page is current."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.cli.spec import SPEC_KINDS, docs_markdown, example_of, schema_of
from marketlab.core.config import from_dict
from marketlab.core.errors import SpecError

jsonschema = pytest.importorskip("jsonschema")
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

#: The least each kind needs besides its defaults (the keys its example leaves commented as REQUIRED).
REQUIRED: dict[str, dict[str, Any]] = {
    "backtest": {"name": "b", "data": {"dataset": "synth_daily"}, "signal": {"kind": "momentum-v1"}},
    "simulate": {}, "trades": {}, "macrohft": {"dataset": "btc_minutes"}, "train": {},
    "rl": {"name": "r", "algo": "ppo"},
    "mine": {"data": {"dataset": "synth_daily"}, "split": {"train": "2020-01-01:2020-06-30"}},
    "xva": {"counterparties": [{"name": "C", "model": "intensity", "intensity": 0.1}],
            "trades": [{"type": "forward", "counterparty": "C"}], "run": {"layers": ["clean", "xva"]}},
}


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_every_kind_has_required_values_here() -> None:
    assert set(REQUIRED) == set(SPEC_KINDS)


@pytest.mark.parametrize("kind", sorted(SPEC_KINDS))
def test_example_holds_every_default_and_loads(kind: str) -> None:
    cls = SPEC_KINDS[kind].cls()
    text = example_of(kind)
    doc = tomllib.loads(text)
    # the example's values are the defaults: loading it equals loading the required keys alone
    assert from_dict(cls, merged(doc, REQUIRED[kind])) == from_dict(cls, copy.deepcopy(REQUIRED[kind]))
    # every key of the schema appears in the example (set, or commented out)
    keys = set()

    def walk(schema: dict[str, Any]) -> None:
        for option in schema.get("anyOf", [schema]):
            option = option.get("items", option) if option.get("type") == "array" else option
            for name, sub in option.get("properties", {}).items():
                keys.add(name)
                walk(sub)

    walk(schema_of(kind))
    missing = {k for k in keys if f"{k} =" not in text and f"[{k}]" not in text and f".{k}]" not in text}
    assert not missing


@pytest.mark.parametrize("kind", sorted(SPEC_KINDS))
def test_shipped_specs_validate_against_their_schema(kind: str) -> None:
    files = SPEC_KINDS[kind].files(REPO)
    assert files, f"no shipped spec for {kind}"
    validator = jsonschema.Draft202012Validator(schema_of(kind))
    for f in files:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(tomllib.loads(f.read_text()))]
        assert errors == [], f.name


@pytest.mark.parametrize(("kind", "change"), [
    ("backtest", {"costs": {"commission": 1.0}}),         # Range hi_open: 1.0 is out
    ("backtest", {"costs": {"init_cash": 0.0}}),          # PositiveFloat: 0 is out
    ("backtest", {"strategy": {"kind": "lots"}}),         # Literal
    ("backtest", {"report": {"colour": "red"}}),          # unknown key
    ("backtest", {"name": "../up"}),                      # Identifier pattern
    ("rl", {"total_timesteps": 0}),                       # PositiveInt
    ("rl", {"net_arch": [64, "x"]}),                      # list item type
    ("xva", {"run": {"steps": 1}}),                       # Range(2, ...)
    ("simulate", {"seed": "zero"}),
])
def test_schema_refuses_what_the_loader_refuses(kind: str, change: dict[str, Any]) -> None:
    doc = merged(REQUIRED[kind], change)
    with pytest.raises(SpecError):
        from_dict(SPEC_KINDS[kind].cls(), copy.deepcopy(doc))
    assert not jsonschema.Draft202012Validator(schema_of(kind)).is_valid(doc)
    assert jsonschema.Draft202012Validator(schema_of(kind)).is_valid(REQUIRED[kind])


def test_docs_page_is_current() -> None:
    page = REPO / "docs" / "specs.md"
    assert page.read_text() == docs_markdown(), "docs/specs.md is not current: run `make docs`"


def test_cli_schema_example_and_unknown_kind(tmp_path: Path) -> None:
    r = runner.invoke(app, ["spec", "schema", "backtest"])
    assert r.exit_code == 0 and json.loads(r.stdout)["properties"]["costs"]["properties"]["commission"]["exclusiveMaximum"] == 1
    r = runner.invoke(app, ["spec", "example", "rl"])
    assert r.exit_code == 0 and tomllib.loads(r.stdout)["env"]["costs"]["init_cash"] == 10_000.0
    r = runner.invoke(app, ["spec", "schema", "nope"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "known: backtest" in r.stderr
    stale = tmp_path / "specs.md"
    stale.write_text("old\n")
    r = runner.invoke(app, ["spec", "docs", "--out", str(stale), "--check"])
    assert r.exit_code == 2 and "not current" in r.stderr
    assert runner.invoke(app, ["spec", "docs", "--out", str(stale)]).exit_code == 0
    assert runner.invoke(app, ["spec", "docs", "--out", str(stale), "--check"]).exit_code == 0
