"""Static matplotlib PNGs of the main report charts (for papers and READMEs; the HTML page is interactive)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from marketlab.backtests.report.figures import thin_index
from marketlab.backtests.report.stats import Tearsheet


def write_pngs(t: Tearsheet, weights: np.ndarray, symbols: tuple[str, ...], out: Path) -> list[Path]:
    """Write equity.png, drawdown.png, positions.png and rolling_sharpe.png into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    idx = thin_index(len(t.returns))
    dates = t.returns.index[idx]
    cum = ((1 + t.returns).cumprod() - 1).to_numpy()
    paths = []

    def save(name: str, draw: Callable[[Any], None], pct: bool = True) -> None:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        draw(ax)
        ax.grid(alpha=0.3)
        if pct:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        fig.autofmt_xdate()
        fig.tight_layout()
        p = out / f"{name}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)

    def equity(ax: Any) -> None:
        ax.plot(dates, cum[idx], label="strategy", lw=1.2)
        if t.bench_returns is not None:
            ax.plot(dates, ((1 + t.bench_returns).cumprod() - 1).to_numpy()[idx], label="benchmark", lw=1, ls=":")
        ax.set_title("Cumulative return")
        ax.legend()

    def dd(ax: Any) -> None:
        w = 1 + cum
        ax.fill_between(dates, (w / np.maximum.accumulate(np.maximum(w, 1.0)) - 1)[idx], 0, alpha=0.5, color="C3")
        ax.set_title("Drawdown")

    def pos(ax: Any) -> None:
        top = np.argsort(-np.abs(weights).mean(axis=0), kind="stable")[:10]
        for j in top:
            ax.plot(dates, weights[idx, j], lw=0.8, label=symbols[j])
        ax.set_title("Positions (weight of net value, top 10)")
        if top.size:
            ax.legend(fontsize=7, ncol=5)

    def sharpe(ax: Any) -> None:
        ax.plot(dates, t.rolling["sharpe"].to_numpy()[idx], lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"Rolling Sharpe ({t.window} bars)")

    for name, draw, pct in (("equity", equity, True), ("drawdown", dd, True), ("positions", pos, True), ("rolling_sharpe", sharpe, False)):
        save(name, draw, pct)
    return paths
