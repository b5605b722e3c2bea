"""Classification metrics for trend predictors: macro F1, accuracy, MCC, confusion matrix.

All take integer class arrays ``y_true``, ``y_pred`` of shape ``(N,)`` with classes ``0..K-1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``; ``(K, K)`` int64."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of every class from a confusion matrix (0 where a class is neither present nor predicted)."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> float:
    """Unweighted mean of per-class F1 (the FI-2010 / TLOB headline metric)."""
    return float(f1_per_class(confusion_matrix(y_true, y_pred, num_classes)).mean())


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of correct predictions."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if t.size else 0.0


def mcc(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> float:
    """Multi-class Matthews correlation (Gorodkin's R_K); 0 when undefined."""
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    n = cm.sum()
    correct = np.trace(cm)
    t = cm.sum(1)
    p = cm.sum(0)
    num = correct * n - t @ p
    den = np.sqrt((n**2 - p @ p) * (n**2 - t @ t))
    return float(num / den) if den > 0 else 0.0


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> dict[str, Any]:
    """``{"macro_f1", "accuracy", "mcc", "f1_per_class", "confusion", "n"}`` (JSON-able)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return {
        "macro_f1": float(f1_per_class(cm).mean()),
        "accuracy": accuracy(y_true, y_pred),
        "mcc": mcc(y_true, y_pred, num_classes),
        "f1_per_class": f1_per_class(cm).tolist(),
        "confusion": cm.tolist(),
        "n": int(cm.sum()),
    }
