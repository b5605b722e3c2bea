"""A tiny Binance raw capture (combined-stream lines + one REST snapshot) shared by the binance-raw tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def capture_lines(gap: bool = False) -> list[str]:
    """Seven lines: a diff before the snapshot (dropped), one received before it that applies, the snapshot,
    a bookTicker, a trade, a diff (or an update-id gap with ``gap``), a bookTicker."""
    snap = {"lastUpdateId": 100, "bids": [["10.00", "1.5"], ["9.99", "2"]], "asks": [["10.01", "1"], ["10.03", "4"]]}

    def depth(U: int, u: int, b: list[Any], a: list[Any]) -> str:
        return json.dumps({"stream": "x@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": "XUSDT", "U": U, "u": u,
                                                               "b": b, "a": a}})

    def ticker(u: int, b: str, B: str, a: str, A: str) -> str:
        return json.dumps({"stream": "x@bookTicker", "data": {"u": u, "s": "XUSDT", "b": b, "B": B, "a": a, "A": A}})

    trade = json.dumps({"stream": "x@trade", "data": {"e": "trade", "E": 1, "s": "XUSDT", "t": 1, "p": "10.01",
                                                      "q": "0.5", "T": 1, "m": False}})
    return [
        "1 " + depth(90, 95, [["9.98", "1"]], []),
        "2 " + depth(96, 102, [["10.00", "0"]], [["10.02", "3"]]),
        "3 " + json.dumps(snap),
        "4 " + ticker(102, "9.99", "2", "10.01", "1"),
        "5 " + trade,
        "6 " + depth(104 if gap else 103, 105, [], [["10.01", "0.5"]]),
        "7 " + ticker(105, "9.99", "2", "10.01", "0.5"),
    ]


def write_capture(folder: Path, lines: list[str], name: str = "cap.gz") -> Path:
    """Gzip ``lines`` (one message each) into ``folder/name``."""
    p = folder / name
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return p
