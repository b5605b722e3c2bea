"""Backtest signal sources (:class:`marketlab.core.protocols.SignalSource`), one class per registry id.

A source is built with ``cls(signal, backtest)`` (its :class:`~marketlab.backtests.spec.SignalSpec` and
the :class:`~marketlab.backtests.engine.Backtest`, for the store, the spec path and signal frames passed
in) and answers ``decisions(market, lo)`` with one of

* ``("entries", Entries)``: boolean (T, N) entry/exit masks (``strategy.kind = "signals"``);
* ``("weights", W)``: (T, N) target weights, NaN = no order (``strategy.kind = "weights"``);
* ``("scores", S)``: (T, N) scores that the strategy turns into weights (``topk``) or entries
  (``signals``: long above ``signal.threshold``, short below minus it).

``gives`` names which one, so a spec that pairs a source with a strategy it cannot feed is refused when
loaded; ``check(signal, path)`` holds a source's own spec rules. A user's source is one such class
registered from Python: ``register("signal/mine-v1", Mine)``, then ``kind = "mine-v1"`` in a spec.
Every built-in is causal: row t of its output uses market rows <= t.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from marketlab.backtests import signals as sg
from marketlab.core.errors import SpecError
from marketlab.market import MarketData, align_signals, clip_signals
from marketlab.market.signals import check_symbols, place_on_bars

if TYPE_CHECKING:
    from marketlab.backtests.engine import Backtest
    from marketlab.backtests.spec import SignalSpec


class Source:
    """Base of the built-in sources: keeps the spec and the backtest; no rules of its own."""

    gives: ClassVar[str] = "scores"

    def __init__(self, signal: SignalSpec, backtest: Backtest) -> None:
        self.signal = signal
        self.backtest = backtest

    @classmethod
    def check(cls, signal: SignalSpec, path: Any) -> None:
        """The source's own spec rules (raise :class:`SpecError` naming ``path`` and the key)."""

    def _history(self, market: MarketData, rows: int, key: str) -> None:
        """A window of ``rows`` bars must fit in the data, else the backtest could never trade."""
        if rows >= market.n_steps:
            raise SpecError(self.backtest.spec_path, key, f"{rows} bars do not fit in the {market.n_steps} bars of the data")

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See the module docstring."""
        raise NotImplementedError


class MACross(Source):
    """``signal/ma-cross-v1``: long when SMA(``fast``) crosses above SMA(``slow``) of close, exit below."""

    gives = "entries"

    @classmethod
    def check(cls, signal: SignalSpec, path: Any) -> None:
        """See :meth:`Source.check`."""
        if signal.fast >= signal.slow:
            raise SpecError(path, "signal.fast", f"must be < signal.slow ({signal.fast} >= {signal.slow})")

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        self._history(market, self.signal.slow, "signal.slow")
        return "entries", sg.ma_cross(market.close, self.signal.fast, self.signal.slow)


class MeanReversion(Source):
    """``signal/mean-reversion-v1``: z-score of close vs its ``lookback`` mean; enter at -``z_entry``,
    exit at -``z_exit`` (mirrored for shorts)."""

    gives = "entries"

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        s = self.signal
        self._history(market, s.lookback, "signal.lookback")
        return "entries", sg.mean_reversion(market.close, s.lookback, s.z_entry, s.z_exit)


class Momentum(Source):
    """``signal/momentum-v1``: scores close[t-skip] / close[t-skip-lookback] - 1."""

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        s = self.signal
        self._history(market, s.lookback + s.skip, "signal.lookback")
        return "scores", sg.momentum(market.close, s.lookback, s.skip)


class _Stored(Source):
    """Columns of a stored signals dataset, aligned backwards in time to the market."""

    @classmethod
    def check(cls, signal: SignalSpec, path: Any) -> None:
        if not signal.dataset:
            raise SpecError(path, "signal.dataset", f"signal kind '{signal.kind}' needs a stored signals dataset")
        if not signal.columns:
            raise SpecError(path, "signal.columns", "list the stored signal columns to use")

    def columns(self, market: MarketData) -> dict[str, np.ndarray]:
        """name -> (T, N) aligned values of ``signal.columns``."""
        return self.backtest.stored_signals(market)


class StoredAlpha(_Stored):
    """``signal/alpha-v1``: scores from the first of ``columns`` of the stored ``dataset``."""

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        return "scores", self.columns(market)[self.signal.columns[0]]


class StoredPredictions(_Stored):
    """``signal/predictions-v1``: stored predictor output; ``columns`` = [p_down, (p_flat,) p_up] ->
    the argmax position (-1/0/+1) times ``strategy.size`` / N, sent when it changes; one column = scores."""

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        cols = self.columns(market)
        names = self.signal.columns
        if len(names) in (2, 3):
            pos = sg.class_positions([cols[c] for c in names])
            return "weights", sg.changes_only(pos * self.backtest.spec.strategy.size / market.n_assets)
        return "scores", cols[names[0]]


class PolicyWeights(Source):
    """``signal/rl-v1``: the target weights of a trained policy (run folder ``run``) rolled out on the
    period; relative ``run`` paths resolve against the current directory."""

    gives = "weights"

    @classmethod
    def check(cls, signal: SignalSpec, path: Any) -> None:
        """See :meth:`Source.check`."""
        if not signal.run:
            raise SpecError(path, "signal.run", "signal kind 'rl' needs the run directory of a trained agent")

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        from marketlab.agents.sb3 import rollout_weights

        test_start = self.backtest.spec.data.test_start if lo > 0 else None
        return "weights", rollout_weights(Path(str(self.signal.run)), market, test_start=test_start)


class MacroHFTPolicy(Source):
    """``signal/macrohft-v1``: the positions of a trained MacroHFT run (folder ``run`` written by
    ``marketlab rl train specs/agents/macrohft_*.toml``) on its held-out test split, as target weights
    ``position * strategy.size`` sent when they change. ``params.policy``: ``macrohft`` (default), ``uniform``,
    ``sub_<kind>_<label>``. Bars before the test split are flat; bars the split lacks send no order. The
    positions come from the run's own data source and train-fitted statistics, so the backtest's data must
    be the same symbol's minutes (its ``commission`` should be the run's ``fee`` for the env P&L to match)."""

    gives = "weights"

    @classmethod
    def check(cls, signal: SignalSpec, path: Any) -> None:
        """See :meth:`Source.check`."""
        if not signal.run:
            raise SpecError(path, "signal.run", "signal kind 'macrohft-v1' needs the run folder of a trained MacroHFT agent")
        extra = set(signal.params) - {"policy"}
        if extra:
            raise SpecError(path, f"signal.params.{sorted(extra)[0]}", "unknown key (macrohft-v1 takes params.policy only)")

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        from marketlab.agents.macrohft.evaluate import load_trained, policy_positions

        cfg, prep, subs, hyper = load_trained(Path(str(self.signal.run)))
        if market.symbols != (cfg.symbol,):
            raise SpecError(self.backtest.spec_path, "data.symbols", f"the MacroHFT run trades {cfg.symbol}, the data holds {list(market.symbols)}")
        policy = str(self.signal.params.get("policy", "macrohft"))
        try:
            pos = policy_positions(policy, prep, "test", subs, hyper)
        except ValueError as exc:
            raise SpecError(self.backtest.spec_path, "signal.params.policy", str(exc)) from None
        ts = prep.splits["test"].ts
        w = np.full((market.n_steps, 1), np.nan)
        w[market.ts < ts[0]] = 0.0
        i = np.clip(np.searchsorted(ts, market.ts), 0, len(ts) - 1)
        hit = ts[i] == market.ts
        w[hit, 0] = pos[i[hit]] * self.backtest.spec.strategy.size
        return "weights", sg.changes_only(w)


class FrameScores(Source):
    """``signal/frame-v1``: scores from a frame passed from Python (:meth:`Backtest.from_signals`), aligned
    to the bars like a stored signal (each bar takes the latest row at or before its time)."""

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        frame = self.backtest.signal_frame_given
        if frame is None:
            raise SpecError(self.backtest.spec_path, "signal.kind", "'frame-v1' takes its frame from Python: Backtest.from_signals(df, ...)")
        check_symbols(frame, market, source="signal frame")
        return "scores", align_signals(market, clip_signals(frame, market), ["value"], source="signal frame")["value"]


class GivenWeights(Source):
    """``signal/weights-v1``: target weights computed in Python (NaN = no order): a (T, N) array passed as
    ``Backtest(spec, weights=W)``, or a long ``ts``/``symbol``/``value`` frame from
    :meth:`Backtest.from_weights`, whose rows land on the first bar at or after their time
    (:func:`marketlab.market.signals.place_on_bars`)."""

    gives = "weights"

    def decisions(self, market: MarketData, lo: int) -> tuple[str, Any]:
        """See :class:`marketlab.core.protocols.SignalSource`: the source's decisions over all rows."""
        w = self.backtest.given_weights
        if w is None:
            raise SpecError(self.backtest.spec_path, "signal.kind", "'weights-v1' takes its weights from Python: Backtest(spec, weights=W)")
        if isinstance(w, pl.DataFrame):
            check_symbols(w, market, source="weights frame")
            return "weights", place_on_bars(w, market)
        if w.shape != market.close.shape:
            raise SpecError(self.backtest.spec_path, "signal.kind", f"weights of shape {w.shape} for a market of shape {market.close.shape}")
        return "weights", w
