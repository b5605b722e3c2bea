"""marketlab.simulators.evaluate: hull coverage, observations and targets, the predictive score, facts per
segment — each against answers worked out by hand or published (the TRADES paper's improvement factor)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from marketlab.core.schema import EVENTS_SCHEMA, book_schema
from marketlab.simulators import evaluate as E


def test_convex_clip_and_area_match_hand_geometry() -> None:
    sq = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # counter-clockwise unit square
    assert E.polygon_area(sq) == pytest.approx(1.0)
    moved = sq + [0.5, 0.25]
    inter = E.clip_convex(moved, sq)
    assert E.polygon_area(inter) == pytest.approx(0.5 * 0.75)
    assert E.polygon_area(E.clip_convex(sq + [2.0, 0.0], sq)) == pytest.approx(0.0)
    tri = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    assert E.polygon_area(E.clip_convex(sq, tri)) == pytest.approx(1.0)  # the square lies inside the triangle


def test_hull_coverage_is_one_for_the_same_cloud_and_about_a_quarter_for_a_shrunk_one() -> None:
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, size=(4000, 3)) * [3.0, 1.0, 0.1]
    assert E.hull_coverage(real, real)["coverage"] == pytest.approx(1.0)
    half = real * 0.5  # half the extent on every axis: a quarter of the area in any 2-D projection
    assert E.hull_coverage(real, half)["coverage"] == pytest.approx(0.25, abs=0.02)
    far = real + 100.0
    assert E.hull_coverage(real, far)["coverage"] == pytest.approx(0.0)


def test_improvement_factor_reproduces_the_papers_tesla_number() -> None:
    # TRADES paper Table 1, Tesla: replay 0.923, second best (IABS) 1.870, TRADES 1.213 -> 3.27x
    assert E.improvement_factor(1.213, 1.870, 0.923) == pytest.approx(3.27, abs=0.005)


def _segment(rows: list[tuple[int, int, int, int, int]], books: list[tuple[int, int, int, int]], t0: int = 0) -> E.Segment:
    n = len(rows)
    ev = pl.DataFrame({"ts": [t0 + 1000 * i for i in range(n)], "symbol": ["X"] * n, "seq": list(range(n)),
                       "type": [r[0] for r in rows], "order_id": [r[1] for r in rows], "side": [r[2] for r in rows],
                       "price": [r[3] for r in rows], "size": [r[4] for r in rows]}).cast(EVENTS_SCHEMA)  # type: ignore[arg-type]
    sch = book_schema(1)
    bk = pl.DataFrame({"ts": [t0 + 1000 * i for i in range(n)], "symbol": ["X"] * n, "seq": list(range(n)),
                       "ask_px_1": [b[0] for b in books], "ask_sz_1": [b[1] for b in books],
                       "bid_px_1": [b[2] for b in books], "bid_sz_1": [b[3] for b in books]}).cast(sch)  # type: ignore[arg-type]
    return E.Segment(ev, bk)


def test_observations_match_hand_computed_features() -> None:
    seg = _segment(
        [(1, 1, -1, 10100, 5), (1, 2, 1, 9900, 15), (4, 1, -1, 10100, 5), (3, 2, 1, 9900, 15)],
        [(10100, 5, 0, 0), (10100, 5, 9900, 15), (10200, 10, 9900, 15), (10200, 10, 9800, 30)],
    )
    x, mid = E.observations(seg)
    # row 0 has a one-sided book: the first two-sided book is row 1, so observations start there
    assert x.shape == (3, E.N_OBS_FEATURES)
    np.testing.assert_allclose(mid, [10000.0, 10050.0, 10000.0])
    # row 1 (the bid add): add, buy, log1p(15); no two-sided mid before it, so its own mid is the reference
    assert x[0, 5] == pytest.approx((9900 - 10000) / 10000 * 1e4)
    assert x[0, :4].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert x[0, 4] == pytest.approx(np.log1p(15))
    assert x[0, 6] == pytest.approx(200 / 10000 * 1e4)  # spread 200 ticks at mid 10000 -> 200 bps
    assert x[0, 7] == pytest.approx((15 - 5) / 20)  # (bid - ask) / (bid + ask) at level 1
    # row 2 (execution at 10100 lifting the ask): mid 10000 -> 10050
    assert x[1, :3].tolist() == [0.0, 0.0, 1.0]
    assert x[1, 5] == pytest.approx((10100 - 10000) / 10000 * 1e4)
    assert x[1, 10] == pytest.approx(50 / 10000 * 1e4)
    # row 3 (delete): cancel/delete flag, mid change -50 ticks of 10050
    assert x[2, 1] == 1.0 and x[2, 10] == pytest.approx(-50 / 10050 * 1e4)


def test_window_targets_are_the_mid_change_horizon_events_ahead() -> None:
    mid = np.array([100.0, 101.0, 102.0, 100.0, 99.0, 103.0])
    x = np.zeros((6, E.N_OBS_FEATURES))
    ends, y = E.windows(x, mid, window=2, horizon=2)
    assert ends.tolist() == [1, 2, 3]  # full windows whose target row exists
    np.testing.assert_allclose(y, [(100 - 101) / 101 * 1e4, (99 - 102) / 102 * 1e4, (103 - 100) / 100 * 1e4])


@pytest.mark.slow
def test_predictive_score_learns_a_predictable_signal_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    n = 800
    x = rng.normal(size=(n, E.N_OBS_FEATURES))
    # the mid moves 1 bps in the direction of feature 0 of the previous event: the last row of a window
    # tells the next change exactly
    steps = np.sign(x[:-1, 0]) * 1e-4
    mid = 10000.0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    budget = E.LSTMBudget(window=3, horizon=1, hidden=16, layers=1, max_epochs=6, patience=6, batch=32, lr=1e-2,
                          max_train=600, max_test=150)
    tr, te = (x[:600], mid[:600]), (x[600:], mid[600:])
    norm = (x[:600].mean(axis=0), x[:600].std(axis=0))
    a = E.predictive_score([tr], [te], budget, norm)
    b = E.predictive_score([tr], [te], budget, norm)
    assert a["mae_bps"] == b["mae_bps"]  # seeded
    assert a["mae_bps"] < 0.5 * a["zero_forecast_mae_bps"]  # it learned the sign, not the mean


def test_market_facts_keep_segments_apart() -> None:
    seg = _segment([(1, i + 1, 1, 9900, 1) for i in range(3)], [(10100, 5, 9900, 1)] * 3)
    m = E.Market("m", [seg, seg])
    f = E.market_facts(m)
    assert f.scalars["n_events"] == 6
    # 3 events per segment -> 2 gaps each; the jump between segments is not an inter-arrival time
    assert f.series["log10_interarrival_s"].size == 4
