"""Binary classification metrics, named as in the reports."""

from __future__ import annotations

import torch
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
