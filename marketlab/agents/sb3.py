"""Stable-Baselines3 agents (PPO, DQN, SAC) on ``marketlab/Trading-v0`` from TOML specs.

``train(spec)`` -> a run folder ``<out_dir>/<name>/`` holding ``policy.safetensors`` (the policy's
state dict; no pickle), ``config.json`` (the validated spec) and ``train.json`` (timings, evaluation).
``load_run`` rebuilds the algorithm from the JSON config and loads the weights; ``evaluate`` rolls the
deterministic policy over a period; ``rollout_weights`` turns it into target weights for the backtester.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from marketlab.core.config import Identifier, NonNegativeInt, PositiveInt, Range, Spec, SpecPath
from marketlab.core.device import get_device, seed_everything, set_torch_threads, tensorboard_available
from marketlab.core.errors import SpecError
from marketlab.core.registry import resolve
from marketlab.envs.spec import TradingEnvConfig
from marketlab.envs.trading import TradingEnv, default_data
from marketlab.market import MarketData, load_market_spec, open_store, prepare_data

ALGOS = ("ppo", "dqn", "sac")
#: Ranges of the hyper-parameters the algorithms share (others go to SB3 as given; it refuses unknown
#: names). Checked where the spec is loaded.
HYPER_RANGES: dict[str, Range] = {
    "learning_rate": Range(lo=0.0, lo_open=True),
    "gamma": Range(lo=0.0, hi=1.0),
    "tau": Range(lo=0.0, hi=1.0),
    "ent_coef": Range(lo=0.0),
    "batch_size": Range(lo=1),
    "n_steps": Range(lo=1),
    "n_epochs": Range(lo=1),
    "buffer_size": Range(lo=1),
    "learning_starts": Range(lo=0),
    "gae_lambda": Range(lo=0.0, hi=1.0),
    "clip_range": Range(lo=0.0, lo_open=True),
}


@dataclass(frozen=True)
class VecConfig(Spec):
    """``n_envs`` episodes stepped together: ``batched`` (all in one numba call per step,
    :mod:`marketlab.envs.vector`), ``dummy`` (n env copies in this process), ``subproc`` (one process each) or
    ``auto`` (batched when n_envs > 1 and the env's components have batched kernels, else dummy)."""

    n_envs: PositiveInt = 1  # episodes per step (PPO's rollout is n_steps x n_envs)
    kind: Literal["auto", "batched", "dummy", "subproc"] = "auto"  # vector env: see the table's description


@dataclass(frozen=True)
class AgentSpec(Spec):
    """An SB3 training run. ``hyper`` goes to the algorithm's constructor (learning_rate, n_steps, ...).
    ``name`` is an identifier: the run folder is ``out_dir/<name>/``."""

    name: Identifier
    algo: Literal["ppo", "dqn", "sac"]
    total_timesteps: PositiveInt = 10_000
    seed: NonNegativeInt = 0
    device: str = "auto"
    policy: str = "MlpPolicy"
    out_dir: SpecPath = "runs"
    net_arch: list[PositiveInt] = field(default_factory=lambda: [64, 64])
    hyper: dict[str, Any] = field(default_factory=dict)
    env: TradingEnvConfig = field(default_factory=TradingEnvConfig)
    vec: VecConfig = field(default_factory=VecConfig)
    description: str = ""

    def validate(self, path: str | Path | None = None) -> None:
        """Shared hyper-parameters in range; the action interpreter fits the algorithm."""
        for key, value in self.hyper.items():
            rng = HYPER_RANGES.get(key)
            if rng is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(path, f"hyper.{key}", f"expected a number, got {value!r}")
            problem = rng.check(value)
            if problem:
                raise SpecError(path, f"hyper.{key}", problem)
        discrete = getattr(resolve(self.env.action.kind, kind="action", path=path, key="env.action.kind"), "discrete", None)
        if self.algo == "dqn" and discrete is not True:
            raise SpecError(path, "env.action.kind", "dqn needs discrete actions")
        if self.algo == "dqn" and self.env.data.symbols and len(self.env.data.symbols) > 1:
            raise SpecError(path, "env.data.symbols", "dqn needs a single asset (Discrete action space)")
        if self.algo == "sac" and discrete is not False:
            raise SpecError(path, "env.action.kind", "sac needs continuous actions (kind = 'weights-v1')")


def _algo_class(algo: str) -> Any:
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "dqn": sb3.DQN, "sac": sb3.SAC}[algo]


def _make_model(spec: AgentSpec, venv: Any, tensorboard_log: Path | None = None) -> Any:
    cls = _algo_class(spec.algo)
    kwargs = dict(spec.hyper)
    kwargs.setdefault("policy_kwargs", {"net_arch": list(spec.net_arch)})
    if tensorboard_log is not None:
        kwargs["tensorboard_log"] = str(tensorboard_log)
    try:
        return cls(spec.policy, venv, seed=spec.seed, device=str(get_device(spec.device)), verbose=0, **kwargs)
    except TypeError as exc:  # an unknown hyper-parameter name
        raise SpecError(None, "hyper", f"{spec.algo}: {exc}") from None


def make_train_env(spec: AgentSpec, env_cfg: TradingEnvConfig, market: MarketData) -> tuple[Any, str]:
    """The training VecEnv of ``spec.vec`` and the kind used (``auto`` resolved: batched when n_envs > 1
    and the env's components have batched kernels, else dummy)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    kind, n = spec.vec.kind, spec.vec.n_envs
    if kind in ("auto", "batched"):
        from marketlab.envs.vector import sb3_batched_vec_env

        if kind == "batched" or n > 1:
            try:
                return VecMonitor(sb3_batched_vec_env(env_cfg, num_envs=n, market=market, seed=spec.seed)), "batched"
            except SpecError:
                if kind == "batched":
                    raise
        kind = "dummy"
    vec_cls = SubprocVecEnv if kind == "subproc" else DummyVecEnv
    venv = make_vec_env(TradingEnv, n_envs=n, seed=spec.seed, vec_env_cls=vec_cls, env_kwargs={"config": env_cfg, "market": market})
    return venv, kind


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first difference between two plain-data trees (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d is not None:
                return d
        return None
    return None if a == b else prefix.rstrip(".")


def train(
    spec: AgentSpec | str | Path,
    *,
    market: MarketData | None = None,
    store: Any = None,
    out_dir: str | Path | None = None,
    total_timesteps: int | None = None,
    progress: bool = False,
    resume: bool = False,
    stop_after: int | None = None,
    checkpoint_every: int = 0,
    tensorboard: bool = True,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_iteration: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """Train the spec's agent on its train period; returns the run folder ``out_dir/<name>/``.

    The run folder holds ``config.json``, ``policy.safetensors``, ``train.json``, ``checkpoint/`` (the
    resumable state, :mod:`marketlab.agents.sb3_state`) and ``tb/`` (TensorBoard event files of SB3's
    logger, when tensorboard is installed and ``tensorboard``). ``resume`` continues the run's checkpoint
    (same spec, else a :class:`SpecError` naming the first differing key) to ``total_timesteps`` (default:
    the total it was started with), equal to an uninterrupted run. ``stop_after`` stops this call after about
    that many timesteps (at the next rollout boundary) leaving a checkpoint; ``checkpoint_every`` also writes
    one every that many timesteps (0: only at the end). ``on_start`` gets ``{"run", "tensorboard", "vec",
    "resumed_from", "total_timesteps"}`` before training starts (the CLI prints it). ``on_iteration`` gets
    ``{"timesteps", "rollout_reward_mean"(on-policy), "ep_rew_mean"(once episodes ended)}`` after each
    rollout (Ray Tune's report in a sweep with ``--scheduler asha``).
    """
    from safetensors.torch import save_file
    from stable_baselines3.common.callbacks import BaseCallback

    from marketlab.agents.sb3_state import load_checkpoint, read_state, save_checkpoint

    spec_path = spec if isinstance(spec, (str, Path)) else None
    if spec_path is not None:
        spec = AgentSpec.from_toml(spec_path)
    assert isinstance(spec, AgentSpec)
    run = Path(out_dir or spec.out_dir) / spec.name
    state = read_state(run) if resume else None
    if resume:
        if state is None:
            raise SpecError(run, None, "nothing to resume: the run folder has no checkpoint (train without --resume first)")
        saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
        diff = _first_difference(saved, dataclasses.asdict(spec))
        if diff is not None:
            raise SpecError(spec_path, diff, f"differs from the run being resumed ({run / 'config.json'})")
    set_torch_threads()
    seed_everything(spec.seed)
    env_cfg = dataclasses.replace(spec.env, period="train")
    if market is None and not env_cfg.data.dataset:  # the built-in synthetic data (made in memory)
        env_cfg, market = default_data(env_cfg)
    elif market is None:  # the explicit data step (ingest when the store lacks the dataset), then read
        store = store if store is not None else open_store(env_cfg.data.store)
        prepare_data(env_cfg.data, store, base=Path(spec_path).parent if spec_path else None, prefix="env.data.")
        market = load_market_spec(env_cfg.data, store, key="env.data.dataset")
    venv, vec_kind = make_train_env(spec, env_cfg, market)
    tb = run / "tb" if tensorboard and tensorboard_available() else None
    model = _make_model(spec, venv, tensorboard_log=tb)
    done = 0
    total = int(total_timesteps or spec.total_timesteps)
    if state is not None:
        load_checkpoint(model, run)
        done = int(model.num_timesteps)
        total = int(total_timesteps or state["total_timesteps"])
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(spec), indent=2), encoding="utf-8")
    if on_start is not None:
        on_start({"run": str(run), "tensorboard": str(tb) if tb else None, "vec": vec_kind, "resumed_from": done,
                  "total_timesteps": total})
    stop_at = done + stop_after if stop_after is not None else None

    class Checkpointer(BaseCallback):
        """Checkpoints at rollout starts (clean boundaries); stops the call once ``stop_at`` is reached."""

        def __init__(self) -> None:
            super().__init__()
            self.stopped = False
            self.last = done

        def _on_rollout_start(self) -> None:
            n = self.model.num_timesteps
            if stop_at is not None and n >= stop_at:
                save_checkpoint(self.model, run)
                self.stopped = True
            elif checkpoint_every and n - self.last >= checkpoint_every:
                save_checkpoint(self.model, run)
                self.last = n

        def _on_rollout_end(self) -> None:
            if on_iteration is None:
                return
            out = {"timesteps": float(self.model.num_timesteps)}
            buf = getattr(self.model, "rollout_buffer", None)
            if buf is not None and getattr(buf, "full", False):
                out["rollout_reward_mean"] = float(buf.rewards.mean())
            eps = getattr(self.model, "ep_info_buffer", None)
            if eps:
                out["ep_rew_mean"] = float(sum(e["r"] for e in eps) / len(eps))
            on_iteration(out)

        def _on_step(self) -> bool:
            return not self.stopped

    cb = Checkpointer()
    t0 = time.perf_counter()
    if total > done:
        model.learn(total_timesteps=total - done, reset_num_timesteps=state is None, progress_bar=progress, callback=cb,
                    tb_log_name=spec.algo)
    elapsed = time.perf_counter() - t0
    if not cb.stopped:
        save_checkpoint(model, run)
    n_done = int(model.num_timesteps) if not cb.stopped else int(read_state(run)["num_timesteps"])  # type: ignore[index]
    venv.close()
    state_dict = {k: v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()}
    save_file(state_dict, str(run / "policy.safetensors"))
    train_metrics = evaluate(run, period="train", market=market)
    this_call = n_done - done
    (run / "train.json").write_text(
        json.dumps({"timesteps": n_done, "total_timesteps": total, "complete": n_done >= total, "resumed_from": done,
                    "seconds": elapsed, "steps_per_s": this_call / elapsed if elapsed > 0 else None, "vec": vec_kind,
                    "n_envs": spec.vec.n_envs, "tensorboard": str(tb) if tb else None, "train_eval": train_metrics}, indent=2),
        encoding="utf-8",
    )
    return run


def load_run(run: str | Path, *, market: MarketData | None = None, period: str = "test", test_start: str | None = None,
             store: Any = None) -> tuple[Any, TradingEnv, AgentSpec]:
    """Rebuild (model, env on ``period``, spec) from a run folder; weights from ``policy.safetensors``."""
    from safetensors.torch import load_file
    from stable_baselines3.common.vec_env import DummyVecEnv

    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise SpecError(run, None, "not a run folder (config.json missing)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(cfg_path, None, f"invalid JSON: {exc}") from None
    spec = AgentSpec.from_dict(cfg, path=cfg_path)  # names registry ids only: loading runs no code
    # Evaluation walks the whole period once from its first bar.
    if period not in ("train", "test", "all"):
        raise SpecError(None, "period", f"must be one of ['train', 'test', 'all'], got {period!r}")
    env_cfg = dataclasses.replace(spec.env, period=period, episode_length=0, random_start=False)  # type: ignore[arg-type]
    if test_start is not None:
        env_cfg = dataclasses.replace(env_cfg, data=dataclasses.replace(env_cfg.data, test_start=test_start))
    if market is None and not env_cfg.data.dataset:
        env_cfg, market = default_data(env_cfg)
    elif market is None:
        market = load_market_spec(env_cfg.data, store, key="env.data.dataset")
    env = TradingEnv(env_cfg, market=market)
    model = _make_model(spec, DummyVecEnv([lambda: TradingEnv(env_cfg, market=market)]))
    state = load_file(str(run / "policy.safetensors"), device=str(model.device))
    model.policy.load_state_dict(state)
    return model, env, spec


def rollout(model: Any, env: TradingEnv) -> dict[str, np.ndarray]:
    """Deterministic roll-out of one full episode from the period start.

    Returns ``t`` (steps,) decision rows, ``weights`` (steps, N) target weights, ``value`` (steps + 1,)
    net values (before the first trade, then after each step), ``reward`` (steps,).
    """
    obs, info = env.reset(options={"start": env.t_lo})
    ts, ws, vals, rews = [], [], [info["value"]], []
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        ts.append(env.t)
        ws.append(np.array(env.action_interp.to_weights(action), dtype=np.float64))
        obs, r, done, trunc, info = env.step(action)
        done = done or trunc
        vals.append(info["value"])
        rews.append(r)
    return {"t": np.array(ts), "weights": np.array(ws), "value": np.array(vals), "reward": np.array(rews)}


def evaluate(run: str | Path, *, period: str = "test", market: MarketData | None = None, store: Any = None) -> dict[str, Any]:
    """Roll the policy over ``period`` and compare with buy-and-hold of the same assets (same costs)."""
    from marketlab.agents.baselines import BuyAndHold, run_policy
    from marketlab.core.metrics import summary

    model, env, spec = load_run(run, market=market, period=period, store=store)
    out = rollout(model, env)
    bh = run_policy(BuyAndHold(env.market.n_assets), env)
    m = summary(out["value"][1:], init_cash=env.sim.init_cash, periods_per_year=env.steps_per_year(), benchmark=bh["value"])
    return {
        "run": str(run),
        "period": period,
        "steps": int(out["t"].size),
        "final_value": float(out["value"][-1]),
        "buy_and_hold_final_value": float(bh["value"][-1]),
        **{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in m.items() if k not in ("turnover", "hit_rate", "n_trades")},
    }


def rollout_weights(run: str | Path, market: MarketData, *, test_start: str | None = None) -> np.ndarray:
    """Target weights (T, N) of the trained policy over the test period of ``market`` (all rows when
    ``test_start`` is None); NaN where the policy does not change its target (no order)."""
    model, env, _ = load_run(run, market=market, period="test" if test_start else "all", test_start=test_start)
    out = rollout(model, env)
    w = np.full((market.n_steps, market.n_assets), np.nan)
    prev = np.zeros(market.n_assets)
    for t, row in zip(out["t"], out["weights"], strict=True):
        if not env.config.trade_on_change or not np.array_equal(row, prev) or t == out["t"][0]:
            w[t] = row
        prev = row
    return w
