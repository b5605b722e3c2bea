"""Binance test inputs: a tiny raw capture (combined-stream lines + one REST snapshot) shared by the binance-raw
tests, and three real spot kline rows shared by the ohlcv tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

# Real BTCUSDT rows of 2022-01-01 00:00-00:02 UTC (binance_spot_1m_klines_btcusdt_ethusdt_2022_2023/SOURCE.md).
KLINE_ROWS = [
    "1640995200000,46216.93000000,46271.08000000,46208.37000000,46250.00000000,40.57574000,1640995259999,"
    "1875978.44269790,796,27.26086000,1260270.37206270,0",
    "1640995260000,46250.00000000,46344.23000000,46234.39000000,46312.76000000,42.38106000,1640995319999,"
    "1961908.27328950,973,28.92522000,1339049.49591330,0",
    "1640995320000,46312.76000000,46381.69000000,46292.75000000,46368.73000000,51.29955000,1640995379999,"
    "2377413.92816950,1238,22.74786000,1054134.62555590,0",
]


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


KLINES = "binance_spot_1m_klines_btcusdt_ethusdt_2022_2023"


def kline_days(shared: Path, dest: Path, days: dict[str, list[str]]) -> Path:
    """``dest`` filled with copies of the staged daily kline zips of ``days`` (symbol -> ISO dates): a few real
    days a test can ingest (or name as a MacroHFT spec's ``archives``) instead of the two-year folder."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for symbol, dates in days.items():
        for d in dates:
            shutil.copy(shared / KLINES / f"{symbol}-1m-{d}.zip", dest)
    return dest
