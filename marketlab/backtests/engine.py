"""The backtester: a spec -> data -> signals -> vectorbt Portfolio -> metrics (+ report).

``Backtest.from_spec(path).run()`` is what ``marketlab backtest <path>`` runs. vectorbt does the
accounting: ``Portfolio.from_signals`` for entry/exit rules on one symbol, ``Portfolio.from_orders`` with
target percents (cash shared across symbols, sells first) for weights and top-k books. Fees are
``costs.commission``; vectorbt's price slippage is ``costs.spread / 2 + costs.slippage``, the same
arithmetic as the envs (:mod:`marketlab.envs.execution`), which a test checks to 1e-9.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.backtests import signals as sg
from marketlab.backtests.kernels import holdings_nb
from marketlab.backtests.portfolio import annualised, portfolio_class
from marketlab.backtests.spec import BacktestDataSpec, BacktestSpec, BenchmarkSpec, ReportSpec, StrategySpec
from marketlab.core.config import Spec
from marketlab.core.errors import SpecError
from marketlab.core.metrics import summary
from marketlab.core.registry import resolve
from marketlab.core.timeutil import format_times, time_unit
from marketlab.market import MarketData, align_signals, clip_signals, load_market, load_market_spec, open_store, prepare_data
from marketlab.market.signals import long_signal_frame
from marketlab.market.spec import CostSpec


@dataclass
class BacktestResult:
    """Everything a report needs. Arrays are over the backtested rows (T,) / (T, N)."""

    name: str
    ts: np.ndarray
    symbols: tuple[str, ...]
    value: np.ndarray
    benchmark: np.ndarray | None
    weights: np.ndarray
    traded: np.ndarray
    metrics: dict[str, float]
    trades: Any  # pandas DataFrame of vectorbt's trade records (readable)
    periods_per_year: float
    init_cash: float
    portfolio: Any = None
    report_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``--json`` prints); times as :func:`~marketlab.core.timeutil.format_times`
        of the whole series (``2021-01-04`` for daily bars, ``2021-01-04 09:31:00`` intraday)."""
        first_last = format_times(self.ts[[0, -1]], time_unit(self.ts))
        return {
            "name": self.name,
            "start": str(first_last[0]),
            "end": str(first_last[1]),
            "n_symbols": len(self.symbols),
            "final_value": float(self.value[-1]),
            **{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.metrics.items()},
            "report": str(self.report_path) if self.report_path else None,
        }


class Backtest:
    """One backtest. ``market`` (and ``signal_frame`` for stored signals) may be passed to skip the store;
    ``weights`` (T, N) feed the ``weights-v1`` signal source. Construction reads nothing; :meth:`run`
    first runs the spec's explicit data step (:func:`marketlab.market.prepare_data`, the ``[data.ingest]``)."""

    def __init__(
        self,
        spec: BacktestSpec,
        *,
        spec_path: str | Path | None = None,
        store: Any = None,
        market: MarketData | None = None,
        signal_frame: Any = None,
        weights: np.ndarray | Any = None,
    ) -> None:
        self.spec = spec
        self.spec_path = Path(spec_path) if spec_path else None
        self._store = store
        self._market = market
        self._signal_frame = signal_frame
        self.given_weights = weights

    @property
    def signal_frame_given(self) -> Any:
        """The signal frame passed from Python (None when signals come from the store)."""
        return self._signal_frame

    @classmethod
    def from_signals(
        cls, signals: Any, *, data: dict[str, Any] | BacktestDataSpec | MarketData, costs: dict[str, Any] | CostSpec | None = None,
        strategy: dict[str, Any] | StrategySpec | None = None, threshold: float = 0.0, name: str = "signals",
        benchmark: dict[str, Any] | BenchmarkSpec | None = None, report: dict[str, Any] | ReportSpec | None = None,
        store: Any = None,
    ) -> Backtest:
        """A backtest of your own scores: ``signals`` is a Polars or pandas frame of time x symbol values,
        wide (a ``ts``/``date`` column or pandas index, one column per symbol) or long (``ts``/``date``,
        ``symbol``, ``value``); see :func:`marketlab.market.signals.long_signal_frame`.

        Each bar takes the latest signal row at or before its time (as a stored ``alpha-v1`` signal), and
        ``strategy`` turns scores into orders like a spec's ``[strategy]``: ``signals`` (default) is long
        while the score > ``threshold`` (and short below -``threshold`` with ``direction = "both"``);
        ``topk`` holds the ``top_k`` best. ``data`` is a spec's ``[data]`` table (dict or
        :class:`BacktestDataSpec`) or bars already in memory (:class:`MarketData`); ``costs``,
        ``benchmark``, ``report`` are the spec tables. Every table is checked as in a TOML spec; symbols
        the market does not have are an error naming them. Equal to the spec path for the same signal.
        """
        frame = long_signal_frame(signals, source="signals frame")
        signal = {"kind": "frame-v1", "threshold": threshold}
        return cls._from_python(name, data, signal, strategy, costs, benchmark, report, store, signal_frame=frame)

    @classmethod
    def from_weights(
        cls, weights: Any, *, data: dict[str, Any] | BacktestDataSpec | MarketData, costs: dict[str, Any] | CostSpec | None = None,
        delay: int = 0, name: str = "weights", benchmark: dict[str, Any] | BenchmarkSpec | None = None,
        report: dict[str, Any] | ReportSpec | None = None, store: Any = None,
    ) -> Backtest:
        """A backtest of your own target weights (fractions of portfolio value, negative = short): a frame
        laid out as for :meth:`from_signals`. A row at time τ is traded at the first bar at or after τ;
        bars without a row send no order (positions drift with prices), so give a row every bar to
        rebalance every bar. ``delay`` bars between decision and trade; other arguments as
        :meth:`from_signals`."""
        frame = long_signal_frame(weights, source="weights frame")
        strategy = {"kind": "weights", "delay": delay}
        return cls._from_python(name, data, {"kind": "weights-v1"}, strategy, costs, benchmark, report, store, weights=frame)

    @classmethod
    def _from_python(
        cls, name: str, data: Any, signal: dict[str, Any], strategy: Any, costs: Any, benchmark: Any, report: Any,
        store: Any, *, signal_frame: Any = None, weights: Any = None,
    ) -> Backtest:
        market = data if isinstance(data, MarketData) else None
        tables: dict[str, Any] = {"name": name, "signal": signal, "strategy": strategy or {}}
        tables["data"] = {"dataset": market.source or "memory"} if market is not None else data
        for key, value in (("costs", costs), ("benchmark", benchmark), ("report", report)):
            if value is not None:
                tables[key] = value
        tables = {k: (v.to_dict() if isinstance(v, Spec) else v) for k, v in tables.items()}
        return cls(BacktestSpec.from_dict(tables), store=store, market=market, signal_frame=signal_frame, weights=weights)

    @classmethod
    def from_spec(cls, path: str | Path, *, store: Any = None) -> Backtest:
        """``Backtest(BacktestSpec.from_toml(path), spec_path=path)``: what ``marketlab backtest path`` runs."""
        return cls(BacktestSpec.from_toml(path), spec_path=path, store=store)

    # data -------------------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        """The store named by ``data.store`` (opened on first use) or the one passed in."""
        if self._store is None:
            self._store = open_store(self.spec.data.store)
        return self._store

    def prepare(self) -> None:
        """The explicit data step: ingest ``[data.ingest]`` when the store lacks the dataset (no-op when a
        market was passed in)."""
        if self._market is None:
            prepare_data(self.spec.data, self.store, base=self.spec_path.parent if self.spec_path else None)

    def market(self) -> MarketData:
        """The backtested bars (read only; :meth:`prepare` ingests)."""
        if self._market is None:
            self._market = load_market_spec(self.spec.data, self.store)
        return self._market

    def period_start(self, market: MarketData) -> int:
        """First backtested row (0 for ``period = "all"``)."""
        d = self.spec.data
        if d.period == "all":
            return 0
        lo = market.index_of(d.test_start, default=0, key="data.test_start")
        if lo >= market.n_steps - 1:
            raise SpecError(self.spec_path, "data.test_start", f"empty test period: no bars from {d.test_start} to the end of the data")
        return lo

    def stored_signals(self, market: MarketData) -> dict[str, np.ndarray]:
        """``signal.columns`` of the stored ``signal.dataset`` (or the ``signal_frame`` passed in),
        aligned backwards to ``market``: name -> (T, N)."""
        s = self.spec.signal
        frame = self._signal_frame
        source = f"dataset '{s.dataset}'"
        if frame is None:
            frame = self.store.scan_signals(s.dataset, symbols=list(market.symbols))
        return align_signals(market, clip_signals(frame, market), list(s.columns), source=source)

    # signals ----------------------------------------------------------------------------------------
    def source(self) -> Any:
        """The signal source named by ``signal.kind``, built for this backtest."""
        cls = resolve(self.spec.signal.kind, kind="signal", path=self.spec_path, key="signal.kind")
        return cls(self.spec.signal, self)

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """("entries", Entries) or ("weights", (T, N) target weights with NaN = no order) over all rows:
        the source's decisions, with scores turned into orders by the strategy."""
        s, st = self.spec.signal, self.spec.strategy
        close = market.close
        mode, out = self.source().decisions(market, lo)
        if mode != "scores":
            return mode, out
        scores = out
        if st.kind == "topk":
            if st.top_k * (2 if st.long_short else 1) > market.n_assets:
                raise SpecError(self.spec_path, "strategy.top_k", f"{st.top_k} exceeds the {market.n_assets} symbols")
            # Rebalance rows are counted from the first backtested row.
            w = np.full(close.shape, np.nan)
            w[lo:] = sg.topk_weights(
                scores[lo:], market.tradable[lo:], top_k=st.top_k, rebalance=st.rebalance,
                long_short=st.long_short, n_drop=st.n_drop, size=st.size,
            )
            return "weights", w
        return "entries", sg.scores_to_entries(scores, s.threshold)

    # run --------------------------------------------------------------------------------------------
    def run(self, *, report: bool = True) -> BacktestResult:
        """Run the backtest; writes the report (HTML + PNGs) unless ``report=False``."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.prepare()
        market = self.market()
        timings["data_s"] = time.perf_counter() - t0
        lo = self.period_start(market)
        if st_delay := self.spec.strategy.delay:
            if st_delay >= market.n_steps - lo:
                raise SpecError(self.spec_path, "strategy.delay", f"{st_delay} bars do not fit in the {market.n_steps - lo} backtested bars")
        t1 = time.perf_counter()
        mode, dec = self.decisions(market, lo)
        timings["signals_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        res = self.simulate(market, lo, mode, dec)
        timings["portfolio_s"] = time.perf_counter() - t2
        res.timings = timings
        if report and (self.spec.report.html or self.spec.report.png):
            from marketlab.backtests.report import write_report

            t3 = time.perf_counter()
            res.report_path = write_report(res, self.spec.report, spec_path=self.spec_path)
            timings["report_s"] = time.perf_counter() - t3
        return res

    def simulate(self, market: MarketData, lo: int, mode: str, dec: Any) -> BacktestResult:
        """Run vectorbt on rows ``lo:`` of the decisions and collect values, weights, trades and metrics."""
        import pandas as pd

        vbt_portfolio = portfolio_class()
        spec, c, st = self.spec, self.spec.costs, self.spec.strategy
        m = market.slice_rows(lo, market.n_steps)
        if m.n_steps < 2:
            raise SpecError(self.spec_path, "data", "the backtest period has fewer than 2 bars")
        # tz-naive (UTC implied): a tz-aware index makes vectorbt convert it to Timestamp objects, 100x slower
        index = pd.DatetimeIndex(m.ts.astype("datetime64[ns]"))
        close = pd.DataFrame(m.close, index=index, columns=list(m.symbols))
        sec = m.bar_seconds()
        common = dict(fees=c.commission, slippage=0.5 * c.spread + c.slippage, init_cash=c.init_cash, freq=pd.Timedelta(seconds=sec))
        if mode == "entries" and m.n_assets > 1:
            mode, dec = "weights", _entries_to_weights(dec, st.direction, st.size / m.n_assets)
        if mode == "entries":
            e = _slice_entries(dec, lo, st.delay)
            if st.direction == "long":
                pf = vbt_portfolio.from_signals(close, e.entries, e.exits, size=st.size, size_type="percent", direction="longonly", **common)
            else:
                pf = vbt_portfolio.from_signals(
                    close, e.entries, e.exits, short_entries=e.short_entries, short_exits=e.short_exits,
                    **common,  # all-in: vectorbt reverses positions with its default infinite size
                )
        else:
            w = _carry_in(sg.delay_rows(dec, st.delay, np.nan), lo)
            pf = vbt_portfolio.from_orders(
                close, size=w, size_type="targetpercent", group_by=True, cash_sharing=True, call_seq="auto", **common
            )
        ppy = spec.data.periods_per_year or m.periods_per_year()
        annualised(pf, sec, ppy)  # pf.stats() annualises like the metrics below
        orders = pf.orders.values
        cash, shares = holdings_nb(m.n_steps, m.n_assets, orders["idx"], orders["col"], orders["size"], orders["price"],
                                   orders["fees"], orders["side"], c.init_cash)
        asset_value = np.where(shares != 0, shares * m.close, 0.0)
        value = cash + asset_value.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(value[:, None] > 0, asset_value / value[:, None], 0.0)
        traded = np.zeros(m.n_steps)
        np.add.at(traded, orders["idx"], orders["size"] * orders["price"])
        trades = trades_table(pf.trades.values, m.ts, m.symbols)
        rec = pf.trades.values
        pnl = np.asarray(rec["pnl"][rec["status"] == 1], dtype=np.float64)  # closed trades only
        bench = self.benchmark(market, lo)
        metrics = summary(
            value, init_cash=c.init_cash, periods_per_year=ppy, traded=traded,
            gross_exposure=np.abs(weights).sum(axis=1), trade_pnl=pnl, n_open_trades=int((rec["status"] == 0).sum()), benchmark=bench,
        )
        return BacktestResult(spec.name, m.ts, m.symbols, value, bench, weights, traded, metrics, trades, ppy, c.init_cash, pf)

    def benchmark(self, market: MarketData, lo: int) -> np.ndarray | None:
        """Benchmark value (T,) over rows ``lo:``, scaled to start at the initial cash."""
        b, init = self.spec.benchmark, self.spec.costs.init_cash
        m = market.slice_rows(lo, market.n_steps)
        if b.kind == "none":
            return None
        if b.kind == "equal_weight":
            return np.asarray(init * (m.close / m.close[0]).mean(axis=1))
        if b.kind == "symbol" and b.symbol in m.symbols and not b.dataset:
            px = m.close[:, m.symbols.index(b.symbol)]
        else:
            if b.kind == "file":
                other_ts, series = self._benchmark_file()
            else:
                other = load_market(self.store, b.dataset or self.spec.data.dataset, kind=b.data_kind, symbols=[str(b.symbol)],
                                    key="benchmark.symbol")
                if b.symbol not in other.symbols:
                    raise SpecError(self.spec_path, "benchmark.symbol", f"{b.symbol!r} not in dataset '{b.dataset}'")
                other_ts, series = other.ts, other.close[:, other.symbols.index(b.symbol)]
            pos = np.searchsorted(other_ts, m.ts, side="right") - 1  # last benchmark close at or before each bar
            if (pos < 0).all():
                raise SpecError(self.spec_path, "benchmark.dataset", "benchmark has no data in the backtest period")
            px = np.where(pos >= 0, series[np.clip(pos, 0, None)], np.nan)
            first = px[np.isfinite(px)][0]
            px = np.where(np.isfinite(px), px, first)
        return np.asarray(init * px / px[0])

    def _benchmark_file(self) -> tuple[np.ndarray, np.ndarray]:
        """(ts int64 ns sorted, close float64) of the benchmark CSV ``benchmark.path`` (see
        :class:`~marketlab.backtests.spec.BenchmarkSpec` for the layouts read)."""
        import polars as pl

        from marketlab.core.errors import DataError

        b = self.spec.benchmark
        p = Path(str(b.path))
        if not p.is_absolute() and self.spec_path is not None and (self.spec_path.parent / p).exists():
            p = self.spec_path.parent / p
        if not p.is_file():
            raise SpecError(self.spec_path, "benchmark.path", f"file not found: {b.path}")
        try:
            frame = pl.read_csv(p, infer_schema_length=0)  # all strings: parsed explicitly below
        except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
            raise DataError(p, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
        tcol = next((c for c in BENCHMARK_TIME_COLUMNS if c in frame.columns), None)
        if tcol is None:
            raise DataError(p, f"missing column (one of {', '.join(BENCHMARK_TIME_COLUMNS)})", field="date")
        pcol = next((c for c in BENCHMARK_PRICE_COLUMNS if c in frame.columns), None)
        if pcol is None:
            raise DataError(p, f"missing column (one of {', '.join(BENCHMARK_PRICE_COLUMNS)})", field="close")
        key = next((c for c in ("code", "symbol") if c in frame.columns), None)
        if key is not None:  # many series in one file: pick benchmark.symbol
            if not b.symbol:
                raise SpecError(self.spec_path, "benchmark.symbol", f"{p.name} holds several series (column '{key}'): name one")
            frame = frame.filter(pl.col(key) == b.symbol)
            if frame.height == 0:
                raise SpecError(self.spec_path, "benchmark.symbol", f"{b.symbol!r} not in {p}")
        t = pl.col(tcol).str.strip_chars()
        try:
            rows = frame.select(
                pl.coalesce(t.str.to_datetime(strict=False, time_unit="ns"), t.str.to_date(strict=False).cast(pl.Datetime("ns")))
                .cast(pl.Int64).alias("t"),
                pl.col(tcol).alias("raw"), pl.col(pcol).cast(pl.Float64).alias("px"),
            )
        except pl.exceptions.PolarsError as exc:
            raise DataError(p, f"unparseable {pcol} ({str(exc).splitlines()[0]})", field=pcol) from None
        bad = rows["t"].is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise DataError(p, "unparseable time", field=tcol, row=i, value=rows["raw"][i])
        rows = rows.filter(pl.col("px").is_not_null()).sort("t")  # an empty price is a missing quote
        return rows["t"].to_numpy(), rows["px"].to_numpy()


#: Benchmark CSV columns, first match wins: time, then price (an adjusted close, total return, first).
BENCHMARK_TIME_COLUMNS = ("date", "timestamp", "datetime", "ts")
BENCHMARK_PRICE_COLUMNS = ("adjusted_close", "adj_close", "close")


def trades_table(rec: np.ndarray, ts: np.ndarray, symbols: tuple[str, ...]) -> Any:
    """vectorbt trade records -> a readable DataFrame with times as strings (:func:`format_times` at the
    series' unit). Built by hand: vectorbt's ``records_readable`` maps the index through Python dicts,
    which takes seconds on a million bars."""
    import pandas as pd

    unit = time_unit(ts)  # "2021-01-04" (daily) / "2021-01-04 09:31:00", as printed and in trades.csv
    open_ = rec["status"] == 0
    return pd.DataFrame({
        "symbol": np.asarray(symbols, dtype=object)[rec["col"]],
        "direction": np.where(rec["direction"] == 0, "long", "short"),
        "size": rec["size"],
        "entry_time": format_times(ts[rec["entry_idx"]], unit),
        "entry_price": rec["entry_price"],
        "entry_fees": rec["entry_fees"],
        "exit_time": format_times(ts[rec["exit_idx"]], unit),
        "exit_price": rec["exit_price"],
        "exit_fees": rec["exit_fees"],
        "pnl": rec["pnl"],
        "return": rec["return"],
        "status": np.where(open_, "open", "closed"),
    })


def _slice_entries(e: sg.Entries, lo: int, delay: int) -> sg.Entries:
    def cut(a: np.ndarray) -> np.ndarray:
        return sg.delay_rows(a, delay, False)[lo:]

    return sg.Entries(
        cut(e.entries), cut(e.exits),
        None if e.short_entries is None else cut(e.short_entries), None if e.short_exits is None else cut(e.short_exits),
    )


def _carry_in(w: np.ndarray, lo: int) -> np.ndarray:
    """Rows ``lo:`` of (T, N) target weights (NaN = no order), where a symbol with no order at row ``lo``
    gets the last target decided before ``lo``: the portfolio starts in cash, so a position decided before
    the test period (and only re-sent when it changes, see :func:`signals.changes_only`) must be opened at
    its first row instead of waiting for the next change."""
    out = w[lo:].copy()
    if lo == 0 or out.shape[0] == 0:
        return out
    for j in np.nonzero(np.isnan(out[0]))[0]:
        past = w[:lo, j]
        known = np.nonzero(np.isfinite(past))[0]
        if known.size:
            out[0, j] = past[known[-1]]
    return out


def _entries_to_weights(e: sg.Entries, direction: str, per_asset: float) -> np.ndarray:
    """Entry/exit masks of many symbols -> target weights (+-per_asset while in a position), changes only."""
    t_len, n = e.entries.shape
    pos = np.zeros(n)
    w = np.empty((t_len, n))
    for t in range(t_len):
        pos = np.where(e.entries[t], 1.0, np.where(e.exits[t] & (pos > 0), 0.0, pos))
        if direction == "both" and e.short_entries is not None and e.short_exits is not None:
            pos = np.where(e.short_entries[t], -1.0, np.where(e.short_exits[t] & (pos < 0), 0.0, pos))
        w[t] = pos * per_asset
    return sg.changes_only(w)


def run_demo(store: Any, *, out_dir: str | Path = "reports", dataset: str = "synth_daily", report: bool = True) -> dict[str, Any]:
    """The demo's backtest: top-10 20-day momentum, long-only, weekly rebalance, 5 bp costs, on the
    synthetic daily panel ``dataset`` of ``store``. Returns the JSON summary (``report`` = HTML path)."""
    spec_data: dict[str, Any] = {
        "name": "demo_momentum_synth",
        "description": "top-10 momentum on the synthetic daily panel (demo)",
        "data": {"dataset": dataset, "kind": "panel"},
        "signal": {"kind": "momentum-v1", "lookback": 20},
        "strategy": {"kind": "topk", "top_k": 10, "rebalance": 5},
        "costs": {"commission": 0.0005, "spread": 0.0002},
        "report": {"out_dir": str(out_dir)},
    }
    bt = Backtest(BacktestSpec.from_dict(spec_data), store=store)
    bt.prepare()
    m = bt.market()
    if 2 * 10 > m.n_assets:  # a small synthetic panel: hold a third of it
        spec_data["strategy"]["top_k"] = max(1, m.n_assets // 3)
        bt = Backtest(BacktestSpec.from_dict(spec_data), store=store, market=m)
    return bt.run(report=report).to_dict()
