"""The reference's GP baseline through ``gplearn`` (research/alphagen.md §6), over the AlphaGen operators.

gplearn evolves flat-array programs; the panel is handed to it flattened day-major (``[T*N]`` rows) with the six
features and the 14 AlphaGen constants as terminal columns, and every operator x window of the vocabulary as one
gplearn function (``Mean20``, ``Corr10``, ...) that reshapes its arguments back to ``[T, N]`` and runs
marketlab's own :class:`Evaluator` on them, so values (NaN rules, window semantics) are the RL miner's. Fitness
is the single-alpha |IC| on the training rows (the custom metric ignores gplearn's ``y``). Only rows up to the
end of the training split are ever passed to gplearn, exactly what :meth:`MiningData.train_values` sees.

The reference's settings (population 1000, tournament 600, init depth 2-6, crossover 0.3, subtree 0.1, hoist 0.01,
point 0.1 with replace 0.6, no parsimony) are kept, with two departures: ``max_samples`` is 1 (a subsample of
flattened rows would tear the day x stock panel apart) and the run stops when its CPU budget is spent (the
issue's "same budget in wall time", in process CPU seconds so that a shared machine's load does not change
it). After every generation its best distinct legal programs are offered to the same :class:`AlphaPool`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from marketlab.agents.alphagen.gp import legal
from marketlab.features.expr import OPERATORS, Evaluator, Expr, Vocabulary
from marketlab.features.ic import mean_corr

SLOTS = ("open", "high")  # feature names the per-call Evaluator binds a function's arguments to


@contextmanager
def allow_nan_inputs() -> Iterator[None]:
    """Let gplearn accept NaN in X (suspended stock-days): its fit validates with sklearn's default
    ``ensure_all_finite=True``; the programs' NaN handling is the Evaluator's and the metric masks by day."""
    import gplearn.genetic as gg

    orig = gg.validate_data

    def validate(est: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("ensure_all_finite", "allow-nan")
        return orig(est, *args, **kwargs)

    gg.validate_data = validate
    try:
        yield
    finally:
        gg.validate_data = orig


def function_set(vocab: Vocabulary, shape: tuple[int, int]) -> tuple[list[Any], dict[str, tuple[str, int | None]]]:
    """gplearn functions for every operator (x window) of ``vocab`` on a ``shape`` panel, and name -> (op, window)."""
    from gplearn.functions import make_function

    deltas = [int(t.value) for t in vocab.tokens if t.kind == "delta"]
    funcs, meta = [], {}
    for name in dict.fromkeys(t.name for t in vocab.tokens if t.kind == "op"):
        spec = OPERATORS[name]
        windows: list[int | None] = [d for d in deltas if d >= spec.min_window] if spec.windowed else [None]
        for w in windows:
            fname = name if w is None else f"{name}{w}"
            meta[fname] = (name, w)
            funcs.append(make_function(function=_panel_op(name, w, spec.n_operands, shape), name=fname,
                                       arity=spec.n_operands, wrap=False))  # fmt: skip
    return funcs, meta


def _panel_op(name: str, window: int | None, arity: int, shape: tuple[int, int]) -> Callable[..., np.ndarray]:
    expr = Expr.op(name, *[Expr.feature(s) for s in SLOTS[:arity]], *([Expr.delta(window)] if window else []))
    size = shape[0] * shape[1]

    def run(*args: np.ndarray) -> np.ndarray:
        if args[0].shape[0] != size:  # gplearn's closure checks call every function on 10-element vectors
            return np.zeros_like(args[0])
        feats = {s: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).reshape(shape)) for s, a in zip(SLOTS[: len(args)], args, strict=True)}
        return Evaluator(feats, cache_bytes=0)(expr).numpy().reshape(-1)

    # make_function checks the argument count of the function itself
    def unary(a: np.ndarray) -> np.ndarray:
        return run(a)

    def binary(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return run(a, b)

    return unary if arity == 1 else binary


def to_expr(program: list[Any], terminals: list[Expr], meta: dict[str, tuple[str, int | None]]) -> Expr:
    """A gplearn program (prefix list of functions and terminal column ids) as an :class:`Expr`."""
    it = iter(program)

    def rec() -> Expr:
        node = next(it)
        if isinstance(node, (int, np.integer)):
            return terminals[int(node)]
        args = [rec() for _ in range(node.arity)]
        op, w = meta[node.name]
        return Expr.op(op, *args, *([Expr.delta(w)] if w else []))

    return rec()


def terminals_of(vocab: Vocabulary) -> tuple[list[str], list[float], list[Expr]]:
    """gplearn's terminal columns: the feature names, the constants, and each column as an :class:`Expr`."""
    names = [t.name for t in vocab.tokens if t.kind == "feature"]
    consts = [float(t.value) for t in vocab.tokens if t.kind == "const"]
    return names, consts, [Expr.feature(n) for n in names] + [Expr.const(c) for c in consts]


def run_gplearn(md: Any, m: Any, pool: Any, vocab: Vocabulary, on_generation: Callable[[int, Any], None] | None = None) -> dict[str, Any]:
    """Evolve with gplearn on the training rows; offer each generation's best legal programs to ``pool``.

    ``md``: :class:`MiningData`; ``m``: its :class:`MinerSpec` (``gp_population``, ``gp_generations`` as the
    cap, ``gplearn_seconds`` the CPU budget, ``seed``). Returns ``{"generations", "cpu_seconds", "rows"}``."""
    from gplearn.fitness import make_fitness
    from gplearn.genetic import SymbolicRegressor

    tr = md.rows["train"]
    feats = {k: v[: tr.stop] for k, v in md.train_eval.features.items()}  # the rows train_values reads
    T, N = feats["close"].shape
    names, consts, terminals = terminals_of(vocab)
    cols = [feats[n].cpu().numpy().reshape(-1) for n in names] + [np.full(T * N, c, dtype=np.float32) for c in consts]
    X = np.asfortranarray(np.stack(cols, axis=1).astype(np.float32))  # columns contiguous: terminals are X[:, j]
    target_z = md.train_target_z

    def ic(y: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> float:
        if y_pred.shape[0] != T * N:  # make_fitness's own check calls the metric on 2-element vectors
            return 0.0
        v = torch.from_numpy(np.ascontiguousarray(y_pred, dtype=np.float32).reshape(T, N)[tr.start :])
        r = mean_corr(pool.normalise(v), target_z)
        return abs(r) if np.isfinite(r) else 0.0

    funcs, meta = function_set(vocab, (T, N))
    est = SymbolicRegressor(
        population_size=m.gp_population, generations=1, tournament_size=min(600, m.gp_population),
        init_depth=(2, 6), p_crossover=0.3, p_subtree_mutation=0.1, p_hoist_mutation=0.01, p_point_mutation=0.1,
        p_point_replace=0.6, max_samples=1.0, parsimony_coefficient=0.0, const_range=None, function_set=funcs,
        metric=make_fitness(function=ic, greater_is_better=True, wrap=False), feature_names=names + [f"c{c:g}" for c in consts],
        warm_start=True, n_jobs=1, random_state=m.seed, verbose=0,
    )  # fmt: skip
    y = np.zeros(T * N)
    c0 = time.process_time()
    g = 0
    with allow_nan_inputs():
        while g < m.gp_generations:
            g += 1
            est.set_params(generations=g)
            est.fit(X, y)
            ranked = sorted((p for p in est._programs[-1] if p is not None), key=lambda p: -p.raw_fitness_)
            offered: set[str] = set()
            for p in ranked:
                if len(offered) >= 2 * m.capacity:
                    break
                e = to_expr(p.program, terminals, meta)
                if e.key in offered or not legal(e, m.max_len, m.max_lookback):
                    continue
                offered.add(e.key)
                pool.try_add(e, md.train_values(e))
            if on_generation is not None:
                on_generation(g, ranked)
            if time.process_time() - c0 >= m.gplearn_seconds:
                break
    return {"generations": g, "cpu_seconds": round(time.process_time() - c0, 1), "rows": T}
