"""CLI: ``marketlab alpha eval "<formula>" --data <dataset>`` and ``marketlab mine <spec>.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketlab.cli.common import JsonOpt, StoreOpt, command, emit

alpha_app = typer.Typer(help="Formulaic alphas: evaluate formulas against forward returns.", no_args_is_help=True)


@alpha_app.command("eval")
@command
def eval_cmd(
    formula: Annotated[str, typer.Argument(help='Formula, e.g. "Corr(close, volume, 20)".')],
    data: Annotated[str, typer.Option("--data", help="Panel dataset in the store.")],
    store: StoreOpt = None,
    period: Annotated[str | None, typer.Option("--period", help="START:END (inclusive dates, either may be empty).")] = None,
    target: Annotated[str, typer.Option("--target", help="Target formula (may look ahead).")] = "Ref(close, -20) / close - 1",
    universe: Annotated[str, typer.Option("--universe", help="members (in-universe stock-days) or all.")] = "all",
    json: JsonOpt = False,
) -> None:
    """Print IC, RankIC, ICIR and coverage of FORMULA against TARGET over PERIOD."""
    import time

    from marketlab.core.device import get_device, set_torch_threads
    from marketlab.core.errors import MarketlabError
    from marketlab.features.expr import Evaluator, parse
    from marketlab.features.ic import ic_summary
    from marketlab.features.panel_tensor import panel_to_tensors
    from marketlab.store import Store

    set_torch_threads()
    t0 = time.perf_counter()
    expr = parse(formula)
    tgt = parse(target, allow_future=True)
    if universe not in ("members", "all"):
        raise MarketlabError(f"--universe must be members or all, got {universe!r}")
    start = end = None
    if period:
        if period.count(":") != 1:
            raise MarketlabError(f"--period must be START:END, got {period!r}")
        start, end = (p or None for p in period.split(":"))
    st = Store(store)
    panel = panel_to_tensors(st.scan_panel(data), device=get_device("auto"), source=data)
    ev = Evaluator(panel.features, source=data)
    f = ev(expr, allow_future=False)
    y = ev(tgt, allow_future=True)
    rows = panel.rows(start, end)
    if rows.stop - rows.start <= 0:
        raise MarketlabError(f"--period {period!r} holds no days of dataset {data!r}")
    mask = panel.traded if universe == "all" else panel.traded & panel.in_universe
    res = ic_summary(f, y, mask, rows)
    summary = {
        "formula": str(expr),
        "target": str(tgt),
        "dataset": data,
        "period": f"{panel.dates[rows.start]}:{panel.dates[rows.stop - 1]}",
        "stocks": len(panel.symbols),
        **res,
        "lookback": expr.lookback,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    emit(summary, json, title="alpha eval")


@command
def mine_cmd(
    spec: Annotated[Path, typer.Argument(help="Mining spec, e.g. specs/agents/alphagen_csi300.toml.")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the spec's output checkpoint.")] = False,
    json: JsonOpt = False,
) -> None:
    """Mine a formulaic alpha pool (AlphaGen PPO, GP or hand factors); write pool.json and store signals."""
    from marketlab.agents.alphagen.mine import MineSpec, mine

    s = MineSpec.from_toml(spec)
    res = mine(s, resume=resume, progress=not json)
    out = {
        "method": res["method"],
        "dataset": res["dataset"],
        "pool_size": len(res["pool"]["alphas"]),
        **{f"{k}_{m}": v[m] for k, v in res["metrics"].items() for m in ("ic", "rank_ic", "icir")},
        "pool_json": res.get("pool_json"),
        "signals": res.get("signals"),
        "seconds": res["seconds"]["total"],
    }
    if json:
        out["pool"] = res["pool"]
    emit(out, json, title="mine")


def register(app: typer.Typer) -> None:
    app.add_typer(alpha_app, name="alpha")
    app.command("mine")(mine_cmd)
