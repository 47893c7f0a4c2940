"""A classifier's test pass as the predictions file (its columns: fairaug.fairness.predictions)."""

from __future__ import annotations

import pandas as pd

from fairaug.fairness.predictions import PREDICTION_COLUMNS
from fairaug.models.classifier import HeartFailureClassifier


def predictions_table(module: HeartFailureClassifier, scored: pd.DataFrame) -> pd.DataFrame:
    """The module's last test pass over the subjects of `scored` (in loader order), by subject."""
    outputs = module.test_outputs
    rows = scored.iloc[outputs["index"].numpy()].reset_index(drop=True)
    rows["prob"] = outputs["prob"].numpy().round(6)
    rows["pred"] = (rows["prob"] >= 0.5).astype(int)
    return rows[PREDICTION_COLUMNS].sort_values("subject_id").reset_index(drop=True)
