"""Hand-written factor baseline: a subset of qlib's Alpha158, written in the expression language, combined
by a linear model (least squares on per-day z-scores), gradient boosting (sklearn's
``HistGradientBoostingRegressor``), LightGBM with qlib's Alpha158 settings, or an MLP (sklearn's
``MLPRegressor``); the non-linear models are fitted on a seeded subsample of training stock-days."""

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
        rng = np.random.default_rng(self.seed)
        if len(y) > self.max_rows:
            idx = rng.choice(len(y), self.max_rows, replace=False)
            X, y = X[idx], y[idx]
        self.model = _nonlinear(self.kind, self.seed).fit(X, y)
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


def _nonlinear(kind: str, seed: int):
    """An unfitted regressor of ``kind`` (``gbdt``, ``lightgbm``, ``mlp``), single-threaded and seeded."""
    if kind == "gbdt":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=200,
                                             l2_regularization=1.0, random_state=seed)  # fmt: skip
    if kind == "lightgbm":
        from lightgbm import LGBMRegressor

        # qlib's examples/benchmarks/LightGBM/workflow_config_lightgbm_Alpha158.yaml (research/alphagen.md §8),
        # with a fixed 200 rounds in place of its early stopping on the validation split (the miner fits on
        # training rows only)
        return LGBMRegressor(objective="regression", colsample_bytree=0.8879, learning_rate=0.2, subsample=0.8789,
                             subsample_freq=1, reg_alpha=205.6999, reg_lambda=580.9768, max_depth=8, num_leaves=210,
                             n_estimators=200, n_jobs=1, random_state=seed, verbose=-1)  # fmt: skip
    if kind == "mlp":
        from sklearn.neural_network import MLPRegressor

        # two hidden layers, early-stopped on a held-out 10% of the training rows
        return MLPRegressor(hidden_layer_sizes=(256, 128), alpha=1e-4, learning_rate_init=1e-3, batch_size=4096,
                            max_iter=50, early_stopping=True, validation_fraction=0.1, n_iter_no_change=5,
                            random_state=seed)  # fmt: skip
    raise ValueError(f"unknown hand model {kind!r}")
