"""Simulated classify runs: a job folder as task=classify leaves it, for predictions whose
error rate is known, so sweep summaries and arm comparisons can be checked and timed without
training anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from fairaug.fairness.report import evaluate, write_report
from fairaug.runtime import RunDir

N_SUBJECTS = 120


def simulated_run(folder: Path, seed: int, fold: int, error_rate: float, failed: bool = False) -> pd.DataFrame | None:
    """A job folder (Hydra's records, predictions, fairness report, metrics) of a run whose
    predictions are wrong with probability `error_rate`; a failed job leaves only its status.
    Returns the predictions."""
    folder = RunDir(folder)
    folder.hydra.mkdir(parents=True)
    folder.hydra_overrides.write_text(yaml.safe_dump([f"seed={seed}", f"fold={fold}"]))
    folder.hydra_config.write_text(yaml.safe_dump({"seed": seed, "fold": fold}))
    if failed:
        folder.job_status.write_text(json.dumps({"status": "failed", "error": "ValueError: boom"}))
        return None
    rng = np.random.default_rng(seed * 10 + fold)
    n = N_SUBJECTS
    table = pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(n)],
            "label": rng.integers(0, 2, n),
            "sex": rng.choice(["female", "male"], n),
            "age_group": rng.choice(["50s", "60s"], n),
            "bmi_group": rng.choice(["normal", "obese"], n),
        }
    )
    table["pred"] = np.where(rng.uniform(size=n) < error_rate, 1 - table.label, table.label)
    table["prob"] = np.clip(table.pred * 0.6 + rng.uniform(0, 0.4, n), 0, 1)
    table.to_csv(folder.predictions, index=False)
    settings = {
        "attributes": ["sex", "age_group", "bmi_group"],
        "intersections": [],
        "n_boot": 0,
        "ci": 0.95,
        "min_count": 5,
    }
    write_report(evaluate(table, OmegaConf.create(settings)), folder.path)
    metrics = {
        "balanced_accuracy": balanced_accuracy_score(table.label, table.pred),
        "auroc": roc_auc_score(table.label, table.prob),
        "split_hash": f"simulated-seed{seed}-fold{fold}",  # as classify records it: seed and fold make the split
    }
    folder.metrics.write_text(json.dumps(metrics))
    return table
