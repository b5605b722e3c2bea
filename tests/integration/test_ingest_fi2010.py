"""FI-2010: known shape, store round trip, and the SOURCE.md unit conversion that rebuilds Train CF_7."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.store import Store
from marketlab.store.ingest import fi2010

pytestmark = pytest.mark.integration


def test_train_cf1_shape_and_store(shared_data, tmp_path) -> None:
    f = shared_data / "fi2010_noauction_zscore" / "Train_Dst_NoAuction_ZScore_CF_1.txt.xz"
    m = fi2010.read_matrix(f)
    assert m.shape == (149, 39_512)
    store = Store(tmp_path / "s")
    rep = store.ingest("fi2010", [f])
    assert rep.rows == {"features": 39_512} and rep.symbols == ["S1", "S2", "S3", "S4", "S5"]
    s3 = store.scan_features("fi2010_noauction_zscore", "S3").collect()
    assert s3.height == 14_694 - 9_772 and s3["sample"][0] == 9_772
    np.testing.assert_array_equal(s3["f001"].to_numpy(), m[0, 9_772:14_694].astype(np.float32))
    assert set(s3["label_k10"].unique().to_list()) <= {1, 2, 3}


@pytest.mark.slow
def test_day1_units_restore_linear_relations(shared_data) -> None:
    """Rows 41-60 are affine in rows 1-40 (fit on day 1); that holds on days 2-7 only after conversion."""
    folder = shared_data / "fi2010_noauction_zscore"
    days = [fi2010.read_matrix(fi2010.day_file(folder, d))[:144] for d in (1, 2, 3, 4)]
    a1 = np.vstack([days[0][:40], np.ones(days[0].shape[1])]).T
    coef, *_ = np.linalg.lstsq(a1, days[0][40:60].T, rcond=None)
    conv = fi2010.to_day1_units(days)
    for raw, c in zip(days[2:], conv[2:], strict=True):
        resid_conv = np.abs(np.vstack([c[:40], np.ones(c.shape[1])]).T @ coef - c[40:60].T).max()
        resid_raw = np.abs(np.vstack([raw[:40], np.ones(raw.shape[1])]).T @ coef - raw[40:60].T).max()
        assert resid_conv < 1e-3 < 0.1 < resid_raw
