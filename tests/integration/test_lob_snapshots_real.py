"""``verify_snapshots`` on a LOBSTER day turned into events + snapshots, checked against the per-message
verifier (real data, ../shared/data)."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.lob.snapshots import verify_snapshots

DT = [(c, np.int64) for c in ("ts", "seq", "type", "order_id", "side", "price", "size")]


@pytest.mark.integration
def test_lobster_day_as_events_and_snapshots(shared_data):
    """Every row of a LOBSTER day as a snapshot: the check sees what the per-message verifier sees before
    its window rule (level 1 from the messages alone; deeper levels drift where they entered view)."""
    from marketlab.lob.lobster import verify_lobster
    from marketlab.store.ingest.lobster import parse, read_lobster

    d = shared_data / "lobster_sample_2012-06-21"
    stem = d / "GOOG_2012-06-21_34200000_57600000"
    files = [stem.with_name(stem.name + "_message_10.csv.gz"), stem.with_name(stem.name + "_orderbook_10.csv.gz")]
    n = 30_000
    batch = parse(files, dataset="x")
    ev, bk = batch.frames["events"].head(n), batch.frames["book"].head(n)
    arr = np.zeros(n, dtype=DT)
    for c, _ in DT:
        arr[c] = ev[c].to_numpy()
    rows = bk.select(bk.columns[3:]).to_numpy().astype(np.int64)
    rep = verify_snapshots(arr, bk["seq"].to_numpy(), bk["ts"].to_numpy(), rows)
    day = read_lobster(*files)
    ref = verify_lobster(day.msgs[:n], day.book[:n], grid=day.grid, repeat_timing=False)
    assert ref.strict_match_rate_level1 == 1.0
    assert rep.match_rate_best_price >= 0.99
    assert abs(rep.match_rate_all_levels - ref.strict_match_rate_all_levels) < 0.03
    sampled = verify_snapshots(arr, bk["seq"].to_numpy()[::100], bk["ts"].to_numpy()[::100], rows[::100])
    assert sampled.snapshots_compared == len(range(0, n, 100)) - 1 and set(sampled.per_hour) <= {"13:00Z", "14:00Z"}
