"""Expression language: parse/print, grammar rules, RPN + masks, evaluator vs pandas, engines, cache, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from marketlab.core.errors import DataError, MarketlabError
from marketlab.features.expr import PAD_ID, Evaluator, ExprError, RPNBuilder, Vocabulary, parse
from marketlab.features.panel_tensor import panel_to_tensors, synthetic_panel
from tests.support.panels import feature_tensors, price_volume_panel


@pytest.fixture(scope="module")
def data():
    close, vol = price_volume_panel(1, 160, 12, sigma=0.02, nan_frac=0.03, log_volume=14)
    feats = feature_tensors(close, vol)
    feats["close"] = torch.tensor(close, dtype=torch.float32)  # exactly the pandas frame below
    return feats, pd.DataFrame(close), pd.DataFrame(vol)


def test_parse_print_roundtrip_and_aliases():
    e = parse("Corr($close, $volume, 20d)")
    assert str(e) == "Corr(close, volume, 20)"
    assert parse(str(e)) == e
    assert e.lookback == 19
    t = parse("Ref(close, -20) / close - 1", allow_future=True)
    assert str(t) == "Sub(Div(Ref(close, -20), close), 1)" and t.lookahead == 20
    assert parse("Mean(Mean(close, 40), 40)").lookback == 78
    # commutative operands share one canonical key (one cache entry)
    assert parse("Add(close, open)").key == parse("open + close").key
    assert parse("Sub(close, open)").key != parse("Sub(open, close)").key


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Corr(close, volume", "cannot parse"),
        ("Foo(close)", "unknown operator"),
        ("Mean(closee, 5)", "unknown feature"),
        ("Std(close, 1)", "at least 2"),
        ("EMA(close, 1)", "at least 2"),
        ("Ref(close, -5)", "future"),
        ("Add(1, 2)", "constant"),
        ("Mean(close, x)", "integer"),
        ("close @ open", "unexpected character"),
        ("", "empty"),
    ],
)
def test_bad_formulas_are_one_line_errors(text, fragment):
    with pytest.raises(ExprError) as ei:
        parse(text)
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_window_one_allowed_only_for_ref_delta():
    assert parse("Ref(close, 1)").lookback == 1
    assert parse("Delta(close, 1)").lookback == 1


def test_vocab_ids_never_collide_with_padding():
    v = Vocabulary()
    b = RPNBuilder(v, max_len=20)
    b.push(v.action_of(parse("close")))
    b.push(v.tokens.index(next(t for t in v.tokens if t.kind == "op" and t.name == "Abs")))
    obs = b.observation()
    assert obs[0] != PAD_ID and obs[1] != PAD_ID and (obs[2:] == PAD_ID).all()
    assert v.n_actions == 22 + 6 + 14 + 5 + 1


def test_rpn_encode_decode_roundtrip():
    v = Vocabulary()
    for f in ["Corr(close, volume, 20)", "Div(Sub(close, Mean(close, 10)), Std(close, 20))", "Abs(Log(volume))"]:
        e = parse(f)
        assert v.decode(v.encode(e)) == e


def test_masks_forbid_window_one_and_always_complete():
    v = Vocabulary()
    rng = np.random.default_rng(0)
    one = [i for i, t in enumerate(v.tokens) if t.kind == "delta" and t.value == 1][0]
    std = [i for i, t in enumerate(v.tokens) if t.kind == "op" and t.name == "Std"][0]
    ref = [i for i, t in enumerate(v.tokens) if t.kind == "op" and t.name == "Ref"][0]
    b = RPNBuilder(v, max_len=20)
    b.push(v.action_of(parse("close")))
    b.push(one)
    m = b.action_mask()
    assert not m[std] and m[ref]
    for _ in range(200):  # random masked rollouts always end in a valid formula within max_len
        b = RPNBuilder(v, max_len=12, max_lookback=60)
        while not b.finished:
            m = b.action_mask()
            assert m.any()
            b.push(int(rng.choice(np.flatnonzero(m))))
        e = b.result()
        assert len(b.actions) <= 12 and e.lookback <= 60
        assert parse(str(e)) == e


def test_evaluator_matches_pandas(data):
    feats, dc, dv = data
    ev = Evaluator(feats, cache_bytes=0)
    w = np.arange(1, 11)
    a = 1 - 2 / 11
    ew = a ** np.arange(10, 0, -1)
    ew /= ew.sum()
    cases = {
        "Mean(close, 20)": dc.rolling(20).mean(),
        "Sum(close, 5)": dc.rolling(5).sum(),
        "Std(close, 20)": dc.rolling(20).std(),
        "Var(close, 10)": dc.rolling(10).var(),
        "Max(close, 20)": dc.rolling(20).max(),
        "Min(close, 7)": dc.rolling(7).min(),
        "Med(close, 20)": dc.rolling(20).median(),
        "Med(close, 5)": dc.rolling(5).median(),
        "Corr(close, volume, 20)": dc.rolling(20).corr(dv.where(dc.notna())),
        "Rank(close, 10)": dc.rolling(10).rank(pct=True),
        "CSRank(close)": dc.rank(axis=1, pct=True),
        "WMA(close, 10)": dc.rolling(10).apply(lambda v: (v * w).sum() / w.sum(), raw=True),
        "EMA(close, 10)": dc.rolling(10).apply(lambda v: (v * ew).sum(), raw=True),
        "Mad(close, 10)": dc.rolling(10).apply(lambda v: np.abs(v - v.mean()).mean(), raw=True),
        "Skew(close, 10)": dc.rolling(10).apply(lambda v: ((v - v.mean()) ** 3).mean() / ((v - v.mean()) ** 2).mean() ** 1.5, raw=True),
        "Delta(close, 5)": dc - dc.shift(5),
        "Ref(close, 3)": dc.shift(3),
        "Log(volume)": np.log(dv),
        "Greater(close, 20)": dc.clip(lower=20).where(dc.notna()),
    }
    for f, ref in cases.items():
        got = ev(f).numpy()
        np.testing.assert_allclose(got, ref.to_numpy(), rtol=2e-4, atol=2e-5, equal_nan=True, err_msg=f)


def test_numba_and_torch_engines_agree(data):
    feats, _, _ = data
    nb = Evaluator(feats, engine="auto", cache_bytes=0)
    th = Evaluator(feats, engine="torch", cache_bytes=0)
    for f in ["Mean(close, 20)", "Std(volume, 10)", "Corr(close, volume, 10)", "Cov(close, volume, 5)", "Max(close, 9)",
              "Min(close, 20)", "Med(close, 6)", "Mad(close, 10)", "Rank(close, 5)", "WMA(close, 10)", "EMA(close, 10)",
              "Skew(close, 10)", "Kurt(close, 10)", "CSRank(close)", "CSZScore(volume)"]:  # fmt: skip
        a, b = nb(f).numpy(), th(f).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, equal_nan=True, err_msg=f)


def test_cache_hits_and_no_change_in_values(data):
    feats, _, _ = data
    ev = Evaluator(feats)
    a = ev("Div(Mean(close, 10), Std(close, 10))").clone()
    h = ev.hits
    b = ev("Sub(Mean(close, 10), Std(close, 10))")
    assert ev.hits >= h + 2  # both rolling sub-results were reused
    torch.testing.assert_close(ev("Div(Mean(close, 10), Std(close, 10))"), a, equal_nan=True)
    assert b.shape == a.shape
    small = Evaluator(feats, cache_bytes=a.numel() * 4)  # one entry fits: LRU keeps the byte budget
    small("Mean(close, 5)")
    small("Mean(close, 6)")
    assert small.cache_info["entries"] == 1


def test_window_longer_than_data_is_one_line_error(data):
    feats, _, _ = data
    ev = Evaluator({k: v[:30] for k, v in feats.items()})
    with pytest.raises(DataError, match="needs 40 days") as ei:
        ev("Mean(close, 40) + Ref(close, 1)")
    assert "\n" not in str(ei.value)


def test_panel_tensor_masks_and_duplicates():
    df = synthetic_panel(40, 6, seed=3)
    p = panel_to_tensors(df, device="cpu")
    assert p.shape == (40, 6) and p.vwap_source.startswith("(high+low+close)/3")
    susp = df.filter(pl.col("suspended")).row(0, named=True)
    ti = int(np.searchsorted(p.dates, np.datetime64(susp["date"], "D")))
    assert np.isnan(float(p.features["close"][ti, p.symbols.index(susp["symbol"])]))
    dup = pl.concat([df, df.head(1)])
    with pytest.raises(MarketlabError, match="duplicate"):
        panel_to_tensors(dup, device="cpu")


def test_cache_never_changes_a_value_on_random_formulas(data):
    """Property: 40 random grammar formulas (seeded masked rollouts) and search-style variants sharing their
    sub-trees, evaluated in a shuffled order through one caching Evaluator, equal the uncached values bit for bit."""
    feats, _, _ = data
    v = Vocabulary()
    rng = np.random.default_rng(21)
    base = []
    while len(base) < 40:
        b = RPNBuilder(v, max_len=12, max_lookback=40)
        while not b.finished:
            b.push(int(rng.choice(np.flatnonzero(b.action_mask()))))
        base.append(b.result())
    from marketlab.features.expr import Expr

    # Sub both ways round: a key that forgot which operand is which would serve one for the other
    formulas = [x for e in base if e.featured for x in (e, Expr.op("Abs", e), Expr.op("Mean", e, Expr.delta(5)),
                                                        Expr.op("Sub", e, Expr.feature("close")),
                                                        Expr.op("Sub", Expr.feature("close"), e))]  # fmt: skip
    order = rng.permutation(len(formulas))
    cached = Evaluator(feats, cache_bytes=1 << 30)
    plain = Evaluator(feats, cache_bytes=0)
    for i in np.concatenate([order, order[: len(order) // 2]]):  # second visits are whole-formula hits
        e = formulas[int(i)]
        np.testing.assert_array_equal(cached(e).numpy(), plain(e).numpy(), err_msg=str(e))
    assert cached.hits > len(order) // 2
