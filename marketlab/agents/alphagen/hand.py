"""Hand-written factor baseline: a subset of qlib's Alpha158, written in the expression language, combined
by a linear model (least squares on per-day z-scores) or gradient boosting (sklearn's
``HistGradientBoostingRegressor``, fitted on a subsample of training stock-days)."""

from __future__ import annotations

import numpy as np
import torch

# name -> formula; windows follow Alpha158 (5/10/20/60 days; 60 capped by the 100-day look-back).
ALPHA158_SUBSET: dict[str, str] = {
    "KMID": "(close - open) / open",
    "KLEN": "(high - low) / open",
    "KUP": "(high - Greater(open, close)) / open",
    "KLOW": "(Less(open, close) - low) / open",
    "KSFT": "(2 * close - high - low) / open",
    "ROC5": "Ref(close, 5) / close",
    "ROC20": "Ref(close, 20) / close",
    "ROC60": "Ref(close, 60) / close",
    "MA5": "Mean(close, 5) / close",
    "MA20": "Mean(close, 20) / close",
    "MA60": "Mean(close, 60) / close",
    "STD5": "Std(close, 5) / close",
    "STD20": "Std(close, 20) / close",
    "STD60": "Std(close, 60) / close",
    "MAX20": "Max(high, 20) / close",
    "MIN20": "Min(low, 20) / close",
    "QTLU20": "Med(close, 20) / close",
    "RSV20": "(close - Min(low, 20)) / (Max(high, 20) - Min(low, 20) + 0.0001)",
    "RANK20": "Rank(close, 20)",
    "CORR20": "Corr(close, Log(volume + 1), 20)",
    "CORD20": "Corr(close / Ref(close, 1), Log(volume / Ref(volume, 1) + 1), 20)",
    "VMA20": "Mean(volume, 20) / (volume + 1)",
    "VSTD20": "Std(volume, 20) / (volume + 1)",
    "WVMA20": "Std(Abs(close / Ref(close, 1) - 1) * volume, 20) / (Mean(Abs(close / Ref(close, 1) - 1) * volume, 20) + 0.0001)",
    "BETA20": "Cov(close, Ref(close, 1), 20) / (Var(Ref(close, 1), 20) + 0.0001)",
    "VOLCHG5": "Delta(Log(volume + 1), 5)",
}


class HandModel:
    """Fits ``target_z ~ f(z_1..z_k)`` on training stock-days and predicts a combined factor."""

    def __init__(self, kind: str = "linear", seed: int = 0, max_rows: int = 300_000) -> None:
        self.kind = kind
        self.seed = seed
        self.max_rows = max_rows
        self.coef: np.ndarray | None = None
        self.model = None

    @staticmethod
    def _stack(zs: list[torch.Tensor], mask: torch.Tensor | None) -> np.ndarray:
        X = torch.stack([z.reshape(-1) for z in zs], dim=1)
        if mask is not None:
            X = X[mask.reshape(-1)]
        return X.cpu().numpy().astype(np.float64)

    def fit(self, zs: list[torch.Tensor], target_z: torch.Tensor, mask: torch.Tensor) -> "HandModel":
        """Fit the combination on training stock-days (``mask``) of the normalised alphas."""
        X = self._stack(zs, mask)
        y = target_z.reshape(-1)[mask.reshape(-1)].cpu().numpy().astype(np.float64)
        if self.kind == "linear":
            self.coef = np.linalg.lstsq(X, y, rcond=None)[0]
            return self
        from sklearn.ensemble import HistGradientBoostingRegressor

        rng = np.random.default_rng(self.seed)
        if len(y) > self.max_rows:
            idx = rng.choice(len(y), self.max_rows, replace=False)
            X, y = X[idx], y[idx]
        self.model = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=200,
            l2_regularization=1.0, random_state=self.seed,
        ).fit(X, y)  # fmt: skip
        return self

    def predict(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """Combined factor ``[T, N]`` from normalised alphas ``zs``."""
        shape = zs[0].shape
        if self.kind == "linear":
            out = torch.zeros(shape, dtype=torch.float32, device=zs[0].device)
            for c, z in zip(self.coef, zs, strict=False):  # type: ignore[arg-type]
                out += float(c) * z
            return out
        X = self._stack(zs, None)
        assert self.model is not None, "fit() first"
        pred = self.model.predict(X).astype(np.float32)
        return torch.from_numpy(pred.reshape(shape)).to(zs[0].device)
