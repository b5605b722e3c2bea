"""Genetic-programming baseline over the same grammar (own implementation, gplearn-style operators).

Individuals are :class:`Expr` trees that obey the same rules as the RL grammar (featured operands, window
minimums, look-back limit, at most ``max_len - 1`` tokens so the RL env could write them). Fitness is the
single-alpha |IC| on the training rows (cached by canonical key). Each generation: tournament selection,
subtree crossover, subtree / point / hoist mutation; every generation's best distinct formulas are offered
to the same :class:`AlphaPool` the RL miner uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from marketlab.features.expr import OPERATORS, Expr, ExprError, Vocabulary, validate


@dataclass(frozen=True)
class GPConfig:
    """Genetic-programming settings: population, generations, operator rates, tree sizes."""
    population: int = 200
    generations: int = 10
    tournament: int = 10
    p_crossover: float = 0.5
    p_subtree: float = 0.2
    p_point: float = 0.2
    p_hoist: float = 0.05
    init_depth: tuple[int, int] = (2, 4)
    offer_top: int = 20


def legal(e: Expr, max_len: int, max_lookback: int) -> bool:
    """Whether the RL env could have written ``e``: at most ``max_len - 1`` tokens, look-back within
    ``max_lookback``, featured, and every grammar rule (:func:`validate`) kept."""
    if e.size > max_len - 1 or e.lookback > max_lookback or not e.featured:
        return False
    try:
        validate(e)
    except ExprError:
        return False
    return True


def _paths(e: Expr, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Positions of operand nodes (windows excluded), pre-order."""
    out = [prefix]
    if e.kind == "op":
        for i, a in enumerate(e.operands):
            out += _paths(a, prefix + (i,))
    return out


def _get(e: Expr, path: tuple[int, ...]) -> Expr:
    for i in path:
        e = e.args[i]
    return e


def _replace(e: Expr, path: tuple[int, ...], new: Expr) -> Expr:
    if not path:
        return new
    args = list(e.args)
    args[path[0]] = _replace(args[path[0]], path[1:], new)
    return Expr("op", name=e.name, args=tuple(args))


class GPMiner:
    """Genetic programming over the vocabulary's operators/features/constants/windows."""

    def __init__(
        self,
        vocab: Vocabulary,
        fitness: Callable[[Expr], float],
        rng: np.random.Generator,
        config: GPConfig = GPConfig(),
        max_len: int = 20,
        max_lookback: int = 100,
    ) -> None:
        self.vocab = vocab
        self.fitness_fn = fitness
        self.rng = rng
        self.cfg = config
        self.max_len = max_len
        self.max_lookback = max_lookback
        toks = vocab.tokens
        self.features = [t.name for t in toks if t.kind == "feature"]
        self.constants = [t.value for t in toks if t.kind == "const"]
        self.deltas = [int(t.value) for t in toks if t.kind == "delta"]
        self.ops: dict[str, list[str]] = {}
        for t in toks:
            if t.kind == "op":
                self.ops.setdefault(OPERATORS[t.name].category, []).append(t.name)
        self.cache: dict[str, float] = {}

    # ---- generation ---------------------------------------------------------------------------------
    def _choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def random_tree(self, depth: int) -> Expr:
        """A random tree of at most ``depth`` levels over the vocabulary."""
        if depth <= 0 or self.rng.random() < 0.15:
            return Expr.feature(self._choice(self.features))
        cat = self._choice([c for c in ("unary", "binary", "rolling", "pair_rolling") if c in self.ops])
        name = self._choice(self.ops[cat])
        spec = OPERATORS[name]
        if cat == "unary":
            return Expr.op(name, self.random_tree(depth - 1))
        if cat == "binary":
            x = self.random_tree(depth - 1)
            y = Expr.const(self._choice(self.constants)) if self.constants and self.rng.random() < 0.3 else self.random_tree(depth - 1)
            return Expr.op(name, x, y) if self.rng.random() < 0.5 else Expr.op(name, y, x)
        windows = [d for d in self.deltas if d >= spec.min_window]
        w = Expr.delta(self._choice(windows))
        if cat == "rolling":
            return Expr.op(name, self.random_tree(depth - 1), w)
        return Expr.op(name, self.random_tree(depth - 1), self.random_tree(depth - 1), w)

    def ok(self, e: Expr) -> bool:
        """Whether ``e`` is a legal individual (size, look-back, featured)."""
        return legal(e, self.max_len, self.max_lookback)

    def _valid_tree(self, depth: int) -> Expr:
        for _ in range(100):
            e = self.random_tree(depth)
            if self.ok(e):
                return e
        return Expr.feature(self._choice(self.features))

    # ---- variation ----------------------------------------------------------------------------------
    def crossover(self, a: Expr, b: Expr) -> Expr:
        """Replace a random subtree of ``a`` by a random subtree of ``b``."""
        pa, pb = _paths(a), _paths(b)
        return _replace(a, self._choice(pa), _get(b, self._choice(pb)))

    def subtree_mutation(self, a: Expr) -> Expr:
        """Replace a random subtree of ``a`` by a fresh random tree."""
        return _replace(a, self._choice(_paths(a)), self._valid_tree(int(self.rng.integers(1, 3))))

    def hoist(self, a: Expr) -> Expr:
        """A random subtree of ``a`` (shrinks bloated trees)."""
        return _get(a, self._choice(_paths(a)))

    def point_mutation(self, a: Expr) -> Expr:
        """Swap one node of ``a`` for another of its kind (feature, constant, operator of the same category, window)."""
        path = self._choice(_paths(a))
        node = _get(a, path)
        if node.kind == "feature":
            return _replace(a, path, Expr.feature(self._choice(self.features)))
        if node.kind == "const":
            return _replace(a, path, Expr.const(self._choice(self.constants)))
        cat = node.spec.category
        name = self._choice(self.ops[cat])
        args = list(node.args)
        if node.spec.windowed and self.rng.random() < 0.5:
            args[-1] = Expr.delta(self._choice(self.deltas))
        return _replace(a, path, Expr("op", name=name, args=tuple(args)))

    # ---- evolution ----------------------------------------------------------------------------------
    def fitness(self, e: Expr) -> float:
        """Cached fitness of ``e`` (the score function; a non-finite score counts as -1)."""
        k = e.key
        if k not in self.cache:
            v = self.fitness_fn(e)
            self.cache[k] = v if np.isfinite(v) else -1.0
        return self.cache[k]

    def _tournament(self, pop: list[Expr], fit: list[float]) -> Expr:
        idx = self.rng.integers(len(pop), size=min(self.cfg.tournament, len(pop)))
        return pop[int(max(idx, key=lambda i: fit[i]))]

    def run(self, on_generation: Callable[[int, list[tuple[float, Expr]]], None] | None = None) -> list[tuple[float, Expr]]:
        """Evolve; returns every evaluated (fitness, expr) sorted best first. ``on_generation(g, ranked)``."""
        cfg = self.cfg
        lo, hi = cfg.init_depth
        pop = [self._valid_tree(int(self.rng.integers(lo, hi + 1))) for _ in range(cfg.population)]
        best: dict[str, tuple[float, Expr]] = {}
        for g in range(cfg.generations):
            fit = [self.fitness(e) for e in pop]
            for f, e in zip(fit, pop, strict=False):
                best[e.key] = (f, e)
            ranked = sorted(best.values(), key=lambda t: -t[0])
            if on_generation is not None:
                on_generation(g, ranked)
            if g == cfg.generations - 1:
                break
            nxt: list[Expr] = [e for _, e in ranked[: max(1, cfg.population // 20)]]  # elitism
            while len(nxt) < cfg.population:
                r = self.rng.random()
                parent = self._tournament(pop, fit)
                if r < cfg.p_crossover:
                    child = self.crossover(parent, self._tournament(pop, fit))
                elif r < cfg.p_crossover + cfg.p_subtree:
                    child = self.subtree_mutation(parent)
                elif r < cfg.p_crossover + cfg.p_subtree + cfg.p_point:
                    child = self.point_mutation(parent)
                elif r < cfg.p_crossover + cfg.p_subtree + cfg.p_point + cfg.p_hoist:
                    child = self.hoist(parent)
                else:
                    child = parent
                nxt.append(child if self.ok(child) else parent)
            pop = nxt
        return sorted(best.values(), key=lambda t: -t[0])
