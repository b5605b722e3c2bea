"""``marketlab trades train|generate`` and ``marketlab train trades``: a tiny run on a GOOG slice and the one-line
errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from marketlab.cli.main import app
from tests.support.trades import goog_slice_store, train_tiny_cli


def test_train_then_generate_and_bad_input(shared_data: Path, tmp_path: Path) -> None:
    store = goog_slice_store(shared_data, tmp_path, rows=1500)
    base = train_tiny_cli(store.path, tmp_path / "ck", steps=2, val_every=2)
    cfg = tmp_path / "ck.toml"
    run = CliRunner().invoke
    r = run(app, ["trades", "generate", str(tmp_path / "ck"), *base, "--orders", "2", "--markets", "2", "--steps", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["engine_rejected"] == 0 and out["samples"] >= 4
    spec = tmp_path / "sim.toml"
    spec.write_text('checkpoint = "ck"\ndataset = "gen"\nduration_s = 0.5\nsteps = 1\n[source]\ndataset = "lob"\n')
    r = run(app, ["trades", "simulate", str(spec), "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["events"] == store.scan_events("gen", "GOOG").collect().height
    # `marketlab simulate` dispatches on the spec's registry id: the same session, written like the ABM's day
    spec.write_text('simulator = "trades-v1"\n' + spec.read_text())
    r = run(app, ["simulate", str(spec), "--store", str(store.path), "--dataset", "gen2", "--json"])
    assert r.exit_code == 0, r.output
    ev = store.scan_events("gen2", "GOOG").collect()
    assert json.loads(r.output)["events"] == ev.height > 0
    assert store.scan_book("gen2", "GOOG").collect().height == ev.height  # the book after every event
    spec.write_text(spec.read_text().replace("trades-v1", "trades-v9"))
    r = run(app, ["simulate", str(spec), "--store", str(store.path)])
    assert r.exit_code == 2 and r.output.startswith("error:") and "trades-v9" in r.output and "abm-v1" in r.output
    # bad input: one line, exit 2
    cfg.write_text("[trades]\nwindow = 8\ndepth = 2\naugment_dim = 8\n")
    r = run(app, ["trades", "train", *base, "--config", str(cfg), "--resume", "--out", str(tmp_path / "ck")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "key 'depth'" in r.output
    r = run(app, ["trades", "train", "--data", "lob", "--symbol", "MSFT", "--store", str(store.path)])
    assert r.exit_code == 2 and "MSFT" in r.output and r.output.startswith("error:")
    r = run(app, ["trades", "generate", str(tmp_path / "none"), *base])
    assert r.exit_code == 2 and "TRADES checkpoint not found" in r.output
    cfg.write_text("[trades]\nwindo = 8\n")
    r = run(app, ["trades", "train", *base, "--config", str(cfg)])
    assert r.exit_code == 2 and "windo" in r.output


def test_train_trades_spelling_equals_trades_train(shared_data: Path, tmp_path: Path) -> None:
    """``marketlab train trades`` (the issue's spelling) runs the same training as ``marketlab trades train``;
    ``train MODEL`` still reaches the predictors; bad input is one line, exit 2, and makes no store."""
    store = goog_slice_store(shared_data, tmp_path, rows=800)
    base = train_tiny_cli(store.path, tmp_path / "a", steps=2, val_every=2, command=("train", "trades"))
    train_tiny_cli(store.path, tmp_path / "b", steps=2, val_every=2)
    run = CliRunner().invoke
    cfg = ["--config", str(tmp_path / "a.toml")]
    r = run(app, ["train", "trades", *base, *cfg, "--steps", "3", "--resume", "--out", str(tmp_path / "a"), "--json"])
    assert r.exit_code == 0, r.output
    a = json.loads(r.output)
    r = run(app, ["trades", "train", *base, *cfg, "--steps", "3", "--resume", "--out", str(tmp_path / "b"), "--json"])
    b = json.loads(r.output)
    assert a["step"] == b["step"] == 3 and a["train_loss"] == b["train_loss"] and a["val_loss_ema"] == b["val_loss_ema"]
    nowhere = tmp_path / "no_store"
    for bad, needle in (
        (["--preset", "gpu"], "--preset"),
        (["--symbol", "MSFT"], "MSFT"),
        (["--store", str(nowhere)], "no store here"),
    ):
        args = [*base, *bad] if bad[0] != "--symbol" else ["--data", "lob", *bad, "--store", str(store.path)]
        r = run(app, ["train", "trades", *args, "--out", str(tmp_path / "c")])
        assert r.exit_code == 2 and r.output.startswith("error:") and r.output.count("\n") == 1, r.output
        assert needle in r.output, r.output
    assert not nowhere.exists() and not (tmp_path / "c").exists()
    # any other first word is a predictor's name: its own error, not "no such command"
    r = run(app, ["train", "nosuchmodel", "--data", "lob", "--store", str(store.path), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "nosuchmodel" in r.output and "No such command" not in r.output, r.output
