"""Runnable spec kinds: how a sweep loads, runs and scores one variant of a spec.

Each runner is registered as ``runner/<name>`` (:mod:`marketlab.core.builtin_ids`) and is a class with
class methods, so a worker process resolves it by name (nothing but strings and plain tables travel to
workers):

* ``spec_type()``: the :class:`~marketlab.core.config.Spec` class the TOML validates into (its leaves
  are the keys a grid may sweep; imported lazily);
* ``matches(raw)``: whether a TOML table looks like this kind (``marketlab sweep`` infers the kind);
* ``seed(spec)``: the variant's master seed (None for deterministic kinds);
* ``run(spec, ctx)``: run one variant, return its metrics ``{name: float}``; training-type kinds
  (``iterative = True``) also call ``ctx.report({name: float})`` once per training iteration (a PPO
  rollout, an epoch), which is what Ray Tune's schedulers (ASHA) decide on;
* ``shared_key(spec, ctx)`` / ``load_shared(spec, ctx)``: an input many variants read (the mining panel),
  loaded once by the driver and broadcast through Ray's object store (``ctx.shared`` in the worker).

A user adds a kind by writing such a class and ``register("runner/<name>", cls)``: in-process
(sequential) sweeps see it; pool and Ray workers see it when the module that registers it is imported
by the worker (e.g. from the package's own import).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from marketlab.core.config import FiniteFloat, NonNegativeFloat, NonNegativeInt, PositiveInt, Spec
from marketlab.core.errors import SpecError


@dataclass(frozen=True)
class RunContext:
    """Where one variant runs: ``spec_path`` (relative paths in the spec resolve against it),
    ``run_dir`` (the variant's own folder), ``store`` (store folder or None = the spec's/default
    store), ``options`` (runner options shared by every variant, e.g. ``write`` for simulations),
    ``on_iteration`` (Ray Tune's report, or None), ``shared`` (the broadcast input, or None)."""

    spec_path: Path
    run_dir: Path
    store: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    on_iteration: Callable[[dict[str, float]], None] | None = None
    shared: Any = None

    def report(self, metrics: dict[str, float]) -> None:
        """One training iteration's metrics (to Ray Tune under ``--scheduler``; nothing otherwise)."""
        if self.on_iteration is not None:
            self.on_iteration(metrics)


class Runner:
    """Base of the runnable spec kinds (see the module docstring)."""

    spec_class: ClassVar[type[Spec]]
    iterative: ClassVar[bool] = False  # reports per training iteration (ctx.report): Tune schedulers apply

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (a subclass may import it lazily)."""
        return cls.spec_class

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return False

    @classmethod
    def load(cls, raw: dict[str, Any], path: str | Path) -> Any:
        """Validate ``raw`` (the spec's TOML table with a variant's overrides) like the file itself."""
        return cls.spec_type().from_dict(raw, path=path)

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed (None: the kind is deterministic)."""
        return None

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        raise NotImplementedError

    @classmethod
    def shared_key(cls, spec: Any, ctx: RunContext) -> str | None:
        """Identity of the input this variant shares with others (None: nothing shared)."""
        return None

    @classmethod
    def load_shared(cls, spec: Any, ctx: RunContext) -> Any:
        """Load the shared input (called once per key by the driver)."""
        return None


def _floats(d: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of ``d`` as floats (NaN kept: the table records it as null)."""
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}


class BacktestRunner(Runner):
    """``Backtest(spec).run(report=False)``: the backtest's metrics (Sharpe, return, drawdown, turnover ...)
    plus ``final_value``. ``options["report"] = True`` writes the HTML/PNG report into the run folder."""

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (imported here: the layer below is loaded only when used)."""
        from marketlab.backtests.spec import BacktestSpec

        return BacktestSpec

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return "signal" in raw and "data" in raw

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        from marketlab.backtests import Backtest

        store = None
        if ctx.store is not None:
            from marketlab.store import Store

            store = Store(ctx.store, create=False)
        report = bool(ctx.options.get("report", False))
        if report:
            spec = replace(spec, report=replace(spec.report, out_dir=str(ctx.run_dir.parent)), name=ctx.run_dir.name)
        res = Backtest(spec, spec_path=ctx.spec_path, store=store).run(report=report)
        return {**_floats(res.metrics), "final_value": float(res.value[-1])}


class SimulateRunner(Runner):
    """One agent-based trading day (``simulator/abm-v1``): its stylized facts (:mod:`marketlab.simulators.
    stylized`) and run counts. ``options["write"] = True`` writes the day to the store
    (``Store.replace``: a re-run supersedes that day), which is what a simulation fleet does."""

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return "market" in raw and ("noise" in raw or "fundamental" in raw)

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (imported here: the layer below is loaded only when used)."""
        from marketlab.simulators.config import SimSpec

        return SimSpec

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed."""
        return int(spec.seed)

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        from marketlab.core.registry import resolve
        from marketlab.simulators.stylized import compute_facts

        sim = resolve("abm-v1", kind="simulator")(spec).run()
        batch = sim.to_batch()
        out: dict[str, float] = {"sim_wall_s": float(sim.wall_s)}
        if ctx.options.get("write"):
            from marketlab.store import Store

            t = time.perf_counter()
            Store(ctx.store).replace(batch, source_files=(str(ctx.spec_path),), format="abm")
            out["store_write_s"] = time.perf_counter() - t
        f = batch.frames
        m = spec.market
        facts = compute_facts(f["events"], f["book"], f.get("trades"), label=f"{m.dataset}:{m.symbol}",
                              max_lag=int(ctx.options.get("max_lag", 30)), tick_size=m.tick_size)
        return {**_floats(facts.scalars), **out}


class XvaRunner(Runner):
    """The layered deep xVA pipeline (:class:`marketlab.pricing.xva.XvaRun`): each xVA number of its table as
    ``<measure>_<netting set>`` (``cva_C``) plus ``seconds``; outputs (and plots with ``options["report"]``)
    go to the run folder. torch runs one thread per task (many tasks share the cores)."""

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (imported here: the layer below is loaded only when used)."""
        from marketlab.pricing.xva.spec import XvaSpec

        return XvaSpec

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return "run" in raw and "trades" in raw

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed."""
        return int(spec.run.seed)

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        from marketlab.core.device import set_torch_threads
        from marketlab.pricing.xva import XvaRun

        set_torch_threads(1)
        spec = spec.with_run(out_dir=str(ctx.run_dir), progress=False, plots=bool(ctx.options.get("report", False)))
        res = XvaRun(spec).run()
        out = {f"{k}_{name}": v for name, row in res["xva_table"].items() for k, v in row.items()}
        return {**_floats(out), "seconds": float(res["seconds"]["total"])}


class RLRunner(Runner):
    """An SB3 training run (:func:`marketlab.agents.sb3.train`) into the variant's run folder: the policy's
    train-period evaluation as ``train_<metric>`` plus ``seconds`` and ``steps_per_s``; ``options["eval_period"]``
    (e.g. "test") also evaluates the trained policy on that period as ``<period>_<metric>``. Per rollout it
    reports ``timesteps``, ``rollout_reward_mean`` and (once episodes ended) ``ep_rew_mean``."""

    iterative = True

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (imported here: the layer below is loaded only when used)."""
        from marketlab.agents.sb3 import AgentSpec

        return AgentSpec

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return "algo" in raw and "env" in raw

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed."""
        return int(spec.seed)

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        import contextlib
        import json
        import sys

        from marketlab.agents.sb3 import evaluate, train

        store = None
        if ctx.store is not None and spec.env.data.dataset:  # the built-in synthetic data needs no store
            from marketlab.store import Store

            store = Store(ctx.store, create=False)
        with contextlib.redirect_stdout(sys.stderr):  # SB3 logs to stdout
            run = train(spec, store=store, out_dir=ctx.run_dir, on_iteration=ctx.on_iteration)
        info = json.loads((run / "train.json").read_text())
        out = {"seconds": info["seconds"], "steps_per_s": info["steps_per_s"],
               **{f"train_{k}": v for k, v in info["train_eval"].items()}}
        period = ctx.options.get("eval_period")
        if period:
            out.update({f"{period}_{k}": v for k, v in evaluate(run, period=str(period), store=store).items()})
        return _floats(out)


class MineRunner(Runner):
    """Alpha mining (:func:`marketlab.agents.alphagen.mine.mine`: AlphaGen PPO, GP or hand factors) into the
    variant's run folder: ``<split>_ic`` / ``_rank_ic`` / ``_icir`` of the combined factor, ``pool_size`` and
    ``seconds``. The spec's ``output.signals_dataset`` is dropped (variants would overwrite one dataset) unless
    ``options["write"]``. AlphaGen reports ``train_ic``, ``pool_size`` and ``timesteps`` per PPO rollout. The
    panel is the shared input: on Ray the driver reads it once and workers get it from the object store."""

    iterative = True

    @classmethod
    def spec_type(cls) -> type[Spec]:
        """The spec class (imported here: the layer below is loaded only when used)."""
        from marketlab.agents.alphagen.mine import MineSpec

        return MineSpec

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return "miner" in raw and "split" in raw

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed."""
        return int(spec.miner.seed)

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        from marketlab.agents.alphagen.mine import mine

        signals = spec.output.signals_dataset if ctx.options.get("write") else None
        spec = replace(spec, output=replace(spec.output, dir=str(ctx.run_dir), signals_dataset=signals))
        store = None
        if ctx.store is not None and (ctx.shared is None or signals):  # a broadcast panel needs no store to read
            from marketlab.store import Store

            store = Store(ctx.store, create=False)
        res = mine(spec, store=store, panel=ctx.shared, progress=False, on_iteration=ctx.on_iteration)
        out = {f"{split}_{m}": v[m] for split, v in res["metrics"].items() for m in ("ic", "rank_ic", "icir") if m in v}
        return {**_floats(out), "pool_size": float(len(res["pool"]["alphas"])), "seconds": float(res["seconds"]["total"])}

    @classmethod
    def shared_key(cls, spec: Any, ctx: RunContext) -> str | None:
        """The panel's identity: store, dataset and price adjustment (variants differing elsewhere share it)."""
        import json

        d = spec.data
        return json.dumps(["mine-panel", ctx.store or d.store, d.dataset, d.adjust, d.source, d.format], default=str)

    @classmethod
    def load_shared(cls, spec: Any, ctx: RunContext) -> Any:
        """The mining panel as tensors (:func:`marketlab.agents.alphagen.mine.load_panel`), read once."""
        from marketlab.agents.alphagen.mine import load_panel

        store = None
        if ctx.store is not None:
            from marketlab.store import Store

            store = Store(ctx.store, create=False)
        return load_panel(spec.data, store)


@dataclass(frozen=True)
class ProbeTable(Spec):
    """``[probe]``: ``seconds`` of busy CPU work (a stand-in task of known length, for overhead
    measurements and fault tests), ``seed`` and ``x`` (the answer depends on both), ``fail`` (raise)."""

    seconds: NonNegativeFloat = 0.1
    seed: NonNegativeInt = 0
    x: FiniteFloat = 0.0
    fail: bool = False
    iterations: PositiveInt = 1


@dataclass(frozen=True)
class ProbeSpec(Spec):
    """A probe task: ``[probe]`` (see :class:`ProbeTable`)."""

    probe: ProbeTable = field(default_factory=ProbeTable)


class ProbeRunner(Runner):
    """Known-answer stand-in task: ``value = x + sum of 1000 standard normals from seed`` after spinning the
    CPU for ``probe.seconds``; ``probe.fail = true`` raises (a variant that fails while others complete).
    The spin is cut into ``probe.iterations`` training iterations, iteration ``i`` (1-based) reporting
    ``score = x * i`` and ``iteration = i`` (a learning curve of known slope, for Tune's schedulers)."""

    spec_class = ProbeSpec
    iterative = True

    @classmethod
    def matches(cls, raw: dict[str, Any]) -> bool:
        """Whether the TOML table ``raw`` is a spec of this kind."""
        return set(raw) == {"probe"}

    @classmethod
    def seed(cls, spec: Any) -> int | None:
        """The variant's master seed."""
        return int(spec.probe.seed)

    @classmethod
    def run(cls, spec: Any, ctx: RunContext) -> dict[str, float]:
        """Run one variant; returns its metrics."""
        p = spec.probe
        for i in range(1, p.iterations + 1):
            t_end = time.perf_counter() + p.seconds / p.iterations
            while time.perf_counter() < t_end:  # busy, not sleeping: a CPU-bound task of known length
                pass
            if p.iterations > 1:
                ctx.report({"score": p.x * i, "iteration": float(i)})
        if p.fail:
            raise SpecError(ctx.spec_path, "probe.fail", "probe asked to fail")
        value = p.x + float(np.random.default_rng(p.seed).standard_normal(1000).sum())
        return {"value": value, "finite": float(math.isfinite(value))}
