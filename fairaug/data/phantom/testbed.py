"""Is the phantom's subgroup gap learnable away? Accuracy of a model per sex on the true physiology.

On a cohort balanced by sex and diagnosis, a logistic regression per sex on EF and the
BSA-indexed EDV, ESV and LV mass (5-fold cross-validated) measures how separable heart failure
is in each sex's physiology. Nearly equal accuracies mean a classifier's gap on the default
cohort comes from what it was shown, which augmentation can change, not from the disease.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fairaug.data.phantom.physiology import Composition, sample_subjects


def physiology_features(cohort: pd.DataFrame) -> pd.DataFrame:
    bsa = cohort.bsa_m2
    return pd.DataFrame(
        {
            "lvef": cohort.lvef_pct,
            "lvedv_index": cohort.lvedv_ml / bsa,
            "lvesv_index": cohort.lvesv_ml / bsa,
            "mass_index": cohort.lv_mass_g / bsa,
        }
    )


def per_sex_accuracy(composition: Composition, n_subjects: int, seed: int) -> dict[str, float]:
    """Balanced accuracy per sex on a balanced cohort with `composition`'s phenotype mixture."""
    balanced = replace(composition, n_subjects=n_subjects, p_female=0.5, hf_base_prevalence=0.5, hf_odds_ratio={})
    cohort = sample_subjects(balanced, n_frames=50, seed=seed)
    features = physiology_features(cohort)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    accuracy = {}
    for sex in ("female", "male"):
        rows = cohort.sex == sex
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        predicted = cross_val_predict(model, features[rows], cohort.label[rows], cv=folds)
        accuracy[sex] = balanced_accuracy_score(cohort.label[rows], predicted)
    return accuracy
