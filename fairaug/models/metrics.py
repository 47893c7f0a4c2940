"""Binary classification metrics, named as in the reports."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
    BinaryStatScores,
)


class BinaryBalancedAccuracy(BinaryStatScores):
    """Mean of sensitivity and specificity (0.5 is chance whatever the prevalence)."""

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self._final_state()
        sensitivity = tp / (tp + fn).clamp(min=1)
        specificity = tn / (tn + fp).clamp(min=1)
        return ((sensitivity + specificity) / 2).float()


def classification_metrics() -> MetricCollection:
    return MetricCollection(
        {
            "accuracy": BinaryAccuracy(),
            "balanced_accuracy": BinaryBalancedAccuracy(),
            "precision": BinaryPrecision(),
            "recall": BinaryRecall(),
            "specificity": BinarySpecificity(),
            "f1": BinaryF1Score(),
            "auroc": BinaryAUROC(),
        }
    )


def worst_group_balanced_accuracy(probs: np.ndarray, labels: np.ndarray, groups: dict[str, np.ndarray]) -> float:
    """The lowest balanced accuracy (threshold 0.5, as the metrics above) over the groups of every
    attribute in `groups` (attribute -> each subject's group) that hold both classes."""
    calls = np.asarray(probs) >= 0.5
    labels = np.asarray(labels).astype(int)
    scores = []
    for values in groups.values():
        values = np.asarray(values)
        for group in np.unique(values):
            members = values == group
            if len(np.unique(labels[members])) == 2:
                scores.append(balanced_accuracy_score(labels[members], calls[members]))
    if not scores:
        raise ValueError(f"no group of {list(groups)} holds both healthy and heart-failure subjects")
    return float(min(scores))
