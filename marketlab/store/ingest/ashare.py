"""[ashare] A-share daily panel folder (``csi300_cn_daily``) -> ``panel``.

The folder holds ``csi300_members_daily.csv.gz`` (``date,code,open,high,low,close,volume,factor``),
``csi300_membership.tsv`` (``code<TAB>start<TAB>end``, inclusive intervals), ``trading_calendar.txt``
(one trading day per line) and ``cn_index_daily.csv.gz`` (4 index series; only with ``indices=True``).

Traps of this data, and what the parser does about them:

* Prices are **raw** (unadjusted) CNY, rounded to 0.01; ``factor`` is a cumulative BACK-adjustment
  factor, so adjusted price = raw x factor (it steps up on ex-dividend dates). Stored as ``adj_factor``;
  never multiply volume by it (volume is raw shares).
* **Suspended days are rows** with ``volume == 0`` and forward-filled prices (60,862 rows), and 1,021
  more rows have an EMPTY volume. Both are flagged ``suspended = True`` (empty volume stays null): a
  forward-filled price is not a traded price, so returns/ICs must mask them.
* Membership intervals are incomplete (245-300 members a day, not always 300) and 38 historical members
  have no price data at all: ``in_universe`` is exactly "the date falls in one of the symbol's listed
  intervals", nothing more. Using all 751 stocks as a fixed universe adds look-ahead/survivorship bias.
* Every row's date must be a day of ``trading_calendar.txt`` (3,966 days, 2010-01-04 .. 2026-05-08); a
  date outside it is an error rather than a silent extra day.
* Codes are qlib style (``SH600519``, ``SZ000001``) and used as symbols unchanged. Tick size is 0.01 CNY,
  lot size 100 shares (one board lot).
* There is no vwap or amount; they stay null (AlphaGen's ``$vwap`` needs a proxy such as (H+L+C)/3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import PANEL_SCHEMA
from marketlab.store.ingest._io import dataset_from, read_bytes, read_csv, to_float
from marketlab.store.types import IngestBatch, Instrument, check_symbol

MEMBERS = "csi300_members_daily.csv.gz"
MEMBERSHIP = "csi300_membership.tsv"
CALENDAR = "trading_calendar.txt"
INDICES = "cn_index_daily.csv.gz"
HEADER = ["date", "code", "open", "high", "low", "close", "volume", "factor"]


def parse(
    paths: list[Path],
    *,
    dataset: str | None = None,
    indices: bool = False,
    progress: bool = False,
) -> IngestBatch:
    """Parse one A-share folder into a daily panel (PANEL_SCHEMA) with membership and suspension flags."""
    folder = Path(paths[0]) if len(paths) == 1 else None
    if folder is None or not folder.is_dir():
        raise DataError(paths[0] if paths else None, "ashare expects exactly one folder (e.g. csi300_cn_daily/)")
    for name in (MEMBERS, MEMBERSHIP, CALENDAR):
        if not (folder / name).is_file():
            raise DataError(folder / name, "missing file in A-share folder")
    steps = [MEMBERS, MEMBERSHIP, CALENDAR] + ([INDICES] if indices else [])
    bar = _bar(progress, len(steps))
    calendar = read_calendar(folder / CALENDAR)
    _tick(bar)
    members = read_members(folder / MEMBERS, HEADER)
    _tick(bar)
    intervals = read_membership(folder / MEMBERSHIP)
    _tick(bar)
    frames = [members]
    if indices:
        idx = read_members(folder / INDICES, HEADER + ["change"])
        frames.append(idx.with_columns(pl.lit(1.0).alias("factor")))
        _tick(bar)
    if bar is not None:
        bar.close()
    raw = pl.concat([f.select(HEADER) for f in frames])

    off = raw.join(calendar, on="date", how="anti")
    if off.height:
        raise DataError(folder / MEMBERS, "date not in trading calendar", field="date", value=str(off["date"][0]))

    # in_universe: the date lies in one of the symbol's inclusive membership intervals.
    keyed = raw.select("date", "code").with_row_index("_r")
    hits = (
        keyed.join(intervals, on="code", how="inner")
        .filter((pl.col("date") >= pl.col("start")) & (pl.col("date") <= pl.col("end")))
        .select("_r")
        .unique()
    )
    in_u = keyed.select("_r").join(hits.with_columns(pl.lit(True).alias("in_universe")), on="_r", how="left")
    panel = raw.with_row_index("_r").join(in_u, on="_r", how="left").sort("_r")
    panel = panel.select(
        pl.col("date"),
        pl.col("code").alias("symbol"),
        "open", "high", "low", "close", "volume",
        pl.lit(None, pl.Float64).alias("vwap"),
        pl.lit(None, pl.Float64).alias("amount"),
        pl.col("factor").alias("adj_factor"),
        pl.col("in_universe").fill_null(False),
        ((pl.col("volume") == 0) | pl.col("volume").is_null()).alias("suspended"),
    ).cast(dict(PANEL_SCHEMA))  # type: ignore[arg-type]
    dup = panel.select("date", "symbol").is_duplicated()
    if dup.any():
        r = int(dup.arg_true()[0])
        raise DataError(folder / MEMBERS, "duplicate (date, symbol) row", field="date", row=r + 2,
                        value=f"{panel['date'][r]}, {panel['symbol'][r]}")
    syms = panel["symbol"].unique().sort().to_list()
    return IngestBatch(
        dataset=dataset or dataset_from([folder]),
        frames={"panel": panel.sort(["date", "symbol"])},
        instruments=[Instrument(s, 0.01, 100.0, "CNY") for s in syms],
        meta={
            "source": "ashare",
            "calendar_days": calendar.height,
            "calendar_start": str(calendar["date"].min()),
            "calendar_end": str(calendar["date"].max()),
            "membership_intervals": intervals.height,
            "prices": "raw CNY; adjusted = raw * adj_factor (back-adjusted)",
        },
    )


def _bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="ashare", unit="file", leave=False)


def _tick(bar: Any) -> None:
    if bar is not None:
        bar.update(1)


def read_calendar(path: Path) -> pl.DataFrame:
    """Trading days (one ISO date per line) -> frame with a strictly increasing ``date`` column."""
    lines = [ln.strip() for ln in read_bytes(path).decode().splitlines() if ln.strip()]
    s = pl.Series("date", lines).str.to_date("%Y-%m-%d", strict=False)
    if s.is_null().any():
        r = int(s.is_null().arg_true()[0])
        raise DataError(path, "not a date", row=r + 1, value=lines[r])
    if not (s.diff().drop_nulls().dt.total_days() > 0).all():
        raise DataError(path, "calendar dates not strictly increasing")
    return s.to_frame()


def read_membership(path: Path) -> pl.DataFrame:
    """``code<TAB>start<TAB>end`` (inclusive) -> frame code, start, end (dates)."""
    df = read_csv(path, has_header=False, separator="\t")
    if df.width != 3:
        raise DataError(path, f"expected 3 tab-separated columns (code, start, end), got {df.width}")
    df.columns = ["code", "start", "end"]
    out = df.select(
        pl.col("code").str.strip_chars(),
        pl.col("start").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
        pl.col("end").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
    )
    bad = out.select(pl.any_horizontal(pl.all().is_null())).to_series()
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "bad membership line", row=r + 1, value="\t".join(str(v) for v in df.row(r)))
    if (out["end"] < out["start"]).any():
        r = int((out["end"] < out["start"]).arg_true()[0])
        raise DataError(path, "interval ends before it starts", row=r + 1, value=str(out.row(r)))
    return out


def read_members(path: Path, header: list[str]) -> pl.DataFrame:
    """Daily bars file -> typed frame (date, code, OHLC, volume, factor); checks header and values."""
    raw = read_csv(path)
    cols = [c.strip().lower() for c in raw.columns]
    if cols != header:
        raise DataError(path, f"wrong header, expected {','.join(header)}", value=",".join(raw.columns)[:120])
    raw.columns = cols
    date = raw["date"].str.to_date("%Y-%m-%d", strict=False)
    if date.is_null().any():
        r = int(date.is_null().arg_true()[0])
        raise DataError(path, "not a date (truncated or malformed row)", field="date", row=r + 2, value=raw["date"][r])
    # The last data line of a truncated file lacks trailing fields: close or factor reads as empty.
    for c in ("close", "factor"):
        if raw[c].is_null().any():
            r = int(raw[c].is_null().arg_true()[0])
            raise DataError(path, "missing value (truncated row?)", field=c, row=r + 2)
    out = pl.DataFrame([date, raw["code"].str.strip_chars()] + [
        to_float(raw, c, path) for c in ("open", "high", "low", "close", "volume", "factor")
    ])
    for code in out["code"].unique().to_list():
        check_symbol(code, source=str(path))
    for c in ("open", "high", "low", "close", "factor"):
        bad = (out[c].is_nan() | (out[c] <= 0)).fill_null(False)
        if bad.any():
            r = int(bad.arg_true()[0])
            raise DataError(path, "NaN, zero or negative value", field=c, row=r + 2, value=out[c][r])
    bad = (out["volume"].is_nan() | (out["volume"] < 0)).fill_null(False)
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "NaN or negative volume", field="volume", row=r + 2, value=out["volume"][r])
    return out
