"""Stylized facts on the real LOBSTER GOOG day (2012-06-21, level 10): the classic facts hold."""

from __future__ import annotations

import pytest

from marketlab.simulators.stylized import facts_for_dataset

pytestmark = pytest.mark.integration


def test_goog_lobster_day_shows_the_stylized_facts(shared_data, tmp_store) -> None:
    d = shared_data / "lobster_sample_2012-06-21"
    files = [d / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz", d / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"]
    if not all(f.exists() for f in files):
        pytest.skip("GOOG LOBSTER sample not staged")
    tmp_store.ingest("lobster", files, dataset="lobster")
    (f,) = facts_for_dataset(tmp_store, "lobster:GOOG")
    s = f.scalars
    assert s["n_events"] == 147_916
    assert 380 <= s["n_minutes"] <= 390  # 09:30-16:00, first and last partial minutes dropped
    assert s["ret_excess_kurtosis"] > 1.0  # heavy tails
    assert 1.5 < s["hill_tail_index"] < 6.0
    assert abs(s["ret_acf_mean_abs_1_10"]) < 0.15  # no linear predictability
    assert s["absret_acf_lag1"] > 0.05  # volatility clustering
    assert s["volume_volatility_corr"] > 0.1
    assert 0.01 <= s["spread_median"] < 2.0  # dollars; GOOG traded at ~$570 with a wide spread
    assert s["share_add"] + s["share_delete"] + s["share_execute"] + s["share_execute_hidden"] + s["share_cancel"] == pytest.approx(1.0)
    assert s["interarrival_cv"] > 1.5  # bursty arrivals, unlike a Poisson stream
