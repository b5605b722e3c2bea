"""Frozen, typed configuration of the bar-trading environment (TOML tables ``[env.*]``).

Every part of the env is chosen by a ``kind``: a built-in name (``"window"``, ``"discrete"``, ``"pnl"``...)
or a ``"package.module:Class"`` entry point, so a state interpreter, action interpreter or reward can be
swapped from the spec without touching the env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketlab.core.config import from_dict


@dataclass(frozen=True)
class DataConfig:
    """Which bars to trade.

    ``dataset``/``kind`` select ``Store.scan_bars`` (kind="bars") or ``Store.scan_panel`` (kind="panel");
    ``test_start`` splits train (before) from test (from it on); ``signals`` names a stored signals
    dataset whose ``signal_columns`` become extra observation features (predictor probabilities, alphas).
    ``ingest_paths`` (with ``ingest_format``) are ingested when the store lacks ``dataset``; relative
    paths are tried against the spec's folder, then the current directory.
    """

    dataset: str = ""
    kind: str = "bars"
    symbols: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    test_start: str | None = None
    signals: str | None = None
    signal_columns: list[str] = field(default_factory=list)
    store: str | None = None
    ingest_format: str = "ohlcv"
    ingest_paths: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CostConfig:
    """Trading costs as fractions of traded notional: ``commission`` (fee), ``spread`` (full bid-ask spread;
    half is paid per trade) and ``slippage`` (extra price impact per trade)."""

    commission: float = 0.0
    spread: float = 0.0
    slippage: float = 0.0
    init_cash: float = 10_000.0

    @property
    def price_slippage(self) -> float:
        """Fractional price penalty per trade: half spread + slippage."""
        return 0.5 * self.spread + self.slippage


@dataclass(frozen=True)
class ObservationConfig:
    """State interpreter: ``window`` bars of ``features`` per asset, z-scored with train-split statistics,
    plus the current portfolio weights when ``include_position``."""

    kind: str = "window"
    window: int = 16
    features: list[str] = field(default_factory=lambda: ["ret", "range", "body", "logvol"])
    normalize: bool = True
    include_position: bool = True
    clip: float = 10.0


@dataclass(frozen=True)
class ActionConfig:
    """Action interpreter: ``discrete`` target positions (``levels`` as weights of value, per asset) or
    continuous ``weights`` in [-1, 1] (or [0, 1] when ``long_only``), scaled to gross <= ``max_leverage``."""

    kind: str = "discrete"
    levels: list[float] = field(default_factory=lambda: [-1.0, 0.0, 1.0])
    long_only: bool = False
    max_leverage: float = 1.0


@dataclass(frozen=True)
class RewardConfig:
    """Reward: ``pnl`` (change in net value after costs / initial cash), ``log_return`` of net value, or
    ``diff_sharpe`` (Moody & Saffell's differential Sharpe ratio with EMA rate ``eta``); times ``scale``."""

    kind: str = "pnl"
    eta: float = 0.01
    scale: float = 1.0


@dataclass(frozen=True)
class TradingEnvConfig:
    """The whole env. ``period`` picks the train or test split (``all`` = everything);
    ``episode_length`` 0 runs to the end of the period; with ``random_start`` an episode begins at a
    uniformly drawn bar (from ``reset(seed=)``'s generator). ``trade_on_change``: send orders only when
    the target changes (otherwise every step rebalances back to the target weights)."""

    data: DataConfig = field(default_factory=DataConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    period: str = "train"
    episode_length: int = 0
    random_start: bool = False
    trade_on_change: bool = True


def env_config(value: TradingEnvConfig | dict[str, Any] | None, *, path: str | Path | None = None) -> TradingEnvConfig:
    """Accept a config, a plain dict (validated, unknown keys rejected) or None (defaults)."""
    if value is None:
        return TradingEnvConfig()
    if isinstance(value, TradingEnvConfig):
        return value
    return from_dict(TradingEnvConfig, value, path=path, prefix="env.")
