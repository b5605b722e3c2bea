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
from typing import Any, Literal

import numpy as np

from marketlab.core.config import Identifier, NonNegativeInt, PositiveInt, Range, Spec, SpecPath
from marketlab.core.device import get_device, seed_everything, set_torch_threads
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
    """``n_envs`` copies of the env in a ``dummy`` (same process) or ``subproc`` vector env."""

    n_envs: PositiveInt = 1
    kind: Literal["dummy", "subproc"] = "dummy"


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


def _make_model(spec: AgentSpec, venv: Any) -> Any:
    cls = _algo_class(spec.algo)
    kwargs = dict(spec.hyper)
    kwargs.setdefault("policy_kwargs", {"net_arch": list(spec.net_arch)})
    try:
        return cls(spec.policy, venv, seed=spec.seed, device=str(get_device(spec.device)), verbose=0, **kwargs)
    except TypeError as exc:  # an unknown hyper-parameter name
        raise SpecError(None, "hyper", f"{spec.algo}: {exc}") from None


def train(
    spec: AgentSpec | str | Path,
    *,
    market: MarketData | None = None,
    store: Any = None,
    out_dir: str | Path | None = None,
    total_timesteps: int | None = None,
    progress: bool = False,
) -> Path:
    """Train the spec's agent on its train period; returns the run folder."""
    from safetensors.torch import save_file
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    spec_path = spec if isinstance(spec, (str, Path)) else None
    if spec_path is not None:
        spec = AgentSpec.from_toml(spec_path)
    assert isinstance(spec, AgentSpec)
    set_torch_threads()
    seed_everything(spec.seed)
    env_cfg = dataclasses.replace(spec.env, period="train")
    if market is None and not env_cfg.data.dataset:  # the built-in synthetic data (made in memory)
        env_cfg, market = default_data(env_cfg)
    elif market is None:  # the explicit data step (ingest when the store lacks the dataset), then read
        store = store if store is not None else open_store(env_cfg.data.store)
        prepare_data(env_cfg.data, store, base=Path(spec_path).parent if spec_path else None, prefix="env.data.")
        market = load_market_spec(env_cfg.data, store, key="env.data.dataset")
    vec_cls = SubprocVecEnv if spec.vec.kind == "subproc" else DummyVecEnv
    venv = make_vec_env(
        TradingEnv, n_envs=spec.vec.n_envs, seed=spec.seed, vec_env_cls=vec_cls,
        env_kwargs={"config": env_cfg, "market": market},
    )
    model = _make_model(spec, venv)
    steps = int(total_timesteps or spec.total_timesteps)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=progress)
    elapsed = time.perf_counter() - t0
    venv.close()
    run = Path(out_dir or spec.out_dir) / spec.name
    run.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()}
    save_file(state, str(run / "policy.safetensors"))
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(spec), indent=2), encoding="utf-8")
    train_metrics = evaluate(run, period="train", market=market)
    (run / "train.json").write_text(
        json.dumps({"timesteps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed, "train_eval": train_metrics}, indent=2),
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
    m = summary(out["value"][1:], init_cash=env.sim.init_cash, periods_per_year=env.market.periods_per_year(), benchmark=bh["value"])
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
