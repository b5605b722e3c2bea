"""OHLC price forecasters after Mehtab, Sen & Dasgupta, "Stock Price Prediction Using CNN and LSTM-Based
Deep Learning Models" (2020): forecast the next week's five daily **opens** (multi-step) from the last
week (univariate CNN) or the last two weeks (the others), evaluated by walk-forward validation.

Models (Keras layouts of the paper, in torch; all output ``(B, 5)``):

* ``cnn_univ_5``   -- last 5 opens: Conv1D(16, 3, ReLU) -> MaxPool(2) -> Dense(10, ReLU) -> Dense(5).
* ``cnn_multv_10`` -- last 10 days x all columns: Conv1D(32,3) -> Conv1D(32,3) -> MaxPool(2) -> Conv1D(16,3)
  -> MaxPool(2) -> Dense(100, ReLU) -> Dense(5); convs use 'same' padding (unpadded, 10 days vanish).
* ``lstm_univ_10`` -- vanilla LSTM(200) on the last 10 opens -> Dense(100, ReLU) -> Dense(5).
* ``lstm_ed_10``   -- encoder LSTM(200) -> repeat 5 -> decoder LSTM(200) -> per-step Dense(100, ReLU) -> Dense(1).
* ``cnn_lstm_ed_10`` -- Conv1D(64,3) -> Conv1D(64,3) -> MaxPool(2) -> flatten -> repeat 5 -> LSTM(200)
  -> per-step Dense(100, ReLU) -> Dense(1).
* ``naive`` (baseline, not in the paper): every future open = the last known open.

Protocol. A "week" is a block of 5 consecutive trading days, counted back from the last day of the series
(holidays make calendar weeks ragged). Training samples are all sliding windows over the revealed history
(stride one day), as in the paper. Walk-forward: fit on the history before ``test_start``; then for every
test week, predict its 5 opens from the days before it, reveal the week, append it to the history and
refit (warm start, ``refit_epochs`` epochs over the whole history, mini-batches of at least
``REFIT_BATCH`` so a weekly refit stays cheap on a CPU) before the next week.

Deviation from the paper (documented in the results): the paper fits raw price levels. Here each
window is expressed relative to its last open (``price / last_open - 1``; volume as ``log(v / last_v)``)
and forecasts are mapped back to levels. A model fitted on 2013-2016 levels can then forecast 2017 levels
it never saw, and no scaling statistic reads the test period. RMSE and RMSE / mean(actual opens) are
computed on price levels as in the paper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn
from tqdm.auto import tqdm

from marketlab.core import registry
from marketlab.core.config import NonNegativeInt, PositiveInt, Spec
from marketlab.core.device import get_device, seed_everything
from marketlab.core.errors import DataError, SpecError

HORIZON = 5  # trading days forecast (one week)
REFIT_BATCH = 32


def read_daily_csv(path: str | Path, *, start: str | None = None, end: str | None = None) -> pl.DataFrame:
    """Daily OHLC(V) CSV (columns ``date``/``timestamp``, ``open``, ``close``, optional ``high``, ``low``,
    ``volume``) -> frame sorted by date, restricted to ``[start, end]``. Bad rows raise :class:`DataError`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    df = pl.read_csv(p, try_parse_dates=True)
    if "timestamp" in df.columns and "date" not in df.columns:
        df = df.rename({"timestamp": "date"})
    for c in ("date", "open", "close"):
        if c not in df.columns:
            raise DataError(p, "missing column", field=c)
    df = df.with_columns(pl.col("date").cast(pl.Date)).sort("date")
    if start:
        df = df.filter(pl.col("date") >= pl.lit(start).str.to_date())
    if end:
        df = df.filter(pl.col("date") <= pl.lit(end).str.to_date())
    cols = [c for c in ("open", "high", "low", "close", "volume") if c in df.columns]
    df = df.select("date", *[pl.col(c).cast(pl.Float64) for c in cols])
    for c in cols:
        bad = df.with_row_index().filter(pl.col(c).is_null() | (pl.col(c) <= 0) | pl.col(c).is_nan())
        if bad.height:
            raise DataError(p, "non-positive or missing value", field=c, row=int(bad["index"][0]),
                            value=bad[c][0])
    if df.height < 4 * HORIZON:
        raise DataError(p, f"only {df.height} rows in the selected period", field="date")
    return df


# ----------------------------------------------------------------------------------------------------
# models


class CNNUniv(nn.Module):
    """``(B, 5, 1) -> (B, 5)``."""

    def __init__(self, n_in: int = 5, n_feat: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_feat, 16, 3)
        self.pool = nn.MaxPool1d(2)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16 * ((n_in - 2) // 2), 10), nn.ReLU(), nn.Linear(10, HORIZON))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        result: torch.Tensor = self.fc(self.pool(torch.relu(self.conv(x.transpose(1, 2)))))
        return result


class CNNMultiv(nn.Module):
    """``(B, 10, F) -> (B, 5)``."""

    def __init__(self, n_in: int = 10, n_feat: int = 3) -> None:
        super().__init__()
        # 'same' padding: with the paper's 10-day input, unpadded convs + two poolings leave no steps
        t = (n_in // 2) // 2
        self.net = nn.Sequential(
            nn.Conv1d(n_feat, 32, 3, padding=1), nn.ReLU(), nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool1d(2), nn.Conv1d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
            nn.Linear(16 * t, 100), nn.ReLU(), nn.Linear(100, HORIZON),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        result: torch.Tensor = self.net(x.transpose(1, 2))
        return result


class LSTMUniv(nn.Module):
    """Vanilla LSTM ``(B, 10, 1) -> (B, 5)``."""

    def __init__(self, n_in: int = 10, n_feat: int = 1, units: int = 200) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_feat, units, batch_first=True)
        self.fc = nn.Sequential(nn.Linear(units, 100), nn.ReLU(), nn.Linear(100, HORIZON))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        out, _ = self.lstm(x)
        result: torch.Tensor = self.fc(torch.relu(out[:, -1]))  # Keras LSTM(activation='relu') output
        return result


class _Decoder(nn.Module):
    def __init__(self, n_in: int, units: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_in, units, batch_first=True)
        self.fc = nn.Sequential(nn.Linear(units, 100), nn.ReLU(), nn.Linear(100, 1))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        rep = code.unsqueeze(1).expand(-1, HORIZON, -1)  # RepeatVector(5)
        out, _ = self.lstm(rep)
        result: torch.Tensor = self.fc(torch.relu(out)).squeeze(-1)  # TimeDistributed Dense -> (B, 5)
        return result


class LSTMEncDec(nn.Module):
    """Encoder-decoder LSTM ``(B, 10, 1) -> (B, 5)``."""

    def __init__(self, n_in: int = 10, n_feat: int = 1, units: int = 200) -> None:
        super().__init__()
        self.enc = nn.LSTM(n_feat, units, batch_first=True)
        self.dec = _Decoder(units, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        out, _ = self.enc(x)
        result: torch.Tensor = self.dec(torch.relu(out[:, -1]))
        return result


class CNNLSTMEncDec(nn.Module):
    """CNN encoder + LSTM decoder ``(B, 10, 1) -> (B, 5)``."""

    def __init__(self, n_in: int = 10, n_feat: int = 1, units: int = 200) -> None:
        super().__init__()
        t = (n_in - 4) // 2
        self.enc = nn.Sequential(nn.Conv1d(n_feat, 64, 3), nn.ReLU(), nn.Conv1d(64, 64, 3), nn.ReLU(),
                                 nn.MaxPool1d(2), nn.Flatten())
        self.dec = _Decoder(64 * t, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        result: torch.Tensor = self.dec(self.enc(x.transpose(1, 2)))
        return result


@dataclass(frozen=True)
class ForecasterSpec:
    """Input window (days), whether all columns are used, the paper's epochs and batch size."""

    build: Callable[[int, int], nn.Module] | None
    n_in: int
    multivariate: bool
    epochs: int
    batch_size: int
    lr: float = 1e-3


# One constant per model, registered as ``forecaster/<name>-v1`` in marketlab.core.builtin_ids.
CNN_UNIV_5 = ForecasterSpec(CNNUniv, 5, False, 20, 4)
CNN_MULTV_10 = ForecasterSpec(CNNMultiv, 10, True, 70, 16)
LSTM_UNIV_10 = ForecasterSpec(LSTMUniv, 10, False, 20, 16)
LSTM_ED_10 = ForecasterSpec(LSTMEncDec, 10, False, 70, 16)
CNN_LSTM_ED_10 = ForecasterSpec(CNNLSTMEncDec, 10, False, 20, 16)
NAIVE = ForecasterSpec(None, 1, False, 0, 1)

_VERSION = "-v1"


def forecaster_names() -> list[str]:
    """Bare names of the registered forecasters (``cnn_univ_5``, ..., ``naive``), sorted."""
    return sorted(n.removesuffix(_VERSION) for n in registry.names("forecaster"))


def forecaster(name: str) -> ForecasterSpec:
    """The :class:`ForecasterSpec` registered as ``forecaster/<name>-v1`` (or the full id ``<name>-vN``).

    An unknown name is a :class:`SpecError` (key ``model``) listing the known ids.
    """
    # a bare name means its -v1 id; an unknown one is looked up as given, so the error names what was asked
    full = name + _VERSION if registry.is_registered(f"forecaster/{name}{_VERSION}") else name
    spec = registry.resolve(full, kind="forecaster", key="model")
    if not isinstance(spec, ForecasterSpec):
        raise SpecError(None, "model", f"forecaster/{full} is not a ForecasterSpec")
    return spec


# ----------------------------------------------------------------------------------------------------
# windows and walk-forward


def relative_windows(values: np.ndarray, ends: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for forecasts made after row ``e-1`` (``e`` in ``ends``): ``X (M, n_in, F)`` relative to the
    last open, and the reference opens ``(M,)``. Column 0 of ``values`` is the open; a ``volume`` column
    (last, when present) is log-ratio-scaled. Uses a strided view of ``values`` (no per-window copies)."""
    view = np.lib.stride_tricks.sliding_window_view(values, n_in, axis=0)  # (N-n_in+1, F, n_in)
    w = view[ends - n_in].transpose(0, 2, 1)  # (M, n_in, F)
    ref = w[:, -1, 0].copy()
    return w, ref


def _scale(w: np.ndarray, has_volume: bool) -> np.ndarray:
    """Window ``(M, n_in, F)`` in levels -> float32 inputs: prices as ``10 * (p / last_open - 1)`` (about
    unit scale for daily index moves), volume (last column) as ``log(v / last_v)``."""
    x = np.empty(w.shape, dtype=np.float32)
    npx = w.shape[2] - (1 if has_volume else 0)
    x[:, :, :npx] = 10.0 * (w[:, :, :npx] / w[:, -1:, :1] - 1.0)
    if has_volume:
        x[:, :, -1] = np.log(w[:, :, -1] / w[:, -1:, -1])
    return x


def _fit(model: nn.Module, opt: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray, epochs: int,
         batch: int, rng: np.random.Generator, device: torch.device) -> None:
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x))).to(device)
        for b in range(0, len(x), batch):
            i = order[b : b + batch]
            loss = nn.functional.mse_loss(model(xt[i]), yt[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def walk_forward(name: str, frame: pl.DataFrame, *, test_start: str, epochs: int | None = None,
                 refit_epochs: int = 1, seed: int = 0, device: str = "auto",
                 progress: bool = False, max_test_weeks: int | None = None) -> dict[str, Any]:
    """Walk-forward evaluation of forecaster ``name`` on a daily frame from :func:`read_daily_csv`.

    Returns ``rmse`` (price units, all test days), ``rmse_over_mean`` (RMSE / mean actual open),
    ``rmse_per_day`` (day 1..5 of the week), ``seconds`` (fit + refits + predictions), ``test_weeks``,
    ``predictions`` ``(W, 5)`` and ``actual`` ``(W, 5)``.
    """
    spec = forecaster(name)
    cols = ["open"] + ([c for c in ("high", "low", "close", "volume") if c in frame.columns] if spec.multivariate else [])
    values = frame.select(cols).to_numpy().astype(np.float64)
    has_volume = "volume" in cols
    dates = frame["date"].to_numpy()
    n = len(values)
    first_test = int(np.searchsorted(dates, np.datetime64(test_start)))
    # week boundaries: blocks of 5 trading days counted back from the end; test weeks start at/after test_start
    week_starts = np.arange(n - HORIZON, -1, -HORIZON)[::-1]
    test_weeks = week_starts[week_starts >= max(first_test, spec.n_in + HORIZON)]
    if max_test_weeks is not None:
        test_weeks = test_weeks[:max_test_weeks]
    if len(test_weeks) == 0:
        raise DataError(None, "no test week after test_start", field="test_start", value=test_start)
    rng = seed_everything(seed)
    dev = get_device(device)
    t0 = time.perf_counter()
    preds = np.zeros((len(test_weeks), HORIZON))
    actual = np.stack([values[s : s + HORIZON, 0] for s in test_weeks])

    def train_windows(upto: int) -> tuple[np.ndarray, np.ndarray]:
        ends = np.arange(spec.n_in, upto - HORIZON + 1)  # forecast after row e-1, targets e..e+4 < upto
        w, ref = relative_windows(values, ends, spec.n_in)
        tgt = np.lib.stride_tricks.sliding_window_view(values[:, 0], HORIZON)[ends]
        return _scale(w, has_volume), ((tgt / ref[:, None] - 1.0) * 10.0).astype(np.float32)

    model = opt = None
    if spec.build is not None:
        model = spec.build(spec.n_in, len(cols)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
        x, y = train_windows(int(test_weeks[0]))
        _fit(model, opt, x, y, epochs if epochs is not None else spec.epochs, spec.batch_size, rng, dev)
    for k, s in enumerate(tqdm(test_weeks, disable=not progress, desc=name, leave=False)):
        w, ref = relative_windows(values, np.array([s]), spec.n_in)
        if model is None:
            preds[k] = ref[0]
        else:
            model.eval()
            with torch.no_grad():
                out = model(torch.from_numpy(_scale(w, has_volume)).to(dev)).cpu().numpy()[0]
            preds[k] = ref[0] * (1.0 + out / 10.0)
            if k + 1 < len(test_weeks) and refit_epochs > 0 and opt is not None:  # reveal this week, refit before the next
                x, y = train_windows(int(s) + HORIZON)
                _fit(model, opt, x, y, refit_epochs, max(spec.batch_size, REFIT_BATCH), rng, dev)
    seconds = time.perf_counter() - t0
    err = preds - actual
    rmse = float(np.sqrt(np.mean(err**2)))
    return {"model": name, "rmse": rmse, "rmse_over_mean": rmse / float(actual.mean()),
            "rmse_per_day": np.sqrt(np.mean(err**2, axis=0)).tolist(), "seconds": seconds,
            "test_weeks": len(test_weeks), "first_test_day": str(dates[test_weeks[0]]),
            "last_test_day": str(dates[test_weeks[-1] + HORIZON - 1]), "columns": cols,
            "parameters": sum(p.numel() for p in model.parameters()) if model is not None else 0,
            "predictions": preds, "actual": actual}


@dataclass(frozen=True)
class ForecastSpec(Spec):
    """One walk-forward comparison (what ``marketlab forecast`` runs): models, period, epochs, seed.

    ``models`` are forecaster names (``[]`` = every registered one); dates are ISO days, ``start <=
    test_start <= end``; ``epochs`` None = each model's own (the paper's).
    """

    models: list[str] = field(default_factory=list)
    start: str = "2013-02-08"
    test_start: str = "2017-01-02"
    end: str = "2018-02-07"
    epochs: PositiveInt | None = None
    refit_epochs: NonNegativeInt = 1
    seed: NonNegativeInt = 0

    def validate(self, path: str | Path | None = None) -> None:
        """Known model names; ordered, parseable dates."""
        for i, name in enumerate(self.models):
            forecaster(name)
            if self.models.index(name) != i:
                raise SpecError(path, "models", f"{name!r} is listed twice")
        days = []
        for key in ("start", "test_start", "end"):
            try:
                days.append(np.datetime64(getattr(self, key), "D"))
            except ValueError:
                raise SpecError(path, key, f"invalid date {getattr(self, key)!r} (use YYYY-MM-DD)") from None
        if not days[0] <= days[1] <= days[2]:
            raise SpecError(path, "test_start", "dates must satisfy start <= test_start <= end")


def forecast(spec: ForecastSpec, data: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """Walk-forward every model of ``spec`` on the daily CSV ``data``; per model RMSE, RMSE/mean, seconds."""
    frame = read_daily_csv(data, start=spec.start, end=spec.end)
    results = {}
    for name in spec.models or forecaster_names():
        r = walk_forward(name, frame, test_start=spec.test_start, epochs=spec.epochs,
                         refit_epochs=spec.refit_epochs, seed=spec.seed, progress=progress)
        results[name] = {k: r[k] for k in ("rmse", "rmse_over_mean", "rmse_per_day", "seconds", "test_weeks")}
    return {"data": str(data), "test_start": spec.test_start, "results": results}
