"""``marketlab demo``: the main job on the embedded default data, end to end.

Each step uses only data marketlab generates itself, so a new user needs nothing else:
synthetic daily panel + agent-based LOB day -> a tiny TRADES model trained on it generates a short market ->
stylized facts of both -> a momentum signal on the
panel -> vectorbt backtest -> HTML/PNG report -> the research loop: a formula of the alpha language, its IC
(``marketlab alpha eval``), its values backtested top-k (``Backtest.from_signals``).
Components add their step here as they land.

``marketlab warmup`` (run by ``make setup``) runs the same steps on a small temporary store, so that numba
compiles every kernel the demo needs into its cache once; the demo then starts warm. Kernel signatures depend
on dtypes and array layouts, not on sizes, so the small run compiles exactly what the full one needs
(tests/unit/test_cli_demo.py checks that a demo after a warmup compiles nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

#: The demo's simulated day ships with the package (``specs/simulators/abm_default.toml`` links to it),
#: so an installed marketlab needs no checkout.
DEMO_SIM_SPEC = "specs/abm_default.toml"

#: The demo's alpha: 5-day over 20-day moving average of the close, scored against the 20-day forward return.
DEMO_FORMULA = "Mean(close, 5) / Mean(close, 20) - 1"
DEMO_TARGET = "Ref(close, -20) / close - 1"


@dataclass(frozen=True)
class DemoSize:
    """How much data the demo makes: ``None`` keeps the default (:func:`marketlab.store.synth.write_synth`'s
    300 symbols x 756 days panel and 20,000-event LOB day; the spec's 6.5-hour simulated session)."""

    n_symbols: int | None = None
    n_days: int | None = None
    n_events: int | None = None
    sim_duration_s: float | None = None


#: ``marketlab warmup``'s data: large enough that every step takes its usual code path (momentum and the
#: alpha's 20-day windows, a year of monthly returns, an hour of simulated minutes for the stylized facts),
#: small enough that compiling is nearly all it costs.
WARMUP_SIZE = DemoSize(n_symbols=30, n_days=300, n_events=3_000, sim_duration_s=3_600.0)


@contextmanager
def counting_compiles() -> Iterator[list[str]]:
    """Collects the names of the numba kernels compiled inside the block (numba's ``numba:compile`` event
    fires on a real compile only, not on a load from the on-disk cache)."""
    from numba.core import event

    names: list[str] = []

    class _Listener(event.Listener):
        def on_start(self, ev: Any) -> None:
            names.append(ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev: Any) -> None:
            pass

    with event.install_listener("numba:compile", _Listener()):
        yield names


def formula_scores(store: Any, formula: str, dataset: str) -> Any:
    """Values of ``formula`` on the daily panel ``dataset``: a wide Polars frame (``date`` + one column per
    symbol, NaN where the formula has no value), the layout :meth:`Backtest.from_signals` takes."""
    import polars as pl

    from marketlab.core.device import get_device
    from marketlab.features.expr import Evaluator, parse
    from marketlab.features.panel_tensor import panel_to_tensors

    panel = panel_to_tensors(store.scan_panel(dataset), device=get_device("cpu"), source=dataset)
    values = Evaluator(panel.features, source=dataset)(parse(formula), allow_future=False).cpu().numpy()
    return pl.DataFrame({"date": panel.dates, **{s: values[:, j] for j, s in enumerate(panel.symbols)}})


def _steps(store: Any, seed: int, out_dir: Path, progress: bool = True,
           size: DemoSize = DemoSize()) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """The demo's steps in order; each returns a small JSON-ready summary."""

    def synth() -> dict[str, Any]:
        from marketlab.store.synth import write_synth

        sizes = {k: v for k, v in (("n_symbols", size.n_symbols), ("n_days", size.n_days), ("n_events", size.n_events))
                 if v is not None}
        reports = write_synth(store, seed, **sizes)
        return {r.dataset: r.rows for r in reports}

    def simulate() -> dict[str, Any]:
        from importlib.resources import as_file, files

        from marketlab.simulators.abm import simulate_day

        with as_file(files("marketlab.cli").joinpath(DEMO_SIM_SPEC)) as spec:
            s = simulate_day(spec, store, seed, progress=progress, duration_s=size.sim_duration_s)
        return {k: s[k] for k in ("events", "book_rows", "events_per_s") if k in s}

    def trades() -> dict[str, Any]:
        from marketlab.simulators.trades.demo import demo_market

        return demo_market(store, seed, out_dir)

    def stylized() -> dict[str, Any]:
        from marketlab.simulators.stylized import facts_for_dataset, plot_facts

        facts = facts_for_dataset(store, "abm_default") + facts_for_dataset(store, "trades_demo")
        out_dir.mkdir(parents=True, exist_ok=True)
        png = plot_facts(facts, out_dir / "stylized_abm_default.png")
        keys = ("ret_excess_kurtosis", "ret_acf_lag1", "absret_acf_lag1", "spread_mean_bps")
        return {**{k: facts[0].scalars[k] for k in keys}, "figure": str(png)}

    def backtest() -> dict[str, Any]:
        from marketlab.backtests.engine import run_demo

        r = run_demo(store, out_dir=out_dir)
        keys = ("name", "total_return", "sharpe", "max_drawdown", "turnover", "report")
        return {k: r.get(k) for k in keys}

    def alpha() -> dict[str, Any]:
        from marketlab.backtests import Backtest
        from marketlab.features.alpha_eval import evaluate_formula

        ic = evaluate_formula(DEMO_FORMULA, "synth_daily", store=store.path, target=DEMO_TARGET)
        scores = formula_scores(store, DEMO_FORMULA, "synth_daily")
        top_k = max(1, min(10, (scores.width - 1) // 3))
        r = Backtest.from_signals(
            scores, data={"dataset": "synth_daily", "kind": "panel"}, store=store, name="demo_alpha_synth",
            strategy={"kind": "topk", "top_k": top_k, "rebalance": 5}, costs={"commission": 0.0005, "spread": 0.0002},
            report={"out_dir": str(out_dir)},
        ).run().to_dict()
        return {"formula": DEMO_FORMULA, "ic": ic["ic"], "rank_ic": ic["rank_ic"], "icir": ic["icir"],
                **{k: r.get(k) for k in ("total_return", "sharpe", "max_drawdown", "report")}}

    return [
        ("synthetic daily panel + LOB day", synth),
        ("agent-based market day (matching engine)", simulate),
        ("TRADES: tiny diffusion model trained on that day, short generated market", trades),
        ("stylized facts of the simulated day", stylized),
        ("momentum top-k backtest (vectorbt) + report", backtest),
        ("alpha formula -> IC -> top-k backtest", alpha),
    ]


@command
def demo(
    seed: Annotated[int, typer.Option(help="Master seed for every generated dataset.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Folder for reports and plots.")] = Path("reports"),
    store: StoreOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the main job on marketlab's own synthetic data and print where the report is."""
    from rich.console import Console

    from marketlab.store import Store

    console = Console(stderr=True)
    st = Store(store)
    summary: dict[str, Any] = {"store": str(st.path), "seed": seed, "steps": {}}
    t_all = time.perf_counter()
    steps = _steps(st, seed, out, progress=show_progress(json, quiet))
    with counting_compiles() as compiled:
        for i, (title, fn) in enumerate(steps, 1):
            console.print(f"[bold]\\[{i}/{len(steps)}][/bold] {title} ...")
            t = time.perf_counter()
            res = fn()
            res["seconds"] = round(time.perf_counter() - t, 2)
            summary["steps"][title] = res
    summary["seconds"] = round(time.perf_counter() - t_all, 2)
    summary["numba_compiled"] = len(compiled)  # 0 after `marketlab warmup` (`make setup`)
    report = summary["steps"].get("momentum top-k backtest (vectorbt) + report", {}).get("report")
    summary["report"] = report
    if json:
        emit(summary, True)
        return
    from rich.table import Table

    table = Table(title=f"marketlab demo (store {st.path}, seed {seed})")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    for title, res in summary["steps"].items():
        shown = ", ".join(f"{k}={_short(v)}" for k, v in res.items() if k != "seconds")
        table.add_row(title, shown, f"{res['seconds']:.1f}")
    Console().print(table)
    if compiled:
        console.print(f"numba compiled {len(compiled)} kernels on this first run and cached them (`marketlab warmup`, "
                      "run by `make setup`, does it ahead)")
    console.print(f"Report: {report}")


@command
def warmup(json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Compile the numba kernels of `marketlab demo` into numba's cache once (the demo's steps on a small
    temporary store; `make setup` runs it), so the first demo starts warm."""
    import os
    import tempfile

    from rich.console import Console

    from marketlab.store import Store

    console = Console(stderr=True, quiet=json or quiet)
    cache = os.environ["NUMBA_CACHE_DIR"]  # always set once marketlab is imported (marketlab/__init__.py)
    console.print(f"Compiling the demo's numba kernels into {cache} (once; a minute or two) ...")
    t = time.perf_counter()
    with counting_compiles() as compiled, tempfile.TemporaryDirectory(prefix="marketlab-warmup-") as tmp:
        for title, fn in _steps(Store(Path(tmp) / "store"), 0, Path(tmp) / "reports", progress=False, size=WARMUP_SIZE):
            console.print(f"  {title}")
            fn()
    summary = {"cache": cache, "compiled": len(compiled), "seconds": round(time.perf_counter() - t, 1)}
    if json:
        emit(summary, True)
    else:
        console.print(f"Compiled {summary['compiled']} kernels in {summary['seconds']} s.")


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``warmup`` to the marketlab CLI."""
    app.command("demo")(demo)
    app.command("warmup")(warmup)
