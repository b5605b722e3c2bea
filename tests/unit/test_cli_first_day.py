"""A researcher's first day with the CLI (issue 15, smaller things): Typer's usage errors are one line,
inputs are named when missing or folders, progress bars obey --json/--quiet and stay on stderr, outputs land
under reports/, the numba cache defaults to a user cache folder, and `data list` counts rows per kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.store import Store
from marketlab.store.synth import write_synth

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("first_day") / "store"
    write_synth(Store(root), 5, n_symbols=4, n_days=30, n_events=1500)
    return root


@pytest.mark.parametrize(("args", "needle"), [
    (["data", "list", "--bogus"], "No such option: --bogus"),
    (["backtest"], "Missing argument 'spec'"),
    (["rl", "eval", "runs/x", "--period", "someday"], "'someday' is not one of"),
    (["data", "synth", "--seed", "one"], "Invalid value for '--seed'"),
    (["no-such-command"], "No such command 'no-such-command'"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], needle: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    line = one_error_line(r.stderr)
    assert needle in line and "--help" in line
    assert "─" not in r.output and "╭" not in r.output  # no Typer box


def test_help_and_bare_groups_still_print_help() -> None:
    r = runner.invoke(app, ["data", "list", "--help"])
    assert r.exit_code == 0 and "--store" in r.stdout
    r = runner.invoke(app, ["data"])
    assert "list" in r.output and "error:" not in r.output


def test_book_verify_names_the_missing_file(tmp_path: Path) -> None:
    msg = tmp_path / "GOOG_2012-06-21_34200000_57600000_message_10.csv"
    book = tmp_path / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv"
    r = runner.invoke(app, ["book", "verify", str(msg), str(book)])
    assert r.exit_code == 2
    line = one_error_line(r.stderr)
    assert str(msg) in line and "file not found" in line and "symbol" not in line
    msg.write_text("")
    line = one_error_line(runner.invoke(app, ["book", "verify", str(msg), str(book)]).stderr)
    assert str(book) in line and "file not found" in line


def test_verify_binance_on_a_directory_says_so(tmp_path: Path) -> None:
    r = runner.invoke(app, ["book", "verify-binance", str(tmp_path)])
    assert r.exit_code == 2
    line = one_error_line(r.stderr)
    assert str(tmp_path) in line and "is a directory" in line and "corrupt" not in line


def test_bsde_progress_bar_goes_to_stderr_and_obeys_json_and_quiet() -> None:
    base = ["bsde", "hjb_lq", "--dim", "2", "--steps", "4", "--iterations", "3", "--batch-size", "8"]
    shown = runner.invoke(app, base)
    assert shown.exit_code == 0, shown.output
    assert "bsde hjb_lq" in shown.stderr and "bsde hjb_lq" not in shown.stdout  # the bar, on stderr only
    as_json = runner.invoke(app, [*base, "--json"])
    assert as_json.exit_code == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["equation"] == "hjb_lq"
    quiet = runner.invoke(app, [*base, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "hjb_lq" in quiet.stdout


def test_stylized_writes_its_png_under_reports(synth_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["stylized", "synth_lob", "--store", str(synth_store), "--json"])
    assert r.exit_code == 0, r.output
    fig = Path(json.loads(r.stdout)["figure"])
    assert fig == Path("reports") / "stylized_synth_lob.png" and (tmp_path / fig).is_file()
    assert not list(tmp_path.glob("*.png"))


def test_data_list_shows_rows_per_kind(synth_store: Path) -> None:
    r = runner.invoke(app, ["data", "list", "--json", "--store", str(synth_store)])
    assert r.exit_code == 0, r.output
    rows = {d["dataset"]: d["rows"] for d in json.loads(r.stdout)["datasets"]}
    # counted independently by reading each kind's Parquet files
    files = lambda kind, ds: pl.scan_parquet(synth_store / kind / f"dataset={ds}" / "**" / "*.parquet").select(pl.len()).collect().item()  # noqa: E731
    assert rows["synth_lob"]["events"] == files("events", "synth_lob")
    assert rows["synth_lob"]["book"] == files("book", "synth_lob")
    assert rows["synth_daily"] == {"panel": files("panel", "synth_daily")}
    table = runner.invoke(app, ["data", "list", "--store", str(synth_store)]).stdout
    assert "events" in table and "book" in table and "trades" in table


def _numba_cache_dir(env: dict[str, str]) -> str:
    code = "import marketlab, numba; print(numba.config.CACHE_DIR)"  # the Python API as well as the CLI
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


def test_numba_cache_defaults_to_a_user_cache_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
    assert Path(_numba_cache_dir(env)) == tmp_path / "xdg" / "marketlab" / "numba"
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # a user's own setting wins
    assert Path(_numba_cache_dir(env)) == tmp_path / "mine"


@pytest.mark.parametrize("args", [
    ["alpha", "eval", "Mean(close, 5)", "--data", "synth_daily"],
    ["stylized", "synth_lob"],
    ["rl", "eval", "runs/none", "--period", "test"],
])
def test_more_read_only_commands_create_no_store(args: list[str], tmp_path: Path) -> None:
    r = runner.invoke(app, [*args, "--store", str(tmp_path / "nope")])
    assert r.exit_code == 2
    line = one_error_line(r.stderr)
    assert str(tmp_path / "nope") in line or "runs/none" in line
    assert not (tmp_path / "nope").exists()
