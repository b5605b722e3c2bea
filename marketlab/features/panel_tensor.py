"""Turn a daily panel (PANEL_SCHEMA rows) into dense ``[days, stocks]`` float32 torch tensors.

Missing cells are NaN: days before listing / after delisting (no row), suspended days (``suspended`` flag,
or volume zero / null, whose prices are forward-filled carries and not traded prices). Universe membership
is NOT applied to the features (rolling windows need a stock's history from before it joined the index);
it is returned as a separate mask for IC evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from marketlab.core.device import get_device
from marketlab.core.errors import DataError

PRICE_FEATURES = ("open", "high", "low", "close")


@dataclass
class PanelTensors:
    """Dense panel: ``features[name]`` and the masks are ``[T, N]`` on ``device``; ``dates`` is ``[T]``
    ``datetime64[D]``; ``symbols`` has ``N`` names (sorted)."""

    dates: np.ndarray
    symbols: list[str]
    features: dict[str, torch.Tensor]
    in_universe: torch.Tensor  # bool [T, N]
    traded: torch.Tensor  # bool [T, N]: a row exists and the stock traded that day
    vwap_source: str  # "vwap" | "amount/volume" | "(high+low+close)/3 proxy"

    @property
    def shape(self) -> tuple[int, int]:
        """``(days, stocks)``."""
        return (len(self.dates), len(self.symbols))

    def rows(self, start: str | None, end: str | None) -> slice:
        """Row slice of days with ``start <= date <= end`` (ISO strings, inclusive; None = open)."""
        lo = 0 if start is None else int(np.searchsorted(self.dates, np.datetime64(start, "D"), side="left"))
        hi = len(self.dates) if end is None else int(np.searchsorted(self.dates, np.datetime64(end, "D"), side="right"))
        return slice(lo, hi)


def panel_to_tensors(
    panel: pl.LazyFrame | pl.DataFrame,
    *,
    adjust: bool = True,
    device: str | torch.device = "auto",
    source: str = "panel",
) -> PanelTensors:
    """Pivot a PANEL_SCHEMA frame to tensors.

    ``adjust``: multiply open/high/low/close/vwap by ``adj_factor`` (back-adjusted prices; volume stays raw).
    vwap: the column when present, else ``amount / volume``, else the typical price (H+L+C)/3 (documented proxy).
    Raises a one-line :class:`DataError` for an empty panel or duplicate (date, symbol) rows.
    """
    df = panel.collect() if isinstance(panel, pl.LazyFrame) else panel
    if df.height == 0:
        raise DataError(source, "panel is empty")
    for required in ("date", "symbol", "open", "high", "low", "close", "volume"):
        if required not in df.columns:
            raise DataError(source, "panel lacks a required column", field=required)
    dup = df.filter(pl.struct("date", "symbol").is_duplicated())
    if dup.height:
        raise DataError(
            source, "duplicate (date, symbol) rows in panel", value=f"{dup['date'][0]} {dup['symbol'][0]}"
        )
    dates = np.unique(df["date"].cast(pl.Date).to_numpy()).astype("datetime64[D]")
    symbols = sorted(df["symbol"].unique().to_list())
    ti = np.searchsorted(dates, df["date"].cast(pl.Date).to_numpy().astype("datetime64[D]"))
    si = np.searchsorted(np.array(symbols, dtype=object), df["symbol"].to_numpy().astype(object))
    T, N = len(dates), len(symbols)

    def col(name: str) -> np.ndarray:
        if name not in df.columns:
            return np.full(df.height, np.nan)
        return df[name].cast(pl.Float64).fill_null(np.nan).to_numpy()

    vol = col("volume")
    susp = ~(vol > 0)  # zero or null volume: no trade that day
    if "suspended" in df.columns:
        susp |= df["suspended"].fill_null(False).to_numpy()
    adj = col("adj_factor") if adjust and "adj_factor" in df.columns else np.ones(df.height)
    adj = np.where(np.isfinite(adj), adj, 1.0)
    vals: dict[str, np.ndarray] = {k: col(k) * adj for k in PRICE_FEATURES}
    vals["volume"] = vol
    vwap = col("vwap")
    if np.isfinite(vwap).any():
        vals["vwap"], vsrc = vwap * adj, "vwap"
    elif np.isfinite(amt := col("amount")).any():
        vals["vwap"], vsrc = np.where(vol > 0, amt / np.where(vol > 0, vol, 1.0), np.nan) * adj, "amount/volume"
    else:
        vals["vwap"] = (vals["high"] + vals["low"] + vals["close"]) / 3.0
        vsrc = "(high+low+close)/3 proxy"
    dev = get_device(device) if isinstance(device, str) else device
    feats: dict[str, torch.Tensor] = {}
    for k, v in vals.items():
        dense = np.full((T, N), np.nan, dtype=np.float32)
        dense[ti, si] = np.where(susp, np.nan, v)
        feats[k] = torch.from_numpy(dense).to(dev)
    uni = np.zeros((T, N), dtype=bool)
    if "in_universe" in df.columns:
        uni[ti, si] = df["in_universe"].fill_null(False).to_numpy()
    else:
        uni[ti, si] = True
    traded = np.zeros((T, N), dtype=bool)
    traded[ti, si] = ~susp
    return PanelTensors(
        dates=dates,
        symbols=symbols,
        features=feats,
        in_universe=torch.from_numpy(uni).to(dev),
        traded=torch.from_numpy(traded).to(dev),
        vwap_source=vsrc,
    )


def synthetic_panel(n_days: int, n_stocks: int, seed: int = 0, nan_frac: float = 0.02) -> pl.DataFrame:
    """A random PANEL_SCHEMA-like frame (geometric random walks, lognormal volumes, random suspensions)
    for tests and examples. Trading days are consecutive weekdays from 2015-01-05."""
    rng = np.random.default_rng(seed)
    days = np.busday_offset("2015-01-05", np.arange(n_days), roll="forward")
    ret = rng.normal(0.0003, 0.02, (n_days, n_stocks))
    close = 20.0 * np.exp(np.cumsum(ret, axis=0))
    openp = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(openp, close) * np.exp(np.abs(rng.normal(0, 0.01, close.shape)))
    low = np.minimum(openp, close) * np.exp(-np.abs(rng.normal(0, 0.01, close.shape)))
    vol = rng.lognormal(14, 0.7, close.shape)
    susp = rng.random(close.shape) < nan_frac
    vol[susp] = 0.0
    d = np.repeat(days, n_stocks)
    s = np.tile(np.array([f"S{j:04d}" for j in range(n_stocks)]), n_days)
    return pl.DataFrame(
        {
            "date": d.astype("datetime64[D]"),
            "symbol": s,
            "open": openp.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": vol.ravel(),
            "vwap": [None] * (n_days * n_stocks),
            "amount": [None] * (n_days * n_stocks),
            "adj_factor": np.ones(n_days * n_stocks),
            "in_universe": rng.random(n_days * n_stocks) < 0.9,
            "suspended": susp.ravel(),
        },
        schema_overrides={"vwap": pl.Float64, "amount": pl.Float64},
    )
