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

from marketlab.core.config import FiniteFloat, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Spec
from marketlab.market.spec import CostSpec, DataSpec


@dataclass(frozen=True)
class ObservationConfig(Spec):
    """State interpreter ``kind`` (default ``window-v1``: ``window`` bars of ``features`` per asset,
    z-scored with train-split statistics, plus the current portfolio weights when ``include_position``);
    features are clipped to [-``clip``, ``clip``]."""

    kind: str = "window-v1"  # registry id of kind state (a user's registered interpreter may be named)
    window: PositiveInt = 16  # bars per observation (the window ends at the decision bar)
    features: list[str] = field(default_factory=lambda: ["ret", "range", "body", "logvol"])  # per-bar features (ret, range, body, logvol) or signal columns of the data
    normalize: bool = True  # z-score each feature with train-split mean/std
    include_position: bool = True  # append the current portfolio weights (N,) to the observation
    clip: PositiveFloat = 10.0  # features clipped to [-clip, clip]


@dataclass(frozen=True)
class ActionConfig(Spec):
    """Action interpreter ``kind``: ``discrete-v1`` target positions (``levels`` as weights of value, per
    asset) or ``weights-v1``, continuous weights in [-1, 1] (or [0, 1] when ``long_only``), scaled to
    gross <= ``max_leverage``; ``max_position`` caps every asset's |target weight| for either kind."""

    kind: str = "discrete-v1"  # registry id of kind action: discrete-v1 or weights-v1
    levels: list[FiniteFloat] = field(default_factory=lambda: [-1.0, 0.0, 1.0])  # discrete-v1: target weights an action picks from (/N per asset when N > 1)
    long_only: bool = False  # refuse short targets (weights-v1: actions in [0, 1]; discrete-v1: negative levels are an error)
    max_leverage: PositiveFloat = 1.0  # weights-v1: gross exposure sum|w| is scaled down to this
    max_position: PositiveFloat | None = None  # position limit: each asset's target weight is clipped to [-max_position, max_position] (none: no limit)


@dataclass(frozen=True)
class RewardConfig(Spec):
    """Reward ``kind``: ``pnl-v1`` (change in net value after costs / initial cash), ``log-return-v1`` of
    net value, or ``diff-sharpe-v1`` (Moody & Saffell's differential Sharpe ratio with EMA rate ``eta``);
    times ``scale``, minus ``turnover_penalty`` x traded notional / initial cash x ``scale`` (a penalty
    against over-trading on top of the fees). ``params`` holds the settings of a user's registered reward."""

    kind: str = "pnl-v1"  # registry id of kind reward: pnl-v1, log-return-v1, diff-sharpe-v1
    eta: Annotated[float, Range(lo=0.0, hi=1.0, lo_open=True)] = 0.01  # diff-sharpe-v1: EMA rate of the return moments
    scale: FiniteFloat = 1.0  # reward multiplier
    turnover_penalty: NonNegativeFloat = 0.0  # subtracted per step: penalty x traded notional / initial cash x scale (shapes the reward only; fees are in the accounting)
    params: dict[str, Any] = field(default_factory=dict)  # settings of a user's registered reward


@dataclass(frozen=True)
class TradingEnvConfig(Spec):
    """The whole env. ``period`` picks the train or test split (``all`` = everything);
    ``episode_length`` 0 runs to the end of the period; with ``random_start`` an episode begins at a
    uniformly drawn bar (from ``reset(seed=)``'s generator). ``trade_on_change``: send orders only when
    the target changes (otherwise every step rebalances back to the target weights). ``decision_interval``:
    one step covers k bars (trade at the decision bar's close, hold to the close k bars later; the reward
    is the value change over the k bars), the usual guard, with ``reward.turnover_penalty`` and
    ``action.max_position``, against an agent that trades every bar and pays costs it cannot earn."""

    data: DataSpec = field(default_factory=DataSpec)  # the bars; no dataset: the built-in synthetic data (see marketlab.envs.trading.default_data)
    costs: CostSpec = field(default_factory=CostSpec)  # fees, spread, slippage, initial cash
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    period: Literal["train", "test", "all"] = "train"  # rows before data.test_start, from it on, or all
    episode_length: NonNegativeInt = 0  # bars per episode; 0 runs to the end of the period
    random_start: bool = False  # episodes start at a bar drawn by reset(seed=)'s generator
    trade_on_change: bool = True  # send orders only when the target changes (else rebalance to it every step)
    decision_interval: PositiveInt = 1  # bars per step: the agent acts every k bars and holds its shares in between

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
