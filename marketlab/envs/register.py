"""Versioned gymnasium ids with lazy ``module:attr`` entry points, registered by ``import marketlab.envs``.

The entry points are the ``env/*`` rows of :mod:`marketlab.core.builtin_ids` (the one table); this module
only mirrors them into gymnasium's registry as ``marketlab/<Name>-vN``.
"""

from __future__ import annotations

from gymnasium.envs.registration import register as _gym_register
from gymnasium.envs.registration import registry as _gym_registry

from marketlab.core.builtin_ids import BUILTIN_IDS

#: gymnasium id -> entry point. Bump the version suffix whenever observations, actions or rewards change.
ENV_IDS: dict[str, str] = {
    "marketlab/" + rid.split("/", 1)[1]: entry
    for rid, entry in BUILTIN_IDS.items()
    if rid.startswith("env/") and not rid.startswith("env/Batched")
}

#: gymnasium id -> the batched vector env that ``gym.make_vec(id, n)`` builds by default (one numba call per
#: step for all episodes; ``vectorization_mode="sync"``/``"async"`` still give per-env vector envs).
VECTOR_ENTRY_POINTS: dict[str, str] = {"marketlab/Trading-v0": "marketlab.envs.vector:BatchedVectorEnv"}

for _env_id, _entry in ENV_IDS.items():
    if _env_id not in _gym_registry:
        # Episodes end inside the env (data exhausted or horizon reached), so no TimeLimit wrapper.
        _gym_register(id=_env_id, entry_point=_entry, vector_entry_point=VECTOR_ENTRY_POINTS.get(_env_id))
