"""The batched ``Trading-v0`` (:class:`~marketlab.envs.batched.BatchedTradingEnv`) as the two vector-env
APIs training code expects: a gymnasium :class:`gymnasium.vector.VectorEnv` (:class:`BatchedVectorEnv`) and
a Stable-Baselines3 ``VecEnv`` (:func:`sb3_batched_vec_env`).

Both step all episodes in one numba call (no per-env Python ``step``, no processes), with the batched env's
semantics: the same arithmetic as ``num_envs`` single ``Trading-v0`` envs (tested), and episodes that end
restart in the same call (gymnasium's ``AutoresetMode.SAME_STEP``; SB3's convention), the ended episodes'
last observations in ``infos["final_obs"]`` / ``infos[i]["terminal_observation"]``. The batched env reuses
its output buffers; both wrappers hand out copies, since training loops keep the previous observation
across a step (SB3's ``_last_obs``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from marketlab.envs.batched import BatchedTradingEnv
from marketlab.envs.spec import TradingEnvConfig
from marketlab.market import MarketData

INFO_KEYS = ("value", "fees", "traded", "t")


def _batched(config: TradingEnvConfig | dict[str, Any] | None, market: MarketData | None, store: Any, num_envs: int,
             seed: int) -> BatchedTradingEnv:
    return BatchedTradingEnv(config, market=market, store=store, num_envs=num_envs, device="cpu", seed=seed, engine="numba")


class BatchedVectorEnv(VectorEnv):
    """``num_envs`` ``Trading-v0`` episodes as a gymnasium vector env (see the module docstring).

    ``gym.make_vec("marketlab/Trading-v0", n, vectorization_mode="vector_entry_point", config=...)`` builds one;
    arguments as :class:`~marketlab.envs.batched.BatchedTradingEnv` (``seed``: the episode-start generator,
    re-seeded by ``reset(seed=)``).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, config: TradingEnvConfig | dict[str, Any] | None = None, *, num_envs: int = 8,
                 market: MarketData | None = None, store: Any = None, seed: int = 0) -> None:
        self.env = _batched(config, market, store, num_envs, seed)
        self.num_envs = self.env.num_envs
        proto = self.env.proto
        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._all = np.ones(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every episode (``seed``: an int re-seeds the start generator; a list uses its first entry)."""
        if isinstance(seed, list):
            seed = seed[0] if seed else None
        starts = None if not options or "starts" not in options else options["starts"]
        obs = self.env.reset(seed=seed, starts=starts)
        return obs.numpy().copy(), self._infos(self.env._info_np if self.env.engine == "numba" else {})

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every episode; arrays are fresh copies."""
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions))
        infos = self._infos(info)
        if "final_value" in info:
            rows, last = self.env.final_obs
            mask = np.zeros(self.num_envs, dtype=bool)
            mask[rows] = True
            final_obs = np.empty(self.num_envs, dtype=object)
            for r, o in zip(rows.tolist(), last, strict=True):
                final_obs[r] = o
            # gymnasium's layout: a dict of (num_envs,) arrays, each with its "_key" mask
            final_info: dict[str, Any] = {}
            for k in INFO_KEYS:
                final_info[k] = np.where(mask, infos[k], np.zeros_like(infos[k]))
                final_info["_" + k] = mask
            # As gymnasium's SAME_STEP vector envs: a restarted episode's info is its reset info.
            infos["value"][rows] = self.env.init_cash
            infos["fees"][rows] = 0.0
            infos["traded"][rows] = 0.0
            infos["t"][rows] = self.env.t.numpy()[rows]
            infos.update(final_obs=final_obs, _final_obs=mask, final_info=final_info, _final_info=mask)
        return (obs.numpy().copy(), reward.numpy().copy(), terminated.numpy().copy(), truncated.numpy().copy(), infos)

    def _infos(self, info: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in INFO_KEYS:
            if k in info:
                out[k] = info[k].numpy().copy()
                out["_" + k] = self._all
        return out

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release (no processes, no files)."""


def sb3_batched_vec_env(config: TradingEnvConfig | dict[str, Any] | None = None, *, num_envs: int = 8,
                        market: MarketData | None = None, store: Any = None, seed: int = 0) -> Any:
    """An SB3 ``VecEnv`` over a :class:`BatchedTradingEnv` (wrap it in ``VecMonitor`` for episode stats).

    Built by a function so that importing this module does not import stable_baselines3."""
    from stable_baselines3.common.vec_env import VecEnv

    class BatchedVecEnv(VecEnv):
        """SB3 view of a batched Trading-v0: ``step_wait`` -> (obs (B, D), rewards (B,), dones (B,), infos)."""

        def __init__(self) -> None:
            self.env = _batched(config, market, store, num_envs, seed)
            proto = self.env.proto
            super().__init__(self.env.num_envs, proto.observation_space, proto.action_space)
            self._actions: np.ndarray | None = None

        def reset(self) -> np.ndarray:
            seed_ = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
            self._reset_seeds()
            return self.env.reset(seed=seed_).numpy().copy()

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions)

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            assert self._actions is not None, "step_async first"
            obs, reward, terminated, truncated, info = self.env.step(self._actions)
            n = self.num_envs
            cols = {k: info[k].numpy() for k in INFO_KEYS}
            infos: list[dict[str, Any]] = [{k: cols[k][i].item() for k in INFO_KEYS} for i in range(n)]
            if "final_value" in info:
                rows, last = self.env.final_obs
                for r, o in zip(rows.tolist(), last, strict=True):
                    infos[r]["terminal_observation"] = o
                    infos[r]["TimeLimit.truncated"] = False  # episodes end inside the env: no bootstrap
            dones = terminated.numpy() | truncated.numpy()
            return obs.numpy().copy(), reward.numpy().copy(), dones, infos

        def close(self) -> None:
            pass

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.env.proto, attr_name) for _ in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            raise AttributeError("the batched env's episodes share one state: set attributes on BatchedVecEnv.env")

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
            if method_name == "render":
                return [None for _ in self._get_indices(indices)]
            raise AttributeError(f"the batched env has no per-episode method {method_name!r}")

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False for _ in self._get_indices(indices)]

    return BatchedVecEnv()
