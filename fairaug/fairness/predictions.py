"""The predictions file every scoring task writes (classify, predict) and every fairness
report reads: one row per subject, its label, score and attributes."""

from __future__ import annotations

PREDICTION_COLUMNS = [
    "subject_id",
    "label",
    "prob",
    "pred",
    "sex",
    "age",
    "bmi",
    "age_group",
    "bmi_group",
    "vendor",
    "centre",
    "origin",
]
SCORED_COLUMNS = ("label", "pred")  # what a report needs; attribute columns are reported where present
