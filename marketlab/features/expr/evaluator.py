"""Evaluate expression trees over a ``[days, stocks]`` panel of feature tensors, with a sub-expression cache.

Results are float32 ``[T, N]`` tensors on the evaluator's device. Non-finite results (``Log`` of a negative
number, division by zero) become NaN, so NaN is the single "no value" marker downstream. Results are cached
under their canonical key (:attr:`Expr.key`), least-recently-used first out when the byte budget is
exceeded: every evaluated formula, and every node that is not elementwise (rolling, cross-sectional,
``Log``); RL and GP search re-use sub-expressions heavily, so a hit skips whole sub-trees. On CPU
(engine "auto") elementwise sub-trees run as one fused numba pass (:mod:`.fused_nb`) and their inner
nodes are not cached: recomputing them costs less than a fresh buffer per cache entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch

from marketlab.core.errors import DataError
from marketlab.features.expr import kernels as K
from marketlab.features.expr.parser import parse
from marketlab.features.expr.tree import Expr

Tensor = torch.Tensor

_FUSABLE = frozenset({"Abs", "Sign", "Add", "Sub", "Mul", "Div", "Pow", "Greater", "Less"})
_MAX_LEAVES = 8  # the kernel is specialised per leaf count (a tuple of arrays): bound the compiled variants


def _empty(shape: tuple[int, int]) -> Tensor:
    """A fresh CPU float32 result buffer from torch's allocator. Not ``np.empty``: numpy advises the kernel
    to back large arrays with huge pages, and with THP defrag = "madvise" each first touch can stall in
    memory compaction (measured: ~25 ms per 12 MB result instead of ~1 ms), which made every cached
    (hence freshly allocated) result expensive."""
    return torch.empty(shape, dtype=torch.float32)


class _NoFuse(Exception):
    """The sub-tree does not fit the fused kernel; evaluate it op by op."""


class Evaluator:
    """Evaluates expressions over fixed feature tensors.

    ``features``: name -> ``[T, N]`` tensor (float32; NaN where a stock has no value that day).
    ``cache_bytes``: LRU budget for cached sub-expression results (0 disables the cache).
    ``engine``: ``"auto"`` (numba on CPU, torch on CUDA) or ``"torch"``.
    """

    def __init__(
        self,
        features: Mapping[str, Tensor],
        *,
        device: torch.device | str | None = None,
        cache_bytes: int = 1 << 30,
        source: str = "panel",
        engine: str = "auto",
    ) -> None:
        if not features:
            raise DataError(source, "no feature tensors given")
        dev = torch.device(device) if device is not None else next(iter(features.values())).device
        self.features = {k: v.to(dev, torch.float32) for k, v in features.items()}
        shapes = {tuple(v.shape) for v in self.features.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise DataError(source, f"feature tensors must share one [days, stocks] shape, got {sorted(shapes)}")
        self.shape: tuple[int, int] = next(iter(shapes))  # type: ignore[assignment]
        self.device = dev
        self.source = source
        # "auto": numba loops on CPU, torch kernels on CUDA; "torch" forces the torch kernels everywhere
        self.engine = engine
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._cached_bytes = 0
        self.hits = 0
        self.misses = 0
        # elementwise sub-trees run as one numba pass on CPU ("auto"); torch op by op elsewhere
        self._fuse = engine == "auto" and dev.type == "cpu"

    # ---- cache --------------------------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Drop every cached sub-expression result."""
        self._cache.clear()
        self._cached_bytes = 0

    def _get(self, key: str) -> Tensor | None:
        t = self._cache.get(key)
        if t is not None:
            self._cache.move_to_end(key)
            self.hits += 1
        return t

    def _put(self, key: str, t: Tensor) -> None:
        if self.cache_bytes <= 0:
            return
        size = t.numel() * t.element_size()
        if size > self.cache_bytes:
            return
        self._cache[key] = t
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.numel() * old.element_size()

    # ---- evaluation ---------------------------------------------------------------------------------
    def check(self, expr: Expr, text: str | None = None) -> None:
        """Raise a one-line :class:`DataError` when the panel is too short for the expression's windows."""
        T = self.shape[0]
        need = expr.lookback + expr.lookahead
        if need >= T:
            raise DataError(
                self.source,
                f"formula {text or str(expr)!r} needs {need + 1} days of data (look-back {expr.lookback}, "
                f"look-ahead {expr.lookahead}) but the panel has {T} days",
            )
        for node in expr.walk():
            if node.kind == "feature" and node.name not in self.features:
                raise DataError(
                    self.source, f"unknown feature {node.name!r} (panel has {', '.join(self.features)})"
                )

    def __call__(self, expr: Expr | str, *, allow_future: bool = False) -> Tensor:
        """Evaluate ``expr`` (a tree or a formula string) to a float32 ``[T, N]`` tensor."""
        text = expr if isinstance(expr, str) else None
        e = parse(expr, allow_future=allow_future) if isinstance(expr, str) else expr
        self.check(e, text)
        value = self._eval(e)
        out = torch.full(self.shape, value, dtype=torch.float32, device=self.device) if isinstance(value, float) else value
        if e.kind == "op" and e.key not in self._cache:  # a fused root: cache the formula a search may ask again
            self._put(e.key, out)
        return out

    evaluate = __call__

    def _eval(self, e: Expr) -> Tensor | float:
        if e.kind == "feature":
            return self.features[e.name]
        if e.kind in ("const", "delta"):
            return e.value
        hit = self._get(e.key)
        if hit is not None:
            return hit
        self.misses += 1
        if self._fuse and e.name in _FUSABLE:
            out = self._fused(e)
            if out is not None:
                # not cached: re-running a fused elementwise pass (~1 ms) is cheaper than keeping its result
                # (a fresh 12 MB buffer per entry costs page faults, measured: caching every node made the
                # benchmark mix slower). Whole formulas are cached by __call__.
                return out
        out = self._apply(e)
        if e.name in ("Div", "Log", "Pow", "Mul", "Kurt", "Skew"):  # the ops that can make +-inf
            # in place on the fresh result: one pass (masked_fill(isinf) costs ~10x more on CPU)
            out.nan_to_num_(nan=float("nan"), posinf=float("nan"), neginf=float("nan"))
        self._put(e.key, out)
        return out

    def _tensor(self, v: Tensor | float) -> Tensor:
        if isinstance(v, Tensor):
            return v
        return torch.full(self.shape, float(v), dtype=torch.float32, device=self.device)

    def _apply(self, e: Expr) -> Tensor:
        name = e.name
        spec = e.spec
        if spec.category == "unary":
            x = self._tensor(self._eval(e.args[0]))
            if name == "Abs":
                return x.abs()
            if name == "Log":
                if self._fuse:  # numpy's SIMD log: ~1 ms on the CSI300 panel where torch's CPU log takes 13-70 ms
                    out = _empty(self.shape)
                    with np.errstate(all="ignore"):
                        np.log(x.detach().contiguous().numpy(), out=out.numpy())
                    return out
                return x.log()  # NaN below 0; -inf at 0 becomes NaN in _eval
            if name == "Sign":
                return x.sign().masked_fill_(x.isnan(), float("nan"))  # torch.sign(NaN) is 0: keep "no value"
            if name in ("CSRank", "CSZScore"):
                return K.cross_section(name, x, self.engine)
        elif spec.category == "binary":
            a, b = self._eval(e.args[0]), self._eval(e.args[1])
            if name == "Add":
                return self._tensor(a + b)
            if name == "Sub":
                return self._tensor(a - b)
            if name == "Mul":
                return self._tensor(a * b)
            if name == "Div":
                return self._tensor(a / b) if isinstance(b, Tensor) else self._tensor(a * (1.0 / b) if b else a * torch.nan)
            if name == "Pow":
                if isinstance(a, Tensor):
                    return torch.pow(a, b)
                return torch.pow(torch.tensor(a, device=self.device), b)
            if name in ("Greater", "Less"):
                if not isinstance(a, Tensor) or not isinstance(b, Tensor):  # clamp: no constant tensor, NaN kept
                    varying, c = (a, float(b)) if isinstance(a, Tensor) else (b, float(a))
                    assert isinstance(varying, Tensor)  # the parser refuses a Greater/Less of two constants
                    return varying.clamp(min=c) if name == "Greater" else varying.clamp(max=c)
                return torch.maximum(a, b) if name == "Greater" else torch.minimum(a, b)
        elif spec.category == "rolling":
            x = self._tensor(self._eval(e.args[0]))
            return K.rolling(name, x, e.window, self.engine)
        elif spec.category == "pair_rolling":
            x = self._tensor(self._eval(e.args[0]))
            y = self._tensor(self._eval(e.args[1]))
            return K.pair_rolling(name, x, y, e.window, self.engine)
        raise AssertionError(f"unhandled operator {name}")  # every OpSpec is handled above

    def _fused(self, e: Expr) -> Tensor | None:
        """Evaluate the elementwise sub-tree under ``e`` in one numba pass (see :mod:`.fused_nb`).

        Leaves are features, constants, non-elementwise nodes, ``Log`` (numpy SIMD) and nodes already in
        the cache (so repeated sub-expressions are still reused); they are evaluated through ``_eval``.
        Returns None when the tree does not fit the kernel (too many distinct leaves, a bare constant).
        """
        from marketlab.features.expr import fused_nb as FN

        code: list[tuple[int, int, int]] = []
        consts: list[float] = []
        leaf_nodes: dict[str, Expr] = {}

        def leaf(node: Expr) -> int:
            leaf_nodes.setdefault(node.key, node)
            code.append((FN.LEAF, 0, list(leaf_nodes).index(node.key)))
            return 1

        def emit(node: Expr, root: bool = False) -> int:  # returns the stack depth the sub-program needs
            if node.kind == "const" or node.kind == "delta":
                raise _NoFuse
            if node.kind != "op" or node.name not in _FUSABLE or (not root and node.key in self._cache):
                return leaf(node)
            op = FN.OPCODES[node.name]
            if node.spec.category == "unary":
                d = emit(node.args[0])
                code.append((op, 0, 0))
                return d
            a, b = node.args
            if b.kind == "const" and a.kind != "const":
                d = emit(a)
                c = float(b.value)
                if node.name == "Div":  # the evaluator divides by a constant as a product with its reciprocal
                    op, c = FN.MUL, (1.0 / c if c else float("nan"))
                consts.append(c)
                code.append((op, 1, len(consts) - 1))
                return d
            if a.kind == "const" and b.kind != "const":
                d = emit(b)
                consts.append(float(a.value))
                code.append((op, 2, len(consts) - 1))
                return d
            d1 = emit(a)
            d2 = emit(b)
            code.append((op, 0, 0))
            return max(d1, d2 + 1)

        try:
            depth = emit(e, root=True)
        except _NoFuse:
            return None
        if len(leaf_nodes) > _MAX_LEAVES:
            return None
        leaves = tuple(K._np(self._tensor(self._eval(n))).reshape(-1) for n in leaf_nodes.values())
        out = _empty(self.shape)
        FN.run_program(np.asarray(code, dtype=np.int64), np.asarray(consts, dtype=np.float32), leaves, out.view(-1).numpy(), depth)
        return out

    @property
    def cache_info(self) -> dict[str, int]:
        """Cache hits, misses, entries and bytes."""
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._cache), "bytes": self._cached_bytes}
