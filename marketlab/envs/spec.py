"""Frozen, typed configuration of the bar-trading environment (TOML tables ``[env.*]``).

The state interpreter, action interpreter and reward are each chosen by ``kind``, a registry id of kind
``state`` / ``action`` / ``reward`` (``"window-v1"``, ``"discrete-v1"``, ``"diff-sharpe-v1"`` or the full
``"reward/diff-sharpe-v1"``); a user's own component is registered from Python
(``marketlab.core.registry.register("reward/mine-v1", MyReward)``) and then named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from marketlab.core.config import FiniteFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Spec
from marketlab.market.spec import CostSpec, DataSpec


@dataclass(frozen=True)
class ObservationConfig(Spec):
    """State interpreter ``kind`` (default ``window-v1``: ``window`` bars of ``features`` per asset,
    z-scored with train-split statistics, plus the current portfolio weights when ``include_position``);
    features are clipped to [-``clip``, ``clip``]."""

    kind: str = "window-v1"
    window: PositiveInt = 16
    features: list[str] = field(default_factory=lambda: ["ret", "range", "body", "logvol"])
    normalize: bool = True
    include_position: bool = True
    clip: PositiveFloat = 10.0


@dataclass(frozen=True)
class ActionConfig(Spec):
    """Action interpreter ``kind``: ``discrete-v1`` target positions (``levels`` as weights of value, per
    asset) or ``weights-v1``, continuous weights in [-1, 1] (or [0, 1] when ``long_only``), scaled to
    gross <= ``max_leverage``."""

    kind: str = "discrete-v1"
    levels: list[FiniteFloat] = field(default_factory=lambda: [-1.0, 0.0, 1.0])
    long_only: bool = False
    max_leverage: PositiveFloat = 1.0


@dataclass(frozen=True)
class RewardConfig(Spec):
    """Reward ``kind``: ``pnl-v1`` (change in net value after costs / initial cash), ``log-return-v1`` of
    net value, or ``diff-sharpe-v1`` (Moody & Saffell's differential Sharpe ratio with EMA rate ``eta``);
    times ``scale``. ``params`` holds the settings of a user's registered reward."""

    kind: str = "pnl-v1"
    eta: Annotated[float, Range(lo=0.0, hi=1.0, lo_open=True)] = 0.01
    scale: FiniteFloat = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TradingEnvConfig(Spec):
    """The whole env. ``period`` picks the train or test split (``all`` = everything);
    ``episode_length`` 0 runs to the end of the period; with ``random_start`` an episode begins at a
    uniformly drawn bar (from ``reset(seed=)``'s generator). ``trade_on_change``: send orders only when
    the target changes (otherwise every step rebalances back to the target weights)."""

    data: DataSpec = field(default_factory=DataSpec)
    costs: CostSpec = field(default_factory=CostSpec)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    period: Literal["train", "test", "all"] = "train"
    episode_length: NonNegativeInt = 0
    random_start: bool = False
    trade_on_change: bool = True

    def validate(self, path: str | Path | None = None) -> None:
        """Time fields parse; kinds name registered ids."""
        from marketlab.core.registry import resolve

        self.data.check_times(path, "env.data.")
        resolve(self.observation.kind, kind="state", path=path, key="env.observation.kind")
        resolve(self.action.kind, kind="action", path=path, key="env.action.kind")
        resolve(self.reward.kind, kind="reward", path=path, key="env.reward.kind")

    @classmethod
    def coerce(cls, value: TradingEnvConfig | dict[str, Any] | None, *, path: str | Path | None = None) -> TradingEnvConfig:
        """A config as given, a plain dict validated as the ``[env]`` table, or the defaults for None."""
        if value is None:
            return cls()
        if isinstance(value, TradingEnvConfig):
            return value
        return cls.from_dict({"env": value}, path=path, section="env")
