"""CUDA runs of the deep BSDE solver and the xVA pipeline (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from marketlab.pricing.bsde import HJBLQ, DeepBSDESolver, SolverConfig, solve
from marketlab.pricing.bsde.reference import hjb_lq_y0
from marketlab.pricing.xva import XvaRun

pytestmark = pytest.mark.gpu


def test_cuda_rollout_matches_cpu_for_same_parameters():
    eq = HJBLQ(dim=20, N=10)
    cfg = dict(hidden=(32, 32), progress=False)
    cpu = DeepBSDESolver(eq, SolverConfig(device="cpu", **cfg))
    gpu = DeepBSDESolver(eq, SolverConfig(device="cuda", **cfg))
    b = eq.sample(64, torch.Generator().manual_seed(0))
    cpu._fit_pilot()
    gpu._pilot_done = True
    gpu.load_state_dict({k: v.to("cuda") for k, v in cpu.state_dict().items()})
    b_gpu = type(b)(b.x.cuda(), b.dw.cuda())
    assert torch.allclose(cpu.rollout(b), gpu.rollout(b_gpu).cpu(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_hjb_d100_on_gpu_large_batch(precision):
    cfg = SolverConfig(device="cuda", precision=precision, batch_size=2048, iterations=400, hidden=(110, 110),
                       lr_values=(1e-2, 1e-3), lr_boundaries=(300,), y0_lr_factor=10, progress=False)
    solver, res = solve(HJBLQ(dim=100), cfg)
    assert solver.y0.device.type == "cuda"
    assert abs(res.y0[0] - hjb_lq_y0(100)) / hjb_lq_y0(100) < 0.01


def test_xva_pipeline_on_gpu():
    d = {"run": {"steps": 20, "paths": 2048, "layers": ["clean", "xva"], "clean": "deep", "progress": False,
                 "plots": False, "device": "cuda"},
         "market": {"r": 0.02, "spot": 100.0, "vol": 0.25},
         "counterparties": [{"name": "C", "model": "intensity", "intensity": 0.1, "recovery": 0.3}],
         "trades": [{"type": "forward", "counterparty": "C", "strike": 100.0, "maturity": 1.0}],
         "training": {"clean": {"iterations": 200, "batch_size": 1024, "y0_lr_factor": 5.0},
                      "xva": {"iterations": 200, "batch_size": 1024}}}
    res = XvaRun.from_dict(d).run()
    assert res["device"].startswith("cuda")
    mc = res["xva"]["outer_mc"]["C"]["cva"]
    assert abs(res["xva_table"]["C"]["cva"] - mc) / mc < 0.05
