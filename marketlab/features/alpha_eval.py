"""What ``marketlab alpha eval`` runs: one formula's IC against a target over a panel dataset of the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from marketlab.core.errors import MarketlabError


def parse_period(period: str | None) -> tuple[str | None, str | None]:
    """``"START:END"`` (either side may be empty) -> ``(start, end)``; None -> the whole panel."""
    if not period:
        return None, None
    if period.count(":") != 1:
        raise MarketlabError(f"--period must be START:END, got {period!r}")
    start, end = period.split(":")
    return start or None, end or None


def evaluate_formula(formula: str, dataset: str, *, store: str | Path | None = None, period: str | None = None,
                     target: str = "Ref(close, -20) / close - 1",
                     universe: str = "all") -> dict[str, Any]:
    """IC, RankIC, ICIR and coverage of ``formula`` against ``target`` on ``dataset`` over ``period``.

    ``universe``: ``"all"`` (every traded stock-day) or ``"members"`` (in-universe stock-days only).
    Bad formulas, periods or datasets are one-line :class:`MarketlabError` s. Returns a JSON-able summary.
    """
    from marketlab.core.device import get_device
    from marketlab.features.expr import Evaluator, parse
    from marketlab.features.ic import ic_summary
    from marketlab.features.panel_tensor import panel_to_tensors
    from marketlab.store import Store

    t0 = time.perf_counter()
    expr = parse(formula)
    tgt = parse(target, allow_future=True)
    if universe not in ("members", "all"):
        raise MarketlabError(f"--universe must be members or all, got {universe!r}")
    start, end = parse_period(period)
    panel = panel_to_tensors(Store(store).scan_panel(dataset), device=get_device("auto"), source=dataset)
    ev = Evaluator(panel.features, source=dataset)
    f = ev(expr, allow_future=False)
    y = ev(tgt, allow_future=True)
    rows = panel.rows(start, end)
    if rows.stop - rows.start <= 0:
        raise MarketlabError(f"--period {period!r} holds no days of dataset {dataset!r}")
    mask = panel.traded if universe == "all" else panel.traded & panel.in_universe
    return {
        "formula": str(expr),
        "target": str(tgt),
        "dataset": dataset,
        "period": f"{panel.dates[rows.start]}:{panel.dates[rows.stop - 1]}",
        "stocks": len(panel.symbols),
        **ic_summary(f, y, mask, rows),
        "lookback": expr.lookback,
        "seconds": round(time.perf_counter() - t0, 3),
    }
