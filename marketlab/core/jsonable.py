"""Strict-JSON values: the one converter used by summaries, run folders and benchmark results."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np


def jsonable(o: Any) -> Any:
    """``o`` with NaN/inf -> None, numpy scalars/arrays -> Python, paths and other objects -> str.

    Containers are walked (dict keys become ``str``, tuples and sets become lists), so ``json.dumps`` of
    the result never writes ``NaN``/``Infinity`` and never fails on a numpy value.
    """
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [jsonable(v) for v in o]
    if o is None or isinstance(o, (bool, int, str)):
        return o
    if isinstance(o, Decimal):
        return jsonable(float(o))
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, np.generic):
        return jsonable(o.item())
    return str(o)
