"""The alpha pool: at most ``capacity`` formulas combined linearly, scored by the IC of the combination.

Every alpha (and the target) is viewed through :func:`normalize_by_day` on the training rows (z-score per
day over the stock-days that count, 0 elsewhere). The pool caches each member's product moment with the
target, ``ic_i = day_inner(z_i, y)``, and the mutual matrix ``M_ij = day_inner(z_i, z_j)`` (a Gram matrix:
positive semi-definite, so the objective below is a true correlation in [-1, 1]); the weights minimise

    L(w) = wᵀ M w - 2 wᵀ ic + l1 · ||w||₁

(the MSE between the combination and the normalised target, written with cached statistics) by exact
cyclic coordinate descent — deterministic, converged in a few sweeps for k ≤ 100. The objective is the
combination's correlation with the target from the cache, ``w·ic / sqrt(wᵀ M w · M_yy)``.

Adding a candidate: reject NaN / near-zero ICs, reject a near-duplicate of a member when ``|ρ| > 0.99``
(two-sided: a negated copy is as redundant as a copy — the reference tested only ``ρ > 0.99``), refit,
prune the smallest ``|w|`` while over capacity, and keep the change only if the objective improved.

Reward choice: the **increment** of the objective (``new - old``, 0 when the pool is unchanged). The
reference returns the objective *level*, which with γ = 1 makes the value baseline chase a pool level that
rises during training; the increment is stationary in scale, is exactly the candidate's contribution to the
combination, and is 0 for duplicates and rejections, so PPO's advantage needs no moving target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from numba import njit

from marketlab.features.expr import Expr
from marketlab.features.ic import day_inner, normalize_by_day, pool_ic_from_cache


def fit_weights(mutual: np.ndarray, ic: np.ndarray, l1: float, sweeps: int = 200, tol: float = 1e-9) -> np.ndarray:
    """Minimise ``wᵀMw - 2wᵀic + l1·|w|₁`` by cyclic coordinate descent (soft-thresholding). ``[k]`` -> ``[k]``."""
    M = np.ascontiguousarray(mutual, dtype=np.float64)
    b = np.ascontiguousarray(ic, dtype=np.float64)
    return _coordinate_descent(M, b, float(l1), int(sweeps), float(tol))


@njit(cache=True)
def _coordinate_descent(M: np.ndarray, b: np.ndarray, l1: float, sweeps: int, tol: float) -> np.ndarray:
    # compiled: at k = 100 a refit is ~10^4 coordinate updates, twice per candidate when the pool is full
    # (fit, prune, refit), which interpreted Python made a fifth of a mining step
    k = b.shape[0]
    w = np.zeros(k)
    for _ in range(sweeps):
        delta = 0.0
        for i in range(k):
            # d/dw_i: 2 M_ii w_i + 2 Σ_{j≠i} M_ij w_j - 2 b_i + l1 sign(w_i) = 0
            rho = b[i]
            for j in range(k):
                if j != i:
                    rho -= M[i, j] * w[j]
            new = np.sign(rho) * max(abs(rho) - l1 / 2.0, 0.0) / max(M[i, i], 1e-12)
            delta = max(delta, abs(new - w[i]))
            w[i] = new
        if delta < tol:
            break
    return w


@dataclass
class AddResult:
    """Outcome of :meth:`AlphaPool.try_add`."""

    accepted: bool
    reward: float
    objective: float
    reason: str
    ic: float = float("nan")


@dataclass
class AlphaPool:
    """Linear alpha pool over normalised training tensors.

    ``target_z``: normalised target ``[T, N]`` (zeros where missing); ``mask``: stock-days that count.
    """

    capacity: int
    target_z: torch.Tensor
    mask: torch.Tensor | None = None
    l1: float = 5e-3
    dup_threshold: float = 0.99
    min_abs_ic: float = 1e-4
    exprs: list[Expr] = field(default_factory=list)
    ics: list[float] = field(default_factory=list)  # correlation of each member with the target
    raw_ics: list[float] = field(default_factory=list)  # day_inner(z_i, y): the fit's linear term
    mutual: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    objective: float = 0.0
    _seen: dict[str, AddResult] = field(default_factory=dict)
    n_tried: int = 0
    diag: list[float] = field(default_factory=list)  # M_ii: coverage of each member

    def __post_init__(self) -> None:
        m = self.mask if self.mask is not None else torch.ones_like(self.target_z, dtype=torch.bool)
        self._n = m.sum(1)  # stock-days that count, per day
        self.target_sq = day_inner(self.target_z, self.target_z, self._n)
        # day_inner(a, b) = Σ_t w_t Σ_s a_ts b_ts with w_t = 1 / (n_t · #days with n_t > 0) (0 on empty days):
        # normalised values are finite, so the per-day weights can be applied after one batched product
        n = self._n.to(torch.float64)
        live = n > 0
        day_w = torch.where(live, 1.0 / n.clamp_min(1.0), 0.0) / max(int(live.sum()), 1)
        # members are kept compact: only the stock-days that count (normalised values are 0 elsewhere, so no
        # inner product changes), e.g. ~300 index members of 751 listed CSI300 stocks per day
        self._cells = m.reshape(-1).nonzero().squeeze(1)
        self._cell_w = day_w.to(torch.float32).unsqueeze(1).expand(m.shape).reshape(-1)[self._cells]
        # member i lives in row _slot_of[i] of a buffer of at most capacity + 1 rows (members hold rows 0..size-1;
        # a full pool's candidate takes its pruned member's row), so accepting a formula writes one row instead of
        # re-stacking all k members
        self._slots = torch.zeros((0, len(self._cells)), dtype=torch.float32)
        self._slot_of: list[int] = []

    @property
    def size(self) -> int:
        """Number of members."""
        return len(self.exprs)

    @property
    def values(self) -> list[torch.Tensor]:
        """The members' normalised training values ``[T, N]`` (0 outside the mask), in :attr:`exprs` order."""
        out = []
        for slot in self._slot_of:
            full = torch.zeros(self.target_z.numel(), dtype=torch.float32)
            full[self._cells] = self._slots[slot]
            out.append(full.reshape(self.target_z.shape))
        return out

    def normalise(self, values: torch.Tensor) -> torch.Tensor:
        """The pool's view of raw alpha values on the training rows (z-score per day, 0 where missing)."""
        return normalize_by_day(values, self.mask)

    def _inner(self, za: torch.Tensor, zb: torch.Tensor) -> float:
        return day_inner(za, zb, self._n)

    def try_add(self, expr: Expr, values: torch.Tensor) -> AddResult:
        """Offer ``expr`` with its raw training values ``[T, N]``; returns the result and reward (increment)."""
        self.n_tried += 1
        key = expr.key
        if key in self._seen or any(e.key == key for e in self.exprs):
            prev = self._seen.get(key)
            return AddResult(False, 0.0, self.objective, "seen before", prev.ic if prev else float("nan"))
        z = self.normalise(values)
        sq = self._inner(z, z)
        ic_raw = self._inner(z, self.target_z)
        ic = ic_raw / np.sqrt(sq * self.target_sq) if sq > 0 and self.target_sq > 0 else float("nan")
        if not np.isfinite(ic) or abs(ic) < self.min_abs_ic:
            return self._remember(key, AddResult(False, 0.0, self.objective, "no signal (IC nan or ~0)", ic))
        mut = self._mutual_with(z)
        rho = mut / np.sqrt(sq * np.array(self.diag)) if mut.size else mut
        if rho.size and (not np.all(np.isfinite(rho)) or np.max(np.abs(rho)) > self.dup_threshold):
            return self._remember(key, AddResult(False, 0.0, self.objective, "near-duplicate of a member", ic))
        k = self.size
        M = np.empty((k + 1, k + 1))
        M[:k, :k] = self.mutual
        M[k, :k] = M[:k, k] = mut
        M[k, k] = sq
        ics = np.array(self.raw_ics + [ic_raw])
        idx = list(range(k + 1))
        w = fit_weights(M, ics, self.l1)
        while len(idx) > self.capacity:
            drop = int(np.argmin(np.abs(w)))
            idx.pop(drop)
            sub = np.ix_(idx, idx)
            w = fit_weights(M[sub], ics[idx], self.l1)
        if k not in idx:
            return self._remember(key, AddResult(False, 0.0, self.objective, "pruned: smallest weight", ic))
        sub = np.ix_(idx, idx)
        obj = pool_ic_from_cache(w, ics[idx], M[sub], self.target_sq)
        if obj <= self.objective + 1e-12:
            return self._remember(key, AddResult(False, 0.0, self.objective, "no improvement", ic))
        gain = obj - self.objective
        all_exprs = self.exprs + [expr]
        all_slots = self._slot_of + [self._row_for_candidate(idx)]
        self._slots[all_slots[k]] = self._compact(z)
        self.exprs = [all_exprs[i] for i in idx]
        self._slot_of = [all_slots[i] for i in idx]
        all_ic = self.ics + [ic]
        self.ics = [float(all_ic[i]) for i in idx]
        self.raw_ics = [float(ics[i]) for i in idx]
        self.mutual = M[sub]
        self.diag = [float(M[i, i]) for i in idx]
        self.weights = w
        self.objective = obj
        return AddResult(True, gain, obj, "added", ic)

    def _mutual_with(self, z: torch.Tensor) -> np.ndarray:
        """``[k]`` day inner products of ``z`` with every member: ``day_inner(z, v_i)`` summed in float32 (one BLAS
        matrix-vector product over the rows in use; relative rounding ~1e-6, far below the 0.99 duplicate
        threshold's resolution)."""
        if not self._slot_of:
            return np.zeros(0)
        products = torch.mv(self._slots[: len(self._slot_of)], self._compact(z) * self._cell_w)
        return products[self._slot_of].to(torch.float64).numpy()

    def _compact(self, z: torch.Tensor) -> torch.Tensor:
        """``[T, N]`` -> ``[cells]``: the stock-days that count, float32."""
        return z.reshape(-1)[self._cells].to(torch.float32)

    def _row_for_candidate(self, survivors: list[int]) -> int:
        """The buffer row an accepted candidate takes: the row of the member it pruned, else the next row (members
        always hold rows ``0 .. size-1``); grows the buffer geometrically up to ``capacity + 1`` rows."""
        k = len(self._slot_of)
        pruned = [self._slot_of[i] for i in range(k) if i not in survivors]
        if pruned:
            return pruned[0]
        if k == len(self._slots):
            rows = min(max(2 * k, 4), self.capacity + 1) - k
            self._slots = torch.cat([self._slots, self._slots.new_zeros((rows, self._slots.shape[1]))])
        return k

    def _remember(self, key: str, res: AddResult) -> AddResult:
        self._seen[key] = res
        return res

    def snapshot(self) -> dict:
        """Everything :meth:`try_add` depends on, JSON-able (floats round-trip exactly), for exact resume."""
        return {
            "formulas": [str(e) for e in self.exprs],
            "ics": self.ics, "raw_ics": self.raw_ics, "diag": self.diag,
            "mutual": self.mutual.tolist(), "weights": self.weights.tolist(),
            "objective": self.objective, "n_tried": self.n_tried,
            "seen": {k: [r.accepted, r.reward, r.objective, r.reason, r.ic] for k, r in self._seen.items()},
        }  # fmt: skip

    def restore(self, snap: dict, exprs: list[Expr], values: list[torch.Tensor]) -> None:
        """Inverse of :meth:`snapshot`; ``exprs``/``values``: the members parsed and evaluated again (raw values)."""
        self.exprs = list(exprs)
        rows = [self._compact(self.normalise(v)) for v in values]
        self._slots = torch.stack(rows) if rows else self._slots[:0]
        self._slot_of = list(range(len(rows)))
        self.ics, self.raw_ics, self.diag = list(snap["ics"]), list(snap["raw_ics"]), list(snap["diag"])
        k = len(self.exprs)
        self.mutual = np.asarray(snap["mutual"], dtype=np.float64).reshape(k, k)
        self.weights = np.asarray(snap["weights"], dtype=np.float64)
        self.objective, self.n_tried = float(snap["objective"]), int(snap["n_tried"])
        self._seen = {key: AddResult(bool(a), float(r), float(o), str(why), float(ic))
                      for key, (a, r, o, why, ic) in snap["seen"].items()}  # fmt: skip

    def combine(self, normalised: list[torch.Tensor]) -> torch.Tensor:
        """``Σ w_i z_i`` for member tensors normalised on any rows (same order as :attr:`exprs`)."""
        out = torch.zeros_like(normalised[0])
        for w, z in zip(self.weights, normalised, strict=False):
            out += float(w) * z
        return out

    def state(self) -> dict:
        """JSON-able description (formulas, weights, training ICs, objective)."""
        return {
            "capacity": self.capacity,
            "objective_train_ic": self.objective,
            "n_tried": self.n_tried,
            "alphas": [
                {"formula": str(e), "weight": float(w), "train_ic": float(ic)}
                for e, w, ic in zip(self.exprs, self.weights, self.ics, strict=False)
            ],
        }
