"""Training checkpoints of SB3 runs in safetensors + JSON (SB3's own ``.zip`` pickles parts of the model;
loading these files never executes code).

A checkpoint is taken at a clean boundary of the training loop (the start of a rollout: the previous
update done, the next not begun) and holds everything the rest of the run depends on, so resuming equals
never having stopped (tested for PPO, bit for bit):

* ``policy.safetensors``: the policy's state dict (networks, incl. DQN/SAC target networks);
* ``optimizer.safetensors`` + ``state.json["optimizer"]``: the optimizer's tensors (Adam moments and step
  counts) and its param groups (learning rate, betas, ...);
* ``env.safetensors`` + ``state.json["envs"]``: every episode's state (positions, cash, time, reward state)
  and the env generators, the last observations and episode-start flags;
* ``rng.safetensors`` + ``state.json["rng"]``: torch's and NumPy's global generators (action sampling,
  minibatch order);
* ``state.json``: ``num_timesteps``, ``total_timesteps`` (the schedule's horizon: learning-rate and clip
  schedules read progress = 1 - num_timesteps / total_timesteps), update and episode counters.

Off-policy algorithms (DQN, SAC) resume with an empty replay buffer (not saved: it is large); their
networks, optimizers, exploration schedule and counters resume exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.core.faults import point as fault_point

CHECKPOINT = "checkpoint"
FORMAT = 1


def base_vec_env(venv: Any) -> Any:
    """The innermost VecEnv under wrappers such as ``VecMonitor``."""
    while hasattr(venv, "venv"):
        venv = venv.venv
    return venv


def _env_states(venv: Any) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    base = base_vec_env(venv)
    if hasattr(base, "env") and hasattr(base.env, "get_state"):  # the batched VecEnv: one state for all episodes
        return [base.env.get_state()]
    return list(base.env_method("get_state"))


def _set_env_states(venv: Any, states: list[tuple[dict[str, np.ndarray], dict[str, Any]]]) -> None:
    base = base_vec_env(venv)
    if hasattr(base, "env") and hasattr(base.env, "set_state"):
        base.env.set_state(*states[0])
        return
    base.env_method("reset")  # wrappers (Monitor) start an episode; set_state then overwrites the env's state
    for i, (arrays, scalars) in enumerate(states):
        base.env_method("set_state", arrays, scalars, indices=[i])
    if hasattr(base, "_reset_seeds"):  # a later explicit reset() must not re-seed the restored generators with construction seeds
        base._reset_seeds()


def _recover(folder: Path) -> None:
    """Finish what a killed writer left: ``checkpoint.old`` without ``checkpoint`` is the last complete
    checkpoint (the new one was not yet renamed into place); beside ``checkpoint`` it is garbage, as is a
    ``checkpoint.tmp`` (a write that never reached its rename)."""
    out, old, tmp = folder / CHECKPOINT, folder / (CHECKPOINT + ".old"), folder / (CHECKPOINT + ".tmp")
    if old.is_dir():
        if out.exists():
            shutil.rmtree(old)
        else:
            old.rename(out)
    if tmp.is_dir():
        shutil.rmtree(tmp)


def save_checkpoint(model: Any, folder: Path, extra: dict[str, str] | None = None) -> Path:
    """Write the checkpoint of ``model`` (and its env) into ``folder/checkpoint/`` (replacing it as a whole:
    a kill at any point leaves the previous checkpoint or this one). ``extra``: more files (name -> text)
    committed with it, e.g. a miner's pool."""
    import torch
    from safetensors.numpy import save_file as save_np
    from safetensors.torch import save_file as save_torch

    _recover(folder)
    out = folder / CHECKPOINT
    tmp = folder / (CHECKPOINT + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    # clone: a shared features extractor appears under several keys with one storage, which safetensors refuses
    save_torch({k: v.detach().cpu().clone() for k, v in model.policy.state_dict().items()}, str(tmp / "policy.safetensors"))
    opt_tensors, opt_meta = _optimizers_state(model)
    save_torch(opt_tensors, str(tmp / "optimizer.safetensors"))
    env_arrays: dict[str, np.ndarray] = {"last_obs": np.asarray(model._last_obs),
                                         "last_episode_starts": np.asarray(model._last_episode_starts)}
    env_scalars = []
    for i, (arrays, scalars) in enumerate(_env_states(model.get_env())):
        env_arrays.update({f"env{i}.{k}": np.ascontiguousarray(v) for k, v in arrays.items()})
        env_scalars.append(scalars)
    save_np(env_arrays, str(tmp / "env.safetensors"))
    np_state: Any = np.random.get_state()  # ("MT19937", keys (624,) uint32, pos, has_gauss, cached_gaussian)
    save_np({"torch": torch.get_rng_state().numpy(), "numpy_keys": np.asarray(np_state[1])}, str(tmp / "rng.safetensors"))
    space_rng = getattr(model.action_space, "_np_random", None)
    state = {
        "format": FORMAT,
        "algo": type(model).__name__,
        "num_timesteps": int(model.num_timesteps),
        "total_timesteps": int(model._total_timesteps),
        "n_updates": int(getattr(model, "_n_updates", 0)),
        "episode_num": int(getattr(model, "_episode_num", 0)),
        "optimizer": opt_meta,
        "envs": env_scalars,
        "n_env_states": len(env_scalars),
        "rng": {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
                "action_space": space_rng.bit_generator.state if space_rng is not None else None},
    }
    for name, text in (extra or {}).items():
        (tmp / name).write_text(text, encoding="utf-8")
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    fault_point("checkpoint-written")
    if out.exists():
        old = folder / (CHECKPOINT + ".old")
        out.rename(old)
        fault_point("checkpoint-swapped")
        tmp.rename(out)
        fault_point("checkpoint-replaced")
        shutil.rmtree(old)
    else:
        tmp.rename(out)
        fault_point("checkpoint-replaced")
    return out


def _optimizers(model: Any) -> dict[str, Any]:
    """Named optimizers: the policy's, plus SAC's actor/critic/entropy optimizers."""
    found: dict[str, Any] = {}
    for owner, prefix in ((model.policy, "policy"), (getattr(model.policy, "actor", None), "actor"),
                          (getattr(model.policy, "critic", None), "critic")):
        opt = getattr(owner, "optimizer", None) if owner is not None else None
        if opt is not None:
            found[prefix] = opt
    if getattr(model, "ent_coef_optimizer", None) is not None:
        found["ent_coef"] = model.ent_coef_optimizer
    return found


def _optimizers_state(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    tensors: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for name, opt in _optimizers(model).items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"{name}.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[k] = v
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    if getattr(model, "log_ent_coef", None) is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach().cpu().contiguous()
    return tensors, meta


def read_state(folder: Path) -> dict[str, Any] | None:
    """``state.json`` of the checkpoint in ``folder`` (None when there is none)."""
    _recover(folder)
    path = folder / CHECKPOINT / "state.json"
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def load_checkpoint(model: Any, folder: Path) -> dict[str, Any]:
    """Restore ``model`` (built from the same spec, its env attached) from ``folder/checkpoint/``; returns
    ``state.json``. The next ``learn(total - num_timesteps, reset_num_timesteps=False)`` continues the run."""
    import torch
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file as load_torch

    ck = folder / CHECKPOINT
    state = read_state(folder)
    if state is None:
        raise FileNotFoundError(f"{ck}: no checkpoint")
    if state.get("format") != FORMAT or state.get("algo") != type(model).__name__:
        raise ValueError(f"{ck}: checkpoint of {state.get('algo')} (format {state.get('format')}), not {type(model).__name__}")
    model.policy.load_state_dict(load_torch(str(ck / "policy.safetensors"), device=str(model.device)))
    tensors = load_torch(str(ck / "optimizer.safetensors"), device=str(model.device))
    for name, opt in _optimizers(model).items():
        meta = state["optimizer"][name]
        per: dict[int, dict[str, Any]] = {}
        for key, v in tensors.items():
            opt_name, idx, k = key.split(".", 2) if key.count(".") >= 2 else (key, "", "")
            if opt_name == name:
                per.setdefault(int(idx), {})[k] = v
        for idx, sc in meta["scalars"].items():
            per.setdefault(int(idx), {}).update(sc)
        opt.load_state_dict({"state": per, "param_groups": meta["param_groups"]})
    if "log_ent_coef" in tensors and getattr(model, "log_ent_coef", None) is not None:
        with torch.no_grad():
            model.log_ent_coef.copy_(tensors["log_ent_coef"])
    env = load_np(str(ck / "env.safetensors"))
    states = []
    for i, scalars in enumerate(state["envs"]):
        prefix = f"env{i}."
        states.append(({k[len(prefix):]: v for k, v in env.items() if k.startswith(prefix)}, scalars))
    _set_env_states(model.get_env(), states)
    model._last_obs = env["last_obs"]
    model._last_episode_starts = env["last_episode_starts"]
    rng = load_np(str(ck / "rng.safetensors"))
    torch.set_rng_state(torch.from_numpy(rng["torch"]))
    kind, pos, has_gauss, cached = state["rng"]["numpy"]
    np.random.set_state((kind, rng["numpy_keys"], pos, has_gauss, cached))
    space_rng = getattr(model.action_space, "_np_random", None)
    if space_rng is not None and state["rng"]["action_space"] is not None:
        space_rng.bit_generator.state = state["rng"]["action_space"]
    model.num_timesteps = state["num_timesteps"]
    model._total_timesteps = state["total_timesteps"]
    if hasattr(model, "_n_updates"):
        model._n_updates = state["n_updates"]
    model._episode_num = state["episode_num"]
    return state
