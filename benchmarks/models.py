"""Throughput of the LOB predictors: training and inference windows/s per model, side by side with
reference-style baselines in the same process.

1. Window gathering: ``WindowSet.batch`` (index_select on an ``as_strided`` view) vs the reference style
   (a torch ``Dataset`` whose ``__getitem__`` slices one window, batched by ``DataLoader``'s collate).
2. TLOB transformer layer: ours (``F.scaled_dot_product_attention``) vs the same parameters run through
   ``nn.MultiheadAttention`` as the reference does (the outputs are checked equal first).
3. Per model, reduced (CPU-trainable) and reference configurations: training and inference windows/s.
   On CUDA additionally bf16 autocast and ``torch.compile`` (none on this machine: recorded as skipped).

Writes ``benchmarks/results/models.json``. The machine is shared; numbers are indicative.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from marketlab.core.device import get_device, set_torch_threads  # noqa: E402
from marketlab.models.datasets import WindowSet, window_index  # noqa: E402
from marketlab.models.layers import TransformerLayer, count_parameters  # noqa: E402
from marketlab.models.zoo import build_model  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "models.json"

CONFIGS = {
    "tlob": [("reduced", {"num_features": 40, "hidden_dim": 40, "seq_size": 32, "num_layers": 2}),
             ("reference_fi2010", {})],
    "mlplob": [("reduced", {"num_features": 40, "hidden_dim": 40, "seq_size": 32, "num_layers": 2}),
               ("reference_fi2010", {})],
    "deeplob": [("reference", {})],
    "binctabl": [("reference", {})],
}


def _time(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def bench_windows() -> dict:
    n, f, t, b = 200_000, 144, 100, 256
    x = torch.randn(n, f)
    y = torch.randint(0, 3, (n,))
    s, li = window_index([(0, n)], t, t - 1, y.numpy())
    ws = WindowSet(x, y, s, li, t)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(ws), b, replace=False)
    ours = _time(lambda: ws.batch(idx), 20)

    class RefDataset(torch.utils.data.Dataset):  # TLOB preprocessing/dataset.py style
        def __len__(self) -> int:
            return n - t + 1

        def __getitem__(self, i: int):
            return x[i : i + t], y[i + t - 1]

    dl = torch.utils.data.DataLoader(RefDataset(), batch_size=b, sampler=idx.tolist())
    ref = _time(lambda: next(iter(dl)), 20)
    return {"batch": b, "seq_size": t, "features": f, "ours_ms": ours * 1e3, "reference_dataloader_ms": ref * 1e3,
            "speedup": ref / ours, "dataset_copies": "none (strided view); each batch gathers b*T*F floats"}


class RefTransformerLayer(nn.Module):
    """The reference's layer: own q/k/v Linears then nn.MultiheadAttention (weights shared with ours)."""

    def __init__(self, ours: TransformerLayer) -> None:
        super().__init__()
        self.o = ours
        e = ours.in_proj_weight.shape[1]
        self.mha = nn.MultiheadAttention(e, ours.num_heads, batch_first=True)
        self.mha.in_proj_weight = ours.in_proj_weight
        self.mha.in_proj_bias = ours.in_proj_bias
        self.mha.out_proj = ours.out_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.o
        a, _ = self.mha(o.q(x), o.k(x), o.v(x), need_weights=True, average_attn_weights=False)
        return o.mlp(o.norm(x + o.w0(a)))


def bench_attention() -> dict:
    torch.manual_seed(0)
    out = {}
    for label, d, n in (("temporal_fi2010", 144, 128), ("feature_fi2010", 128, 144)):
        ours = TransformerLayer(d, 1, d).eval()
        ref = RefTransformerLayer(ours).eval()
        x = torch.randn(32, n, d)
        with torch.no_grad():
            diff = (ours(x) - ref(x)).abs().max().item()
            t_o = _time(lambda ours=ours, x=x: ours(x), 5)
            t_r = _time(lambda ref=ref, x=x: ref(x), 5)
        out[label] = {"max_abs_diff": diff, "ours_ms": t_o * 1e3, "reference_mha_ms": t_r * 1e3, "speedup": t_r / t_o}
    return out


def bench_model(name: str, cfg: dict, device: torch.device, batch: int, train_reps: int, infer_reps: int,
                amp: torch.dtype | None = None, compile_: bool = False) -> dict:
    torch.manual_seed(0)
    m = build_model(name, cfg).to(device)
    c = m.config
    fwd = torch.compile(m) if compile_ else m
    x = torch.randn(batch, c.seq_size, c.num_features, device=device)
    y = torch.randint(0, 3, (batch,), device=device)
    opt = torch.optim.Adam(m.parameters(), 1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(fwd(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()

    def infer() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            fwd(x)
        sync()

    m.train()
    t_train = _time(step, train_reps) if train_reps else None
    m.eval()
    t_inf = _time(infer, infer_reps)
    return {"parameters": count_parameters(m), "seq_size": c.seq_size, "num_features": c.num_features,
            "batch": batch, "train_windows_per_s": batch / t_train if t_train else None,
            "inference_windows_per_s": batch / t_inf}


def main() -> None:
    set_torch_threads(int(os.environ.get("MARKETLAB_TORCH_THREADS", "1")))
    res: dict = {
        "hardware": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                     "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "cuda": torch.cuda.is_available(),
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "note": "2-core CPU shared with other engineers' jobs while measuring; 1 torch thread. Indicative only.",
    }
    res["window_gathering"] = bench_windows()
    print("windows", res["window_gathering"], flush=True)
    res["attention_layer"] = bench_attention()
    print("attention", res["attention_layer"], flush=True)
    cpu = torch.device("cpu")
    res["cpu"] = {}
    for name, cfgs in CONFIGS.items():
        for label, cfg in cfgs:
            full = label.startswith("reference") and name in ("tlob", "mlplob")
            r = bench_model(name, cfg, cpu, batch=8 if full else 64, train_reps=1 if full else 3,
                            infer_reps=2 if full else 5)
            res["cpu"][f"{name}_{label}"] = r
            print(name, label, r, flush=True)
    dev = get_device("auto")
    if dev.type == "cuda":
        res["cuda"] = {}
        for name, cfgs in CONFIGS.items():
            for label, cfg in cfgs:
                for mode, amp, comp in (("fp32", None, False), ("bf16", torch.bfloat16, False),
                                        ("bf16_compile", torch.bfloat16, True)):
                    res["cuda"][f"{name}_{label}_{mode}"] = bench_model(name, cfg, dev, 256, 10, 20, amp, comp)
    else:
        res["cuda"] = "skipped: no CUDA device on this machine (autocast/compile are only enabled on CUDA)"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
