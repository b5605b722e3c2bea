"""The data CLI's error paths (issue 13 items 3, 10, 12, 13): one line `error: ...`, exit 2 for a user's
mistake, one line + --debug hint (exit 1) for a bug, strict JSON, nothing created or overwritten."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlab.cli import common
from marketlab.cli.main import COMMAND_MODULES, app
from marketlab.store import Store
from marketlab.store.synth import write_synth
from tests.support.store import tree_hash

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "store"
    write_synth(Store(root), 3, n_symbols=4, n_days=30, n_events=1500)
    return root


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_read_only_commands_create_no_store(tmp_path: Path) -> None:
    for args in (["data", "list"], ["data", "sql", "select 1"], ["data", "bars", "x", "Y"]):
        code, _, err = run(*args, "--store", str(tmp_path / "nope"))
        assert code == 2 and "no store here" in one_error_line(err)
    assert not (tmp_path / "nope").exists()


def test_store_pointing_at_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    code, _, err = run("data", "list", "--store", str(f))
    assert code == 2 and "not a directory" in one_error_line(err)


def test_bars_to_dataset_never_overwrites_its_source(synth_store: Path) -> None:
    before = tree_hash(synth_store)
    code, _, err = run("data", "bars", "synth_lob", "SYN", "--freq", "1h", "--to-dataset", "synth_lob",
                       "--store", str(synth_store))
    assert code == 2 and "is the source dataset" in one_error_line(err)
    assert tree_hash(synth_store) == before


def test_bars_out_is_a_directory(synth_store: Path, tmp_path: Path) -> None:
    code, _, err = run("data", "bars", "synth_lob", "SYN", "--out", str(tmp_path), "--store", str(synth_store))
    assert code == 2 and "is a directory" in one_error_line(err)


def test_bars_to_dataset_rerun_replaces_the_same_days(synth_store: Path, tmp_path: Path) -> None:
    st = tmp_path / "copy"
    import shutil

    shutil.copytree(synth_store, st)
    for freq in ("1m", "5m"):
        code, out, err = run("data", "bars", "synth_lob", "SYN", "--freq", freq, "--to-dataset", "syn_bars",
                             "--store", str(st), "--json")
        assert code == 0, err
    got = Store(st).scan_bars("syn_bars").collect()
    want = json.loads(out)["bars"]
    assert got.height == want and got["ts"].n_unique() == want  # the 5m bars replaced the 1m ones
    assert json.loads(out)["dataset_replaced_rows"] > want


def test_sql_refusals_are_one_line_exit_2(synth_store: Path) -> None:
    before = tree_hash(synth_store)
    for q in (f"COPY (SELECT 1) TO '{synth_store}/events/evil.parquet'", f"ATTACH '{synth_store}/x.db'",
              "INSTALL httpfs", "CREATE TABLE t AS SELECT 1", "INSERT INTO datasets SELECT * FROM datasets"):
        code, _, err = run("data", "sql", q, "--store", str(synth_store))
        assert code == 2 and "not allowed" in one_error_line(err), q
    assert tree_hash(synth_store) == before


def test_json_output_is_strict(synth_store: Path) -> None:
    code, out, err = run("data", "sql", "select 'inf'::DOUBLE AS a, 'nan'::DOUBLE AS b, 1.5 AS c", "--json",
                         "--store", str(synth_store))
    assert code == 0, err
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["data"] == [{"a": None, "b": None, "c": 1.5}]
    assert json.loads(common.dumps({"x": [math.nan, -math.inf, 2.0]})) == {"x": [None, None, 2.0]}


def test_unexpected_exception_is_one_line_with_debug_hint(monkeypatch: pytest.MonkeyPatch, synth_store: Path) -> None:
    def boom(self: Store) -> None:
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(Store, "datasets", boom)
    code, _, err = run("data", "list", "--store", str(synth_store))
    line = one_error_line(err)
    assert code == 1 and "RuntimeError: kaboom" in line and "--debug" in line
    r = runner.invoke(app, ["--debug", "data", "list", "--store", str(synth_store)])
    assert isinstance(r.exception, RuntimeError)
    common.DEBUG["on"] = False


def test_a_command_module_that_cannot_import_is_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 12: a command module that cannot be imported must fail loudly, never vanish."""
    import importlib
    import sys

    import marketlab.cli.main as main

    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {"ingest", "data", "simulate", "backtest"} <= names and "demo" in COMMAND_MODULES
    monkeypatch.setitem(sys.modules, "marketlab.cli.demo", None)  # import of it raises ImportError
    try:
        with pytest.raises(ImportError, match="marketlab.cli.demo"):
            importlib.reload(main)
    finally:
        monkeypatch.undo()
        importlib.reload(main)


def test_corrupt_parquet_is_a_one_line_exit_2(synth_store: Path, tmp_path: Path) -> None:
    """Finding 10: a corrupt .parquet given to ingest, or damaged inside the store."""
    bad = tmp_path / "prices.parquet"
    bad.write_bytes(b"PAR1" + bytes(range(200)) + b"PAR1")
    code, _, err = run("ingest", "ohlcv", str(bad), "--store", str(tmp_path / "s"), "--json")
    line = one_error_line(err)
    assert code == 2 and "prices.parquet" in line and "internal error" not in line
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synth_store, root)
    victim = Path(Store(root).files("trades", "synth_lob")[0])
    victim.write_bytes(b"garbage")
    for args in (["data", "bars", "synth_lob", "SYN"], ["data", "sql", "select count(*) from trades_synth_lob"]):
        code, _, err = run(*args, "--store", str(root), "--json")
        assert code == 2 and "unreadable Parquet" in one_error_line(err), args
