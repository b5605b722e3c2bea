"""core.jsonable: strict JSON out of summaries holding NaN, infinities, numpy values, tuples and paths."""

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np

from marketlab.core.jsonable import jsonable


def test_non_finite_numbers_become_null_at_any_depth() -> None:
    got = jsonable({"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": np.float64("nan")}})
    assert got == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": None}}
    json.dumps(got, allow_nan=False)  # strict JSON: would raise on a NaN left behind


def test_numpy_decimal_path_and_keys_are_converted() -> None:
    got = jsonable({1: np.int64(3), "arr": np.array([0.5, np.nan]), "dec": Decimal("0.25"), "p": Path("/x/y"),
                    "flag": np.bool_(True)})
    assert got == {"1": 3, "arr": [0.5, None], "dec": 0.25, "p": "/x/y", "flag": True}
    assert type(got["1"]) is int and type(got["flag"]) is bool
    assert json.loads(json.dumps(got, allow_nan=False)) == got
