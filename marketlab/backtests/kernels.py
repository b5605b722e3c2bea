"""numba kernels of the backtester: holdings from vectorbt order records.

vectorbt's ``pf.value()`` / ``pf.asset_value()`` wrap every intermediate in pandas objects; for a
million bars that costs more than the simulation itself. The same numbers follow from the order records
in one pass: cash changes by ``-size * price - fees`` on a buy and ``+size * price - fees`` on a sell.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def holdings_nb(
    n_rows: int, n_cols: int, idx: np.ndarray, col: np.ndarray, size: np.ndarray, price: np.ndarray,
    fees: np.ndarray, side: np.ndarray, init_cash: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cash (T,) and shares (T, N) after each row's orders (one cash-sharing group).

    ``idx``/``col``/``size``/``price``/``fees``/``side`` are the order records' fields sorted by row
    (vectorbt writes them in time order); ``side`` 0 = buy, 1 = sell.
    """
    cash = np.empty(n_rows)
    shares = np.empty((n_rows, n_cols))
    c = init_cash
    pos = np.zeros(n_cols)
    k = 0
    n_orders = idx.shape[0]
    for t in range(n_rows):
        while k < n_orders and idx[k] == t:
            j = col[k]
            if side[k] == 0:
                c -= size[k] * price[k] + fees[k]
                pos[j] += size[k]
            else:
                c += size[k] * price[k] - fees[k]
                pos[j] -= size[k]
            k += 1
        cash[t] = c
        for j in range(n_cols):
            shares[t, j] = pos[j]
    return cash, shares
