"""Known answer on the real CSI300 panel: Corr(close, volume, 20) vs the 20-day forward return,
2011-07..2022-02, adjusted prices, suspended days masked: IC ~ -0.046, RankIC ~ -0.064 (SOURCE.md)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_corr_close_volume_known_answer(shared_data, tmp_path):
    from marketlab.features.expr import Evaluator
    from marketlab.features.ic import ic_summary
    from marketlab.features.panel_tensor import panel_to_tensors
    from marketlab.store import Store

    store = Store(tmp_path / "store")
    store.ingest("ashare", [shared_data / "csi300_cn_daily"], dataset="csi300")
    panel = panel_to_tensors(store.scan_panel("csi300"), device="cpu", source="csi300")
    ev = Evaluator(panel.features)
    res = ic_summary(ev("Corr(close, volume, 20)"), ev("Ref(close, -20) / close - 1", allow_future=True),
                     panel.traded, panel.rows("2011-07-01", "2022-02-28"))  # fmt: skip
    assert res["days"] == 2591
    assert res["ic"] == pytest.approx(-0.046, abs=0.003)
    assert res["rank_ic"] == pytest.approx(-0.064, abs=0.003)
