"""CSI300 A-share panel: parsed ONCE per session (40 MB gz), known answers from SOURCE.md."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from marketlab.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def csi300_store(shared_data, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("csi") / "store")
    store.ingest("ashare", [shared_data / "csi300_cn_daily"])
    return store


def test_csi300_known_answers(csi300_store: Store) -> None:
    n = csi300_store.sql("select count(distinct symbol) s, count(distinct date) d from panel_csi300_cn_daily")
    assert n.row(0) == (751, 3_966)
    p = csi300_store.scan_panel("csi300_cn_daily")
    # suspended = volume 0 (60,862 rows) or empty volume (1,021 rows)
    assert p.select(pl.col("suspended").sum()).collect().item() == 60_862 + 1_021
    per_day = p.group_by("date").agg(pl.col("in_universe").sum()).collect()
    assert per_day["in_universe"].max() <= 300 and per_day["in_universe"].min() >= 240


def test_csi300_moutai_adjustment(csi300_store: Store) -> None:
    m = csi300_store.scan_panel("csi300_cn_daily", "SH600519", "2024-12-19", "2024-12-21").collect()
    assert m["date"].to_list() == [dt.date(2024, 12, 19), dt.date(2024, 12, 20)]
    assert m["close"][0] == pytest.approx(1551.01)
    assert m["adj_factor"].to_list() == pytest.approx([7.1137, 7.2249], rel=1e-4)
    assert csi300_store.instrument("csi300_cn_daily", "SH600519").currency == "CNY"
