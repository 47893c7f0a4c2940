"""The predictions file every scoring task writes: one row per subject with its attributes."""

from __future__ import annotations

import pandas as pd

from fairaug.models.classifier import HeartFailureClassifier

PREDICTION_COLUMNS = ["subject_id", "label", "prob", "pred", "sex", "age", "bmi", "age_group", "bmi_group", "vendor",
                      "centre", "origin"]


def predictions_table(module: HeartFailureClassifier, scored: pd.DataFrame) -> pd.DataFrame:
    """The module's last test pass over the subjects of `scored` (in loader order), by subject."""
    outputs = module.test_outputs
    rows = scored.iloc[outputs["index"].numpy()].reset_index(drop=True)
    rows["prob"] = outputs["prob"].numpy().round(6)
    rows["pred"] = (rows["prob"] >= 0.5).astype(int)
    return rows[PREDICTION_COLUMNS].sort_values("subject_id").reset_index(drop=True)
