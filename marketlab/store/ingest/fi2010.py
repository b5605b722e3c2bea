"""[fi2010] FI-2010 benchmark files (``.txt`` / ``.txt.xz``) -> ``features``; plus the training-set builder.

A file is a whitespace matrix of 149 rows x N samples (transposed: one COLUMN per sample, in time order).
Rows 1-144 are features (1-40: raw LOB, per level i=1..10 ask px, ask vol, bid px, bid vol; 41-144: the
hand-crafted features of Ntakaris et al.). Rows 145-149 are labels for horizons k = 1, 2, 3, 5, 10
samples: 1 = up, 2 = stationary, 3 = down (TLOB/LOBCAST use label - 1).

Traps (see ``fi2010_noauction_zscore/SOURCE.md``):

* **Every file is in different units.** ``Train_CF_1`` (day 1) is z-scored with day-1 statistics;
  ``Test_CF_k`` (day k+1) is z-scored with the pooled mean/std of training days 1..k. Concatenating the
  files as they are mixes units; :func:`load_training_set` rebuilds the standard 7-day training set by
  converting day k+1 back to day-1 units with the pooled stats of days 1..k (already in day-1 units),
  then re-z-scoring days 1-7 together (ddof = 1, which day 1 shows the files used; ddof 0 would
  differ by ~1e-5 relative, below the files' 8 significant digits).
* Day 10 (``Test_CF_9``) is in days-1..9 units and days 8-9 are missing, so it cannot be brought into
  the rebuilt training units; the standard protocol also uses test files as they are.
* The 5 stocks are concatenated within a day, not interleaved: :data:`STOCK_BOUNDARIES` gives the column
  index where each starts. Windows must not straddle a boundary. The stocks are anonymous here:
  symbols are ``S1``..``S5`` in file order.
* FI-2010 has no timestamps (one sample = 10 LOB events); the store keeps ``day`` and ``sample`` (column
  index within the day) instead of inventing times, so features are partitioned by symbol only.
* Labels are stored as int8 1/2/3 exactly as shipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.store.ingest._io import dataset_from, expand, progress, read_bytes
from marketlab.store.types import IngestBatch, Instrument

N_ROWS = 149
N_FEATURES = 144
HORIZONS = (1, 2, 3, 5, 10)
FEATURE_COLUMNS = [f"f{i:03d}" for i in range(1, N_FEATURES + 1)]
LABEL_COLUMNS = [f"label_k{k}" for k in HORIZONS]

# Column index where each of the 5 stocks starts, per trading day (SOURCE.md; last value = N).
STOCK_BOUNDARIES: dict[int, list[int]] = {
    1: [0, 3454, 9772, 14694, 25413, 39512],
    2: [0, 5079, 11201, 17166, 23878, 38397],
    3: [0, 3903, 9314, 13341, 18527, 28535],
    4: [0, 2806, 9798, 15140, 25959, 37023],
    5: [0, 3030, 9758, 15704, 22082, 34785],
    6: [0, 2263, 8506, 14113, 21120, 39152],
    7: [0, 2801, 9861, 16601, 24455, 37346],
    8: [0, 2647, 11309, 19900, 33129, 55478],
    9: [0, 1873, 11144, 21180, 34060, 52172],
    10: [0, 1888, 7016, 12738, 18559, 31937],
}

_NAME = re.compile(r"^(Train|Test)_Dst_NoAuction_(ZScore|MinMax|DecPre)_CF_(\d+)\.txt(\.xz)?$")


def day_of(path: Path) -> int | None:
    """Trading day of a per-day file: Train_CF_1 -> 1, Test_CF_k -> k + 1 (None for other names)."""
    m = _NAME.match(path.name)
    if not m:
        return None
    k = int(m.group(3))
    if m.group(1) == "Train":
        return 1 if k == 1 else None  # Train_CF_k (k > 1) pools days 1..k: not a single day
    return k + 1


def read_matrix(path: Path) -> np.ndarray:
    """Read one FI-2010 text file -> float64 array [149, N]; ragged rows or wrong row count raise."""
    text = read_bytes(path).decode("ascii", errors="replace")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) != N_ROWS:
        raise DataError(path, f"expected {N_ROWS} rows (144 features + 5 labels), got {len(lines)}")
    rows: list[np.ndarray] = []
    for i, ln in enumerate(lines):
        a = _row_values(path, ln, i + 1, rows[0].size if rows else None)
        rows.append(a)
    m = np.vstack(rows)
    if not np.isfinite(m).all():
        r, c = np.argwhere(~np.isfinite(m))[0]
        raise DataError(path, "non-finite value", row=int(r) + 1, field=f"sample {c}", value=float(m[r, c]))
    lab = m[N_FEATURES:]
    if not np.isin(lab, (1.0, 2.0, 3.0)).all():
        r, c = np.argwhere(~np.isin(lab, (1.0, 2.0, 3.0)))[0]
        raise DataError(path, "label not in {1,2,3}", row=N_FEATURES + int(r) + 1, field=f"sample {c}",
                        value=float(lab[r, c]))
    return m


def _row_values(path: Path, line: str, row: int, width: int | None) -> np.ndarray:
    """One whitespace row -> float64 values. ``np.fromstring`` is the fast path; it stops (with a warning) at
    the first token that is not a number (or raises), so such a row, a row whose length differs from row 1, and row 1
    itself are re-read token by token to name the bad token (row, sample, value) or the short row."""
    import warnings

    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            a = np.fromstring(line, sep=" ")
        except ValueError:  # numpy >= 2.3 raises where older versions warned and stopped
            a = np.zeros(0)
            caught.append(None)  # type: ignore[arg-type]
    if width is not None and a.size == width and not caught:  # a warning = stopped before the end of the row
        return a
    tokens = line.split()
    for j, tok in enumerate(tokens):
        try:
            float(tok)
        except ValueError:
            raise DataError(path, "not a number", row=row, field=f"sample {j}", value=tok[:40]) from None
    if a.size != len(tokens):  # numbers fromstring does not read (e.g. "1_0", "infinity"): take Python's reading
        a = np.array([float(t) for t in tokens], dtype=np.float64)
    if width is not None and a.size != width:
        raise DataError(path, f"row has {a.size} values, row 1 has {width} (truncated file?)", row=row)
    return a


def to_frame(m: np.ndarray, day: int | None) -> pl.DataFrame:
    """[149, N] matrix -> long frame: symbol (S1..S5 by stock boundary), day, sample, f001..f144, labels."""
    n = m.shape[1]
    bounds = STOCK_BOUNDARIES.get(day) if day is not None else None
    stock = np.zeros(n, dtype=np.int64)
    if bounds is not None and bounds[-1] == n:
        for j in range(5):
            stock[bounds[j] : bounds[j + 1]] = j
        symbols = np.array([f"S{j + 1}" for j in range(5)])[stock]
    else:
        symbols = np.full(n, "ALL")
    cols: dict[str, object] = {
        "symbol": symbols,
        "day": np.full(n, day if day is not None else 0, dtype=np.int16),
        "sample": np.arange(n, dtype=np.int64),
    }
    feats = m[:N_FEATURES].astype(np.float32)
    for i, c in enumerate(FEATURE_COLUMNS):
        cols[c] = feats[i]
    for i, c in enumerate(LABEL_COLUMNS):
        cols[c] = m[N_FEATURES + i].astype(np.int8)
    return pl.DataFrame(cols)


def parse(paths: list[Path], *, dataset: str | None = None, progress: bool = False) -> IngestBatch:
    """FI-2010 files -> one ``features`` frame (values exactly as in each file; see the unit trap above)."""
    files = expand([Path(p) for p in paths], ("*.txt", "*.txt.xz"))
    frames = []
    days = []
    for f in _progress(files, progress):
        day = day_of(f)
        frames.append(to_frame(read_matrix(f), day))
        days.append(day)
    df = pl.concat(frames)
    return IngestBatch(
        dataset=dataset or dataset_from([Path(p) for p in paths]),
        frames={"features": df},
        instruments=[Instrument(s, 1.0, 1.0, "EUR") for s in sorted(df["symbol"].unique().to_list())],
        meta={"source": "fi2010", "files": [f.name for f in files], "days": days,
              "units": "each file as shipped (day k+1 z-scored with days 1..k)"},
    )


def _progress(files: list[Path], enabled: bool) -> Iterator[Path]:
    return progress(files, enabled=enabled, desc="fi2010", total=len(files))


@dataclass(frozen=True)
class Fi2010Split:
    """Standard-protocol arrays. ``x_*``: [N, 144] float32; ``y_*``: [N, 5] int8 labels 1/2/3 for horizons
    k = 1, 2, 3, 5, 10; ``stock_*``: [N] int8 stock index 0..4; ``day_*``: [N] int8 trading day."""

    x_train: np.ndarray
    y_train: np.ndarray
    stock_train: np.ndarray
    day_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    stock_test: np.ndarray
    day_test: np.ndarray


def day_file(folder: Path, day: int) -> Path:
    """The per-day file of ``day`` in ``folder`` (.txt.xz or .txt)."""
    name = "Train_Dst_NoAuction_ZScore_CF_1" if day == 1 else f"Test_Dst_NoAuction_ZScore_CF_{day - 1}"
    for suffix in (".txt.xz", ".txt"):
        if (folder / (name + suffix)).is_file():
            return folder / (name + suffix)
    raise DataError(folder / (name + ".txt.xz"), f"file for day {day} not found")


def to_day1_units(days: list[np.ndarray]) -> list[np.ndarray]:
    """Bring consecutive per-day feature blocks [144, N_d] (days 1..K, as shipped) into day-1 units.

    Day 1 is already in day-1 units; day k+1 was z-scored with the pooled mean/std of days 1..k, so it is
    mapped back with those statistics computed on the converted days 1..k (ddof = 1: day 1's rows have
    population std exactly sqrt((n-1)/n), i.e. the files were z-scored with the sample std).
    """
    out = [days[0]]
    for d in days[1:]:
        mu, sd = _stats(np.concatenate(out, axis=1))
        out.append(d * sd + mu)
    return out


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and sample std (ddof = 1) of [F, N]; constant rows get std 1 (no division by 0)."""
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, ddof=1, keepdims=True)
    return mu, np.where(sd > 0, sd, 1.0)


def load_training_set(folder: str | Path, train_days: int = 7, test_day: int = 10) -> Fi2010Split:
    """Rebuild the standard FI-2010 training set (days 1..``train_days``) from the per-day files and load
    the test day as shipped.

    Train: days converted to day-1 units (:func:`to_day1_units`), then z-scored together with their own
    pooled per-feature mean/std (ddof = 1) - exactly how Train_CF_7 is built (SOURCE.md (b)).
    Test: ``test_day``'s file as shipped (day 10 = Test_CF_9, in days-1..9 units, the standard test file).
    Returns float32 features [N, 144] and int8 labels [N, 5] (1 up / 2 stationary / 3 down).
    """
    folder = Path(folder)
    mats = [read_matrix(day_file(folder, d)) for d in range(1, train_days + 1)]
    feats = to_day1_units([m[:N_FEATURES] for m in mats])
    x = np.concatenate(feats, axis=1)
    mu, sd = _stats(x)
    x = (x - mu) / sd
    y = np.concatenate([m[N_FEATURES:] for m in mats], axis=1)
    stock_tr = np.concatenate([_stock_index(d, m.shape[1]) for d, m in zip(range(1, train_days + 1), mats, strict=True)])
    day_tr = np.concatenate([np.full(m.shape[1], d, np.int8) for d, m in zip(range(1, train_days + 1), mats, strict=True)])
    test = read_matrix(day_file(folder, test_day))
    return Fi2010Split(
        x_train=np.ascontiguousarray(x.T, dtype=np.float32),
        y_train=np.ascontiguousarray(y.T, dtype=np.int8),
        stock_train=stock_tr,
        day_train=day_tr,
        x_test=np.ascontiguousarray(test[:N_FEATURES].T, dtype=np.float32),
        y_test=np.ascontiguousarray(test[N_FEATURES:].T, dtype=np.int8),
        stock_test=_stock_index(test_day, test.shape[1]),
        day_test=np.full(test.shape[1], test_day, np.int8),
    )


def _stock_index(day: int, n: int) -> np.ndarray:
    bounds = STOCK_BOUNDARIES[day]
    if bounds[-1] != n:
        raise DataError(None, f"FI-2010 day {day} has {n} samples, expected {bounds[-1]}")
    out = np.empty(n, dtype=np.int8)
    for j in range(5):
        out[bounds[j] : bounds[j + 1]] = j
    return out
