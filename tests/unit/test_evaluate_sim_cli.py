"""``marketlab evaluate-sim`` end to end at a toy budget on a real GOOG slice: the report has every section
and its PNG, the generated markets reached the engine without a rejection, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from tests.support.trades import goog_slice_store, train_tiny_cli

ROOT = Path(__file__).resolve().parents[2]
BUDGET = """[eval]
markets = 2
rounds = 30
ddim_steps = 2
abm_seconds = 30.0
lstm_epochs = 1
lstm_max_train = 200
lstm_max_test = 100
lstm_hidden = 8
lstm_window = 5
lstm_horizon = 2
impact_seeds = 2
impact_seconds = 4.0
pov_start_s = 1.0
pov_end_s = 3.0
pov_interval_s = 1.0
impact_max_rounds = 20
pca_points = 2000
weights = "raw"
"""


@pytest.mark.slow
def test_evaluate_sim_writes_the_report_and_refuses_bad_input(shared_data: Path, tmp_path: Path) -> None:
    store = goog_slice_store(shared_data, tmp_path, rows=8000)
    base = train_tiny_cli(store.path, tmp_path / "ck", steps=5, val_every=5)
    run = CliRunner().invoke
    budget = tmp_path / "b.toml"
    budget.write_text(BUDGET)
    abm = str(ROOT / "specs" / "simulators" / "abm_default.toml")
    args = ["evaluate-sim", "--checkpoint", str(tmp_path / "ck"), *base, "--abm-spec", abm, "--budget", str(budget),
            "--out", str(tmp_path / "rep")]
    r = run(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert set(rep["predictive"]) == {"replay", "trades:GOOG", "abm"}
    assert set(rep["facts"]) == {"real:GOOG", "trades:GOOG", "abm"}
    assert 0.0 <= rep["pca_coverage"]["abm"]["coverage"] <= 1.0
    assert rep["impact"]["abm"]["seeds"] == 2 and len(rep["impact"]["trades:GOOG"]["executed_lots"]) == 2
    counts = rep["markets"]["trades:GOOG"]["counts"]
    assert counts["engine_rejected"] == 0
    assert sum(counts["accepted"].values()) + counts["gave_up"] == 2 * 30
    assert Path(rep["figure"]).is_file() and (tmp_path / "rep" / "GOOG_eval.json").is_file()
    # bad input: one line, exit 2
    budget.write_text("[eval]\nmarket = 2\n")
    r = run(app, args)
    assert r.exit_code == 2 and r.output.startswith("error:") and "market" in r.output and r.output.count("\n") == 1
    budget.write_text(BUDGET)
    r = run(app, [*args[:2], str(tmp_path / "nothing"), *args[3:]])
    assert r.exit_code == 2 and "TRADES checkpoint not found" in r.output
