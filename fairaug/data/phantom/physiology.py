"""Who the phantom subjects are: demographics, diagnosis, heart-failure phenotype and function.

Healthy function follows the UK Biobank reference ranges of Petersen et al. (J Cardiovasc
Magn Reson 2017): LVEF women 61 ± 5 %, men 58 ± 5 %; LV mass index men 53 ± 9 g/m²,
women 42 ± 7 g/m²; LV end-diastolic volume index larger in men and falling with age; heart
size scales with body surface area.

Heart failure comes as one of three phenotypes, drawn from a mixture whose weights depend on
sex, age and BMI (``data.composition.phenotypes``), each applied to the subject's own healthy
values and equally severe in both sexes:

- ``hfref``: dilated, thin-walled, reduced EF (15-40 %), as in dilated cardiomyopathy.
- ``ischaemic``: EF 25-45 %, moderate dilation, one coronary territory (LAD: anteroseptal,
  mid to apex; RCA: inferior; LCx: lateral) akinetic and thinned by scar.
- ``hfpef``: preserved EF (≥ 50 %), concentric hypertrophy (mass up 35-80 %), a smaller
  cavity, and slow relaxation (less early diastolic filling).

``data.composition.cells`` swaps the population for given cells (label x sex x age decade x
BMI group): each cell's subjects are drawn from the population given their cell, and
everything downstream of the demographics and diagnosis is drawn exactly as for the population.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import truncnorm

from fairaug.data.groups import BMI_CUTS, BMI_GROUPS, age_decade, bmi_group
from fairaug.errors import ConfigError

# Petersen et al. 2017 (healthy Caucasians, UK Biobank), as means and SDs per sex.
LVEF = {"female": (61.0, 5.0), "male": (58.0, 5.0)}
LV_MASS_INDEX = {"female": (42.0, 7.0), "male": (53.0, 9.0)}
LVEDV_INDEX = {"female": (74.0, 11.0), "male": (84.0, 13.0)}
LVEDV_INDEX_PER_YEAR = -0.35  # ml/m² per year of age, around age 60
RVEDV_INDEX = {"female": (78.0, 12.0), "male": (94.0, 15.0)}
RVEF = (56.0, 6.0)
HEIGHT_CM = {"female": (163.0, 6.5), "male": (176.0, 7.0)}
HEALTHY_EARLY_FILLING = 0.8  # share of diastolic filling before the atrial kick

PHENOTYPES = ("hfref", "ischaemic", "hfpef")
AGE_RANGE = (45, 82)  # UK Biobank imaging visits
BMI_RANGE = (16.0, 50.0)
RECORDED_HALF_STEP = 0.05  # age and BMI are recorded to 0.1; their groups are those of the recorded values
DECADES = ("40s", "50s", "60s", "70s", "80s")
GROUPS = {"sex": ("female", "male"), "age_group": DECADES, "bmi_group": BMI_GROUPS}
CELL = ("label", *GROUPS)
# Culprit coronary territories of ischaemic heart failure and how often each is the culprit.
TERRITORIES = {"LAD": 0.5, "RCA": 0.3, "LCx": 0.2}


@dataclass(frozen=True)
class Composition:
    """Subgroup make-up of the cohort, heart-failure odds and phenotype mixture per subgroup;
    or, with `cells`, exactly the subjects of those cells (`n_subjects` is then unused)."""

    n_subjects: int | None
    p_female: float
    age_weights: dict[str, float]
    bmi_mean: float
    bmi_sd: float
    hf_base_prevalence: float
    hf_odds_ratio: dict[str, dict[str, float]]
    phenotype_weights: dict[str, float]
    phenotype_odds_ratio: dict[str, dict[str, dict[str, float]]]
    cells: list[dict] | None = None  # {label, sex, age_group, bmi_group, count} each


def _body_surface_area(height_cm: np.ndarray, weight_kg: np.ndarray) -> np.ndarray:
    """Mosteller formula, m²."""
    return np.sqrt(height_cm * weight_kg / 3600.0)


def _decade_starts(decades) -> np.ndarray:
    return np.array([int(d.rstrip("s")) for d in decades])


def _uniform_in_decades(rng: np.random.Generator, starts: np.ndarray) -> np.ndarray:
    """Uniform within each decade's share of UK Biobank's imaging ages."""
    low, high = np.maximum(starts, AGE_RANGE[0]), np.minimum(starts + 10, AGE_RANGE[1])
    return low + rng.uniform(0, 1, len(starts)) * (high - low)


def _sample_age(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    decades = list(weights)
    p = np.array([weights[d] for d in decades], dtype=float)
    chosen = rng.choice(len(decades), size=n, p=p / p.sum())
    return _uniform_in_decades(rng, _decade_starts(decades)[chosen])


def _sample_bmi(rng: np.random.Generator, comp: Composition, n: int) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(comp.bmi_mean), comp.bmi_sd / comp.bmi_mean, n), *BMI_RANGE)


def _sample_bmi_within(rng: np.random.Generator, comp: Composition, groups: pd.Series) -> np.ndarray:
    """_sample_bmi's log-normal truncated to each subject's BMI group (inverse CDF)."""
    edges = np.array([0.0, *BMI_CUTS, np.inf]) - RECORDED_HALF_STEP  # so rounding keeps the group
    group = groups.map(BMI_GROUPS.index).to_numpy()
    mu, sigma = np.log(comp.bmi_mean), comp.bmi_sd / comp.bmi_mean
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf; sigma 0: bounds ±inf
        low, high = ((np.log(np.maximum(edges[i], 0.0)) - mu) / sigma for i in (group, group + 1))
    z = truncnorm.ppf(rng.uniform(size=len(group)), low, high)
    return np.clip(np.exp(mu + sigma * z), *BMI_RANGE)


def _odds(cohort: pd.DataFrame, ratios: dict[str, dict[str, float]]) -> np.ndarray:
    """Product of the odds ratios of each subject's groups (1 for groups not listed)."""
    odds = np.ones(len(cohort))
    for attribute, by_group in ratios.items():
        odds *= cohort[attribute].map(by_group).fillna(1.0).to_numpy(dtype=float)
    return odds


def _check_odds_ratios(ratios: dict[str, dict[str, float]], key: str) -> None:
    for attribute, by_group in ratios.items():
        if attribute not in GROUPS:
            raise ConfigError(f"{key} names unknown attribute '{attribute}' (one of {', '.join(GROUPS)})")
        for group, ratio in by_group.items():
            if group not in GROUPS[attribute]:
                raise ConfigError(f"{key}.{attribute} names unknown group '{group}' (one of {list(GROUPS[attribute])})")
            if not (np.isfinite(ratio) and ratio > 0):
                raise ConfigError(f"{key}.{attribute}.{group} must be a positive odds ratio, got {ratio}")


def _check_cells(comp: Composition) -> None:
    key = "data.composition.cells"
    if not comp.cells:
        raise ConfigError(f"{key} must list at least one cell, or be null to sample the population")
    choices = {"label": (0, 1), **GROUPS}
    seen = set()
    for i, cell in enumerate(comp.cells):
        entry = f"{key}[{i}] {dict(cell)}"
        if set(cell) != {*CELL, "count"}:
            raise ConfigError(f"{entry}: a cell has exactly the keys {[*CELL, 'count']}")
        for name, allowed in choices.items():
            if cell[name] not in allowed:
                ages = f" (UK Biobank imaging ages {AGE_RANGE[0]}-{AGE_RANGE[1]})" if name == "age_group" else ""
                raise ConfigError(f"{entry}: {name} must be one of {list(allowed)}{ages}, got {cell[name]!r}")
        if not (isinstance(cell["count"], numbers.Integral) and cell["count"] >= 1):
            raise ConfigError(f"{entry}: count must be an integer of at least 1, got {cell['count']!r}")
        if comp.bmi_sd == 0 and bmi_group(pd.Series([comp.bmi_mean])).iloc[0] != cell["bmi_group"]:
            raise ConfigError(f"{entry}: with data.composition.bmi_sd=0 every BMI is bmi_mean={comp.bmi_mean}")
        name = tuple(cell[c] for c in CELL)
        if name in seen:
            raise ConfigError(f"{entry} repeats an earlier cell: give each cell once, with its total count")
        seen.add(name)


def check_composition(comp: Composition) -> None:
    """A clear error naming the setting for every value that would give a wrong or no cohort."""
    key = "data.composition"
    if comp.cells is not None:
        _check_cells(comp)
    elif comp.n_subjects < 1:
        raise ConfigError(f"data.n_subjects must be at least 1, got {comp.n_subjects}")
    if not 0.0 <= comp.p_female <= 1.0:
        raise ConfigError(f"{key}.p_female must lie in [0, 1], got {comp.p_female}")
    if not (comp.bmi_mean > 0 and comp.bmi_sd >= 0):
        raise ConfigError(
            f"{key}.bmi_mean must be positive and bmi_sd non-negative, got {comp.bmi_mean} and {comp.bmi_sd}"
        )
    if not 0.0 < comp.hf_base_prevalence < 1.0:
        raise ConfigError(f"{key}.hf_base_prevalence must lie in (0, 1), got {comp.hf_base_prevalence}")
    unknown = sorted(set(comp.age_weights) - set(DECADES))
    if unknown:
        raise ConfigError(
            f"{key}.age_weights names {unknown}; UK Biobank imaging ages "
            f"{AGE_RANGE[0]}-{AGE_RANGE[1]} span the decades {list(DECADES)}"
        )
    weights = np.array(list(comp.age_weights.values()), dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ConfigError(f"{key}.age_weights must be non-negative and not all 0: {dict(comp.age_weights)}")
    _check_odds_ratios(comp.hf_odds_ratio, f"{key}.hf_odds_ratio")
    unknown = sorted((set(comp.phenotype_weights) | set(comp.phenotype_odds_ratio)) - set(PHENOTYPES))
    if unknown:
        raise ConfigError(
            f"{key}.phenotypes names unknown phenotype(s) {unknown}; the phenotypes are {list(PHENOTYPES)}"
        )
    weights = np.array(list(comp.phenotype_weights.values()), dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ConfigError(
            f"{key}.phenotypes.weights must be non-negative and not all 0: {dict(comp.phenotype_weights)}"
        )
    for name, ratios in comp.phenotype_odds_ratio.items():
        _check_odds_ratios(ratios, f"{key}.phenotypes.odds_ratio.{name}")


def _heart_failure(rng: np.random.Generator, cohort: pd.DataFrame, comp: Composition) -> np.ndarray:
    base = comp.hf_base_prevalence
    odds = base / (1.0 - base) * _odds(cohort, comp.hf_odds_ratio)
    return (rng.uniform(size=len(cohort)) < odds / (1.0 + odds)).astype(int)


def _phenotype(rng: np.random.Generator, cohort: pd.DataFrame, comp: Composition) -> np.ndarray:
    """A heart-failure phenotype per subject (drawn for everyone; healthy subjects ignore it)."""
    weights = np.stack(
        [
            comp.phenotype_weights.get(name, 0.0) * _odds(cohort, comp.phenotype_odds_ratio.get(name, {}))
            for name in PHENOTYPES
        ],
        axis=1,
    )
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    chosen = (rng.uniform(size=(len(cohort), 1)) > cumulative).sum(axis=1)
    return np.asarray(PHENOTYPES)[np.minimum(chosen, len(PHENOTYPES) - 1)]


def cells_from_counts(counts: pd.DataFrame) -> list[dict]:
    """`data.composition.cells` for the cells a balance plan fills (`generate` > 0; columns
    label, sex, age_group, bmi_group, generate): real subjects in place of synthetic ones."""
    wanted = counts[counts["generate"] > 0]
    return [
        {"label": int(row.label), **{c: str(getattr(row, c)) for c in GROUPS}, "count": int(row.generate)}
        for row in wanted.itertuples()
    ]


def _demographics(sex: np.ndarray, age: np.ndarray, bmi: np.ndarray) -> pd.DataFrame:
    """The subjects as recorded (age and BMI to 0.1) and their groups."""
    cohort = pd.DataFrame(
        {"subject_id": [f"PH{i:05d}" for i in range(len(sex))], "sex": sex, "age": age.round(1), "bmi": bmi.round(1)}
    )
    cohort["age_group"] = age_decade(cohort["age"])
    cohort["bmi_group"] = bmi_group(cohort["bmi"])
    return cohort


def _population(rng: np.random.Generator, comp: Composition) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Subjects drawn from the population, with their unrounded age and BMI."""
    n = comp.n_subjects
    sex = np.where(rng.uniform(size=n) < comp.p_female, "female", "male")
    age = _sample_age(rng, comp.age_weights, n)
    bmi = _sample_bmi(rng, comp, n)
    cohort = _demographics(sex, age, bmi)
    cohort["label"] = _heart_failure(rng, cohort, comp)
    return cohort, age, bmi


def _cells(rng: np.random.Generator, comp: Composition) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Subjects of `comp.cells` drawn from the population given their cell, with their unrounded
    age and BMI; bounds half a recording step low, so rounding never moves one out of its cell."""
    cells = pd.DataFrame(comp.cells, columns=[*CELL, "count"])
    subjects = cells.loc[cells.index.repeat(cells["count"])].reset_index(drop=True)
    age = _uniform_in_decades(rng, _decade_starts(subjects["age_group"]) - RECORDED_HALF_STEP)
    bmi = _sample_bmi_within(rng, comp, subjects["bmi_group"])
    cohort = _demographics(subjects["sex"].to_numpy(), age, bmi)
    cohort["label"] = subjects["label"].to_numpy(dtype=int)
    return cohort, age, bmi


def sample_subjects(comp: Composition, n_frames: int, seed: int) -> pd.DataFrame:
    """One row per subject: demographics, diagnosis, phenotype, ED/ES frames, LV/RV function."""
    check_composition(comp)
    rng = np.random.default_rng(seed)
    cohort, age, bmi = _population(rng, comp) if comp.cells is None else _cells(rng, comp)
    n, sex = len(cohort), cohort["sex"].to_numpy()
    phenotype = np.where(cohort["label"] == 1, _phenotype(rng, cohort, comp), "healthy")

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
    early_filling = np.full(n, HEALTHY_EARLY_FILLING)

    def where(name, value, otherwise):
        return np.where(phenotype == name, value, otherwise)

    lvef = where("hfref", rng.uniform(15.0, 40.0, n), lvef)
    edv_index = where("hfref", edv_index * rng.uniform(1.3, 1.7, n), edv_index)
    mass_index = where("hfref", mass_index * rng.uniform(1.05, 1.3, n), mass_index)
    rvef = where("hfref", rvef - rng.normal(10.0, 4.0, n), rvef)

    lvef = where("ischaemic", rng.uniform(25.0, 45.0, n), lvef)
    edv_index = where("ischaemic", edv_index * rng.uniform(1.15, 1.5, n), edv_index)
    mass_index = where("ischaemic", mass_index * rng.uniform(1.0, 1.2, n), mass_index)
    rvef = where("ischaemic", rvef - rng.normal(5.0, 4.0, n), rvef)
    territory = where("ischaemic", rng.choice(list(TERRITORIES), n, p=list(TERRITORIES.values())), "")
    defect_deg = where("ischaemic", rng.uniform(70.0, 120.0, n).round(), 0.0)

    lvef = where("hfpef", np.maximum(lvef + rng.normal(2.0, 4.0, n), 50.0), lvef)
    edv_index = where("hfpef", edv_index * rng.uniform(0.8, 0.95, n), edv_index)
    mass_index = where("hfpef", mass_index * rng.uniform(1.35, 1.8, n), mass_index)
    early_filling = where("hfpef", rng.uniform(0.35, 0.55, n), early_filling)

    lvedv = np.clip(edv_index, 40.0, 180.0) * bsa
    lvef = np.clip(lvef, 12.0, 75.0)
    rvedv = np.clip(rv_edv_index, 45.0, 200.0) * bsa
    rvef = np.clip(rvef, 25.0, 75.0)
    cohort["diagnosis"] = np.where(cohort["label"] == 1, "heart failure", "healthy")
    cohort["phenotype"] = phenotype
    cohort["ed_frame"] = 0
    cohort["es_frame"] = np.clip(np.round(n_frames * rng.normal(0.36, 0.025, n)), 2, n_frames - 2).astype(int)
    cohort["height_cm"] = height.round(1)
    cohort["bsa_m2"] = bsa.round(3)
    cohort["lvedv_ml"] = lvedv.round(1)
    cohort["lvesv_ml"] = (lvedv * (1.0 - lvef / 100.0)).round(1)
    cohort["lvef_pct"] = lvef.round(1)
    cohort["lv_mass_g"] = (np.clip(mass_index, 20.0, 160.0) * bsa).round(1)
    cohort["rvedv_ml"] = rvedv.round(1)
    cohort["rvesv_ml"] = (rvedv * (1.0 - rvef / 100.0)).round(1)
    cohort["territory"] = territory
    cohort["defect_deg"] = defect_deg
    cohort["early_filling"] = early_filling.round(3)
    return cohort
