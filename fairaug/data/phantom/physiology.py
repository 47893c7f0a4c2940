"""Who the phantom subjects are: demographics, diagnosis and cardiac function.

Healthy function follows the UK Biobank reference ranges of Petersen et al. (J Cardiovasc
Magn Reson 2017): LVEF women 61 ± 5 %, men 58 ± 5 %; LV mass index men 53 ± 9 g/m²,
women 42 ± 7 g/m²; LV end-diastolic volume index larger in men and falling with age.
Heart failure dilates the LV and lowers its ejection fraction below ~45 %, scaled by
``hf_severity`` so that the classification task can be made harder or easier, and per
subgroup by ``hf_severity_ratio``: by default women's heart failure is milder (less
dilation, less EF loss), as women more often have heart failure with preserved EF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairaug.data.groups import age_decade, bmi_group

# Petersen et al. 2017 (healthy Caucasians, UK Biobank), as means and SDs per sex.
LVEF = {"female": (61.0, 5.0), "male": (58.0, 5.0)}
LV_MASS_INDEX = {"female": (42.0, 7.0), "male": (53.0, 9.0)}
LVEDV_INDEX = {"female": (74.0, 11.0), "male": (84.0, 13.0)}
LVEDV_INDEX_PER_YEAR = -0.35  # ml/m² per year of age, around age 60
RVEDV_INDEX = {"female": (78.0, 12.0), "male": (94.0, 15.0)}
RVEF = (56.0, 6.0)
HEIGHT_CM = {"female": (163.0, 6.5), "male": (176.0, 7.0)}
MYOCARDIAL_DENSITY = 1.05  # g/ml


@dataclass(frozen=True)
class Composition:
    """Subgroup make-up of the cohort and heart-failure odds per subgroup."""

    n_subjects: int
    p_female: float
    age_weights: dict[str, float]
    bmi_mean: float
    bmi_sd: float
    hf_base_prevalence: float
    hf_odds_ratio: dict[str, dict[str, float]]
    hf_severity: float
    hf_severity_ratio: dict[str, dict[str, float]]


def _body_surface_area(height_cm: np.ndarray, weight_kg: np.ndarray) -> np.ndarray:
    """Mosteller formula, m²."""
    return np.sqrt(height_cm * weight_kg / 3600.0)


def _sample_age(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    decades = list(weights)
    p = np.array([weights[d] for d in decades], dtype=float)
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"data.composition.age_weights must be non-negative and not all 0: {weights}")
    starts = np.array([int(d.rstrip("s")) for d in decades])
    chosen = rng.choice(len(decades), size=n, p=p / p.sum())
    # UK Biobank imaging visits span ages 45 to 82.
    return np.clip(starts[chosen] + rng.uniform(0, 10, n), 45.0, 82.0)


def _heart_failure(rng: np.random.Generator, cohort: pd.DataFrame, comp: Composition) -> np.ndarray:
    base = comp.hf_base_prevalence
    log_odds = np.full(len(cohort), np.log(base / (1.0 - base)))
    for attribute, ratios in comp.hf_odds_ratio.items():
        if attribute not in cohort:
            raise ValueError(f"data.composition.hf_odds_ratio names unknown attribute '{attribute}'")
        log_odds += np.log(cohort[attribute].map(ratios).fillna(1.0).to_numpy(dtype=float))
    return (rng.uniform(size=len(cohort)) < 1.0 / (1.0 + np.exp(-log_odds))).astype(int)


def sample_subjects(comp: Composition, n_frames: int, seed: int) -> pd.DataFrame:
    """One row per subject: demographics, diagnosis, ED/ES frames and LV/RV function."""
    rng = np.random.default_rng(seed)
    n = comp.n_subjects
    sex = np.where(rng.uniform(size=n) < comp.p_female, "female", "male")
    age = _sample_age(rng, comp.age_weights, n)
    bmi = np.clip(rng.lognormal(np.log(comp.bmi_mean), comp.bmi_sd / comp.bmi_mean, n), 16.0, 50.0)
    cohort = pd.DataFrame({"subject_id": [f"PH{i:05d}" for i in range(n)], "sex": sex,
                           "age": age.round(1), "bmi": bmi.round(1)})
    cohort["age_group"] = age_decade(cohort["age"])
    cohort["bmi_group"] = bmi_group(cohort["bmi"])
    cohort["label"] = _heart_failure(rng, cohort, comp)

    def per_sex(table: dict[str, tuple[float, float]]) -> np.ndarray:
        mean = np.array([table[s][0] for s in sex])
        sd = np.array([table[s][1] for s in sex])
        return rng.normal(mean, sd)

    height = per_sex(HEIGHT_CM)
    bsa = _body_surface_area(height, bmi * (height / 100.0) ** 2)
    edv_index = per_sex(LVEDV_INDEX) + LVEDV_INDEX_PER_YEAR * (age - 60.0)
    lvef = per_sex(LVEF)
    mass_index = per_sex(LV_MASS_INDEX)
    rv_edv_index = per_sex(RVEDV_INDEX)
    rvef = rng.normal(*RVEF, n)

    hf = cohort["label"].to_numpy() == 1
    severity = comp.hf_severity * np.ones(n)
    for attribute, ratios in comp.hf_severity_ratio.items():
        if attribute not in cohort:
            raise ValueError(f"data.composition.hf_severity_ratio names unknown attribute '{attribute}'")
        severity *= cohort[attribute].map(ratios).fillna(1.0).to_numpy(dtype=float)
    lvef = np.where(hf, lvef - severity * rng.normal(22.0, 6.0, n), lvef)
    edv_index = np.where(hf, edv_index * (1.0 + severity * rng.uniform(0.1, 0.45, n)), edv_index)
    mass_index = np.where(hf, mass_index * (1.0 + severity * rng.uniform(0.0, 0.2, n)), mass_index)
    rvef = np.where(hf, rvef - severity * rng.normal(8.0, 4.0, n), rvef)

    lvedv = np.clip(edv_index, 40.0, 200.0) * bsa
    lvef = np.clip(lvef, 12.0, 75.0)
    rvedv = np.clip(rv_edv_index, 45.0, 200.0) * bsa
    rvef = np.clip(rvef, 25.0, 75.0)
    cohort["diagnosis"] = np.where(hf, "heart failure", "healthy")
    cohort["ed_frame"] = 0
    cohort["es_frame"] = np.clip(np.round(n_frames * rng.normal(0.36, 0.025, n)), 2, n_frames - 2).astype(int)
    cohort["height_cm"] = height.round(1)
    cohort["bsa_m2"] = bsa.round(3)
    cohort["lvedv_ml"] = lvedv.round(1)
    cohort["lvesv_ml"] = (lvedv * (1.0 - lvef / 100.0)).round(1)
    cohort["lvef_pct"] = lvef.round(1)
    cohort["lv_mass_g"] = (np.clip(mass_index, 20.0, 120.0) * bsa).round(1)
    cohort["rvedv_ml"] = rvedv.round(1)
    cohort["rvesv_ml"] = (rvedv * (1.0 - rvef / 100.0)).round(1)
    return cohort
