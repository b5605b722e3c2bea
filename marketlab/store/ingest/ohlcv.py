"""[ohlcv] OHLCV CSV/Parquet -> bars (intraday) or panel (daily).

Accepted layouts (header names are matched case-insensitively):

* **Binance klines**, as published by data.binance.vision: no header, 12 columns
  ``open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_base, taker_quote,
  ignore``; ``open_time`` in ms (µs for files from 2025 on — the unit is detected from the magnitude).
  ``vwap = quote_volume / volume`` and ``trades`` come from the file.
* **A single-symbol file** with a time column (``date``/``datetime``/``timestamp``/``time``/``open_time``)
  and ``open, high, low, close, volume``; the symbol comes from the file name up to the first ``_``
  (``BTCUSDT_1m_2024-01.csv.gz`` -> ``BTCUSDT``, ``GSPC_daily.csv.gz`` -> ``GSPC``) or ``symbol=``.
* **A long panel** with a ``symbol``/``name``/``ticker``/``code`` column (``sp500_5yr``).

Daily data (every timestamp at midnight) becomes a ``panel``; anything finer becomes ``bars`` (``kind=``
overrides). Prices stay floats: instruments get ``tick_size``/``lot_size`` from the options (default 0.01/1).

Traps of the shipped datasets, handled here:

* ``binance_spot_1m_btc_eth_2024_01``: ``datetime`` is the bar OPEN time in UTC without a zone suffix;
  the range is inclusive of 2024-02-01 00:00 (44,641 bars, not 44,640). ``volume`` is base-asset volume;
  there is no quote volume, so ``vwap`` and ``trades`` are null rather than invented.
* ``sp500_5yr``: one row (AOS 2014-05-19) has high < low and close > high - a vendor error kept as
  delivered so the row count stays 619,040; such rows are counted in ``meta["ohlc_inconsistent_rows"]``.
  Ticker column is ``Name``; 11 empty ``open`` and 8 empty ``high``/``low`` cells stay null
  (they are vendor gaps, not zeros); prices are split- but not dividend-adjusted, so ``adj_factor`` is 1.0
  meaning "as delivered", and the universe is survivorship-biased (the early-2018 list).
* ``us_index_daily/GSPC_daily``: no ``high``/``low`` columns at all: they are stored null, never made up
  from open/close. Early rows (1970s) have zero volume, which is allowed.
* ``us_index_daily/SPY_daily_adjusted``: sorted NEWEST FIRST (re-sorted here); ``adjusted_close`` gives
  ``adj_factor = adjusted_close / close`` (dividends + splits); ``dividend_amount``/``split_coefficient``
  are dropped.

Rejected with a one-line error: a wrong header (no time column or a missing price column), non-numeric
cells, a truncated file (a last row missing fields, a cut gzip stream), NaN/negative/zero prices,
timestamps out of order or repeated within a single-symbol file, and duplicate (date, symbol) rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.schema import BARS_SCHEMA, PANEL_SCHEMA
from marketlab.store.ingest._io import dataset_from, expand, progress, read_csv, to_float
from marketlab.store.types import IngestBatch, Instrument, check_symbol

TIME_NAMES = ("date", "datetime", "timestamp", "time", "open_time")
SYMBOL_NAMES = ("symbol", "name", "ticker", "code")
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "trades", "taker_base", "taker_quote", "ignore")
NS_DAY = 86_400_000_000_000


def parse(
    paths: list[Path],
    *,
    dataset: str | None = None,
    kind: str | None = None,
    symbol: str | None = None,
    tick_size: float = 0.01,
    lot_size: float = 1.0,
    currency: str = "USD",
    progress: bool = False,
) -> IngestBatch:
    """Parse OHLCV files into one batch of ``bars`` (intraday) and/or ``panel`` (daily) frames.

    Returns an :class:`IngestBatch` with floats in the file's currency; ``symbol`` overrides the
    name taken from the file (single-symbol files only).
    """
    files = expand([Path(p) for p in paths], ("*.csv", "*.csv.gz", "*.parquet"))
    bars: list[pl.DataFrame] = []
    panels: list[pl.DataFrame] = []
    for f in _progress(files, progress):
        frame, is_daily = read_file(f, symbol=symbol if len(files) == 1 else None)
        target = kind or ("panel" if is_daily else "bars")
        if target == "panel":
            panels.append(_to_panel(frame, f))
        elif target == "bars":
            bars.append(_to_bars(frame, f))
        else:
            raise DataError(f, f"kind must be 'bars' or 'panel', got {kind!r}")
    frames: dict[str, pl.DataFrame] = {}
    if bars:
        frames["bars"] = pl.concat(bars)
    if panels:
        panel = pl.concat(panels)
        dup = panel.select("date", "symbol").is_duplicated()
        if dup.any():
            r = int(dup.arg_true()[0])
            raise DataError(files[0] if len(files) == 1 else "ohlcv", "duplicate (date, symbol) row",
                            field="date", row=r + 1, value=f"{panel['date'][r]}, {panel['symbol'][r]}")
        frames["panel"] = panel.sort(["date", "symbol"])
    syms = sorted(set().union(*(set(df["symbol"].unique().to_list()) for df in frames.values())))
    bad_ohlc = sum(_inconsistent(df) for df in frames.values())
    return IngestBatch(
        dataset=dataset or dataset_from([Path(p) for p in paths]),
        frames=frames,
        instruments=[Instrument(s, tick_size, lot_size, currency) for s in syms],
        meta={"source": "ohlcv", "files": [f.name for f in files], "ohlc_inconsistent_rows": bad_ohlc},
    )


def _inconsistent(df: pl.DataFrame) -> int:
    """Rows where high/low do not bracket open/close (vendor errors kept as delivered, counted in meta)."""
    lo = pl.min_horizontal("open", "close")
    hi = pl.max_horizontal("open", "close")
    bad = (pl.col("high") < hi) | (pl.col("low") > lo) | (pl.col("high") < pl.col("low"))
    return int(df.select(bad.fill_null(False).sum()).item())


def _progress(files: list[Path], enabled: bool):
    return progress(files, enabled=enabled, desc="ohlcv", total=len(files))


def read_file(path: Path, *, symbol: str | None = None) -> tuple[pl.DataFrame, bool]:
    """One file -> a frame with ``ts`` (int ns UTC), ``symbol``, OHLCV floats and optional extras.

    Returns (frame, is_daily).
    """
    if path.suffix == ".parquet":
        raw = pl.read_parquet(path).cast(pl.String)
    else:
        raw = read_csv(path, has_header=False)
    first = [str(v) if v is not None else "" for v in raw.row(0)]
    if _is_number(first[0]):  # headerless: Binance klines
        if raw.width != len(KLINE_COLUMNS):
            raise DataError(path, f"headerless file with {raw.width} columns; Binance klines have 12",
                            row=1, value=",".join(first)[:80])
        raw.columns = list(KLINE_COLUMNS)
    else:
        if path.suffix != ".parquet":
            raw = raw.slice(1)
            raw.columns = [c.strip().lower() for c in first]
        else:
            raw.columns = [c.strip().lower() for c in raw.columns]
    cols = raw.columns
    tcol = next((c for c in TIME_NAMES if c in cols), None)
    if tcol is None:
        raise DataError(path, f"wrong header: no time column (one of {', '.join(TIME_NAMES)})",
                        value=",".join(cols)[:120])
    missing = [c for c in ("open", "close", "volume") if c not in cols]
    if missing:
        raise DataError(path, f"wrong header: missing column(s) {missing}", value=",".join(cols)[:120])
    if raw.height == 0:
        raise DataError(path, "no data rows")
    # A row with fewer fields than the header is read with nulls at the end: the file was cut short.
    required = list(KLINE_COLUMNS) if cols == list(KLINE_COLUMNS) else [tcol, "close", "volume"]
    short = raw.select(pl.any_horizontal([pl.col(c).is_null() for c in required])).to_series()
    if short.any():
        r = int(short.arg_true()[0])
        raise DataError(path, "truncated row (missing fields)", row=r + 1,
                        value=",".join(str(v) for v in raw.row(r) if v is not None)[:80])

    ts = _parse_time(raw.get_column(tcol), path, tcol)
    out: dict[str, Any] = {"ts": ts}
    scol = next((c for c in SYMBOL_NAMES if c in cols), None)
    if scol is not None:
        sym = raw.get_column(scol).str.strip_chars()
        if sym.is_null().any():
            raise DataError(path, "empty symbol", field=scol, row=int(sym.is_null().arg_true()[0]) + 1)
        for s in sym.unique().to_list():
            check_symbol(s, source=str(path))
        out["symbol"] = sym
    else:
        name = symbol or path.name.split("_")[0].split(".")[0]
        check_symbol(name, source=str(path))
        out["symbol"] = pl.Series("symbol", [name] * raw.height)
    for c in ("open", "high", "low", "close", "volume"):
        out[c] = to_float(raw, c, path) if c in cols else pl.Series(c, [None] * raw.height, pl.Float64)
    if "quote_volume" in cols:
        qv = to_float(raw, "quote_volume", path)
        out["vwap"] = pl.Series("vwap", (qv / out["volume"]).to_list(), pl.Float64).fill_nan(None)
    if "trades" in cols:
        out["trades"] = to_float(raw, "trades", path).cast(pl.Int64)
    for alias in ("adjusted_close", "adj_close", "adjclose"):
        if alias in cols:
            out["adj_close"] = to_float(raw, alias, path)
    for c in ("vwap", "amount"):
        if c in cols and c not in out:
            out[c] = to_float(raw, c, path)
    frame = pl.DataFrame(out)
    _check_values(frame, path)
    frame = _order(frame, path, single_symbol=scol is None)
    is_daily = bool((frame["ts"] % NS_DAY == 0).all())
    return frame, is_daily


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _parse_time(s: pl.Series, path: Path, col: str) -> pl.Series:
    """Strings (dates, datetimes) or epoch numbers (s/ms/µs/ns by magnitude) -> int64 ns UTC."""
    s = s.str.strip_chars()
    num = s.cast(pl.Int64, strict=False)
    if num.null_count() == 0:
        mx = int(num.abs().max())
        scale = 1 if mx > 10**17 else 1_000 if mx > 10**14 else 1_000_000 if mx > 10**11 else 1_000_000_000
        return (num * scale).alias("ts")
    parsed = s.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False, ambiguous="raise")
    bad = parsed.is_null() & s.is_not_null()
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "unparseable timestamp", field=col, row=r + 1, value=s[r])
    return parsed.dt.epoch("ns").alias("ts")


def _check_values(frame: pl.DataFrame, path: Path) -> None:
    for c in ("open", "high", "low", "close"):
        s = frame[c]
        bad = s.is_nan() | (s <= 0)
        if bad.any():
            r = int(bad.fill_null(False).arg_true()[0])
            raise DataError(path, "NaN, zero or negative price", field=c, row=r + 1, value=s[r])
    v = frame["volume"]
    bad = (v.is_nan() | (v < 0)).fill_null(False)
    if bad.any():
        r = int(bad.arg_true()[0])
        raise DataError(path, "NaN or negative volume", field="volume", row=r + 1, value=v[r])


def _order(frame: pl.DataFrame, path: Path, *, single_symbol: bool) -> pl.DataFrame:
    """Single-symbol files must be strictly monotonic in time; descending files (SPY) are reversed."""
    if not single_symbol:
        return frame
    d = frame["ts"].diff().drop_nulls()
    if d.len() and (d < 0).all():
        frame = frame.reverse()  # newest-first vendor export
        d = frame["ts"].diff().drop_nulls()
    bad = d <= 0
    if bad.any():
        r = int(bad.arg_true()[0]) + 1
        raise DataError(path, "timestamps out of order or repeated", field="time", row=r + 1, value=str(
            pl.Series([frame["ts"][r]]).cast(pl.Datetime("ns", "UTC"))[0]))
    return frame


def _to_bars(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    cols = {c: (pl.col(c) if c in frame.columns else pl.lit(None)) for c in BARS_SCHEMA}
    return frame.select([e.cast(BARS_SCHEMA[c]).alias(c) for c, e in cols.items()])


def _to_panel(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    adj = (pl.col("adj_close") / pl.col("close")) if "adj_close" in frame.columns else pl.lit(1.0)
    exprs = {
        "date": pl.col("ts").cast(pl.Datetime("ns", "UTC")).dt.date(),
        "symbol": pl.col("symbol"),
        "open": pl.col("open"), "high": pl.col("high"), "low": pl.col("low"), "close": pl.col("close"),
        "volume": pl.col("volume"),
        "vwap": pl.col("vwap") if "vwap" in frame.columns else pl.lit(None),
        "amount": pl.col("amount") if "amount" in frame.columns else pl.lit(None),
        "adj_factor": adj,
        "in_universe": pl.lit(True),
        # These vendors list trading days only and carry no suspension flag (index volume is 0 in the
        # 1970s GSPC rows without any suspension), so nothing is flagged here; ashare flags its own.
        "suspended": pl.lit(False),
    }
    return frame.select([e.cast(PANEL_SCHEMA[c]).alias(c) for c, e in exprs.items()])
