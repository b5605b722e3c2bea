"""One rule for paths in specs (issue 15): every path a spec names resolves against the spec file's folder,
whatever the current directory, for every spec kind; ``$MARKETLAB_DATA/...`` starts at the raw-data root."""

from __future__ import annotations

import copy
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.cli.spec import SPEC_KINDS, schema_of
from marketlab.core.config import DATA_ENV, from_dict, resolve_spec_path
from marketlab.core.errors import SpecError
from tests.unit.test_spec_docs import REQUIRED

REPO = Path(__file__).resolve().parents[2]


def path_keys(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, bool]]:
    """(dotted key, is a list of paths) of every path field of a kind's schema."""
    out: list[tuple[str, bool]] = []
    for name, sub in schema.get("properties", {}).items():
        for option in sub.get("anyOf", [sub]):
            if option.get("format") == "path":
                out.append((prefix + name, False))
            elif option.get("type") == "array" and option.get("items", {}).get("format") == "path":
                out.append((prefix + name, True))
            elif option.get("type") == "object":
                out.extend(path_keys(option, prefix + name + "."))
    return sorted(set(out))


def put(doc: dict[str, Any], key: str, value: Any) -> None:
    *tables, last = key.split(".")
    for t in tables:
        doc = doc.setdefault(t, {})
    doc[last] = value


def get(doc: dict[str, Any], key: str) -> Any:
    for k in key.split("."):
        doc = doc[k]
    return doc


def toml_text(doc: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for the nested dicts of these tests (scalars, lists, tables, arrays of tables)."""
    scalars, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append(f"\n[{prefix}{k}]\n" + toml_text(v, f"{prefix}{k}."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            tables.extend(f"\n[[{prefix}{k}]]\n" + toml_text(item, f"{prefix}{k}.") for item in v)
        else:
            scalars.append(f"{k} = {json.dumps(v)}")
    return "\n".join(scalars) + "\n" + "".join(tables)


def test_every_kind_with_paths_is_covered() -> None:
    with_paths = {k for k in SPEC_KINDS if path_keys(schema_of(k))}
    assert with_paths == {"backtest", "rl", "mine", "macrohft", "trades", "xva"}


@pytest.mark.parametrize("kind", sorted(SPEC_KINDS))
def test_paths_resolve_against_the_spec_file_from_any_cwd(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = path_keys(schema_of(kind))
    doc = copy.deepcopy(REQUIRED[kind])
    for key, many in keys:
        put(doc, key, [f"rel/{key}/a.csv", f"../up/{key}"] if many else f"rel/{key}")
    spec_dir = tmp_path / "project" / "specs"
    spec_dir.mkdir(parents=True)
    (spec_dir / "s.toml").write_text(toml_text(doc))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = SPEC_KINDS[kind].cls().from_toml(Path("..") / "project" / "specs" / "s.toml").to_dict()
    for key, many in keys:
        want = [str(spec_dir / f"rel/{key}/a.csv"), str(spec_dir / f"../up/{key}")] if many else str(spec_dir / f"rel/{key}")
        got = get(loaded, key)
        assert [g for g in (got if many else [got])] == [os.path.normpath(w) for w in (want if many else [want])], key
    # built in Python (no file), a relative path stays relative: the caller's cwd
    if keys:
        key, many = keys[0]
        assert get(from_dict(SPEC_KINDS[kind].cls(), copy.deepcopy(doc)).to_dict(), key) == get(doc, key)


def test_data_root_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "s.toml"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "raw"))
    assert resolve_spec_path("$MARKETLAB_DATA/btc/x.csv", spec) == tmp_path / "raw" / "btc" / "x.csv"
    assert resolve_spec_path("${MARKETLAB_DATA}/btc", spec) == tmp_path / "raw" / "btc"
    assert resolve_spec_path("/abs/x", spec) == Path("/abs/x")
    assert resolve_spec_path("~/x", spec) == Path.home() / "x"
    assert resolve_spec_path("$MARKETLAB_DATAX/y", spec) == tmp_path / "$MARKETLAB_DATAX" / "y"  # not the variable
    monkeypatch.delenv(DATA_ENV)
    with pytest.raises(SpecError, match=r"s\.toml.*data\.ingest\.paths.*MARKETLAB_DATA"):
        resolve_spec_path("$MARKETLAB_DATA/btc", spec, key="data.ingest.paths")


def test_unset_data_root_in_a_spec_is_one_line_naming_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    spec = tmp_path / "bt.toml"
    spec.write_text('name = "b"\n[data]\ndataset = "x"\n[data.ingest]\npaths = ["$MARKETLAB_DATA/b.csv"]\n'
                    '[signal]\nkind = "momentum-v1"\n')
    r = CliRunner().invoke(app, ["backtest", str(spec)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert str(spec) in r.stderr and "data.ingest.paths[0]" in r.stderr and "MARKETLAB_DATA" in r.stderr


def test_shipped_specs_name_no_cwd_relative_outputs() -> None:
    """Shipped specs write under the checkout's runs/ and reports/ from any cwd (paths relative to the spec)."""
    for f, _, key, value, many in _shipped_spec_paths():
        for v in value if many else [value]:
            if v and not v.startswith(("$MARKETLAB_DATA", "/")):
                target = Path(os.path.normpath(f.parent / v))
                assert target.is_relative_to(REPO.parent), (f.name, key, v)
                if key.endswith(("out_dir", "dir", "run", "checkpoint")):
                    assert target.is_relative_to(REPO), (f.name, key, v)


def _shipped_spec_paths() -> list[tuple[Path, str, str, Any, bool]]:
    """(spec file, kind, key, raw value, is a list) of every path key set in a shipped spec."""
    out = []
    for kind in SPEC_KINDS.values():
        for f in kind.files(REPO):
            doc = tomllib.loads(f.read_text())
            for key, many in path_keys(schema_of(kind.name)):
                try:
                    out.append((f, kind.name, key, get(doc, key), many))
                except (KeyError, TypeError):
                    continue
    return out


def _shipped_data_paths() -> list[tuple[Path, str, str, Any]]:
    """(spec file, kind, key, raw value) of every path in a shipped spec that names the raw data."""
    return [(f, kind, key, value) for f, kind, key, value, many in _shipped_spec_paths()
            if any(v.startswith("$MARKETLAB_DATA") or "shared/data" in v for v in (value if many else [value]))]


def test_shipped_specs_read_the_raw_data_root(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every raw-data path of a shipped spec is written ``$MARKETLAB_DATA/...`` (never ``../../../shared/data``,
    which works in one folder layout only), names a file or folder that exists in the real datasets, and
    follows the variable when it names another folder (here a symlink to them)."""
    found = _shipped_data_paths()
    assert len({f for f, *_ in found}) >= 10  # backtests and agents on the real datasets
    link = tmp_path / "elsewhere"
    link.symlink_to(shared_data, target_is_directory=True)
    for root in (shared_data, link):
        monkeypatch.setenv(DATA_ENV, str(root))
        for f, kind, key, value in found:
            raw = value if isinstance(value, list) else [value]
            assert all(v.startswith("$MARKETLAB_DATA/") for v in raw), (f.name, key, raw)
            got = get(SPEC_KINDS[kind].cls().from_toml(f).to_dict(), key)
            for v, p in zip(raw, got if isinstance(got, list) else [got], strict=True):
                assert Path(p) == Path(os.path.normpath(root.absolute() / v.removeprefix("$MARKETLAB_DATA/"))), (f.name, key, p)
                assert Path(p).exists(), (f.name, key, p)
    monkeypatch.delenv(DATA_ENV)  # unset: a one-line error naming the variable, never a guess
    f, kind, _, _ = found[0]
    with pytest.raises(SpecError, match=rf"{f.name}: key '[a-z_.\[\]0-9]+': .*MARKETLAB_DATA, which is not set"):
        SPEC_KINDS[kind].cls().from_toml(f)


def test_backtest_from_another_cwd_writes_beside_its_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from marketlab.store import Store
    from marketlab.store.synth import write_synth

    proj = tmp_path / "proj"
    (proj / "specs").mkdir(parents=True)
    write_synth(Store(proj / "store"), 2, n_symbols=6, n_days=80, n_events=200)
    (proj / "specs" / "m.toml").write_text(
        'name = "m"\n[data]\ndataset = "synth_daily"\nkind = "panel"\nstore = "../store"\n'
        '[signal]\nkind = "momentum-v1"\nlookback = 5\n[strategy]\nkind = "topk"\ntop_k = 2\n'
        '[report]\nout_dir = "../reports"\npng = false\n')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = CliRunner().invoke(app, ["backtest", "../proj/specs/m.toml", "--json"])
    assert r.exit_code == 0, r.output
    assert Path(json.loads(r.stdout)["report"]).resolve() == (proj / "reports" / "m" / "report.html").resolve()
    assert not (tmp_path / "elsewhere" / "reports").exists() and not (tmp_path / "elsewhere" / "data").exists()


@pytest.mark.parametrize(("kind", "key", "bad"), [
    ("backtest", "data.start", "2020-13-45"),
    ("rl", "env.data.start", "2020-02-30"),
    ("mine", "split.train", "2020-01-01:2020-19-01"),
    ("macrohft", "splits.train_start", "2022-99-01"),
    ("simulate", "market.start", "2024-13-02T14:30:00"),
])
def test_a_bad_date_names_the_file_and_key(kind: str, key: str, bad: str, tmp_path: Path) -> None:
    doc = copy.deepcopy(REQUIRED[kind])
    put(doc, key, bad)
    f = tmp_path / f"{kind}.toml"
    f.write_text(toml_text(doc))
    with pytest.raises(SpecError) as err:
        SPEC_KINDS[kind].cls().from_toml(f)
    assert str(f) in str(err.value) and f"'{key}'" in str(err.value) and bad in str(err.value)
