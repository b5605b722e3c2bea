"""Hostile input to the alpha, mine, xva and bsde commands (issue 13 items 10 and 13): one row per input,
each refused at load with exit code 2 and one ``error:`` line naming the file (when there is one) and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app

REPO = Path(__file__).resolve().parents[2]
XVA = (REPO / "specs" / "xva" / "xva_forward_cva.toml").read_text()
MINE = """[data]
dataset = "x"
[split]
train = "2015-01-01:2016-12-31"
valid = "2017-01-01:2017-12-31"
test = "2018-01-01:2018-12-31"
[miner]
method = "gp"
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (name, command line with {spec} for the spec file, spec text or None, text the error line must hold)
ROWS = [
    ("formula 3,000 deep", ["alpha", "eval", "Abs(" * 3000 + "close" + ")" * 3000, "--data", "x"], None,
     "nested more than 100 levels"),
    ("formula chain 3,000 long", ["alpha", "eval", "+".join(["close"] * 3000), "--data", "x"], None,
     "nested more than 100 levels"),
    ("xva lr lengths differ", ["xva", "{spec}"], _edit(XVA, "lr_boundaries = [400]", "lr_boundaries = [200, 400]"),
     "key 'training.clean.lr_values'"),
    ("xva lr boundaries not increasing", ["xva", "{spec}"],
     _edit(XVA, "lr_values = [0.05, 0.005]\nlr_boundaries = [400]",
           "lr_values = [0.05, 0.01, 0.005]\nlr_boundaries = [400, 100]"), "key 'training.clean.lr_boundaries'"),
    ("xva paths = 1e10", ["xva", "{spec}"], _edit(XVA, "paths = 16384", "paths = 1e10"), "key 'run.paths'"),
    ("xva paths = 10^10 (int)", ["xva", "{spec}"], _edit(XVA, "paths = 16384", "paths = 10000000000"),
     "key 'run.paths'"),
    ("xva seed = -5", ["xva", "{spec}"], _edit(XVA, "seed = 0", "seed = -5"), "key 'run.seed'"),
    ("xva --seed -5", ["xva", "{spec}", "--seed", "-5"], XVA, "key 'run.seed'"),
    ("xva steps = 0", ["xva", "{spec}"], _edit(XVA, "steps = 200", "steps = 0"), "key 'run.steps'"),
    ("mine valid overlaps train", ["mine", "{spec}"], _edit(MINE, 'valid = "2017-01-01', 'valid = "2016-06-01'),
     "key 'split.valid'"),
    ("mine test overlaps train (open start)", ["mine", "{spec}"], _edit(MINE, 'test = "2018-01-01', 'test = "'),
     "key 'split.test'"),
    ("mine period ends before it starts", ["mine", "{spec}"],
     _edit(MINE, '"2015-01-01:2016-12-31"', '"2016-12-31:2015-01-01"'), "key 'split.train'"),
    ("mine invalid date", ["mine", "{spec}"], _edit(MINE, '"2015-01-01:2016-12-31"', '"2015-13-45:2016-12-31"'),
     "key 'split.train'"),
    ("mine learning_rate = -1", ["mine", "{spec}"], MINE + "learning_rate = -1.0\n", "key 'miner.learning_rate'"),
    ("mine capacity = 0", ["mine", "{spec}"], MINE + "capacity = 0\n", "key 'miner.capacity'"),
    ("bsde --lr -1", ["bsde", "bs_call", "--lr", "-1"], None, "key 'lr_values[0]'"),
    ("bsde --iterations 0", ["bsde", "bs_call", "--iterations", "0"], None, "key 'iterations'"),
    ("bsde --batch-size 0", ["bsde", "bs_call", "--batch-size", "0"], None, "key 'batch_size'"),
    ("bsde --steps 0", ["bsde", "bs_call", "--steps", "0"], None, "key 'steps'"),
    ("bsde unknown equation", ["bsde", "heat"], None, "unknown equation id 'heat'"),
    ("forecast unknown model", ["forecast", "--models", "naive,prophet"], None, "unknown forecaster id 'prophet'"),
    ("forecast --epochs 0", ["forecast", "--epochs", "0"], None, "key 'epochs'"),
    ("forecast bad date", ["forecast", "--test-start", "2017-13-01"], None, "key 'test_start'"),
    ("forecast dates out of order", ["forecast", "--test-start", "2019-01-02"], None, "key 'test_start'"),
]


@pytest.mark.parametrize(("args", "spec", "needle"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_exit_2_and_one_line_naming_the_key(tmp_path, args, spec, needle) -> None:
    path = tmp_path / "spec.toml"
    if spec is not None:
        path.write_text(spec)
    argv = [str(path) if a == "{spec}" else a for a in args]
    if args[0] == "alpha":  # an (empty) store: reading commands refuse a folder that is not one
        from marketlab.store import Store

        Store(tmp_path / "store")
        argv += ["--store", str(tmp_path / "store")]
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output
    if spec is not None:
        assert str(path) in lines[0]
    assert len(lines[0]) < 1000  # a 3,000-deep formula is not echoed whole
