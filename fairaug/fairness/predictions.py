"""The predictions file every scoring task writes (classify, predict) and every fairness
report reads: one row per subject, its label, score and attributes."""

from __future__ import annotations

from fairaug.data.cohort import RECORDED

PREDICTION_COLUMNS = ["subject_id", "label", "prob", "pred", *RECORDED, "origin"]
SCORED_COLUMNS = ("label", "pred")  # what a report needs; attribute columns are reported where present
