"""Real data: FI-2010 rebuild of the standard training set, day-10 test windows, a short training run
through the CLI with predictions written to the store as signals; LOBSTER GOOG TLOB-label anchors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from marketlab.cli.main import app
from marketlab.features.labels import class_shares, fit_tlob_alpha, tlob_labels
from marketlab.models.datasets import (
    LobsterArrays,
    fi2010_windowsets,
    load_fi2010,
    lobster_features,
    lobster_from_frames,
)

pytestmark = pytest.mark.integration


def read_lobster_arrays(*files) -> LobsterArrays:
    """A raw LOBSTER pair through the store's LOBSTER parser, in float units ($, shares)."""
    from marketlab.core.schema import float_view
    from marketlab.store.ingest.lobster import parse

    batch = parse(list(files), dataset="lobster")
    ins = batch.instruments[0]
    ev, bk = (float_view(batch.frames[k], ins.tick_size, ins.lot_size) for k in ("events", "book"))
    return lobster_from_frames(ev, bk)


@pytest.fixture(scope="module")
def fi_dir(shared_data):
    return shared_data / "fi2010_noauction_zscore"


# The tests that read the full FI-2010 training set are marked slow (`make test-full`): the first read in a process
# rebuilds days 1-7 (254,750 x 144; 18 s of CPU in a serial profile on the shared 2-core machine), cached per
# process after that. The LOBSTER label and window tests below stay in `make test`.


@pytest.mark.slow
def test_rebuilt_training_set_matches_standard_size_and_units(fi_dir) -> None:
    tr = load_fi2010(str(fi_dir), 7, 10)  # the ingestor rebuild as models see it (same cache key)
    assert tr.x_train.shape == (254_750, 144)  # = Train CF_7 of the standard protocol
    x = tr.x_train.astype(np.float64)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    # rows 41-60 (spreads and mids) are linear in rows 1-40: a fit on day 1 holds on every rebuilt day
    # only if all days were brought to the same units (it fails by 0.7-2.2 on the files as shipped)
    a = np.c_[x[:, :40], np.ones(len(x))]
    d1 = tr.day_train == 1
    coef, *_ = np.linalg.lstsq(a[d1], x[d1, 40:60], rcond=None)
    assert np.abs(a @ coef - x[:, 40:60]).max() < 1e-3


@pytest.mark.slow
def test_day10_windows_and_labels(fi_dir) -> None:
    sets = fi2010_windowsets(fi_dir, horizon=100, seq_size=10, num_features=40)
    te = sets["test"]
    assert te.features.shape == (31_937, 40)
    assert len(te) == 31_937 - 5 * 9  # windows inside each of the 5 stocks
    up, stat, down = class_shares(te.window_labels())
    assert 0.3 < up < 0.5 and 0.1 < stat < 0.35 and 0.3 < down < 0.5
    assert len(sets["train"]) + len(sets["val"]) > 250_000


@pytest.mark.slow
def test_cli_train_predict_writes_signals(fi_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARKETLAB_DATA", str(fi_dir.parent))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepochs = 1\nlr = 0.001\nmax_train_windows = 3000\nmax_val_windows = 2000\n"
                   "progress = false\n[data]\nseq_size = 10\n")
    runner = CliRunner()
    r = runner.invoke(app, ["train", "binctabl", "--data", "fi2010", "--horizon", "50", "--config", str(cfg),
                            "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["parameters"] == 11_446
    store = tmp_path / "store"
    r = runner.invoke(app, ["predict", str(tmp_path / "run" / "best"), "--data", "fi2010", "--out",
                            str(tmp_path / "p.parquet"), "--signals", "fi2010-binctabl-h50", "--store", str(store),
                            "--json"])
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(tmp_path / "p.parquet")
    assert df.height == len(fi2010_windowsets(fi_dir, horizon=50, seq_size=10, num_features=40)["test"])
    np.testing.assert_allclose(df.select(pl.sum_horizontal("p_up", "p_stationary", "p_down")).to_series(), 1, atol=1e-5)
    # the reported test macro F1 is scikit-learn's on the written predictions, whose labels are the shipped ones
    from sklearn.metrics import f1_score

    test_ws = fi2010_windowsets(fi_dir, horizon=50, seq_size=10, num_features=40)["test"]
    np.testing.assert_array_equal(df["label"].to_numpy(), test_ws.window_labels())
    probs = df.select("p_up", "p_stationary", "p_down").to_numpy()
    np.testing.assert_array_equal(df["pred"].to_numpy(), probs.argmax(1))
    want = f1_score(df["label"].to_numpy(), df["pred"].to_numpy(), average="macro", labels=[0, 1, 2], zero_division=0)
    assert out["test_macro_f1"] == pytest.approx(want, abs=1e-9)
    from marketlab.store import Store

    sig = Store(store).scan_signals("fi2010-binctabl-h50").collect()
    assert sig.height == df.height and {"p_up", "p_down", "signal"} <= set(sig.columns)


def test_cli_bad_config_key_is_one_line(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepoch = 1\n")
    r = CliRunner().invoke(app, ["train", "tlob", "--data", "fi2010", "--config", str(cfg)])
    assert r.exit_code == 2 and "train.epoch" in r.output


def test_lobster_goog_tlob_label_anchors(shared_data) -> None:
    d = shared_data / "lobster_sample_2012-06-21"
    a = read_lobster_arrays(d / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz",
                            d / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz")
    f = lobster_features(a, q=500)
    assert len(f["mid"]) == 17_784 - 1  # filter + q=500 sampling (research note), first row dropped
    # research note: alpha 7.05e-5 at h=10 and 2.73e-4 at h=100, shares near-balanced
    alpha10 = fit_tlob_alpha(f["mid"], 10)
    alpha100 = fit_tlob_alpha(f["mid"], 100)
    assert alpha10 == pytest.approx(7.05e-5, rel=0.01)
    assert alpha100 == pytest.approx(2.73e-4, rel=0.01)
    up, stat, down = class_shares(tlob_labels(f["mid"], 10, alpha10))
    assert up == pytest.approx(0.31, abs=0.01) and stat == pytest.approx(0.34, abs=0.01)


def test_lobster_windows_from_store_equal_csv_path(shared_data, tmp_path) -> None:
    """LOBSTER GOOG ingested into the store and read back gives the same windows as the raw files."""
    from marketlab.models.datasets import lobster_windowsets
    from marketlab.models.sources import DataConfig, load_windowsets
    from marketlab.store import Store

    d = shared_data / "lobster_sample_2012-06-21"
    files = [d / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz",
             d / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"]
    store = Store(tmp_path / "store")
    store.ingest("lobster", files, dataset="goog")
    from_store, spec = load_windowsets("tlob", "goog", horizon=50, store=store, dcfg=DataConfig(seq_size=64))
    raw = lobster_windowsets(read_lobster_arrays(*files), horizon=50, seq_size=64)
    assert spec["num_features"] == 46 and spec["symbol"] == "GOOG"
    for k in ("train", "val", "test"):
        assert len(from_store[k]) == len(raw[k]) > 0
        np.testing.assert_allclose(from_store[k].features.numpy(), raw[k].features.numpy(), atol=1e-5)
        np.testing.assert_array_equal(from_store[k].window_labels(), raw[k].window_labels())
    # split by time: train < val < test
    assert from_store["train"].ts.max() < from_store["val"].ts.min() < from_store["test"].ts.min()
