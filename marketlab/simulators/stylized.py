"""Stylized facts of limit-order-book data, for any dataset in the store (real or simulated).

The facts follow Vyetrenko et al. (2020), "Get Real: Realism Metrics for Robust Limit Order Book Market
Simulations", and the TRADES paper's evaluation (see ``shared/research/trades.md`` §3):

* minute log-return tails: excess kurtosis and the Hill tail index of ``|r|``;
* absence of linear return autocorrelation (ACF of minute returns, lags 1..``max_lag``);
* volatility clustering: slow decay of the ACF of ``|r|``;
* volume–volatility correlation (minute traded volume vs ``|r|``) and the leverage correlation;
* spread, level-1/total depth and inter-arrival time distributions;
* order-type shares (LOBSTER types 1..7).

Everything is computed from integer ticks/lots (the store schema), so the numbers are comparable across
datasets by construction; spreads are also given in basis points of the mid, which is scale-free.
Entry points: :func:`compute_facts` (frames -> :class:`StylizedFacts`), :func:`facts_for_dataset`
(store -> one result per symbol), :func:`facts_table` and :func:`plot_facts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from marketlab.core.errors import StoreError
from marketlab.core.schema import EventType, book_levels
from marketlab.core.timeutil import NS_PER_DAY, NS_PER_S

if TYPE_CHECKING:  # the store layer is below simulators; imported only for type hints
    from marketlab.store import Store


# Rows of the side-by-side table: (key in StylizedFacts.scalars, label, format).
TABLE_ROWS: list[tuple[str, str, str]] = [
    ("n_events", "events", "{:,.0f}"),
    ("n_minutes", "minute returns", "{:,.0f}"),
    ("ret_std_bps", "minute return std (bps)", "{:.2f}"),
    ("ret_excess_kurtosis", "minute return excess kurtosis", "{:.2f}"),
    ("hill_tail_index", "Hill tail index of |r| (top 10%)", "{:.2f}"),
    ("ret_acf_lag1", "return ACF lag 1", "{:+.3f}"),
    ("ret_acf_mean_abs_1_10", "mean |return ACF| lags 1-10", "{:.3f}"),
    ("absret_acf_lag1", "|r| ACF lag 1", "{:+.3f}"),
    ("absret_acf_lag5", "|r| ACF lag 5", "{:+.3f}"),
    ("absret_acf_lag15", "|r| ACF lag 15", "{:+.3f}"),
    ("absret_acf_mean_1_10", "mean |r| ACF lags 1-10", "{:+.3f}"),
    ("volume_volatility_corr", "corr(volume, |r|) per minute", "{:+.3f}"),
    ("leverage_corr", "corr(r_t, |r_t+1|)", "{:+.3f}"),
    ("spread_mean", "spread mean (currency)", "{:.4f}"),
    ("spread_median", "spread median (currency)", "{:.4f}"),
    ("spread_p90", "spread p90 (currency)", "{:.4f}"),
    ("spread_mean_bps", "spread mean (bps of mid)", "{:.2f}"),
    ("depth_l1_mean", "level-1 depth mean (lots/side)", "{:,.1f}"),
    ("depth_total_mean", "top-L depth mean (lots/side)", "{:,.1f}"),
    ("book_levels", "book levels L", "{:.0f}"),
    ("interarrival_mean_ms", "inter-arrival mean (ms)", "{:.2f}"),
    ("interarrival_median_ms", "inter-arrival median (ms)", "{:.3f}"),
    ("interarrival_cv", "inter-arrival CV", "{:.2f}"),
    ("interarrival_zero_share", "share of zero inter-arrivals", "{:.3f}"),
    ("share_add", "share add (1)", "{:.3f}"),
    ("share_cancel", "share partial cancel (2)", "{:.3f}"),
    ("share_delete", "share delete (3)", "{:.3f}"),
    ("share_execute", "share execute (4)", "{:.3f}"),
    ("share_execute_hidden", "share hidden execute (5)", "{:.3f}"),
    ("trades_per_minute", "trades per minute", "{:.1f}"),
    ("trade_size_mean", "trade size mean (lots)", "{:.1f}"),
]

_TYPE_KEYS = {
    EventType.ADD: "share_add",
    EventType.CANCEL: "share_cancel",
    EventType.DELETE: "share_delete",
    EventType.EXECUTE: "share_execute",
    EventType.EXECUTE_HIDDEN: "share_execute_hidden",
}


@dataclass
class StylizedFacts:
    """Stylized facts of one (dataset, symbol).

    ``scalars``: the numbers of :data:`TABLE_ROWS` (NaN where undefined, e.g. too few minutes);
    ``series``: arrays for the figure — ``minute_returns`` (float64, log returns), ``ret_acf`` and
    ``absret_acf`` (lags 1..max_lag), ``spread`` (currency) and ``spread_bps`` per two-sided book row,
    ``log10_interarrival_s``
    (positive gaps only) and ``type_shares`` (length 7, types 1..7).
    """

    label: str
    scalars: dict[str, float]
    series: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view: the label and the scalars (NaN -> None)."""
        return {
            "label": self.label,
            **{k: (None if (isinstance(v, float) and not np.isfinite(v)) else v) for k, v in self.scalars.items()},
        }


# ---------------------------------------------------------------------------------------------------------
# Small numeric helpers (pure, NumPy)
# ---------------------------------------------------------------------------------------------------------


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation of ``x`` (float, shape (n,)) at lags 1..max_lag, shape (max_lag,).

    Uses the standard biased estimator (common mean and variance); lags with ``lag >= n`` or a series of
    zero variance give NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    out = np.full(max_lag, np.nan)
    if n < 3:
        return out
    d = x - x.mean()
    var = float(d @ d)
    if var <= 0.0:
        return out
    for lag in range(1, min(max_lag, n - 1) + 1):
        out[lag - 1] = float(d[:-lag] @ d[lag:]) / var
    return out


def excess_kurtosis(x: np.ndarray) -> float:
    """Sample excess kurtosis ``m4 / m2**2 - 3`` (0 for a Gaussian); NaN for fewer than 4 points or zero variance."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 4:
        return float("nan")
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if m2 <= 0.0:
        return float("nan")
    return float(np.mean(d**4) / (m2 * m2) - 3.0)


def hill_tail_index(x: np.ndarray, tail_fraction: float = 0.1, min_k: int = 5) -> float:
    """Hill estimator of the tail index alpha of ``|x|`` from its top ``k = max(min_k, tail_fraction*n)`` values.

    alpha_hat = k / sum_{i<k} log(X_(i) / X_(k)) with X_(0) >= X_(1) >= ... the order statistics of the
    non-zero ``|x|``. Smaller alpha = heavier tail (equity minute returns typically give 2..5; a Gaussian
    sample gives larger values that grow with n). NaN when fewer than ``min_k + 1`` non-zero values.
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    a = np.sort(a[a > 0])[::-1]
    k = max(min_k, int(tail_fraction * a.size))
    if a.size <= k:
        return float("nan")
    logs = np.log(a[:k] / a[k])
    s = float(logs.sum())
    return float(k / s) if s > 0 else float("nan")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def minute_bars(
    ts: np.ndarray, mid: np.ndarray, trade_ts: np.ndarray, trade_size: np.ndarray, bar_ns: int = 60 * NS_PER_S
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minute log returns and traded volume, never spanning two days.

    ``ts`` (int64 ns, sorted) with ``mid`` (float, ticks; NaN where one side is empty) are the book rows;
    ``trade_ts``/``trade_size`` the trades. Within each UTC day the grid runs from the first row's minute
    to the last row's; the mid at a grid point is the last valid mid at or before it (forward fill).
    Returns ``(returns, volume, bar_start_ns)``, each shape (m,), where returns[j] = log(mid(t_{j+1})/mid(t_j))
    and volume[j] is the traded size in [t_j, t_{j+1}).
    """
    ok = np.isfinite(mid) & (mid > 0)
    ts, mid = ts[ok], mid[ok]
    rets: list[np.ndarray] = []
    vols: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    if ts.size == 0:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=np.int64)
    days = ts // NS_PER_DAY
    for day in np.unique(days):
        sel = days == day
        t, m = ts[sel], mid[sel]
        first = (t[0] // bar_ns + 1) * bar_ns  # first full grid point after the open
        last = (t[-1] // bar_ns) * bar_ns
        if last - first < 2 * bar_ns:
            continue
        grid = np.arange(first, last + 1, bar_ns, dtype=np.int64)
        idx = np.searchsorted(t, grid, side="right") - 1  # last row at or before each grid point
        gm = m[idx]
        rets.append(np.diff(np.log(gm)))
        tsel = (trade_ts >= grid[0]) & (trade_ts < grid[-1])
        bins = (trade_ts[tsel] - grid[0]) // bar_ns
        vols.append(np.bincount(bins, weights=trade_size[tsel].astype(np.float64), minlength=grid.size - 1)[: grid.size - 1])
        starts.append(grid[:-1])
    if not rets:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=np.int64)
    return np.concatenate(rets), np.concatenate(vols), np.concatenate(starts)


# ---------------------------------------------------------------------------------------------------------
# Facts from frames
# ---------------------------------------------------------------------------------------------------------


def trades_from_events(events: pl.DataFrame) -> pl.DataFrame:
    """Derive trades from execution events (types 4 and 5): the aggressor is the opposite of the resting side."""
    ex = events.filter(pl.col("type").is_in([int(EventType.EXECUTE), int(EventType.EXECUTE_HIDDEN)]))
    return ex.select(
        "ts",
        "symbol",
        "seq",
        "price",
        "size",
        (-pl.col("side")).cast(pl.Int8).alias("aggressor"),
    )


def compute_facts(
    events: pl.DataFrame,
    book: pl.DataFrame,
    trades: pl.DataFrame | None = None,
    *,
    label: str = "",
    max_lag: int = 30,
    tick_size: float = 1.0,
) -> StylizedFacts:
    """Stylized facts of one symbol from its events, book snapshots and (optional) trades.

    ``events``: EVENTS_SCHEMA rows; ``book``: book_schema(L) rows (empty levels hold price 0);
    ``trades``: TRADES_SCHEMA rows, derived from the execution events when ``None`` or empty.
    Prices in ticks, sizes in lots, ``ts`` in ns. Frames need not be sorted. ``tick_size`` (currency per
    tick) turns spreads into currency, so datasets stored with different tick units compare directly.
    """
    events = events.sort(["ts", "seq"])
    book = book.sort(["ts", "seq"])
    if trades is None or trades.height == 0:
        trades = trades_from_events(events)
    trades = trades.sort(["ts", "seq"])
    s: dict[str, float] = {}
    series: dict[str, np.ndarray] = {}
    s["n_events"] = float(events.height)

    # --- book: mid, spread, depth (rows with both sides present only) ---
    L = book_levels(book.columns)
    # levels that ever hold liquidity (a dataset mixing L=5 and L=10 days pads the shallow ones with 0)
    used = [i for i in range(1, L + 1) if book.height and (book[f"ask_sz_{i}"].max() or book[f"bid_sz_{i}"].max())]
    L = max(used) if used else L
    s["book_levels"] = float(L)
    ask1 = book["ask_px_1"].to_numpy().astype(np.float64)
    bid1 = book["bid_px_1"].to_numpy().astype(np.float64)
    two_sided = (ask1 > 0) & (bid1 > 0)
    mid = np.where(two_sided, (ask1 + bid1) / 2.0, np.nan)
    spread_ticks = (ask1 - bid1)[two_sided]
    spread = spread_ticks * tick_size
    series["spread"] = spread
    series["spread_bps"] = spread_ticks / mid[two_sided] * 1e4
    if spread.size:
        s["spread_mean"] = float(spread.mean())
        s["spread_median"] = float(np.median(spread))
        s["spread_p90"] = float(np.quantile(spread, 0.9))
        s["spread_mean_bps"] = float(np.mean(spread_ticks / mid[two_sided]) * 1e4)
    else:
        for k in ("spread_mean", "spread_median", "spread_p90", "spread_mean_bps"):
            s[k] = float("nan")
    if book.height:
        l1 = (book["ask_sz_1"].to_numpy() + book["bid_sz_1"].to_numpy()) / 2.0
        tot = np.zeros(book.height)
        for i in range(1, L + 1):
            tot += book[f"ask_sz_{i}"].to_numpy() + book[f"bid_sz_{i}"].to_numpy()
        s["depth_l1_mean"] = float(l1.mean())
        s["depth_total_mean"] = float(tot.mean() / 2.0)
    else:
        s["depth_l1_mean"] = s["depth_total_mean"] = float("nan")

    # --- minute returns and volume ---
    r, vol, _ = minute_bars(
        book["ts"].to_numpy(), mid, trades["ts"].to_numpy(), trades["size"].to_numpy()
    )
    series["minute_returns"] = r
    s["n_minutes"] = float(r.size)
    s["ret_std_bps"] = float(r.std() * 1e4) if r.size > 1 else float("nan")
    s["ret_excess_kurtosis"] = excess_kurtosis(r)
    s["hill_tail_index"] = hill_tail_index(r)
    racf = acf(r, max_lag)
    aacf = acf(np.abs(r), max_lag)
    series["ret_acf"], series["absret_acf"] = racf, aacf
    s["ret_acf_lag1"] = float(racf[0])
    s["ret_acf_mean_abs_1_10"] = float(np.nanmean(np.abs(racf[:10]))) if np.isfinite(racf[:10]).any() else float("nan")
    s["absret_acf_lag1"] = float(aacf[0])
    s["absret_acf_lag5"] = float(aacf[4]) if max_lag >= 5 else float("nan")
    s["absret_acf_lag15"] = float(aacf[14]) if max_lag >= 15 else float("nan")
    s["absret_acf_mean_1_10"] = float(np.nanmean(aacf[:10])) if np.isfinite(aacf[:10]).any() else float("nan")
    s["volume_volatility_corr"] = _corr(vol, np.abs(r))
    s["leverage_corr"] = _corr(r[:-1], np.abs(r[1:])) if r.size > 3 else float("nan")

    # --- inter-arrival times of events (within a day) ---
    ets = events["ts"].to_numpy()
    if ets.size > 1:
        gaps = np.diff(ets)
        gaps = gaps[(ets[1:] // NS_PER_DAY) == (ets[:-1] // NS_PER_DAY)].astype(np.float64) / NS_PER_S
        s["interarrival_mean_ms"] = float(gaps.mean() * 1e3)
        s["interarrival_median_ms"] = float(np.median(gaps) * 1e3)
        s["interarrival_cv"] = float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else float("nan")
        s["interarrival_zero_share"] = float(np.mean(gaps == 0))
        series["log10_interarrival_s"] = np.log10(gaps[gaps > 0])
    else:
        for k in ("interarrival_mean_ms", "interarrival_median_ms", "interarrival_cv", "interarrival_zero_share"):
            s[k] = float("nan")
        series["log10_interarrival_s"] = np.zeros(0)

    # --- order-type shares ---
    counts = np.bincount(events["type"].to_numpy().astype(np.int64), minlength=8)[1:8].astype(np.float64)
    shares = counts / max(counts.sum(), 1.0)
    series["type_shares"] = shares
    for t, key in _TYPE_KEYS.items():
        s[key] = float(shares[int(t) - 1])

    # --- trades ---
    minutes = s["n_minutes"] if s["n_minutes"] > 0 else float("nan")
    tmask = (trades["ts"].to_numpy() >= 0) if trades.height else np.zeros(0, dtype=bool)
    s["trades_per_minute"] = float(tmask.sum() / minutes) if np.isfinite(minutes) else float("nan")
    s["trade_size_mean"] = float(cast(float, trades["size"].mean())) if trades.height else float("nan")
    return StylizedFacts(label=label, scalars=s, series=series)


# ---------------------------------------------------------------------------------------------------------
# Store access, table and figure
# ---------------------------------------------------------------------------------------------------------


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``"dataset"`` or ``"dataset:SYMBOL"`` into (dataset, symbol or None)."""
    if ":" in ref:
        ds, sym = ref.split(":", 1)
        if not ds or not sym:
            raise StoreError(f"invalid dataset reference {ref!r} (use 'dataset' or 'dataset:SYMBOL')")
        return ds, sym
    return ref, None


def _symbols_of(store: Store, dataset: str) -> list[str]:
    inst = store.instruments(dataset)
    if inst.height == 0:
        raise StoreError(f"dataset {dataset!r} has no instruments in the store")
    return sorted(inst["symbol"].to_list())


def facts_for_dataset(store: Store, ref: str, *, max_lag: int = 30) -> list[StylizedFacts]:
    """Facts for ``ref`` = ``"dataset"`` (one result per symbol) or ``"dataset:SYMBOL"``.

    Needs the dataset's events and book snapshots; trades are used when present, else derived from
    executions. Raises :class:`StoreError` for unknown datasets/symbols or datasets without LOB data.
    """
    dataset, symbol = parse_ref(ref)
    symbols = [symbol] if symbol else _symbols_of(store, dataset)
    out = []
    for sym in symbols:
        events = store.scan_events(dataset, [sym]).collect()
        book = store.scan_book(dataset, [sym]).collect()
        if events.height == 0 or book.height == 0:
            raise StoreError(f"dataset {dataset!r} symbol {sym!r}: needs events and book snapshots for stylized facts")
        try:
            trades = store.scan_trades(dataset, [sym]).collect()
        except StoreError:  # a dataset without a trades kind: derive them from executions
            trades = None
        tick = float(store.instrument(dataset, sym).tick_size)
        out.append(compute_facts(events, book, trades, label=f"{dataset}:{sym}", max_lag=max_lag, tick_size=tick))
    return out


def facts_table(facts: Sequence[StylizedFacts]) -> list[list[str]]:
    """Side-by-side table as rows of strings: header row, then one row per fact in :data:`TABLE_ROWS`."""
    rows = [["fact", *[f.label for f in facts]]]
    for key, label, fmt in TABLE_ROWS:
        row = [label]
        for f in facts:
            v = f.scalars.get(key, float("nan"))
            row.append("n/a" if not np.isfinite(v) else fmt.format(v))
        rows.append(row)
    return rows


def format_table(facts: Sequence[StylizedFacts]) -> str:
    """Plain-text (Markdown) rendering of :func:`facts_table`."""
    rows = facts_table(facts)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def plot_facts(facts: Sequence[StylizedFacts], path: str | Path) -> Path:
    """Write a 2x3 PNG: return densities (log y), return ACF, |r| ACF, spread, inter-arrival, type shares."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    ax = axes.ravel()
    spreads = [f.series["spread_bps"] for f in facts if f.series.get("spread_bps", np.zeros(0)).size]
    spread_hi = max([float(np.quantile(x, 0.99)) for x in spreads] + [1.0]) * 1.05
    for f in facts:
        r = f.series.get("minute_returns", np.zeros(0))
        if r.size > 1 and r.std() > 0:
            z = (r - r.mean()) / r.std()
            ax[0].hist(z, bins=40, range=(-8, 8), density=True, histtype="step", label=f.label)
        for i, key in ((1, "ret_acf"), (2, "absret_acf")):
            a = f.series.get(key)
            if a is not None:
                ax[i].plot(np.arange(1, a.size + 1), a, marker=".", label=f.label)
        sp = f.series.get("spread_bps", np.zeros(0))
        if sp.size:  # scale-free, so instruments with different prices and ticks share one axis
            ax[3].hist(sp, bins=80, range=(0, spread_hi), density=True, histtype="step", label=f.label)
        ia = f.series.get("log10_interarrival_s", np.zeros(0))
        if ia.size:
            ax[4].hist(ia, bins=60, range=(-9, 2), density=True, histtype="step", label=f.label)
    g = np.linspace(-8, 8, 200)
    ax[0].plot(g, np.exp(-g * g / 2) / np.sqrt(2 * np.pi), "k:", label="N(0,1)")
    ax[0].set_yscale("log")
    ax[0].set_ylim(1e-4, 1)
    ax[0].set_title("standardised minute log returns")
    ax[1].set_title("ACF of minute returns")
    ax[2].set_title("ACF of |minute returns| (volatility clustering)")
    for i in (1, 2):
        ax[i].axhline(0, color="k", lw=0.5)
        ax[i].set_xlabel("lag (minutes)")
    ax[3].set_title("spread (bps of mid)")
    ax[4].set_title("log10 inter-arrival (s)")
    width = 0.8 / max(len(facts), 1)
    for j, f in enumerate(facts):
        sh = f.series.get("type_shares", np.zeros(7))
        ax[5].bar(np.arange(1, 8) + j * width - 0.4 + width / 2, sh, width=width, label=f.label)
    ax[5].set_xticks(range(1, 8), ["add", "cancel", "delete", "exec", "hidden", "cross", "halt"])
    ax[5].set_title("order-type shares")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
