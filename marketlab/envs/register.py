"""Versioned environment ids with lazy ``module:attr`` entry points.

Imported by ``import marketlab``: it only records names (gymnasium's registry and
:mod:`marketlab.core.registry`); the environment modules are imported when an id is first made.
"""

from __future__ import annotations

from gymnasium.envs.registration import register as _gym_register
from gymnasium.envs.registration import registry as _gym_registry

from marketlab.core.registry import register as _ml_register

#: gymnasium id -> entry point. Bump the version suffix whenever observations, actions or rewards change.
ENV_IDS: dict[str, str] = {
    "marketlab/Trading-v0": "marketlab.envs.trading:TradingEnv",
    "marketlab/LOBExecution-v0": "marketlab.envs.lob_execution:LOBExecutionEnv",
    "marketlab/MarketMaking-v0": "marketlab.envs.market_making:MarketMakingEnv",
}

for _env_id, _entry in ENV_IDS.items():
    if _env_id not in _gym_registry:
        # Episodes end inside the env (data exhausted or horizon reached), so no TimeLimit wrapper.
        _gym_register(id=_env_id, entry_point=_entry)
    _ml_register("env/" + _env_id.split("/", 1)[1], _entry)

_ml_register("env/BatchedTrading-v0", "marketlab.envs.batched:BatchedTradingEnv")
