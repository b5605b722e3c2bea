"""Generated markets against the real held-back day: TRADES vs the agent-based market vs market replay.

The test part of a real LOBSTER day is its last 20% by wall-clock (:func:`~marketlab.simulators.trades.tokens.time_split`,
the split TRADES trains on). Each market is a list of *segments* (one per simulated market; segments never
share a window, a minute bar or an inter-arrival gap) of events + the book after each event, in the store
schemas. On them (:func:`evaluate_markets`):

* **Predictive score** (TRADES paper §7.1, from TimeGAN): an LSTM (2 layers, hidden 128, Adam 1e-3, MSE,
  early stopping on the last 10% of its training windows) reads the last ``window`` = 100 observations and
  forecasts the mid-price change ``horizon`` = 10 events ahead; it is trained on a generator's data and
  tested on the real data. The real test part is split in time: its first half trains the *replay*
  forecaster (real -> real, the lower bound), its second half is the test set of every forecaster. The
  reference code (``predictive_lstm.py``) forecasts 100 events past the window and splits real data with a
  random ``train_test_split`` (overlapping windows leak across it); here the split is time-ordered and the
  horizon the paper's 10. The target is in basis points of the current mid and the features are
  scale-free (bps, log sizes, imbalance), so markets at different price levels (the ABM trades at $100,
  GOOG at $580) compare; each market's features are z-scored with its own training statistics (as the
  reference). MAE in bps; improvement factor = (MAE_ABM - MAE_replay) / (MAE_TRADES - MAE_replay)
  (the paper's (second best - replay)/(TRADES - replay) with the ABM as the other generator: > 1 means
  TRADES is closer to replay).
* **Stylized facts** as numbers (:func:`marketlab.simulators.stylized.compute_facts`): minute-return excess
  kurtosis, ACF of returns and |returns| at lags 1-30, volume-volatility and return-volatility
  correlations, order-type shares; KS distances to the real test part of the spread (bps) and of the
  log inter-arrival times.
* **PCA hull coverage** (paper Fig. 2): observations (order + level-1 book, the predictive features) are
  standardised with the real statistics, projected on the real data's first two principal components;
  coverage = area(hull(generated) ∩ hull(real)) / area(hull(real)).

Observation of event i (book after it = row i): type one-hot (add / cancel+delete / execution), side,
log(1 + size), price minus the mid before it (bps), spread (bps), level-1 imbalance, log(1 + L1 sizes),
mid change over the event (bps). Rows before the first two-sided book are dropped; mids forward-fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError
from marketlab.core.timeutil import NS_PER_DAY
from marketlab.simulators.stylized import StylizedFacts, compute_facts

N_OBS_FEATURES = 11


@dataclass
class Segment:
    """One contiguous market: ``events`` (EVENTS_SCHEMA) and ``book`` (book_schema(L)), the book after each
    event, row-aligned after sorting by (ts, seq); ``trades`` optional (derived from executions when None)."""

    events: pl.DataFrame
    book: pl.DataFrame
    trades: pl.DataFrame | None = None


@dataclass
class Market:
    """A named market: its segments and the currency per price tick (for the facts' spread columns)."""

    label: str
    segments: list[Segment]
    tick_size: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- observations
def observations(seg: Segment) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, 11) float64, mid after each event (n,) float64) of one segment (see module docs)."""
    ev = seg.events.sort(["ts", "seq"])
    bk = seg.book.sort(["ts", "seq"])
    if ev.height != bk.height:
        raise DataError("market segment", f"{ev.height} events but {bk.height} book rows (need the book after each event)")
    ask = bk["ask_px_1"].to_numpy().astype(np.float64)
    bid = bk["bid_px_1"].to_numpy().astype(np.float64)
    asz = bk["ask_sz_1"].to_numpy().astype(np.float64)
    bsz = bk["bid_sz_1"].to_numpy().astype(np.float64)
    two = (ask > 0) & (bid > 0)
    mid = pl.Series(np.where(two, (ask + bid) / 2.0, np.nan)).fill_nan(None).forward_fill().to_numpy().astype(np.float64)
    ok = np.isfinite(mid)
    first = int(np.argmax(ok)) if ok.any() else ev.height
    typ = ev["type"].to_numpy().astype(np.int64)
    side = ev["side"].to_numpy().astype(np.float64)
    size = ev["size"].to_numpy().astype(np.float64)
    price = ev["price"].to_numpy().astype(np.float64)
    before = np.concatenate([[np.nan], mid[:-1]])
    before = np.where(np.isfinite(before), before, mid)
    spread = np.where(two, (ask - bid) / mid * 1e4, np.nan)
    spread = pl.Series(spread).fill_nan(None).forward_fill().fill_null(0.0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = np.where(asz + bsz > 0, (bsz - asz) / (asz + bsz), 0.0)
        rel = np.where(price > 0, (price - before) / before * 1e4, 0.0)
        dmid = (mid - before) / before * 1e4
    x = np.stack([
        (typ == 1).astype(np.float64), np.isin(typ, (2, 3)).astype(np.float64), np.isin(typ, (4, 5)).astype(np.float64),
        side, np.log1p(np.maximum(size, 0)), np.clip(rel, -500, 500), np.clip(spread, 0, 500), imb,
        np.log1p(np.maximum(asz, 0)), np.log1p(np.maximum(bsz, 0)), np.clip(dmid, -500, 500),
    ], axis=1)
    x = x[first:]
    mid = mid[first:]
    x[~np.isfinite(x)] = 0.0
    return x, mid


def windows(x: np.ndarray, mid: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """End rows i of every full window (i >= window - 1, i + horizon < n) and their targets, the mid change
    from row i to row i + horizon in bps of mid[i]."""
    n = x.shape[0]
    ends = np.arange(window - 1, n - horizon, dtype=np.int64)
    y = (mid[ends + horizon] - mid[ends]) / mid[ends] * 1e4
    return ends, y


# ------------------------------------------------------------------------------------------- predictive
@dataclass(frozen=True)
class LSTMBudget:
    """Forecaster settings: architecture (paper: 2 x 128), window/horizon (paper: 100 / 10), and the CPU
    budget (windows drawn, epochs)."""

    window: int = 100
    horizon: int = 10
    hidden: int = 128
    layers: int = 2
    lr: float = 1e-3
    batch: int = 256
    max_epochs: int = 4
    patience: int = 1
    max_train: int = 8000
    max_test: int = 4000
    seed: int = 0


def _windows_of(parts: Sequence[tuple[np.ndarray, np.ndarray]], budget: LSTMBudget, cap: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``cap`` windows (evenly spread over all segments, time order kept): X (k, window, F), y (k,)."""
    refs: list[tuple[int, int]] = []
    ys: list[float] = []
    for j, (x, mid) in enumerate(parts):
        ends, y = windows(x, mid, budget.window, budget.horizon)
        refs.extend((j, int(e)) for e in ends)
        ys.extend(y.tolist())
    if not refs:
        return np.zeros((0, budget.window, N_OBS_FEATURES), np.float32), np.zeros(0, np.float32)
    take = np.arange(len(refs)) if len(refs) <= cap else np.sort(rng.choice(len(refs), cap, replace=False))
    X = np.stack([parts[refs[t][0]][0][refs[t][1] - budget.window + 1: refs[t][1] + 1] for t in take])
    return X.astype(np.float32), np.asarray(ys, dtype=np.float32)[take]


def predictive_score(train_parts: Sequence[tuple[np.ndarray, np.ndarray]],
                     test_parts: Sequence[tuple[np.ndarray, np.ndarray]], budget: LSTMBudget,
                     test_norm: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Train the LSTM on ``train_parts`` ((features, mid) per segment), test on ``test_parts``.

    Training features are z-scored with their own statistics, test features with ``test_norm`` (mean, std
    of the real data the replay forecaster trains on). Returns MAE (bps) and the run's counts."""
    import torch
    from torch import nn

    rng = np.random.default_rng(budget.seed)
    torch.manual_seed(budget.seed)
    Xtr, ytr = _windows_of(train_parts, budget, budget.max_train, rng)
    Xte, yte = _windows_of(test_parts, budget, budget.max_test, rng)
    if Xtr.shape[0] < 20 or Xte.shape[0] == 0:
        return {"mae_bps": float("nan"), "train_windows": int(Xtr.shape[0]), "test_windows": int(Xte.shape[0]),
                "note": "too few windows"}
    allx = np.concatenate([p[0] for p in train_parts])
    mu, sd = allx.mean(axis=0), np.maximum(allx.std(axis=0), 1e-6)
    Xtr = ((Xtr - mu) / sd).astype(np.float32)
    Xte = ((Xte - test_norm[0]) / test_norm[1]).astype(np.float32)
    y_scale = float(max(np.std(ytr), 1e-6))
    n_val = max(1, Xtr.shape[0] // 10)
    Xv, yv = Xtr[-n_val:], ytr[-n_val:]
    Xt, yt = Xtr[:-n_val], ytr[:-n_val]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_OBS_FEATURES, budget.hidden, num_layers=budget.layers, batch_first=True)
            self.head = nn.Linear(budget.hidden, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :])[:, 0]

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=budget.lr)

    def predict(X: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.inference_mode():
            return np.concatenate([net(torch.from_numpy(X[i:i + 1024])).numpy() for i in range(0, X.shape[0], 1024)]) * y_scale

    best, best_state, bad, epochs = float("inf"), None, 0, 0
    for _ in range(budget.max_epochs):
        net.train()
        order = rng.permutation(Xt.shape[0])
        for i in range(0, order.size, budget.batch):
            b = order[i:i + budget.batch]
            loss = ((net(torch.from_numpy(Xt[b])) - torch.from_numpy(yt[b] / y_scale)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
        val = float(np.mean(np.abs(predict(Xv) - yv)))
        if val < best - 1e-9:
            best, bad = val, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad > budget.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    pred = predict(Xte)
    return {"mae_bps": float(np.mean(np.abs(pred - yte))), "val_mae_bps": best, "epochs": epochs,
            "train_windows": int(Xt.shape[0]), "test_windows": int(Xte.shape[0]),
            "zero_forecast_mae_bps": float(np.mean(np.abs(yte)))}


# ------------------------------------------------------------------------------------------- PCA hull
def _hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull vertices (k, 2) of 2-D points (scipy's Qhull)."""
    from scipy.spatial import ConvexHull

    h = ConvexHull(points)
    return np.asarray(points[h.vertices], dtype=np.float64)  # 2-D: vertices come counter-clockwise


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area of a simple polygon (k, 2)."""
    if poly.shape[0] < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of polygon ``subject`` inside the counter-clockwise convex ``clip``."""
    out = [tuple(p) for p in subject]
    for i in range(clip.shape[0]):
        a, b = clip[i], clip[(i + 1) % clip.shape[0]]
        inp, out = out, []
        if not inp:
            break

        def inside(p: tuple[float, float], a: np.ndarray = a, b: np.ndarray = b) -> bool:
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

        def cross(p: tuple[float, float], q: tuple[float, float], a: np.ndarray = a, b: np.ndarray = b) -> tuple[float, float]:
            d1 = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
            d2 = (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0])
            t = d1 / (d1 - d2)
            return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))

        for j in range(len(inp)):
            p, q = inp[j - 1], inp[j]
            if inside(q):
                if not inside(p):
                    out.append(cross(p, q))
                out.append(q)
            elif inside(p):
                out.append(cross(p, q))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def hull_coverage(real: np.ndarray, gen: np.ndarray, max_points: int = 20000, seed: int = 0) -> dict[str, Any]:
    """PCA hull coverage of ``gen`` over ``real`` observations (rows = observations): both standardised
    with the real statistics, projected on the real first two principal components."""
    rng = np.random.default_rng(seed)

    def sub(a: np.ndarray) -> np.ndarray:
        return a if a.shape[0] <= max_points else a[rng.choice(a.shape[0], max_points, replace=False)]

    real, gen = sub(real), sub(gen)
    mu, sd = real.mean(axis=0), np.maximum(real.std(axis=0), 1e-9)
    zr, zg = (real - mu) / sd, (gen - mu) / sd
    _, _, vt = np.linalg.svd(zr - zr.mean(axis=0), full_matrices=False)
    pr, pg = zr @ vt[:2].T, zg @ vt[:2].T
    hr, hg = _hull(pr), _hull(pg)
    inter = clip_convex(hg, hr)
    ar = polygon_area(hr)
    return {"coverage": polygon_area(inter) / ar if ar > 0 else float("nan"), "real_hull_area": ar,
            "generated_hull_area": polygon_area(hg), "points_real": int(pr.shape[0]), "points_generated": int(pg.shape[0]),
            "_proj": (pr, pg)}


# ------------------------------------------------------------------------------------------- facts
def market_facts(m: Market, max_lag: int = 30) -> StylizedFacts:
    """Stylized facts of all segments of ``m`` (segment k is moved k days later, so no minute bar or
    inter-arrival gap spans two segments)."""
    evs, bks, trs = [], [], []
    for k, seg in enumerate(m.segments):
        shift = pl.col("ts") + k * NS_PER_DAY
        evs.append(seg.events.with_columns(shift))
        bks.append(seg.book.with_columns(shift))
        if seg.trades is not None:
            trs.append(seg.trades.with_columns(shift))
    trades = pl.concat(trs) if trs and len(trs) == len(m.segments) else None
    return compute_facts(pl.concat(evs), pl.concat(bks, how="diagonal_relaxed").fill_null(0), trades, label=m.label,
                         max_lag=max_lag, tick_size=m.tick_size)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(ks_2samp(a, b).statistic)


FACT_KEYS = ("n_events", "n_minutes", "ret_std_bps", "ret_excess_kurtosis", "ret_acf_lag1", "absret_acf_lag1",
             "volume_volatility_corr", "leverage_corr", "spread_mean_bps", "interarrival_median_ms", "share_add",
             "share_cancel", "share_delete", "share_execute", "share_execute_hidden")


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, np.ndarray):
        return [_clean(float(x)) for x in v]
    return v


def facts_summary(f: StylizedFacts, real: StylizedFacts | None) -> dict[str, Any]:
    """The numbers of one market's facts, with KS distances to ``real`` (spread bps, log10 inter-arrival)."""
    out: dict[str, Any] = {k: _clean(f.scalars.get(k, float("nan"))) for k in FACT_KEYS}
    out["ret_acf_1_30"] = _clean(f.series.get("ret_acf", np.zeros(0)))
    out["absret_acf_1_30"] = _clean(f.series.get("absret_acf", np.zeros(0)))
    if real is not None:
        out["ks_spread_bps"] = _clean(_ks(f.series["spread_bps"], real.series["spread_bps"]))
        out["ks_log_interarrival"] = _clean(_ks(f.series["log10_interarrival_s"], real.series["log10_interarrival_s"]))
    return out


# ------------------------------------------------------------------------------------------- the table
def evaluate_markets(real: Market, generated: Sequence[Market], budget: LSTMBudget = LSTMBudget(),
                     pca_points: int = 20000) -> dict[str, Any]:
    """Predictive score, facts and PCA coverage of each generated market against ``real`` (the held-back
    test part: its first half trains the replay forecaster, its second half tests every forecaster).
    Returns a JSON-ready dict plus ``"_facts"``/``"_pca"`` entries (arrays for the figure)."""
    real_obs = [observations(s) for s in real.segments]
    half_tr: list[tuple[np.ndarray, np.ndarray]] = []
    half_te: list[tuple[np.ndarray, np.ndarray]] = []
    for x, mid in real_obs:
        cut = x.shape[0] // 2
        half_tr.append((x[:cut], mid[:cut]))
        half_te.append((x[cut:], mid[cut:]))
    rx = np.concatenate([p[0] for p in half_tr])
    norm = (rx.mean(axis=0), np.maximum(rx.std(axis=0), 1e-6))
    real_facts = market_facts(real)
    out: dict[str, Any] = {"predictive": {}, "facts": {real.label: facts_summary(real_facts, None)}, "pca_coverage": {},
                           "_facts": [real_facts], "_pca": {}}
    out["predictive"]["replay"] = predictive_score(half_tr, half_te, budget, norm)
    all_real = np.concatenate([p[0] for p in real_obs])
    for m in generated:
        obs = [observations(s) for s in m.segments]
        obs = [o for o in obs if o[0].shape[0] > 0]
        out["predictive"][m.label] = predictive_score(obs, half_te, budget, norm)
        f = market_facts(m)
        out["_facts"].append(f)
        out["facts"][m.label] = facts_summary(f, real_facts)
        cov = hull_coverage(all_real, np.concatenate([o[0] for o in obs]), pca_points, budget.seed)
        out["_pca"][m.label] = cov.pop("_proj")
        out["pca_coverage"][m.label] = cov
    return out


def improvement_factor(mae_trades: float, mae_abm: float, mae_replay: float) -> float:
    """(MAE_ABM - MAE_replay) / (MAE_TRADES - MAE_replay): > 1 when TRADES is closer to replay."""
    d = mae_trades - mae_replay
    return float((mae_abm - mae_replay) / d) if d != 0 else float("inf")
