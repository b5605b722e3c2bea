"""``marketlab evaluate-sim``: build the three markets of one real day and score them (:mod:`.evaluate`).

* **real**: the held-back test part (last 20% by time) of ``dataset``/``symbol`` in the store;
* **TRADES**: ``markets`` generated markets advanced in lockstep (one batched denoiser call per round),
  each started where the test part starts (history window and book from the real data), ``rounds``
  orders each; the engine's events and the book after each are the market;
* **ABM**: the agent-based day of ``abm_spec`` (``specs/simulators/abm_default.toml``) for ``abm_seconds``
  of market time (default: the length of the real test part);
* **market impact** (TRADES paper §7.1): the same market without and with the agent-based market's own
  participation-of-volume trader (:class:`~marketlab.simulators.agents.POVTrader`: ``pov`` of the others'
  volume since its last wake-up, every ``pov_interval_s``, from ``pov_start_s`` to ``pov_end_s`` after the
  start), ``impact_seeds`` seeds, mid-price difference in bps of the starting mid on a 5 s grid. Both
  simulators run the identical experiment agent: in TRADES it trades through the mixed market
  (:mod:`marketlab.simulators.trades.mixed`), so the world agent sees its confirmed orders. For the ABM
  the two runs share every random stream (:func:`impact_experiment`); for TRADES the A and B markets are
  advanced in the same batch but their sampler noise is not coupled, so the per-seed difference also holds
  the two markets' independent noise (averaged over seeds).

:func:`run_evaluation` returns the JSON-ready report and writes ``<out>/<symbol>_eval.json`` and a PNG
(the stylized-facts overlay of real, TRADES and ABM, plus the predictive, PCA and impact panels).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from marketlab.core.config import NonNegativeFloat, PositiveFloat, PositiveInt, Spec
from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_S
from marketlab.simulators.evaluate import LSTMBudget, Market, Segment, evaluate_markets, improvement_factor

GRID_S = 5.0


@dataclass(frozen=True)
class EvalBudget(Spec):
    """CPU budget of an evaluation (every size is explicit so a report states what it was computed on)."""

    markets: PositiveInt = 16
    rounds: PositiveInt = 400
    ddim_steps: PositiveInt = 10
    candidates: PositiveInt = 1
    abm_seconds: NonNegativeFloat = 0.0  # 0: the length of the real test part
    lstm_epochs: PositiveInt = 4
    lstm_max_train: PositiveInt = 8000
    lstm_max_test: PositiveInt = 4000
    lstm_hidden: PositiveInt = 128
    lstm_window: PositiveInt = 100
    lstm_horizon: PositiveInt = 10
    impact_seeds: PositiveInt = 5
    impact_max_rounds: PositiveInt = 3000  # CPU cap on TRADES rounds of the impact run (counted in the report)
    impact_seconds: PositiveFloat = 600.0
    pov: PositiveFloat = 0.1
    pov_start_s: NonNegativeFloat = 60.0
    pov_end_s: PositiveFloat = 420.0
    pov_interval_s: PositiveFloat = 60.0
    pca_points: PositiveInt = 20000
    seed: int = 0
    #: "ema": the EMA weights (the paper's); "raw": the last weights. A short CPU run wants "raw": with
    #: decay 0.999 the EMA after 1,500 steps still holds 0.999**1500 = 22% of the initial weights
    #: (validation loss of the CPU GOOG/AMZN checkpoints: EMA 0.45/0.47, raw 0.25/0.27)
    weights: Literal["ema", "raw"] = "ema"


# ------------------------------------------------------------------------------------------- markets
def real_test_market(store: Any, dataset: str, symbol: str, tokens: Any, day: Any, min_orders: int = 1000) -> Market:
    """The real test market of ``symbol``: events and the book after each from the first test order on
    (``tokens``/``day`` from :func:`~marketlab.simulators.trades.train.load_day`); a test part with fewer
    than ``min_orders`` orders is a one-line :class:`DataError`."""
    te = day.splits["test"]
    if te.stop - te.start < min_orders:
        raise DataError(
            f"dataset '{dataset}' symbol '{symbol}'",
            f"test part has {te.stop - te.start} orders (< {min_orders}: too short for the forecaster windows)",
        )
    t0 = int(tokens.ts[te.start])
    ev = store.scan_events(dataset, symbol).filter(pl.col("ts") >= t0).collect().sort(["ts", "seq"])
    bk = store.scan_book(dataset, symbol).filter(pl.col("ts") >= t0).collect().sort(["ts", "seq"])
    keep = set(bk["seq"].to_list())
    ev = ev.filter(pl.col("seq").is_in(list(keep)))
    bk = bk.filter(pl.col("seq").is_in(ev["seq"].implode()))
    tick = float(store.instrument(dataset, symbol).tick_size)
    return Market(
        f"real:{symbol}", [Segment(ev, bk)], tick, {"orders": te.stop - te.start, "span_s": (int(tokens.ts[-1]) - t0) / NS_PER_S}
    )


def trades_market(model: Any, stats: Any, tokens: Any, start: int, budget: EvalBudget, symbol: str, tick: float) -> Market:
    """``budget.markets`` TRADES markets of ``budget.rounds`` orders each, one segment per market."""
    from marketlab.simulators.trades.simulation import engine_frames
    from marketlab.simulators.trades.world import TradesMarkets

    t = time.perf_counter()
    w = TradesMarkets(
        model,
        stats,
        tokens,
        start=start,
        n_markets=budget.markets,
        seed=budget.seed,
        steps=budget.ddim_steps,
        candidates=budget.candidates,
    )
    w.run(budget.rounds)
    secs = time.perf_counter() - t
    segs = []
    for ob in w.books:
        fr = engine_frames(ob.drain_events(), symbol, model.shape.levels, skip=w.seed_events)
        segs.append(Segment(fr["events"], fr["book"]))
    acc = sum(w.stats_run.accepted.values())
    return Market(
        f"trades:{symbol}",
        segs,
        tick,
        {
            "generation_s": round(secs, 2),
            "orders_accepted": acc,
            "orders_per_s": round(acc / secs, 2),
            "counts": w.stats_run.to_dict(),
            "simulated_s_per_market": float(np.mean([(n - int(tokens.ts[start - 1])) / NS_PER_S for n in w.now])),
        },
    )


def abm_market(spec_path: str | Path, seconds: float, seed: int) -> Market:
    """The agent-based market of ``spec_path`` for ``seconds`` of market time."""
    from marketlab.simulators.config import SimSpec
    from marketlab.simulators.simulation import Simulation

    spec = SimSpec.from_toml(spec_path)
    spec = replace(spec, market=replace(spec.market, duration_s=float(seconds)))
    t = time.perf_counter()
    sim = Simulation(spec, seed=seed).run()
    fr = sim.frames()
    return Market(
        "abm",
        [Segment(fr["events"], fr["book"], fr.get("trades"))],
        float(spec.market.tick_size),
        {"simulated_s": seconds, "wall_s": round(time.perf_counter() - t, 2), "events": fr["events"].height},
    )


# ------------------------------------------------------------------------------------------- impact
def _on_grid(times: list[int], mids: list[float], t0: int, grid_s: np.ndarray) -> np.ndarray:
    ts = np.asarray(times, dtype=np.int64)
    idx = np.searchsorted(ts, t0 + (grid_s * NS_PER_S).astype(np.int64), side="right") - 1
    m = np.asarray(mids, dtype=np.float64)
    return np.where(idx >= 0, m[np.maximum(idx, 0)], np.nan)


def trades_impact(model: Any, stats: Any, tokens: Any, start: int, budget: EvalBudget) -> dict[str, Any]:
    """POV A/B on TRADES markets: markets 2k (no POV) and 2k+1 (the ABM's POV trader, through the mixed
    market) for seed k = 0..impact_seeds-1, all in one batch (seeded by ``budget.seed``). Mid difference in
    bps of the starting mid."""
    from marketlab.simulators.config import POVConfig
    from marketlab.simulators.trades.mixed import MarketAgents, attach_agents, tokens_in_ticks
    from marketlab.simulators.trades.tokens import mid_price
    from marketlab.simulators.trades.world import TradesMarkets

    n = 2 * budget.impact_seeds
    w = TradesMarkets(
        model,
        stats,
        tokens_in_ticks(tokens),
        start=start,
        n_markets=n,
        seed=budget.seed + 1000,
        steps=budget.ddim_steps,
        candidates=budget.candidates,
    )
    pov = POVConfig(
        enabled=True, side=1, pov=budget.pov, start_s=budget.pov_start_s, end_s=budget.pov_end_s, interval_s=budget.pov_interval_s
    )
    sims = attach_agents(
        w,
        MarketAgents(pov=pov),
        seeds=[budget.seed + i // 2 for i in range(n)],
        duration_s=budget.impact_seconds,
        pov=[i % 2 == 1 for i in range(n)],
    )
    t0 = w.now[0]
    end = t0 + int(budget.impact_seconds * NS_PER_S)
    times: list[list[int]] = [[t0] for _ in range(n)]
    mids: list[list[float]] = [[float(mid_price(w.books[i].snapshot(1)[None, :])[0])] for i in range(n)]
    rounds = 0
    while min(w.now) < end and rounds < budget.impact_max_rounds:
        w.step()
        rounds += 1
        for i in range(n):
            m = float(mid_price(w.books[i].snapshot(1)[None, :])[0])
            if np.isfinite(m):
                times[i].append(w.now[i])
                mids[i].append(m)
    grid = np.arange(GRID_S, budget.impact_seconds + 1e-9, GRID_S)
    m0 = float(mids[0][0])
    diffs = np.stack(
        [
            (_on_grid(times[2 * k + 1], mids[2 * k + 1], t0, grid) - _on_grid(times[2 * k], mids[2 * k], t0, grid)) / m0 * 1e4
            for k in range(budget.impact_seeds)
        ]
    )
    executed = [sims[2 * k + 1].pov.executed for k in range(budget.impact_seeds)]  # type: ignore[union-attr]
    out = _impact_summary(grid, diffs, budget, executed)
    out["rounds"] = rounds
    out["simulated_s_min"] = (min(w.now) - t0) / NS_PER_S  # < impact_seconds when the round cap stopped it
    out["counts"] = w.stats_run.to_dict()
    return out


def abm_impact(spec_path: str | Path, budget: EvalBudget) -> dict[str, Any]:
    """POV A/B on the agent-based market (same seeds, coupled random streams), ``impact_seconds`` long."""
    from marketlab.simulators.config import SimSpec
    from marketlab.simulators.experiments import impact_experiment

    spec = SimSpec.from_toml(spec_path)
    spec = replace(
        spec,
        market=replace(spec.market, duration_s=budget.impact_seconds),
        pov=replace(
            spec.pov,
            enabled=True,
            side=1,
            pov=budget.pov,
            start_s=budget.pov_start_s,
            end_s=budget.pov_end_s,
            interval_s=budget.pov_interval_s,
        ),
    )
    rows, executed, grid = [], [], np.zeros(0)
    for k in range(budget.impact_seeds):
        r = impact_experiment(spec, seed=budget.seed + k, grid_s=GRID_S)
        grid = r["times_s"]
        rows.append(r["diff"] / spec.market.initial_price * 1e4)
        executed.append(int(r["executed"]))
    return _impact_summary(grid, np.stack(rows), budget, executed)


def _impact_summary(grid: np.ndarray, diffs: np.ndarray, budget: EvalBudget, executed: list[int]) -> dict[str, Any]:
    mean = np.nanmean(diffs, axis=0)
    during = (grid > budget.pov_start_s) & (grid <= budget.pov_end_s)
    after = grid > budget.pov_end_s
    per_seed_during = [float(np.nanmean(d[during])) if during.any() else float("nan") for d in diffs]
    return {
        "seeds": budget.impact_seeds,
        "executed_lots": executed,
        "impact_during_bps": float(np.nanmean(mean[during])) if during.any() else float("nan"),
        "impact_after_bps": float(np.nanmean(mean[after])) if after.any() else float("nan"),
        "impact_during_bps_per_seed": per_seed_during,
        "_grid_s": grid,
        "_mean_diff_bps": mean,
    }


# ------------------------------------------------------------------------------------------- report
def _strip(d: Any) -> Any:
    """Drop "_"-prefixed (array) entries and make floats JSON-safe."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if not str(k).startswith("_")}
    if isinstance(d, (list, tuple)):
        return [_strip(v) for v in d]
    if isinstance(d, (float, np.floating)):
        return float(d) if np.isfinite(d) else None
    if isinstance(d, np.integer):
        return int(d)
    return d


def run_evaluation(
    store: Any, dataset: str, symbol: str, checkpoint: str | Path, abm_spec: str | Path, budget: EvalBudget, out_dir: str | Path
) -> dict[str, Any]:
    """Real vs TRADES vs ABM for one symbol; writes ``<out>/<symbol>_eval.json`` and ``<symbol>_eval.png``."""
    import torch

    from marketlab.simulators.trades.train import load_checkpoint, load_day

    t_all = time.perf_counter()
    torch.manual_seed(budget.seed)
    model, stats, cfg = load_checkpoint(checkpoint, ema=budget.weights == "ema")
    tokens, day = load_day(store, dataset, symbol, cfg.levels, stats=stats)
    real = real_test_market(store, dataset, symbol, tokens, day, min_orders=4 * (budget.lstm_window + budget.lstm_horizon))
    start = max(day.splits["test"].start, cfg.window - 1)
    trades = trades_market(model, stats, tokens, start, budget, symbol, real.tick_size)
    abm_s = budget.abm_seconds or float(real.meta["span_s"])
    abm = abm_market(abm_spec, abm_s, budget.seed)
    lb = LSTMBudget(
        window=budget.lstm_window,
        horizon=budget.lstm_horizon,
        hidden=budget.lstm_hidden,
        max_epochs=budget.lstm_epochs,
        max_train=budget.lstm_max_train,
        max_test=budget.lstm_max_test,
        seed=budget.seed,
    )
    res = evaluate_markets(real, [trades, abm], lb, budget.pca_points)
    p = res["predictive"]
    res["improvement_factor"] = improvement_factor(p[trades.label]["mae_bps"], p["abm"]["mae_bps"], p["replay"]["mae_bps"])
    res["impact"] = {trades.label: trades_impact(model, stats, tokens, start, budget), "abm": abm_impact(abm_spec, budget)}
    res["markets"] = {m.label: m.meta for m in (real, trades, abm)}
    res["symbol"] = symbol
    res["checkpoint"] = {"path": str(checkpoint), "config": cfg.to_dict()}
    res["budget"] = budget.to_dict()
    res["seconds"] = round(time.perf_counter() - t_all, 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_report(res, out / f"{symbol}_eval.png")
    res["figure"] = str(png)
    clean = _strip(res)
    (out / f"{symbol}_eval.json").write_text(json.dumps(clean, indent=1))
    return clean


def plot_report(res: dict[str, Any], path: Path) -> Path:
    """3x3 PNG: the six stylized-fact panels (real, TRADES, ABM overlaid), predictive MAE, PCA, impact."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from marketlab.simulators.stylized import plot_facts

    tmp = path.with_name(path.stem + "_facts.png")
    plot_facts(res["_facts"], tmp)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    labels = list(res["predictive"])
    ax[0].bar(labels, [res["predictive"][k]["mae_bps"] for k in labels], color=["gray", "C1", "C2"][: len(labels)])
    ax[0].set_title("predictive score: LSTM MAE on real (bps, lower is better)")
    for lab, (pr, pg) in res["_pca"].items():
        ax[1].scatter(pg[:, 0], pg[:, 1], s=1, alpha=0.3, label=f"{lab} ({res['pca_coverage'][lab]['coverage']:.0%})")
        ax[1].scatter(pr[:, 0], pr[:, 1], s=1, alpha=0.1, color="k")
    ax[1].set_title("PCA of observations (black: real)")
    ax[1].legend(fontsize=7, markerscale=8)
    for lab, r in res["impact"].items():
        ax[2].plot(r["_grid_s"], r["_mean_diff_bps"], label=lab)
    ax[2].axhline(0, color="k", lw=0.5)
    ax[2].set_title("POV buyer: mid difference (bps), mean over seeds")
    ax[2].set_xlabel("seconds after start")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    tmp2 = path.with_name(path.stem + "_panels.png")
    fig.savefig(tmp2, dpi=90)
    plt.close(fig)
    a, b = plt.imread(tmp), plt.imread(tmp2)
    w = min(a.shape[1], b.shape[1])
    img = np.concatenate([a[:, :w, :3], b[:, :w, :3]], axis=0)
    plt.imsave(path, img)
    tmp.unlink()
    tmp2.unlink()
    return path
