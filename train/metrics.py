"""Speaker-independent evaluation numbers: UA, WA, macro-F1, confusion matrix."""
from __future__ import annotations

import numpy as np


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def evaluate(true: np.ndarray, pred: np.ndarray, labels: tuple[str, ...]) -> dict:
    """UA = mean recall over the classes present; WA = accuracy; macro-F1 over the same classes."""
    matrix = confusion(np.asarray(true), np.asarray(pred), len(labels))
    support = matrix.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(matrix), support, out=np.zeros(len(labels)), where=present)
    predicted = matrix.sum(axis=0)
    precision = np.divide(np.diag(matrix), predicted, out=np.zeros(len(labels)), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(labels)),
                   where=(precision + recall) > 0)
    return {
        "ua": float(recall[present].mean()),
        "wa": float(np.trace(matrix) / matrix.sum()),
        "macro_f1": float(f1[present].mean()),
        "per_class_recall": {label: round(float(r), 4) for label, r, p in zip(labels, recall, present) if p},
        "confusion": matrix.tolist(),
        "n": int(matrix.sum()),
    }
