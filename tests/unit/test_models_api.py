"""The predictors' API through the CLI shell: a run folder resumes only what it was started with (issue 13
item 9), more epochs extend a finished run, and damaged checkpoints are one-line errors (item 10)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.core.schema import book_schema
from marketlab.store import IngestBatch, Instrument, Store

LEVELS = 10


def _book(symbol: str, n: int, seed: int) -> pl.DataFrame:
    """``n`` 10-level snapshots around a random-walk mid (ticks), one per second."""
    rng = np.random.default_rng(seed)
    mid = 10_000 + np.cumsum(rng.integers(-2, 3, n))
    cols: dict[str, object] = {"ts": 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 1_000_000_000,
                               "symbol": [symbol] * n, "seq": np.arange(n, dtype=np.int64)}
    for i in range(1, LEVELS + 1):
        cols[f"ask_px_{i}"] = mid + i
        cols[f"ask_sz_{i}"] = rng.integers(1, 50, n)
        cols[f"bid_px_{i}"] = mid - i
        cols[f"bid_sz_{i}"] = rng.integers(1, 50, n)
    return pl.DataFrame(cols).cast(book_schema(LEVELS))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "store"
    st = Store(path)
    for sym, seed in (("GOOG", 1), ("AAPL", 2)):
        st.write(IngestBatch("lobx", {"book": _book(sym, 1200, seed)}, [Instrument(sym, 0.01, 1.0)]))
    return path


def _train(store, out, *extra: str):
    args = ["train", "binctabl", "--data", "lobx", "--symbol", "GOOG", "--store", str(store), "--out", str(out),
            "--epochs", "2", "--json", *extra]
    return CliRunner().invoke(app, args)


def _config(tmp_path, name: str, text: str):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return str(p)


@pytest.fixture(scope="module")
def finished_run(store, tmp_path_factory):
    """A 2-epoch run folder (copied per test so each test may change it)."""
    out = tmp_path_factory.mktemp("run") / "run"
    r = _train(store, out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def run(finished_run, tmp_path):
    import shutil

    return shutil.copytree(finished_run, tmp_path / "run")


# one row per changed input: the CLI arguments of the second call, the key the error must name
CHANGED = [
    (["--symbol", "AAPL"], "data.symbol"),
    (["--horizon", "20"], "data.horizon"),
    (["--config", "MODEL"], "model.d2"),
    (["--config", "TRAIN"], "train.lr"),
    (["--max-train-windows", "300"], "train.max_train_windows"),
    (["--epochs", "1"], "train.epochs"),  # fewer epochs than the run already trained
    (["--epochs", "0"], "train.epochs"),  # not a positive int
]


@pytest.mark.parametrize(("args", "key"), CHANGED, ids=[k + ":" + " ".join(a) for a, k in CHANGED])
def test_resume_with_changed_input_is_refused_naming_the_key(store, run, tmp_path, args, key) -> None:
    cfgs = {"MODEL": _config(tmp_path, "m", "[model]\nd2 = 30\n"), "TRAIN": _config(tmp_path, "t", "[train]\nlr = 0.01\n")}
    args = [cfgs.get(a, a) for a in args]
    before = (run / "state.safetensors").read_bytes()
    # later flags win in typer, so the changed value overrides the default ones of _train
    r = _train(store, run, *args)
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and f"'{key}'" in line, line
    assert (run / "state.safetensors").read_bytes() == before  # the refused call wrote nothing


def test_more_epochs_extend_a_finished_run(store, run, tmp_path) -> None:
    r = _train(store, run, "--epochs", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["epochs_run"] == 3 and out["resumed_from_epoch"] == 2
    # the extension continues the same schedule: equal to one uninterrupted 3-epoch run
    r = _train(store, tmp_path / "straight", "--epochs", "3")
    assert r.exit_code == 0, r.output
    a = load_file(str(run / "state.safetensors"))
    b = load_file(str(tmp_path / "straight" / "state.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_same_run_again_is_a_no_op_resume(store, run) -> None:
    r = _train(store, run)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["resumed_from_epoch"] == 2


@pytest.mark.parametrize("cut", [0, 7, 100, -1])
def test_truncated_checkpoints_are_one_line_errors(store, run, tmp_path, cut: int) -> None:
    for f in (run / "state.safetensors", run / "best" / "model.safetensors"):
        data = f.read_bytes()
        f.write_bytes(data[: cut if cut >= 0 else len(data) // 2])
    r = _train(store, run)
    assert r.exit_code == 2 and "state.safetensors" in r.output and "truncated or corrupt" in r.output, r.output
    r = CliRunner().invoke(app, ["predict", str(run / "best"), "--data", "lobx", "--store", str(store),
                                 "--out", str(tmp_path / "p.parquet")])
    assert r.exit_code == 2 and "model.safetensors" in r.output and "truncated or corrupt" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_predict_reproduces_the_training_data_and_writes_signals(store, run, tmp_path) -> None:
    r = CliRunner().invoke(app, ["predict", str(run / "best"), "--data", "lobx", "--store", str(store),
                                 "--out", str(tmp_path / "p.parquet"), "--signals", "lobx-sig", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    df = pl.read_parquet(tmp_path / "p.parquet")
    assert out["rows"] == df.height == out["signals_rows"] and out["symbols"] == ["GOOG"]
    np.testing.assert_allclose(df["p_up"] + df["p_stationary"] + df["p_down"], 1.0, atol=1e-5)


def test_a_user_predictor_registered_from_python_trains_through_the_api(store, tmp_path) -> None:
    """A newcomer adds a predictor by writing one class (with its config) and registering one id."""
    from dataclasses import asdict, dataclass

    import torch
    from torch import nn

    from marketlab.core import registry
    from marketlab.models.api import train_from_spec
    from marketlab.models.zoo import build_model, model_names

    @dataclass(frozen=True)
    class LastRowConfig:
        num_features: int = 40
        seq_size: int = 10

    class LastRow(nn.Module):
        config_class = LastRowConfig

        def __init__(self, config: LastRowConfig | None = None) -> None:
            super().__init__()
            self.config = config or LastRowConfig()
            self.head = nn.Linear(self.config.num_features, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x[:, -1])

        def config_dict(self) -> dict:
            return asdict(self.config)

    registry.register("predictor/lastrow-v1", LastRow)
    try:
        assert "lastrow" in model_names()
        assert isinstance(build_model("lastrow", {"num_features": 8}), LastRow)
        s = train_from_spec("lastrow", "lobx", symbol="GOOG", store=store, out=tmp_path / "run", epochs=1,
                            progress=False)
        assert s["parameters"] == 40 * 3 + 3 and s["epochs_run"] == 1
    finally:
        registry.unregister("predictor/lastrow-v1")
    assert "lastrow" not in model_names()
