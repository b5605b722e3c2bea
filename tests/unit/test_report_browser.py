"""The report page renders in a real browser: headless Chromium runs its JavaScript (plotly.js unpacked from
the page), every figure is drawn, and the screenshot is not blank. Skips without Chromium, except in CI
(``CI=true``), where .ci/run installs it and a missing browser fails the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from marketlab.backtests import Backtest
from marketlab.backtests.spec import BacktestSpec
from marketlab.market import synthetic_market

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars")


def chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page`` with a fresh profile; JavaScript gets 20 s of virtual time."""
    exe = chromium()
    assert exe is not None
    cmd = [exe, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    m = synthetic_market(600, 12, seed=11, vol=0.015, bar_seconds=86_400)
    spec = {"name": "browser", "data": {"dataset": "mem"}, "signal": {"kind": "momentum-v1", "lookback": 20},
            "strategy": {"kind": "topk", "top_k": 3, "rebalance": 5}, "costs": {"commission": 0.0005}, "report": {"out_dir": str(out), "png": False}}
    return Path(Backtest(BacktestSpec.from_dict(spec), market=m).run().report_path)


@pytest.fixture(scope="module", autouse=True)
def need_chromium() -> None:
    if chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing in CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")


def test_every_figure_is_drawn(report_page, tmp_path):
    proc = run_chromium(report_page, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    n_figures = dom.count('<div class="card"><div id="')
    assert n_figures == 8
    assert f'data-rendered="{n_figures}"' in dom, "the page's script did not finish drawing (see #js-error)"
    assert dom.count('class="main-svg"') >= n_figures  # plotly's SVG roots, one or more per figure
    assert '<p id="js-error" class="err"></p>' in dom


def test_screenshot_is_not_blank(report_page, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    run_chromium(report_page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2600")
    assert shot.is_file() and shot.stat().st_size > 10_000
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert img.shape[:2] == (2600, 1400)
    charts = img[900:, :]  # below the statistics tables: only drawn charts make colour here
    colored = np.abs(charts - charts.mean(axis=2, keepdims=True)).max(axis=2) > 40  # clearly non-grey pixels
    assert colored.mean() > 0.01, f"charts area is blank ({colored.mean():.4f} coloured)"
    assert len(np.unique(charts.reshape(-1, 3), axis=0)) > 200
