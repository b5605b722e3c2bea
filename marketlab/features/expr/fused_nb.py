"""One numba pass for a whole elementwise sub-tree (CPU): ``Add(5, Mul(Div(close, -5), Abs(low)))`` etc.

Why: random grammar formulas are mostly elementwise ops with constants. Evaluated op by op, each node
reads and writes a whole ``[T, N]`` float32 array (12 MB on the CSI300 panel), allocates it (page faults),
and ``Div``/``Mul``/``Pow`` need one more pass to turn +-inf into NaN. Here the sub-tree is compiled in
Python into a small reverse-Polish program and interpreted by one fixed kernel over blocks of
``BLOCK`` elements: intermediate values live in a ``[depth, BLOCK]`` stack that stays in L1 cache, the
leaves are read once and the result written once.

Semantics equal the op-by-op torch evaluation in float32: ``Div`` by a constant multiplies by its float32
reciprocal (as the evaluator does), ``Div``/``Mul``/``Pow``/``Log`` map +-inf to NaN, ``Greater``/``Less``
propagate NaN, ``Sign`` of NaN is NaN. ``Log`` is not interpreted here: numpy's SIMD ``log`` is ~10x
faster than scalar ``logf``, so the evaluator makes ``Log`` nodes leaves of the program.

Program encoding (int64 ``code [n, 3]``): ``(opcode, mode, arg)``. ``LEAF`` pushes ``leaves[arg]``;
unary ops work on the top of the stack; binary ops with mode 0 pop ``b`` and apply to ``a`` in place,
mode 1 apply ``a op consts[arg]`` to the top, mode 2 ``consts[arg] op a``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 2048  # 8 KB per stack row: a deep program's stack still fits in L1/L2
LEAF, ABS, SIGN, ADD, SUB, MUL, DIV, POW, GREATER, LESS = range(10)
OPCODES = {"Abs": ABS, "Sign": SIGN, "Add": ADD, "Sub": SUB, "Mul": MUL, "Div": DIV, "Pow": POW,
           "Greater": GREATER, "Less": LESS}  # fmt: skip


NAN = np.float32(np.nan)


# Each op has its own straight loop (the opcode branch sits outside it) so LLVM vectorises it; an
# op-dispatch inside the element loop made the interpreter ~10x slower than one torch op.
@njit(cache=True, inline="always", error_model="numpy")
def _apply_vec(op, a, b, m):
    """a[:m] = a op b (element-wise, both stack rows)."""
    if op == ADD:
        for i in range(m):
            a[i] = a[i] + b[i]
    elif op == SUB:
        for i in range(m):
            a[i] = a[i] - b[i]
    elif op == MUL:
        for i in range(m):
            v = a[i] * b[i]
            a[i] = v if v - v == 0 else NAN  # v - v is NaN exactly for +-inf and NaN
    elif op == DIV:
        for i in range(m):
            v = a[i] / b[i]
            a[i] = v if v - v == 0 else NAN
    elif op == POW:
        for i in range(m):
            v = a[i] ** b[i]
            a[i] = v if v - v == 0 else NAN
    elif op == GREATER:
        for i in range(m):
            x = a[i]
            y = b[i]
            r = x if x >= y else y
            a[i] = r if (x == x and y == y) else NAN
    else:
        for i in range(m):
            x = a[i]
            y = b[i]
            r = x if x <= y else y
            a[i] = r if (x == x and y == y) else NAN


@njit(cache=True, inline="always")
def _clip_const(a, c, m, greater):
    """a[:m] = max(a, c) (``greater``) or min(a, c), NaN where ``a`` is NaN. One straight loop per case:
    a single loop testing ``greater`` per element measured 2x slower (no vectorisation)."""
    if greater:
        for i in range(m):
            x = a[i]
            a[i] = x if x >= c else (c if x == x else NAN)
    else:
        for i in range(m):
            x = a[i]
            a[i] = x if x <= c else (c if x == x else NAN)


@njit(cache=True, inline="always", error_model="numpy")
def _apply_const(op, a, c, m, const_left):
    """a[:m] = a op c, or c op a when ``const_left``."""
    if op == ADD:
        for i in range(m):
            a[i] = a[i] + c
    elif op == SUB:
        if const_left:
            for i in range(m):
                a[i] = c - a[i]
        else:
            for i in range(m):
                a[i] = a[i] - c
    elif op == MUL:
        for i in range(m):
            v = a[i] * c
            a[i] = v if v - v == 0 else NAN
    elif op == DIV:
        if const_left:
            for i in range(m):
                v = c / a[i]
                a[i] = v if v - v == 0 else NAN
        else:
            for i in range(m):
                v = a[i] / c
                a[i] = v if v - v == 0 else NAN
    elif op == POW:
        if const_left:
            for i in range(m):
                v = c ** a[i]
                a[i] = v if v - v == 0 else NAN
        else:
            for i in range(m):
                v = a[i] ** c
                a[i] = v if v - v == 0 else NAN
    elif c != c:  # GREATER / LESS with a NaN constant
        for i in range(m):
            a[i] = NAN
    else:  # GREATER / LESS: x vs c; a NaN x gives NaN
        _clip_const(a, c, m, op == GREATER)


@njit(cache=True, nogil=True, error_model="numpy")  # x / 0 -> inf (then NaN), never an exception
def run_program(code, consts, leaves, out, depth):
    """Evaluate the program over every element.

    code: int64 [n_instr, 3]; consts: float32 [n_const]; leaves: tuple of C-contiguous float32 1-D arrays
    (each the flattened ``[T, N]`` leaf); out: float32 [T*N] written in full; depth: max stack depth.
    """
    n = out.size
    stack = np.empty((depth, BLOCK), dtype=np.float32)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        sp = 0
        for k in range(code.shape[0]):
            op = code[k, 0]
            mode = code[k, 1]
            arg = code[k, 2]
            if op == LEAF:
                src = leaves[arg][start : start + m]  # views indexed from 0: no wrap-around checks, loops vectorise
                s = stack[sp]
                for i in range(m):
                    s[i] = src[i]
                sp += 1
            elif op == ABS:
                s = stack[sp - 1]
                for i in range(m):
                    s[i] = abs(s[i])
            elif op == SIGN:
                s = stack[sp - 1]
                for i in range(m):
                    v = s[i]
                    s[i] = np.float32(1.0) if v > 0 else (np.float32(-1.0) if v < 0 else v)  # 0 -> 0, NaN -> NaN
            elif mode == 0:
                _apply_vec(op, stack[sp - 2], stack[sp - 1], m)
                sp -= 1
            else:
                _apply_const(op, stack[sp - 1], consts[arg], m, mode == 2)
        s = stack[0]
        dst = out[start : start + m]
        for i in range(m):
            dst[i] = s[i]
