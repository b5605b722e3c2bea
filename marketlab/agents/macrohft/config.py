"""MacroHFT run configuration (one frozen spec, loaded from ``specs/agents/macrohft_*.toml``).

Defaults are the reference code's (``low_level.py`` / ``high_level.py`` argparse defaults) where the
paper budget is meant; the budget knobs (``max_chunks``, ``steps_per_epoch``, ``epochs``) are what a
reduced run turns down. The ONE ``fee`` is used by the env, the DP supervisor and the backtest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from marketlab.agents.macrohft.splits import Splits
from marketlab.core.config import (Fraction, Identifier, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                                   Spec, SpecPath)
from marketlab.core.errors import SpecError


@dataclass(frozen=True)
class DQNPhaseConfig(Spec):
    """What both training phases share: a Double-DQN with a replay buffer, soft target updates and a
    linear epsilon schedule (the phases differ in their defaults and in the fields they add)."""

    epochs: PositiveInt = 15
    lr: PositiveFloat = 1e-4
    batch_size: PositiveInt = 512
    buffer_size: PositiveInt = 1_000_000
    block: PositiveInt = 100  # env steps between update bursts
    updates_per_block: PositiveInt = 10
    warmup: NonNegativeInt = 513
    tau: Fraction = 0.005
    eps_start: Fraction = 0.5
    eps_end: Fraction = 0.1
    eps_decay_epochs: PositiveInt = 5
    hidden: PositiveInt = 64
    n_envs: PositiveInt = 1  # chunks (phase 1) or streams (phase 2) stepped side by side
    adapter: bool = True


@dataclass(frozen=True)
class SubAgentConfig(DQNPhaseConfig):
    """Phase 1: one Double-DQN sub-agent per regime label (3 trend + 3 volatility)."""

    max_chunks: NonNegativeInt = 0  # per epoch and label; 0 = all
    max_val_chunks: NonNegativeInt = 0  # validation chunks per label (evenly spaced); 0 = all
    # KL weight toward Q* per label (reference scripts/low_level.sh, ETH): slope 1,4,0 ; vol 4,1,1
    alpha_slope: tuple[float, float, float] = (1.0, 4.0, 0.0)
    alpha_vol: tuple[float, float, float] = (4.0, 1.0, 1.0)


@dataclass(frozen=True)
class HyperAgentConfig(DQNPhaseConfig):
    """Phase 2: the hyper-agent mixing the six frozen sub-agents, with episodic memory."""

    block: PositiveInt = 512
    eps_start: Fraction = 0.7
    eps_end: Fraction = 0.3
    hidden: PositiveInt = 32
    alpha: NonNegativeFloat = 0.5  # memory MSE weight
    beta: NonNegativeFloat = 5.0  # KL toward Q*
    memory_capacity: PositiveInt = 4320
    memory_k: PositiveInt = 5
    memory: bool = True
    steps_per_epoch: NonNegativeInt = 0  # env steps per epoch over all streams; 0 = the whole train split
    train_minutes: NonNegativeInt = 0  # train on the LAST minutes of the train split only; 0 = all
    val_minutes: NonNegativeInt = 0  # select the epoch on the FIRST minutes of the validation split; 0 = all


@dataclass(frozen=True)
class MacroHFTConfig(Spec):
    """A MacroHFT run on one symbol."""

    name: Identifier = "macrohft"
    symbol: str = "BTCUSDT"
    dataset: str = ""  # the store dataset of minute bars (BARS_SCHEMA, taker volumes included); "" = the archives folder's name
    archives: SpecPath = ""  # folder of Binance kline zips ingested into `dataset` when the store lacks it
    store: SpecPath = ""  # the store folder ("" = the default store)
    out_dir: SpecPath = "runs"  # `marketlab rl train` writes the run folder <out_dir>/<name>/
    splits: Splits = field(default_factory=Splits)
    fee: Fraction = 0.0002  # per side, env = supervisor = backtest
    size: PositiveFloat = 0.01  # coins per unit position (BTC 0.01, ETH 0.2 in the reference)
    gamma: Fraction = 0.99
    chunk: PositiveInt = 360  # paper: BTC 360, ETH/DOT/LTC 4320
    scheme: Literal["paper", "code"] = "code"
    context_window: PositiveInt = 360
    seed: int = 12345
    sub: SubAgentConfig = field(default_factory=SubAgentConfig)
    hyper: HyperAgentConfig = field(default_factory=HyperAgentConfig)

    def validate(self, path: str | Path | None = None) -> None:
        """A store dataset (or a kline folder to ingest) is required; the splits must not overlap."""
        if not self.dataset and not self.archives:
            raise SpecError(path, "dataset", "name the store dataset of minute bars (or `archives`, a kline folder "
                                             "ingested into it when the store lacks it)")
        self.splits.validate(path)

    @property
    def bars_dataset(self) -> str:
        """The store dataset the agent reads: ``dataset``, else the ``archives`` folder's name made name-safe,
        as ``marketlab ingest ohlcv <folder>`` names it (run folders written before ``dataset`` existed load so)."""
        return self.dataset or re.sub(r"[^A-Za-z0-9_\-]", "_", Path(self.archives).name).strip("_-")

    def fingerprint(self) -> str:
        """Hash of everything that shapes a trained model (checkpoints of another config are refused)."""
        d = self.to_dict()
        for k in ("name", "archives", "dataset", "store", "out_dir"):
            d.pop(k, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def resolve(self, spec_path: str | Path | None) -> MacroHFTConfig:
        """Copy with ``archives``/``store`` made absolute against the spec file's folder."""
        if spec_path is None:
            return self
        base = Path(spec_path).resolve().parent

        def fix(p: str) -> str:
            return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

        return dataclasses.replace(self, archives=fix(self.archives), store=fix(self.store))


#: The reduced budget run on the shared 2-core CPU (``benchmarks/macrohft.py``, ``marketlab rl train --budget reduced``)
#: instead of the reference 15 + 15 epochs over the whole training year.
REDUCED_BUDGET: dict[str, dict[str, Any]] = {
    "sub": {"epochs": 2, "max_chunks": 48, "max_val_chunks": 24, "n_envs": 8, "batch_size": 256,
            "updates_per_block": 20, "eps_decay_epochs": 2, "lr": 3e-4},
    "hyper": {"epochs": 2, "steps_per_epoch": 32_768, "n_envs": 8, "block": 128, "batch_size": 256,
              "updates_per_block": 8, "eps_decay_epochs": 2, "lr": 3e-4,
              "train_minutes": 60 * 1440, "val_minutes": 30 * 1440},
}
#: Long chunks (ETH's 4,320 minutes) take fewer of them per sub-agent epoch under the reduced budget.
REDUCED_LONG_CHUNKS = {"max_chunks": 12, "max_val_chunks": 8}


def with_budget(cfg: MacroHFTConfig, budget: Literal["paper", "reduced"]) -> MacroHFTConfig:
    """``cfg`` as written (``paper``: the spec is the reference budget) or with :data:`REDUCED_BUDGET`."""
    if budget == "paper":
        return cfg
    sub = dict(REDUCED_BUDGET["sub"])
    if cfg.chunk > 1000:
        sub.update(REDUCED_LONG_CHUNKS)
    return dataclasses.replace(cfg, sub=dataclasses.replace(cfg.sub, **sub),
                               hyper=dataclasses.replace(cfg.hyper, **REDUCED_BUDGET["hyper"]))


def is_macrohft_spec(path: str | Path) -> bool:
    """Whether the TOML at ``path`` is a MacroHFT spec (tables ``[sub]``/``[hyper]``/``[splits]`` or kline
    ``archives``, and no SB3 ``algo``), so ``marketlab rl train`` can route it."""
    from marketlab.core.config import load_toml

    d = load_toml(path)
    return "algo" not in d and any(k in d for k in ("sub", "hyper", "splits", "archives", "chunk"))
