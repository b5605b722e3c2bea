"""AlphaGen pool update cost per offered formula against the pool size k, this commit vs the one before it.

The pool stage (normalise, correlate with every member, refit the weights, prune) is the part of mining that grows
with k: at pool 100 it used to dominate a PPO step. The baseline is the pool module as it was at commit
``e877272`` (members re-stacked on every accepted formula, full ``[T, N]`` rows, interpreted coordinate
descent), loaded from git history into the same process; both pools are offered the same candidates and must end
with the same objective (checked).

Data: CSI300-shaped training tensors (2,200 days x 751 stocks, ~40 % of stock-days counted, like the index
members), seeded Gaussian candidates with a planted share of the target so that most are accepted and the pool
fills to k and then prunes. Process CPU time per ``try_add``; the last 50 offers are the full-pool regime.

    python benchmarks/alphagen_pool.py [--caps 10 20 50 100]

Appends a run to ``benchmarks/results/alphagen_pool.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from runlog import Run

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "e877272"
T_DAYS, N_STOCKS = 2200, 751


def _baseline_module() -> ModuleType:
    src = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:marketlab/agents/alphagen/pool.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "pool_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("pool_before", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pool_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def offer_all(
    pool_cls: type, capacity: int, target: torch.Tensor, mask: torch.Tensor, candidates: list[torch.Tensor]
) -> tuple[list[float], float, int]:
    """CPU seconds of each ``try_add``, the final objective and pool size."""
    from marketlab.features.expr import parse

    pool = pool_cls(capacity=capacity, target_z=target, mask=mask)
    seconds = []
    for i, c in enumerate(candidates):
        t = time.process_time()
        pool.try_add(parse(f"Mean(close, {i + 2})"), c)  # distinct keys; the values are what count
        seconds.append(time.process_time() - t)
    return seconds, pool.objective, pool.size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caps", type=int, nargs="+", default=[10, 20, 50, 100])
    args = ap.parse_args()
    run = Run("alphagen_pool")
    torch.set_num_threads(1)
    from marketlab.agents.alphagen.pool import AlphaPool, fit_weights
    from marketlab.features.ic import normalize_by_day

    before = _baseline_module()
    fit_weights(np.eye(2), np.ones(2), 0.0)  # numba compiles (or loads its cache) outside the timings
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(T_DAYS, N_STOCKS, generator=g) < 0.4
    target = normalize_by_day(torch.randn(T_DAYS, N_STOCKS, generator=g), mask)
    rows = []
    for k in args.caps:
        cands = [torch.randn(T_DAYS, N_STOCKS, generator=g) + 0.05 * (i % 7) * target for i in range(k + 50)]
        row: dict = {"capacity": k, "offers": len(cands)}
        for name, cls in (("this_commit", AlphaPool), (f"before_{BASELINE_COMMIT}", before.AlphaPool)):
            secs, objective, size = offer_all(cls, k, target, mask, cands)
            row[name] = {"ms_per_offer_full_pool": round(1000 * float(np.mean(secs[-50:])), 1),
                         "ms_per_offer_all": round(1000 * float(np.mean(secs)), 1),
                         "objective": objective, "pool_size": size}  # fmt: skip
        a, b = row["this_commit"], row[f"before_{BASELINE_COMMIT}"]
        assert a["pool_size"] == b["pool_size"] and abs(a["objective"] - b["objective"]) < 1e-6, row
        row["speedup_full_pool"] = round(b["ms_per_offer_full_pool"] / a["ms_per_offer_full_pool"], 2)
        print(row, flush=True)
        rows.append(row)
    run.save({"data": f"synthetic {T_DAYS} x {N_STOCKS}, 40% of stock-days counted, seed 0", "rows": rows})


if __name__ == "__main__":
    main()
