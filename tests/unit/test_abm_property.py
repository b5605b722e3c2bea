"""Property tests: random agent message streams (good and bad) through the latency exchange."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.simulators.abm import ExternalTrader
from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.exchange import Exchange, LatencyModel, snapshots_after_events

msg = st.one_of(
    st.tuples(st.just("limit"), st.integers(0, 2), st.sampled_from([1, -1]), st.integers(90, 110), st.integers(1, 20)),
    st.tuples(st.just("market"), st.integers(0, 2), st.sampled_from([1, -1]), st.just(0), st.integers(1, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 2), st.just(0), st.integers(0, 40), st.integers(0, 5)),
    st.tuples(st.just("bad"), st.integers(0, 2), st.sampled_from([1, -1]), st.sampled_from([0, -3, 99.5]), st.sampled_from([0, -1, 2.5, 3])),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(msg, min_size=1, max_size=120), st.integers(0, 2**16))
def test_random_streams_keep_the_book_sound(stream: list[tuple], seed: int) -> None:
    ex = Exchange(0, 10**12, LatencyModel(5_000, 5_000, 1.5), reference_price=100)
    traders = [ex.add_agent(ExternalTrader(), np.random.default_rng(seed + i), np.random.default_rng(seed + 10 + i)) for i in range(3)]
    ex.start()
    ids: list[list[int]] = [[], [], []]
    expected_bad = 0
    for k, (kind, who, side, price, size) in enumerate(stream):
        a = traders[who]
        if kind == "limit":
            ids[who].append(ex.limit(a, side, price, size))
        elif kind == "market":
            ex.market(a, side, size)
        elif kind == "cancel":
            # index into this trader's own ids (may be filled/cancelled already), else a foreign id
            own = ids[who]
            ex.cancel(a, own[price % len(own)] if own else 10**9, size)
        else:
            ex.limit(a, side, price, size)
            expected_bad += 1
        if k % 7 == 0:
            ex.run_until(ex.now + 3_000)
            assert not ex.book.is_crossed()
    ex.run_until(ex.now + NS_PER_S)
    assert not ex.book.is_crossed()
    bad_kinds = {"non_positive_size", "size_not_whole_lots", "price_off_tick_grid", "non_positive_price"}
    assert sum(v for r, v in ex.rejections.items() if r in bad_kinds) == expected_bad
    assert set(ex.rejections) <= bad_kinds | {"unknown_order_id"}
    # fills conserve quantity: every lot bought was sold
    assert sum(t.position for t in traders) == 0
    events, fills = ex.drain()
    assert int(fills["size"].sum()) == ex.volume
    if events.shape[0]:
        np.testing.assert_array_equal(snapshots_after_events(events, 5)[-1], ex.book_snapshot(5))
