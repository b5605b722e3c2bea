"""stylized: numeric helpers against known answers, facts from hand-built frames, table and figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketlab.core.errors import StoreError
from marketlab.core.schema import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema
from marketlab.simulators.stylized import (
    acf,
    compute_facts,
    excess_kurtosis,
    facts_table,
    format_table,
    hill_tail_index,
    minute_bars,
    parse_ref,
    plot_facts,
    trades_from_events,
)

NS = 1_000_000_000
T0 = 1_340_285_400 * NS  # 2012-06-21 13:30 UTC


def test_acf_of_ar1_matches_phi_powers() -> None:
    rng = np.random.default_rng(0)
    phi, n = 0.6, 50_000
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    a = acf(x, 3)
    np.testing.assert_allclose(a, [phi, phi**2, phi**3], atol=0.02)
    assert np.isnan(acf(np.ones(10), 2)).all()


def test_kurtosis_and_hill_separate_gaussian_from_student_t() -> None:
    rng = np.random.default_rng(1)
    g = rng.standard_normal(20_000)
    t3 = rng.standard_t(3, 20_000)
    assert abs(excess_kurtosis(g)) < 0.15
    assert excess_kurtosis(t3) > 3
    # Student-t(3) has tail index 3; the Hill estimate on the top 10% is close to it.
    assert 2.3 < hill_tail_index(t3) < 3.8
    assert hill_tail_index(g) > hill_tail_index(t3) + 1
    pareto = rng.pareto(2.0, 50_000) + 1.0  # exact power tail with alpha = 2
    assert hill_tail_index(pareto, tail_fraction=0.05) == pytest.approx(2.0, rel=0.08)


def test_minute_bars_forward_fill_and_volume_per_bar() -> None:
    # mid 100 until 90 s, 110 from then; grid starts at the first full minute after the first row.
    ts = np.array([T0 + 1 * NS, T0 + 90 * NS, T0 + 200 * NS])
    mid = np.array([100.0, 110.0, 110.0])
    trade_ts = np.array([T0 + 61 * NS, T0 + 150 * NS, T0 + 170 * NS])
    trade_size = np.array([5, 7, 1])
    r, v, starts = minute_bars(ts, mid, trade_ts, trade_size)
    # grid: 60, 120, 180 s -> returns log(110/100), log(110/110)
    np.testing.assert_allclose(r, [np.log(1.1), 0.0])
    np.testing.assert_allclose(v, [5, 8])
    assert starts.tolist() == [T0 + 60 * NS, T0 + 120 * NS]


def _frames(n_events: int = 4000, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A random-walk two-sided book over ~66 minutes with adds/deletes/executions."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.exponential(1.0, n_events) * NS).astype(np.int64)
    mid = 10_000 + np.cumsum(rng.choice([-1, 0, 1], n_events))
    spread = rng.choice([1, 2, 3], n_events, p=[0.6, 0.3, 0.1])
    types = rng.choice([1, 3, 4], n_events, p=[0.5, 0.4, 0.1])
    side = rng.choice([-1, 1], n_events)
    events = pl.DataFrame(
        {
            "ts": ts, "symbol": ["X"] * n_events, "seq": np.arange(n_events), "type": types,
            "order_id": np.arange(n_events) + 1, "side": side, "price": mid, "size": rng.integers(1, 10, n_events),
        }
    ).cast(EVENTS_SCHEMA)  # type: ignore[arg-type]
    cols: dict[str, object] = {"ts": ts, "symbol": ["X"] * n_events, "seq": np.arange(n_events)}
    for i in (1, 2):
        cols[f"ask_px_{i}"] = mid + spread + (i - 1)
        cols[f"ask_sz_{i}"] = np.full(n_events, 10 * i)
        cols[f"bid_px_{i}"] = mid - (i - 1)
        cols[f"bid_sz_{i}"] = np.full(n_events, 20 * i)
    book = pl.DataFrame(cols).cast(book_schema(2))  # type: ignore[arg-type]
    return events, book, trades_from_events(events)


def test_compute_facts_on_hand_built_frames() -> None:
    events, book, trades = _frames()
    f = compute_facts(events, book, trades, label="toy")
    s = f.scalars
    assert s["n_events"] == 4000
    assert s["book_levels"] == 2
    assert s["spread_mean"] == pytest.approx(float((book["ask_px_1"] - book["bid_px_1"]).mean()))
    # a tick of 0.01 currency scales the spread but not the scale-free facts
    c = compute_facts(events, book, trades, tick_size=0.01).scalars
    assert c["spread_mean"] == pytest.approx(s["spread_mean"] * 0.01)
    assert c["spread_mean_bps"] == pytest.approx(s["spread_mean_bps"])
    assert s["depth_l1_mean"] == pytest.approx(15.0)
    assert s["depth_total_mean"] == pytest.approx((10 + 20 + 20 + 40) / 2)
    shares = events["type"].value_counts().sort("type")
    assert s["share_add"] == pytest.approx(shares.filter(pl.col("type") == 1)["count"][0] / 4000)
    assert s["share_cancel"] == 0.0
    assert 60 < s["n_minutes"] < 70
    # exponential gaps with mean 1 s: CV ~ 1
    assert s["interarrival_mean_ms"] == pytest.approx(1000, rel=0.1)
    assert 0.8 < s["interarrival_cv"] < 1.2
    assert np.isfinite(s["ret_excess_kurtosis"]) and np.isfinite(s["volume_volatility_corr"])
    # trades derived from events when none are given
    g = compute_facts(events, book, None, label="toy2")
    assert g.scalars["trade_size_mean"] == pytest.approx(s["trade_size_mean"])
    assert trades.schema == pl.Schema(TRADES_SCHEMA)


def test_one_sided_rows_are_excluded_from_spread_and_mid() -> None:
    events, book, trades = _frames(500)
    book = book.with_columns(pl.when(pl.col("seq") % 2 == 0).then(0).otherwise(pl.col("bid_px_1")).alias("bid_px_1"))
    f = compute_facts(events, book, trades)
    valid = book.filter(pl.col("bid_px_1") > 0)
    assert f.series["spread"].size == valid.height
    assert f.scalars["spread_mean"] == pytest.approx(float((valid["ask_px_1"] - valid["bid_px_1"]).mean()))


def test_table_and_figure(tmp_path: Path) -> None:
    events, book, trades = _frames()
    a = compute_facts(events, book, trades, label="a")
    b = compute_facts(*_frames(seed=9), label="b")
    rows = facts_table([a, b])
    assert rows[0] == ["fact", "a", "b"]
    assert all(len(r) == 3 for r in rows)
    text = format_table([a, b])
    assert "Hill tail index" in text and text.count("\n") == len(rows)
    png = plot_facts([a, b], tmp_path / "fig" / "facts.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.to_dict()["label"] == "a"


def test_parse_ref() -> None:
    assert parse_ref("lobster") == ("lobster", None)
    assert parse_ref("lobster:GOOG") == ("lobster", "GOOG")
    with pytest.raises(StoreError, match="invalid dataset reference"):
        parse_ref("lobster:")
