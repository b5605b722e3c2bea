"""Order execution for target-weight rebalancing: numba kernels that reproduce vectorbt's fill arithmetic.

The env, the batched torch env and the backtester share one accounting convention, vectorbt's
``Portfolio.from_orders(size_type="targetpercent", cash_sharing=True, call_seq="auto")``:

* value ``V = cash + sum(shares * price)`` at the decision price (the bar close);
* target shares ``w * V / price``; orders run in ascending approximate order value (sells first, so
  freed cash funds the buys);
* a buy pays ``price * (1 + slippage)`` plus ``fees`` on the traded value and is cut to the cash on hand
  (no leverage through borrowing); a sell receives ``price * (1 - slippage)`` minus fees, and short
  sales credit cash;
* values within 1e-9 relative of each other are treated as equal, as vectorbt does.

Matching vectorbt to the last bit is what lets a test check env and backtester agree to 1e-9.
"""

from __future__ import annotations

import numpy as np
from numba import njit

REL_TOL = 1e-9
ABS_TOL = 1e-12


@njit(cache=True)
def is_close_nb(a: float, b: float) -> bool:
    """vectorbt's tolerance: equal, or within max(1e-9 relative, 1e-12 absolute)."""
    if np.isnan(a) or np.isnan(b) or np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@njit(cache=True)
def add_nb(a: float, b: float) -> float:
    """a + b, snapped to 0 when the two cancel within tolerance."""
    if np.sign(a) != np.sign(b):
        if is_close_nb(abs(a), abs(b)):
            return 0.0
    elif is_close_nb(a + b, 0.0):
        return 0.0
    return a + b


@njit(cache=True)
def order_nb(
    cash: float, position: float, delta: float, price: float, fees: float, slippage: float
) -> tuple[float, float, float, float]:
    """Execute ``delta`` shares (+ buy, - sell) at ``price``; returns (cash, position, filled, fees_paid).

    Buys are cut to the available cash (fees included); zero or tiny orders are ignored.
    """
    if is_close_nb(cash, 0.0):
        cash = 0.0
    if is_close_nb(position, 0.0):
        position = 0.0
    if delta > 0:
        if cash == 0.0:
            return cash, position, 0.0, 0.0
        adj_price = price * (1.0 + slippage)
        if is_close_nb(delta, 0.0):
            return cash, position, 0.0, 0.0
        req_cash = delta * adj_price
        req_fees = req_cash * fees
        total = req_cash + req_fees
        if is_close_nb(total, cash) or total < cash:
            size = delta
            fees_paid = req_fees
            spent = total
        else:
            max_req = cash / (1.0 + fees)
            if max_req <= 0:
                return cash, position, 0.0, 0.0
            size = max_req / adj_price
            fees_paid = cash - max_req
            spent = cash
        return add_nb(cash, -spent), add_nb(position, size), size, fees_paid
    size = -delta
    if is_close_nb(size, 0.0) or size == 0.0:
        return cash, position, 0.0, 0.0
    adj_price = price * (1.0 - slippage)
    acq = size * adj_price
    fees_paid = acq * fees
    final = add_nb(acq, -fees_paid)
    if final < 0:
        return cash, position, 0.0, 0.0
    return cash + final, add_nb(position, -size), -size, fees_paid


@njit(cache=True)
def rebalance_at_nb(
    cash: float, shares: np.ndarray, close: np.ndarray, t: int, target: np.ndarray, active: np.ndarray, fees: float, slippage: float
) -> tuple[float, float, float]:
    """:func:`rebalance_nb` at row t of ``close`` (T, N) (saves the Python-side row slice per step)."""
    return rebalance_nb(cash, shares, close[t], target, active, fees, slippage)


@njit(cache=True)
def value_weights_at_nb(cash: float, shares: np.ndarray, close: np.ndarray, t: int) -> tuple[float, np.ndarray]:
    """Net value at row t of ``close`` (T, N) and the weights (N,) = shares * close[t] / value (zeros
    when value <= 0); one call for both (the single env's step pays one dispatch, not two)."""
    value = portfolio_value_nb(cash, shares, close[t])
    n = shares.shape[0]
    out = np.zeros(n)
    if value > 0:
        for j in range(n):
            out[j] = shares[j] * close[t, j] / value
    return value, out


@njit(cache=True)
def same_nb(a: np.ndarray, b: np.ndarray) -> bool:
    """Exact element-wise equality of two (N,) arrays (cheaper than np.array_equal for tiny arrays)."""
    for j in range(a.shape[0]):
        if a[j] != b[j]:
            return False
    return True


@njit(cache=True)
def rebalance_nb(
    cash: float,
    shares: np.ndarray,
    price: np.ndarray,
    target: np.ndarray,
    active: np.ndarray,
    fees: float,
    slippage: float,
) -> tuple[float, float, float]:
    """Rebalance ``shares`` (N,) in place towards target weights ``target`` (N,) at ``price`` (N,).

    Only assets with ``active[j]`` trade (the others keep their shares: "no order", vectorbt's NaN size).
    Returns (cash, fees paid, traded notional at the execution prices) in currency units.
    """
    n = shares.shape[0]
    value = cash
    for j in range(n):
        if shares[j] != 0:
            value += shares[j] * price[j]
    # Ascending approximate order value (vectorbt call_seq="auto"), stable like its insertion sort.
    approx = np.empty(n)
    for j in range(n):
        approx[j] = target[j] * value - shares[j] * price[j] if active[j] else np.nan
    order = np.argsort(approx, kind="mergesort")
    paid = 0.0
    traded = 0.0
    if value <= 0:
        return cash, paid, traded
    for k in range(n):
        j = order[k]
        if not active[j]:
            continue
        pos = shares[j]
        if is_close_nb(pos, 0.0):
            pos = 0.0
        delta = target[j] * value / price[j] - pos
        cash, new_pos, filled, fee = order_nb(cash, pos, delta, price[j], fees, slippage)
        if filled != 0.0:
            shares[j] = new_pos
            paid += fee
            traded += abs(filled) * price[j] * (1.0 + slippage if filled > 0 else 1.0 - slippage)
    return cash, paid, traded


@njit(cache=True)
def portfolio_value_nb(cash: float, shares: np.ndarray, price: np.ndarray) -> float:
    """cash + sum(shares * price), skipping zero positions like vectorbt (so NaN prices of flat assets are ok)."""
    v = cash
    for j in range(shares.shape[0]):
        if shares[j] != 0:
            v += shares[j] * price[j]
    return v


@njit(cache=True)
def simulate_weights_nb(
    close: np.ndarray, weights: np.ndarray, init_cash: float, fees: float, slippage: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replay target weights over a whole path: the env's accounting as one kernel.

    Args:
        close: (T, N) execution and valuation prices.
        weights: (T, N) target weights decided at row t (NaN = no order for that asset at t).
    Returns:
        value (T,) after trading at row t and valued at close t; fees (T,); traded notional (T,).
    """
    t_len, n = close.shape
    shares = np.zeros(n)
    cash = init_cash
    value = np.empty(t_len)
    fees_out = np.zeros(t_len)
    traded_out = np.zeros(t_len)
    active = np.empty(n, dtype=np.bool_)
    tgt = np.empty(n)
    for t in range(t_len):
        any_active = False
        for j in range(n):
            active[j] = not np.isnan(weights[t, j])
            tgt[j] = 0.0 if np.isnan(weights[t, j]) else weights[t, j]
            any_active = any_active or active[j]
        if any_active:
            cash, fees_out[t], traded_out[t] = rebalance_nb(cash, shares, close[t], tgt, active, fees, slippage)
        value[t] = portfolio_value_nb(cash, shares, close[t])
    return value, fees_out, traded_out
