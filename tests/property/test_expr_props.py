"""Property tests: masked RPN generation always yields parseable, printable formulas; rolling kernels equal a
naive NumPy window loop on random data with NaNs; IC is invariant to monotone rescaling of the factor."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlab.features.expr import RPNBuilder, Vocabulary, parse
from marketlab.features.expr import kernels as K
from marketlab.features.ic import daily_ic, daily_rank_ic

VOCAB = Vocabulary()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=20, max_size=20), st.integers(4, 20))
def test_masked_sequences_roundtrip(choices, max_len):
    b = RPNBuilder(VOCAB, max_len=max_len, max_lookback=100)
    i = 0
    while not b.finished:
        legal = np.flatnonzero(b.action_mask())
        assert legal.size > 0
        b.push(int(legal[choices[i % len(choices)] % legal.size]))
        i += 1
    e = b.result()
    assert len(b.actions) <= max_len and e.lookback <= 100
    again = parse(str(e))
    assert again.key == e.key and VOCAB.decode(VOCAB.encode(e)) == e


def _naive(x: np.ndarray, w: int, fn) -> np.ndarray:
    out = np.full_like(x, np.nan)
    for t in range(w - 1, x.shape[0]):
        win = x[t - w + 1 : t + 1]
        ok = ~np.isnan(win).any(0)
        out[t, ok] = fn(win[:, ok])
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 12), st.sampled_from(["Mean", "Std", "Max", "Min", "Med", "Sum"]), st.sampled_from(["auto", "torch"]))
def test_rolling_kernels_match_naive(seed, w, op, engine):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(40, 5)) * 10 + 100).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    fns = {"Mean": lambda v: v.mean(0), "Std": lambda v: v.std(0, ddof=1), "Max": lambda v: v.max(0),
           "Min": lambda v: v.min(0), "Med": lambda v: np.median(v, 0), "Sum": lambda v: v.sum(0)}  # fmt: skip
    got = K.rolling(op, torch.from_numpy(x), w, engine).numpy()
    np.testing.assert_allclose(got, _naive(x.astype(np.float64), w, fns[op]), rtol=1e-4, atol=1e-3, equal_nan=True)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 10.0))
def test_rank_ic_invariant_to_monotone_transform(seed, scale):
    rng = np.random.default_rng(seed)
    a = torch.tensor(rng.normal(size=(6, 30)), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=(6, 30)), dtype=torch.float32)
    r1 = daily_rank_ic(a, b)
    r2 = daily_rank_ic(torch.exp(a) * scale, b)
    torch.testing.assert_close(r1, r2, atol=1e-5, rtol=0)
    torch.testing.assert_close(daily_ic(a * scale + 3, b), daily_ic(a, b), atol=1e-5, rtol=0)
