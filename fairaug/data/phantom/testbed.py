"""Can the phantom test augmentation? Two instruments on the true physiology, without images.

Learnable away: on a cohort balanced by sex and diagnosis, a logistic regression per sex on EF
and the BSA-indexed EDV, ESV and LV mass (5-fold cross-validated) measures how separable heart
failure is in each sex's physiology. Nearly equal accuracies mean a classifier's gap on the
default cohort comes from what it was shown, which augmentation can change, not from the disease.

Visible: one pooled model of what an ED/ES image shows (absolute LV and RV volumes, LV mass,
body size), trained on a biased cohort of the default size and scored per sex on a large
unbiased one, screens a composition for the gap under-representation opens in seconds per
setting, where the CNN takes most of an hour.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

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


def image_features(cohort: pd.DataFrame) -> pd.DataFrame:
    """What an ED/ES short-axis image shows of a subject: sizes in ml and g, not indexed, and body size."""
    return cohort[["lvedv_ml", "lvesv_ml", "lv_mass_g", "rvedv_ml", "rvesv_ml", "bsa_m2"]]


def biased_gap(composition: Composition, n_train: int, n_external: int, seeds: int) -> pd.DataFrame:
    """Per seed: a gradient-boosted model of image_features trained on a cohort of n_train drawn from
    `composition`, and its balanced accuracy by sex on one cohort of n_external without the sex
    odds ratio (heart failure as frequent in women as in men)."""
    unbiased = {**composition.hf_odds_ratio, "sex": {}}
    external_seed = 10_001  # apart from the training cohorts' seeds 0, 1, ...
    external = replace(composition, n_subjects=n_external, hf_odds_ratio=unbiased)
    external = sample_subjects(external, n_frames=50, seed=external_seed)
    rows = []
    for seed in range(seeds):
        train = sample_subjects(replace(composition, n_subjects=n_train), n_frames=50, seed=seed)
        model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
        with threadpool_limits(1):  # small fits: OpenMP threads only contend, 100x slower on busy cores
            predicted = model.fit(image_features(train), train.label).predict(image_features(external))
        row = {"seed": seed, "hf_women_in_training": int(((train.sex == "female") & (train.label == 1)).sum())}
        for sex in ("female", "male"):
            rows_of_sex = (external.sex == sex).to_numpy()
            row[sex] = balanced_accuracy_score(external.label[rows_of_sex], predicted[rows_of_sex])
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.assign(gap=table.male - table.female)
