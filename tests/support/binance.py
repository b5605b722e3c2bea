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


MIDNIGHT_NS = 19_944 * 86_400 * 10**9  # 2024-08-09 00:00 UTC


def long_capture_lines(n_diffs: int, *, seed: int = 0, late_price: str | None = None, usdm: bool = False,
                       ms_step: int = 7) -> list[str]:
    """A seeded capture of ``n_diffs`` applied diffs around midnight 2024-08-09 (so the rows span two store
    days): a diff that is dropped and one that applies received before the 40-level REST snapshot, then
    diffs of 0-6 level changes (an empty one, deletes, sizes of 0-3 decimals), a trade every third diff, a
    bookTicker every second one, and diffs whose receive time sometimes steps back (the book's clock keeps
    its running maximum; trades stay in time order, as the store requires). ``late_price``: the last trade's price (e.g. a finer tick than every earlier value)."""
    import random

    rng = random.Random(seed)
    last = 1_000
    t = MIDNIGHT_NS - (n_diffs * ms_step // 2) * 10**6

    def depth(U: int, u: int, b: list[Any], a: list[Any]) -> str:
        data: dict[str, Any] = {"e": "depthUpdate", "E": 1, "s": "XUSDT", "U": U, "u": u, "b": b, "a": a}
        if usdm:
            data["pu"] = U - 1
        return json.dumps({"stream": "x@depth", "data": data}, separators=(",", ":"))

    def qty() -> str:
        return rng.choice(["0", "1", "2.5", "0.125", "3.75", "10"])

    snap = {"lastUpdateId": last, "bids": [[f"{9.99 - 0.01 * i:.2f}", "1.5"] for i in range(20)],
            "asks": [[f"{10.01 + 0.01 * i:.2f}", "2"] for i in range(20)]}
    lines = [f"{t} " + depth(990, 995, [["9.98", "1"]], []),
             f"{t + 1} " + depth(996, last + 1, [["9.99", "0"]], [["10.02", "3"]]),
             f"{t + 2} " + json.dumps(snap)]
    u = last + 1
    t_trade = t  # trades keep their own receive order (the store requires it)
    for k in range(n_diffs - 1):
        t += rng.choice([ms_step, ms_step, ms_step, -3]) * 10**6  # the receive clock sometimes steps back
        n = 0 if k == 5 else rng.randint(1, 6)
        levels = [[f"{rng.choice([9.9, 10.1]) + 0.01 * rng.randint(-12, 12):.2f}", qty()] for _ in range(n)]
        bids = [lv for lv in levels if float(lv[0]) < 10.0]
        asks = [lv for lv in levels if float(lv[0]) >= 10.0]
        U, u = u + 1, u + rng.randint(1, 3)
        lines.append(f"{t} " + depth(U, u, bids, asks))
        if k % 3 == 0:
            trade = {"e": "trade", "E": 1, "s": "XUSDT", "t": k, "p": f"{10.0 + 0.01 * rng.randint(-3, 3):.2f}",
                     "q": rng.choice(["0.5", "1", "0.125"]), "T": 1, "m": bool(k % 2)}
            t_trade = max(t_trade + 1, t + 1)
            lines.append(f"{t_trade} " + json.dumps({"stream": "x@trade", "data": trade}))
        if k % 2 == 0:
            lines.append(f"{t + 2} " + json.dumps({"stream": "x@bookTicker", "data": {
                "u": u, "s": "XUSDT", "b": "9.99", "B": "1.5", "a": "10.01", "A": "2"}}))
    if late_price is not None:
        trade = {"e": "trade", "E": 1, "s": "XUSDT", "t": -1, "p": late_price, "q": "1", "T": 1, "m": False}
        lines.append(f"{max(t_trade, t) + 3} " + json.dumps({"stream": "x@trade", "data": trade}))
    return lines


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
