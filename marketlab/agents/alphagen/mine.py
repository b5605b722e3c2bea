"""``marketlab mine <spec>.toml``: mine a formulaic alpha pool and report it.

Spec (TOML)::

    [data]    dataset, store?, source?/format? (ingested when the dataset is missing), universe, adjust
    [split]   train / valid / test / test2 as "YYYY-MM-DD:YYYY-MM-DD" (inclusive)
    target  = "Ref(close, -20) / close - 1"           (top-level key; 1-day: "Ref(close, -1) / close - 1")
    [miner]   method = "alphagen" | "gp" | "gplearn" | "hand", seed, capacity, steps, PPO / GP / hand settings
    [output]  dir, signals_dataset

Leakage guards: the miner only ever sees feature rows up to the end of the training split; the target at
day ``t`` counts in a split only when ``t + horizon`` is still inside that split (purge), so no label reads
prices from the next split; the hand model's fit uses training stock-days only.

Outputs in ``output.dir``: ``pool.json`` (formulas, weights, train/valid/test IC, RankIC, ICIR of the pool
and of each alpha), checkpoints (``checkpoint/policy.safetensors`` + ``checkpoint/state.json``), and the
combined factor written to the store as ``signals`` (columns date, symbol, value) of
``output.signals_dataset`` so backtests can trade it top-k.
"""

from __future__ import annotations

import json
import time
from functools import partial
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
import torch

from marketlab.core.config import (Identifier, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range,
                                   Spec, SpecPath)
from marketlab.core.device import get_device, seed_everything, set_torch_threads, tensorboard_available
from marketlab.core.errors import SpecError
from marketlab.features.expr import Evaluator, Expr, ExprError, Vocabulary, parse
from marketlab.features.expr.tokens import ALPHAGEN_OPERATORS, CONSTANTS, DELTAS
from marketlab.features.ic import ic_summary, mean_corr, normalize_by_day
from marketlab.features.panel_tensor import PanelTensors, panel_to_tensors

SPLITS = ("train", "valid", "test", "test2")


@dataclass(frozen=True)
class DataSpec:
    """``[data]``: the panel dataset (ingested from ``source`` with ``format`` when missing) and universe."""

    dataset: str
    store: SpecPath | None = None
    source: SpecPath | None = None
    format: str | None = None
    universe: Literal["members", "all"] = "members"  # members: IC over in-universe stock-days; all: every traded stock
    adjust: bool = True


@dataclass(frozen=True)
class SplitSpec:
    """``[split]``: inclusive ``"START:END"`` periods (ISO dates, either end may be empty = open)."""

    train: str
    valid: str | None = None
    test: str | None = None
    test2: str | None = None


@dataclass(frozen=True)
class MinerSpec:
    """``[miner]``: the method and its settings (pool, PPO, GP, hand baseline)."""

    method: Literal["alphagen", "gp", "gplearn", "hand"] = "alphagen"
    seed: NonNegativeInt = 0
    capacity: PositiveInt = 10
    l1: NonNegativeFloat = 5e-3
    dup_threshold: Annotated[float, Range(0.0, 1.0, lo_open=True)] = 0.99
    max_len: PositiveInt = 20
    max_lookback: PositiveInt = 100
    operators: list[str] | None = None
    deltas: list[PositiveInt] | None = None
    # PPO (AlphaGen)
    steps: PositiveInt = 20_000
    n_envs: PositiveInt = 1  # token envs stepped in lockstep (one batched policy call per step); n_steps is per env
    n_steps: PositiveInt = 512
    batch_size: PositiveInt = 128
    n_epochs: PositiveInt = 4
    learning_rate: PositiveFloat = 3e-4
    ent_coef: NonNegativeFloat = 0.01
    d_model: PositiveInt = 64
    n_layers: PositiveInt = 2
    checkpoint_every: PositiveInt = 2048
    # GP
    gp_population: PositiveInt = 200
    gp_generations: PositiveInt = 10
    # gplearn (the reference's GP): gp_population / gp_generations (a cap) as above, stopped once this many
    # process CPU seconds are spent (equal budget with an AlphaGen run of the same CPU time)
    gplearn_seconds: PositiveFloat = 600.0
    # hand baseline
    hand_model: Literal["linear", "gbdt", "lightgbm", "mlp"] = "linear"


@dataclass(frozen=True)
class OutputSpec:
    """``[output]``: run folder and the store signals dataset of the combined factor."""

    dir: SpecPath = "runs/alphagen"
    signals_dataset: Identifier | None = None


@dataclass(frozen=True)
class MineSpec(Spec):
    """A mining spec (``specs/agents/alphagen_*.toml``); load with ``MineSpec.from_toml(path)``."""

    data: DataSpec
    split: SplitSpec
    miner: MinerSpec = field(default_factory=MinerSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    target: str = "Ref(close, -20) / close - 1"

    def validate(self, path: str | Path | None = None) -> None:
        """Periods parse and do not overlap (leakage); the target parses and looks ahead."""
        periods: list[tuple[str, np.datetime64, np.datetime64]] = []
        for name in SPLITS:
            v = getattr(self.split, name)
            if v is None:
                continue
            lo, hi = _period_bounds(v, path, f"split.{name}")
            for other, olo, ohi in periods:
                if lo <= ohi and olo <= hi:
                    raise SpecError(path, f"split.{name}", f"period {v!r} overlaps split.{other} "
                                                           f"{getattr(self.split, other)!r} (leakage between splits)")
            periods.append((name, lo, hi))
        try:
            t = parse(self.target, allow_future=True)
        except ExprError as exc:
            raise SpecError(path, "target", str(exc)) from None
        if t.lookahead < 1:
            raise SpecError(path, "target", "target must look ahead (e.g. Ref(close, -20) / close - 1)")


def _period_bounds(text: str, path: str | Path | None, key: str) -> tuple[np.datetime64, np.datetime64]:
    """``"START:END"`` -> inclusive day bounds (open ends as the earliest/latest representable day)."""
    if text.count(":") != 1:
        raise SpecError(path, key, f"expected 'START:END', got {text!r}")
    a, b = _period(text)
    try:
        lo = np.datetime64(a, "D") if a else np.datetime64("0001-01-01")
        hi = np.datetime64(b, "D") if b else np.datetime64("9999-12-31")
    except ValueError:
        raise SpecError(path, key, f"invalid date in {text!r} (use YYYY-MM-DD:YYYY-MM-DD)") from None
    if hi < lo:
        raise SpecError(path, key, f"period {text!r} ends before it starts")
    return lo, hi


def _period(text: str) -> tuple[str | None, str | None]:
    a, b = text.split(":")
    return (a or None), (b or None)


class MiningData:
    """Panel tensors, evaluators, target and per-split masks for one spec."""

    def __init__(self, spec: MineSpec, panel: PanelTensors | None = None, store: Any = None) -> None:
        self.spec = spec
        if panel is None:
            panel = load_panel(spec.data, store)
        self.panel = panel
        dev = panel.features["close"].device
        self.device = dev
        self.full = Evaluator(panel.features, source=spec.data.dataset)
        self.target_expr = parse(spec.target, allow_future=True)
        self.horizon = self.target_expr.lookahead
        self.target = self.full(self.target_expr)
        self.rows: dict[str, slice] = {}
        for name in SPLITS:
            v = getattr(spec.split, name)
            if v is not None:
                self.rows[name] = panel.rows(*_period(v))
        tr = self.rows["train"]
        if tr.stop - tr.start < 2:
            raise SpecError(None, "split.train", f"train period {spec.split.train!r} holds fewer than 2 days")
        base = panel.traded if spec.data.universe == "all" else panel.in_universe & panel.traded
        self.base_mask = base
        # the miner sees only rows before the end of training (past data for look-backs included)
        self.train_eval = Evaluator({k: v[: tr.stop] for k, v in panel.features.items()}, source=spec.data.dataset)
        self.masks = {name: self.split_mask(name) for name in self.rows}
        self.train_target_z = normalize_by_day(self.target[tr], self.masks["train"])

    def split_mask(self, name: str) -> torch.Tensor:
        """``[rows, N]`` mask of the split: universe, target valid, and purged ``horizon`` days at its end."""
        r = self.rows[name]
        m = self.base_mask[r] & torch.isfinite(self.target[r])
        n = r.stop - r.start
        if self.horizon > 0:
            m[max(0, n - self.horizon) :] = False
        return m

    def train_values(self, expr: Expr) -> torch.Tensor:
        """Values of ``expr`` on the training rows (features beyond the training split unseen)."""
        tr = self.rows["train"]
        return self.train_eval(expr)[tr.start :]


def load_panel(data: DataSpec, store: Any = None) -> PanelTensors:
    """Read ``data.dataset`` from the store (ingesting ``data.source`` with ``data.format`` when missing)."""
    from marketlab.store import Store

    st = store if store is not None else Store(data.store)
    known = st.datasets()
    names = known["dataset"].to_list() if "dataset" in known.columns else []
    if data.dataset not in names:
        if data.source is None or data.format is None:
            raise SpecError(None, "data.dataset", f"dataset {data.dataset!r} is not in the store and no data.source/format to ingest")
        st.ingest(data.format, [data.source], dataset=data.dataset)
    return panel_to_tensors(st.scan_panel(data.dataset), adjust=data.adjust, device=get_device("auto"), source=data.dataset)


def vocabulary(m: MinerSpec) -> Vocabulary:
    """The token vocabulary of a miner spec (operators, constants, deltas)."""
    return Vocabulary(
        operators=tuple(m.operators) if m.operators else ALPHAGEN_OPERATORS,
        constants=CONSTANTS,
        deltas=tuple(m.deltas) if m.deltas else DELTAS,
    )


# ---- reports ------------------------------------------------------------------------------------------


def evaluate_combination(md: MiningData, exprs: list[Expr], combine) -> dict[str, dict[str, float]]:
    """IC / RankIC / ICIR of ``combine(z_list)`` per split (z normalised per split with the split mask)."""
    out: dict[str, dict[str, float]] = {}
    vals = [md.full(e) for e in exprs]
    for name, r in md.rows.items():
        m = md.masks[name]
        zs = [normalize_by_day(v[r], m) for v in vals]
        f = combine(zs)
        f = torch.where(m, f, torch.nan)
        out[name] = ic_summary(f, md.target[r], m)
    return out


def per_alpha_ics(md: MiningData, exprs: list[Expr]) -> list[dict[str, float]]:
    """IC / RankIC / ICIR per split of each alpha on its own."""
    res = []
    for e in exprs:
        v = md.full(e)
        res.append({name: ic_summary(v[r], md.target[r], md.masks[name], rank=False)["ic"] for name, r in md.rows.items()})
    return res


def fit_hand(md: MiningData, m: MinerSpec):
    """A ``hand`` run's model: the 26 Alpha158-style factors normalised on the training rows, combined by
    ``m.hand_model`` fitted with ``m.seed`` (deterministic: refitting reproduces the run). Returns
    ``(HandModel, exprs)``; ``model.predict`` combines the factors' normalised values ``[T, N]``."""
    from marketlab.agents.alphagen.hand import ALPHA158_SUBSET, HandModel

    exprs = [parse(f) for f in ALPHA158_SUBSET.values()]
    tr = md.rows["train"]
    zs = [normalize_by_day(md.full(e)[tr], md.masks["train"]) for e in exprs]
    return HandModel(m.hand_model, seed=m.seed).fit(zs, md.train_target_z, md.masks["train"]), exprs


def signal_frame(md: MiningData, exprs: list[Expr], combine):
    """The combined factor for every day (normalised over traded in-universe stocks) as a polars frame."""
    import polars as pl

    mask = md.base_mask
    zs = [normalize_by_day(md.full(e), mask) for e in exprs]
    f = torch.where(mask, combine(zs), torch.nan).cpu().numpy()
    ti, si = np.nonzero(np.isfinite(f))
    return pl.DataFrame(
        {
            "date": md.panel.dates[ti],
            "symbol": np.array(md.panel.symbols, dtype=object)[si].tolist(),
            "value": f[ti, si].astype(np.float64),
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def write_signals(store: Any, dataset: str, frame, source_dataset: str) -> int:
    """Write the combined factor as a store ``signals`` dataset; returns the rows written."""
    from marketlab.store import IngestBatch, Instrument

    inst = store.instruments(source_dataset)
    lookup = {r["symbol"]: r for r in inst.iter_rows(named=True)} if inst.height else {}
    syms = sorted(set(frame["symbol"].to_list()))
    instruments = [
        Instrument(s, float(lookup.get(s, {}).get("tick_size", 0.01)), float(lookup.get(s, {}).get("lot_size", 1.0)),
                   str(lookup.get(s, {}).get("currency", "USD")))
        for s in syms
    ]  # fmt: skip
    store.write(
        IngestBatch(dataset=dataset, frames={"signals": frame}, instruments=instruments, meta={"kind": "alpha_signal"}),
        format="alpha",
        mode="replace",
    )
    return frame.height


# ---- miners -------------------------------------------------------------------------------------------


def _pool(md: MiningData, m: MinerSpec):
    from marketlab.agents.alphagen.pool import AlphaPool

    return AlphaPool(
        capacity=m.capacity, target_z=md.train_target_z, mask=md.masks["train"], l1=m.l1, dup_threshold=m.dup_threshold
    )


def run_alphagen(md: MiningData, m: MinerSpec, outdir: Path, *, resume: bool = False, progress: bool = True,
                 tensorboard_dir: Path | None = None,
                 on_iteration: Callable[[dict[str, float]], None] | None = None):
    """MaskablePPO with the LSTM extractor over the token env; returns the pool. ``tensorboard_dir``: SB3's
    own scalars (rollout, train) plus ``pool/train_ic``, ``pool/size`` and ``pool/tried`` per rollout;
    ``on_iteration`` gets ``{"train_ic", "pool_size", "timesteps"}`` per rollout (Ray Tune's report)."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv
    from tqdm import tqdm

    from marketlab.agents.alphagen.env import AlphaTokenEnv
    from marketlab.agents.alphagen.policy import LSTMTokenExtractor
    from marketlab.agents.sb3_state import CHECKPOINT, load_checkpoint, read_state

    vocab = vocabulary(m)
    pool = _pool(md, m)

    def score(expr: Expr) -> float:
        return pool.try_add(expr, md.train_values(expr)).reward

    envs = [AlphaTokenEnv(vocab, score, max_len=m.max_len, max_lookback=m.max_lookback) for _ in range(m.n_envs)]
    # DummyVecEnv steps the envs one after another, so the shared pool sees the formulas in a fixed order
    venv = DummyVecEnv([partial(Monitor, e) for e in envs])
    venv.seed(m.seed)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=m.n_steps,
        batch_size=m.batch_size,
        n_epochs=m.n_epochs,
        learning_rate=m.learning_rate,
        gamma=1.0,
        ent_coef=m.ent_coef,
        seed=m.seed,
        device=get_device("auto"),
        policy_kwargs=dict(
            features_extractor_class=LSTMTokenExtractor,
            features_extractor_kwargs=dict(n_actions=vocab.n_actions, d_model=m.d_model, n_layers=m.n_layers),
        ),
        verbose=0,
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir is not None else None,
    )
    if resume and read_state(outdir) is not None:
        _check_resume_config(outdir / CHECKPOINT / "miner.json", md.spec)
        load_checkpoint(model, outdir)
        snap = json.loads((outdir / CHECKPOINT / "pool.json").read_text())
        members = [parse(f) for f in snap["formulas"]]
        pool.restore(snap, members, [md.train_values(e) for e in members])
    done = int(model.num_timesteps)

    class Progress(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = tqdm(total=m.steps, initial=done, desc="alphagen", disable=not progress, leave=False)
            self.last_ckpt = done

        def _on_rollout_end(self) -> None:
            self.logger.record("pool/train_ic", pool.objective)
            self.logger.record("pool/size", pool.size)
            self.logger.record("pool/tried", pool.n_tried)
            if on_iteration is not None:
                on_iteration({"train_ic": float(pool.objective), "pool_size": float(pool.size),
                              "timesteps": float(self.num_timesteps)})

        def _on_rollout_start(self) -> None:
            # a clean boundary (last update done, next rollout not begun): resuming here equals not stopping
            if self.num_timesteps - self.last_ckpt >= m.checkpoint_every:
                save_checkpoint(outdir, model, pool, md.spec)
                self.last_ckpt = self.num_timesteps

        def _on_step(self) -> bool:
            self.bar.update(m.n_envs)
            if any(self.locals.get("dones", ())) or self.n_calls % 256 == 0:
                best = max(zip(pool.weights, pool.exprs, strict=False), key=lambda t: abs(t[0]), default=(0, ""))
                self.bar.set_postfix(pool=pool.size, ic=f"{pool.objective:.4f}", top=str(best[1])[:40])
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    if m.steps > done:
        model.learn(total_timesteps=m.steps - done, callback=Progress(), reset_num_timesteps=done == 0,
                    tb_log_name="alphagen")
    save_checkpoint(outdir, model, pool, md.spec)
    return pool


def save_checkpoint(outdir: Path, model: Any, pool: Any, spec: MineSpec) -> None:
    """The whole mining state in ``outdir/checkpoint/`` (``agents.sb3_state``: policy, optimizer, RNGs, the
    token envs' unfinished formulas, counters; plus ``pool.json``, the pool's exact state, and ``miner.json``, the
    configuration a resume must match), replaced as a unit."""
    from marketlab.agents.sb3_state import save_checkpoint as save_sb3

    save_sb3(model, outdir, extra={"pool.json": json.dumps(pool.snapshot()), "miner.json": json.dumps(_resume_config(spec))})


# keys a resumed run may change: the step budget (to extend a run deliberately) and the checkpoint cadence
_RESUMABLE = ("miner.steps", "miner.checkpoint_every")


def _resume_config(spec: MineSpec) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section in ("data", "split", "miner"):
        for k, v in asdict(getattr(spec, section)).items():
            flat[f"{section}.{k}"] = v
    flat["target"] = spec.target
    return {k: v for k, v in flat.items() if k not in _RESUMABLE}


def _check_resume_config(path: Path, spec: MineSpec) -> None:
    """Refuse to resume a checkpoint written by another configuration, naming the first differing key. A key
    the checkpoint lacks (a setting added to the spec later) counts as unchanged while it holds its default."""
    saved = json.loads(path.read_text()) if path.is_file() else {}
    now = json.loads(json.dumps(_resume_config(spec)))
    defaults = json.loads(json.dumps(_resume_config(_default_like(spec))))
    for key in sorted(set(saved) | set(now)):
        if key not in saved and now.get(key) == defaults.get(key):
            continue
        if saved.get(key) != now.get(key):
            raise SpecError(None, key, f"--resume: the checkpoint in {path.parent} was written with "
                                       f"{key} = {saved.get(key)!r}, the spec says {now.get(key)!r}")


def _default_like(spec: MineSpec) -> MineSpec:
    """``spec`` with every ``[miner]`` setting at its default (the values an older checkpoint implies)."""
    from dataclasses import replace

    return replace(spec, miner=MinerSpec(method=spec.miner.method))


def train_ic(md: MiningData, pool: Any, e: Expr) -> float:
    """IC of ``e`` with the target on the training rows, as the pool normalises it: the GP's fitness (its
    absolute value); gplearn's metric computes the same from a program's values (``gplearn_gp``)."""
    return mean_corr(pool.normalise(md.train_values(e)), md.train_target_z)


def run_gp(md: MiningData, m: MinerSpec, progress: bool = True):
    """Mine with genetic programming; returns the alpha pool of the best formulas."""
    from tqdm import tqdm

    from marketlab.agents.alphagen.gp import GPConfig, GPMiner

    pool = _pool(md, m)

    def fitness(e: Expr) -> float:
        ic = train_ic(md, pool, e)
        return abs(ic) if np.isfinite(ic) else -1.0

    bar = tqdm(total=m.gp_generations, desc="gp", disable=not progress, leave=False)

    def on_gen(g: int, ranked: list[tuple[float, Expr]]) -> None:
        for _, e in ranked[: 2 * m.capacity]:
            pool.try_add(e, md.train_values(e))
        bar.update(1)
        bar.set_postfix(pool=pool.size, ic=f"{pool.objective:.4f}", best=f"{ranked[0][0]:.4f}")

    cfg = GPConfig(population=m.gp_population, generations=m.gp_generations)
    GPMiner(vocabulary(m), fitness, np.random.default_rng(m.seed), cfg, m.max_len, m.max_lookback).run(on_gen)
    bar.close()
    return pool


def mine(spec: MineSpec, *, store: Any = None, panel: PanelTensors | None = None, resume: bool = False,
         progress: bool = True, write: bool = True, tensorboard: bool = True,
         on_start: Callable[[dict[str, Any]], None] | None = None,
         on_iteration: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Run the spec's miner; write ``pool.json`` (and signals when ``output.signals_dataset``); return the summary.

    ``tensorboard``: AlphaGen logs to ``<output.dir>/tb`` when the ``tensorboard`` package is installed (extra
    ``[rl]``). ``on_start`` gets ``{"run": output folder, "tensorboard": log folder or None}`` before mining;
    ``on_iteration`` gets AlphaGen's per-rollout ``{"train_ic", "pool_size", "timesteps"}`` (Ray Tune's report)."""
    set_torch_threads()
    seed_everything(spec.miner.seed)
    t0 = time.perf_counter()
    m = spec.miner
    outdir = Path(spec.output.dir)
    outdir.mkdir(parents=True, exist_ok=True)
    md = MiningData(spec, panel=panel, store=store)
    t_load = time.perf_counter() - t0
    tb = outdir / "tb" if tensorboard and m.method == "alphagen" and tensorboard_available() else None
    if on_start is not None:
        on_start({"run": str(outdir), "tensorboard": str(tb) if tb else None})
    if m.method == "hand":
        from marketlab.agents.alphagen.hand import ALPHA158_SUBSET

        model, exprs = fit_hand(md, m)
        combine = model.predict
        alphas: list[dict[str, Any]] = [{"name": n, "formula": str(e)} for n, e in zip(ALPHA158_SUBSET, exprs, strict=False)]
        if model.coef is not None:
            for a, c in zip(alphas, model.coef, strict=False):
                a["weight"] = float(c)
        pool_info: dict[str, Any] = {"model": m.hand_model, "alphas": alphas}
    else:
        gp_run: dict[str, Any] | None = None
        if m.method == "alphagen":
            pool = run_alphagen(md, m, outdir, resume=resume, progress=progress, tensorboard_dir=tb,
                                on_iteration=on_iteration)
        elif m.method == "gplearn":
            from marketlab.agents.alphagen.gplearn_gp import run_gplearn

            pool = _pool(md, m)
            gp_run = run_gplearn(md, m, pool, vocabulary(m))
        else:
            pool = run_gp(md, m, progress)
        exprs = list(pool.exprs)
        combine = pool.combine
        pool_info = pool.state()
        if gp_run is not None:
            pool_info["gplearn"] = gp_run
        for a, ics in zip(pool_info["alphas"], per_alpha_ics(md, exprs), strict=False):
            a["ic"] = ics
    if not exprs:
        raise SpecError(None, "miner", "the pool is empty: no formula improved the objective (more steps?)")
    metrics = evaluate_combination(md, exprs, combine)
    summary: dict[str, Any] = {
        "method": m.method,
        "dataset": spec.data.dataset,
        "target": str(md.target_expr),
        "seed": m.seed,
        "capacity": m.capacity,
        "steps": m.steps if m.method == "alphagen" else None,
        "splits": {k: getattr(spec.split, k) for k in SPLITS if getattr(spec.split, k)},
        "metrics": metrics,
        "pool": pool_info,
        "seconds": {"load": round(t_load, 2), "total": round(time.perf_counter() - t0, 2)},
        "tensorboard": str(tb) if tb else None,
        "config": asdict(m),
    }
    if write:
        if spec.output.signals_dataset:
            from marketlab.store import Store

            st = store if store is not None else Store(spec.data.store)
            frame = signal_frame(md, exprs, combine)
            summary["signals"] = {"dataset": spec.output.signals_dataset, "rows": write_signals(st, spec.output.signals_dataset, frame, spec.data.dataset)}
        (outdir / "pool.json").write_text(json.dumps(summary, indent=1, default=float))
        summary["pool_json"] = str(outdir / "pool.json")
    return summary
