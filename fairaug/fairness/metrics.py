"""Per-group classification metrics that say when they are undefined.

A subgroup of a test split can be empty or hold one class only (no heart-failure patients
among normal-BMI women, say). Then balanced accuracy, TPR or FPR do not exist: they are
NaN here, with the reason, never 0, so gaps and worst groups are computed over the groups
where the metric exists.
"""

from __future__ import annotations

import numpy as np


def _rate(hits: np.ndarray, among: np.ndarray) -> float:
    return float(hits[among].mean()) if among.any() else float("nan")


def tpr(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rate(y_pred == 1, y_true == 1)


def fnr(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rate(y_pred == 0, y_true == 1)


def fpr(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rate(y_pred == 1, y_true == 0)


def balanced_accuracy(y_true, y_pred) -> float:
    return (tpr(y_true, y_pred) + 1.0 - fpr(y_true, y_pred)) / 2.0


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def f1(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    true_pos = ((y_true == 1) & (y_pred == 1)).sum()
    denominator = (y_true == 1).sum() + (y_pred == 1).sum()
    return float(2 * true_pos / denominator) if (y_true == 1).any() else float("nan")


def selection_rate(y_true, y_pred) -> float:
    y_pred = np.asarray(y_pred)
    return float((y_pred == 1).mean()) if len(y_pred) else float("nan")


def count(y_true, y_pred) -> float:
    return float(len(y_true))


def positives(y_true, y_pred) -> float:
    return float((np.asarray(y_true) == 1).sum())


GROUP_METRICS = {
    "balanced_accuracy": balanced_accuracy,
    "accuracy": accuracy,
    "f1": f1,
    "tpr": tpr,
    "fpr": fpr,
    "fnr": fnr,
    "selection_rate": selection_rate,
    "count": count,
    "positives": positives,
}


def undefined_reason(n: int, n_positive: int) -> str:
    """Why some metrics of a group with n subjects, n_positive with heart failure, do not exist."""
    if n == 0:
        return "no test subjects"
    if n_positive == 0:
        return "no heart-failure subjects: balanced accuracy, F1, TPR and FNR undefined"
    if n_positive == n:
        return "no healthy subjects: balanced accuracy and FPR undefined"
    return ""
