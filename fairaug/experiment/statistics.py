"""Paired statistics of the capstone experiment: arms compared run for run and subject for subject.

Every arm is trained on the same training sets with the same seeds and scored on the same test
subjects, so a (training set, seed) pair is the unit of comparison and the variation an effect must
stand out from has three sources: which training set was drawn, which seed, which test subjects.
The hierarchical bootstrap resamples all three in turn — training sets, seeds within each chosen
training set, then test subjects — and gives every arm the same resample, so arms stay paired.

Test subjects are resampled per training set. When every training set is scored on the same test
subjects (the built-in cohort's fixed test set) one subject resample per replicate serves all of
them, since the same subjects' difficulty is shared by every run; when the test subjects differ
between training sets (real data) each chosen training set resamples its own subjects.

Resampling every level is conservative: a training set's mean already carries its seeds' and
subjects' noise, which the lower levels then add again (in simulation the interval came out 1.4 to
1.6 times as wide as the estimate's real spread, covering the truth every time). `resample_seeds` and
`resample_subjects` switch the lower levels off.

Metrics are computed from per-subject weights, so a subject resample is a vector of multinomial
counts and all replicates of a training set are one matrix product.

Input: long predictions, a row per (arm, training_set, seed, subject_id) with `label` and
`prediction` (0/1) and attribute columns (`sex`, `age_group`, ...).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import norm, wilcoxon

from fairaug.errors import DataError
from fairaug.fairness.compare import smallest_p

BASELINE = "real_only"
N_BOOT = 2000
CONFIDENCE = 0.95
POWER = 0.8  # of the smallest difference a design is said to detect
ALPHA = 0.05  # family-wise, for Holm
NON_INFERIORITY_MARGIN = -0.02
MIN_ORACLE_GAIN = 0.01  # below it the recovered fraction divides by noise
KINDS = ("balanced_accuracy", "worst_group", "gap")
REQUIRED = ("arm", "training_set", "seed", "subject_id", "label", "prediction")
PAIR = ["training_set", "seed"]
RUN = ["arm", *PAIR]


@dataclass(frozen=True)
class Metric:
    """Balanced accuracy of a subgroup (or of everyone), the worst group's balanced accuracy over
    an attribute, or the gap between its best and worst group. Groups that lack a class, or hold
    fewer than `min_count` test subjects, are left out of the worst group and the gap."""

    kind: str = "balanced_accuracy"
    attribute: str | None = None
    group: str | None = None
    min_count: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"metric kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "balanced_accuracy" and (self.attribute is None) != (self.group is None):
            raise ValueError("balanced accuracy of a subgroup needs both attribute and group (neither for everyone)")
        if self.kind != "balanced_accuracy" and (self.attribute is None or self.group is not None):
            raise ValueError(f"{self.kind} needs an attribute and no group")

    @property
    def name(self) -> str:
        if self.kind == "worst_group":
            return f"worst-group balanced accuracy ({self.attribute})"
        if self.kind == "gap":
            return f"balanced accuracy gap ({self.attribute})"
        return "balanced accuracy" + (f" ({self.attribute}={self.group})" if self.attribute else "")

    @property
    def columns(self) -> list[str]:
        return ["label"] + ([self.attribute] if self.attribute else [])

    def _masks(self, subjects: pd.DataFrame) -> np.ndarray:
        """(groups, subjects) membership."""
        if self.attribute is None:
            return np.ones((1, len(subjects)), dtype=bool)
        values = subjects[self.attribute].astype(str).to_numpy()
        if self.kind == "balanced_accuracy":
            return (values == str(self.group))[None]
        groups, counts = np.unique(values, return_counts=True)
        return values[None] == groups[counts >= self.min_count, None]

    def values(self, subjects: pd.DataFrame, predictions: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The metric of R runs, `predictions` (subjects, R), under L subject weightings, `weights`
        (L, subjects; None: each subject once): an (L, R) array, NaN where undefined."""
        masks = self._masks(subjects).astype(float)
        label = subjects["label"].to_numpy(dtype=float)
        predictions = np.asarray(predictions, dtype=float)
        n, runs = predictions.shape
        weights = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
        positives, negatives = masks * label, masks * (1 - label)  # (groups, subjects)

        def weighted(members: np.ndarray, hits: np.ndarray) -> np.ndarray:  # (L, groups, R)
            per_run = (members[:, :, None] * hits[None]).transpose(1, 0, 2).reshape(n, -1)
            return (weights @ per_run).reshape(len(weights), len(masks), runs)

        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = weighted(positives, predictions) / (weights @ positives.T)[:, :, None]
            tnr = weighted(negatives, 1 - predictions) / (weights @ negatives.T)[:, :, None]
        accuracy = (tpr + tnr) / 2  # NaN for a group without one of the classes
        if self.kind == "balanced_accuracy":
            return accuracy[:, 0]
        defined = (~np.isnan(accuracy)).sum(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no group defined
            worst, best = np.nanmin(accuracy, axis=1), np.nanmax(accuracy, axis=1)
        if self.kind == "worst_group":
            return worst
        return np.where(defined >= 2, best - worst, np.nan)

    def evaluate(self, rows: pd.DataFrame, weights=None) -> float:
        """The metric of one run's rows (a row per test subject), each row counted `weights` times."""
        prediction = rows["prediction"].to_numpy()[:, None]
        return float(self.values(rows, prediction, None if weights is None else np.asarray(weights)[None])[0, 0])


def _checked(table: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    missing = [c for c in (*REQUIRED, *metric.columns) if c not in table]
    if missing:
        raise DataError(f"long predictions lack the column(s) {missing}")
    duplicated = table.duplicated([*RUN, "subject_id"])
    if duplicated.any():
        raise DataError(
            f"{duplicated.sum()} rows repeat a (arm, training_set, seed, subject_id), first:\n"
            f"{table[duplicated].head(1)[[*RUN, 'subject_id']].to_string(index=False)}"
        )
    return table


class _TrainingSet(NamedTuple):
    """One training set's test subjects and its runs' predictions on them."""

    subjects: pd.DataFrame  # a row per test subject, by subject_id: label and attributes
    runs: pd.MultiIndex  # (arm, seed) of the prediction columns
    predictions: np.ndarray  # (subjects, runs) 0/1

    def values(self, metric: Metric, weights: np.ndarray | None = None) -> np.ndarray:
        return metric.values(self.subjects, self.predictions, weights)


def _training_set(rows: pd.DataFrame, metric: Metric, runs: pd.MultiIndex | None = None) -> _TrainingSet:
    """Every run of a training set must score the same test subjects, which must keep their label
    and attributes from run to run."""
    training_set = rows.training_set.iloc[0]
    described = rows.drop_duplicates(["subject_id", *metric.columns])
    if described.subject_id.duplicated().any():
        changing = [c for c in metric.columns if described.groupby("subject_id")[c].nunique().gt(1).any()]
        raise DataError(f"training set {training_set}: {changing} of a test subject differ between runs")
    subjects = described.set_index("subject_id")[metric.columns].sort_index()
    ran = pd.MultiIndex.from_frame(rows[["arm", "seed"]])
    runs = ran.unique().sort_values() if runs is None else runs
    predictions = np.full((len(subjects), len(runs)), np.nan)
    columns = runs.get_indexer(ran)  # -1: a run not asked for
    subject_rows = subjects.index.get_indexer(rows.subject_id)
    predictions[subject_rows[columns >= 0], columns[columns >= 0]] = rows.prediction.to_numpy()[columns >= 0]
    unscored = runs[np.isnan(predictions).any(axis=0)]
    if len(unscored):
        raise DataError(
            f"training set {training_set}: run(s) (arm, seed) {list(unscored)} "
            f"do not score all {len(subjects)} test subjects of the training set"
        )
    return _TrainingSet(subjects, runs, predictions)


def per_run(table: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The metric of every run: columns arm, training_set, seed, value."""
    parts = []
    for _, rows in _checked(table, metric).groupby("training_set", sort=True):
        training_set = _training_set(rows, metric)
        part = training_set.runs.to_frame(index=False).assign(
            training_set=rows.training_set.iloc[0], value=training_set.values(metric)[0]
        )
        parts.append(part)
    return pd.concat(parts)[[*RUN, "value"]].sort_values(RUN).reset_index(drop=True)


def _common_runs(table: pd.DataFrame, arms: list[str], metric: Metric) -> list[_TrainingSet]:
    """The training sets of the (training_set, seed) pairs every arm ran, each with its runs
    ordered (arm, seed) with arms in the order given."""
    table = _checked(table, metric)
    runs = table[RUN].drop_duplicates()
    pairs = [set(runs.loc[runs.arm == arm, PAIR].itertuples(index=False, name=None)) for arm in arms]
    common = sorted(set.intersection(*pairs))
    if not common:
        ran = {arm: sorted(p)[:5] for arm, p in zip(arms, pairs)}
        raise DataError(f"arms {arms} share no (training_set, seed) pair to compare; their pairs (first 5): {ran}")
    in_common = pd.MultiIndex.from_frame(table[PAIR]).isin(pd.MultiIndex.from_tuples(common, names=PAIR))
    sets = []
    for _, rows in table[table.arm.isin(arms) & in_common].groupby("training_set", sort=True):
        runs = pd.MultiIndex.from_product([arms, sorted(rows.seed.unique())], names=["arm", "seed"])
        sets.append(_training_set(rows, metric, runs))
    return sets


def _run_values(sets: list[_TrainingSet], metric: Metric, arms: int) -> np.ndarray:
    """(pairs, arms): the metric of every common pair of each arm, on all its test subjects."""
    return np.concatenate([ts.values(metric)[0].reshape(arms, -1).T for ts in sets])


def _bootstrap_means(
    sets: list[_TrainingSet],
    metric: Metric,
    arms: int,
    n_boot: int,
    rng,
    resample_seeds: bool = True,
    resample_subjects: bool = True,
) -> np.ndarray:
    """(n_boot, arms): each arm's mean metric over the resampled (training set, seed) pairs of a
    replicate, on its resampled test subjects; every arm gets the same resample."""
    rng = np.random.default_rng(rng)
    chosen = rng.integers(len(sets), size=(n_boot, len(sets))).ravel()  # training sets, a slot each
    replicate = np.repeat(np.arange(n_boot), len(sets))
    shared = resample_subjects and all(ts.subjects.index.equals(sets[0].subjects.index) for ts in sets)
    n = len(sets[0].subjects)
    common_weights = rng.multinomial(n, np.full(n, 1 / n), size=n_boot) if shared else None
    totals, counts = np.zeros((n_boot, arms)), np.zeros((n_boot, arms))
    for index, ts in enumerate(sets):
        slots = np.flatnonzero(chosen == index)
        if not len(slots):
            continue
        n_seeds, n_subjects = ts.predictions.shape[1] // arms, len(ts.subjects)
        seed_counts = (
            rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=len(slots))
            if resample_seeds
            else np.ones((len(slots), n_seeds))
        )
        if not resample_subjects:
            values = np.broadcast_to(ts.values(metric), (len(slots), ts.predictions.shape[1]))
        elif shared:
            values = ts.values(metric, common_weights)[replicate[slots]]
        else:
            values = ts.values(metric, rng.multinomial(n_subjects, np.full(n_subjects, 1 / n_subjects), len(slots)))
        values = values.reshape(len(values), arms, n_seeds)
        defined = ~np.isnan(values)
        np.add.at(totals, replicate[slots], np.einsum("ls,las->la", seed_counts, np.where(defined, values, 0)))
        np.add.at(counts, replicate[slots], np.einsum("ls,las->la", seed_counts, defined))
    with np.errstate(invalid="ignore"):
        return totals / counts


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    if np.isnan(replicates).all():
        return float("nan"), float("nan")
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """arm − baseline, averaged over their common (training set, seed) pairs. `se`: the spread (sd)
    of the bootstrap replicates. `min_p`: the smallest p the signed-rank test can give over this
    many nonzero differences."""

    arm: str
    baseline: str
    metric: str
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    p_value: float
    n_pairs: int
    n_nonzero: int
    min_p: float


def paired_difference(
    table: pd.DataFrame,
    arm: str,
    metric: Metric,
    baseline: str = BASELINE,
    n_boot: int = N_BOOT,
    rng: int | np.random.Generator = 0,
    confidence: float = CONFIDENCE,
    resample_seeds: bool = True,
    resample_subjects: bool = True,
) -> PairedDifference:
    """The mean paired difference with its hierarchical-bootstrap interval and the two-sided
    Wilcoxon signed-rank p over the per-pair differences (NaN when no pair differs)."""
    sets = _common_runs(table, [baseline, arm], metric)
    values = _run_values(sets, metric, 2)
    differences = values[:, 1] - values[:, 0]
    differences = differences[~np.isnan(differences)]
    nonzero = differences[differences != 0]
    replicates = _bootstrap_means(sets, metric, 2, n_boot, rng, resample_seeds, resample_subjects)
    replicate_differences = replicates[:, 1] - replicates[:, 0]
    return PairedDifference(
        arm=arm,
        baseline=baseline,
        metric=metric.name,
        estimate=float(differences.mean()) if len(differences) else float("nan"),
        ci_low=(interval := _interval(replicate_differences, confidence))[0],
        ci_high=interval[1],
        se=spread(replicate_differences),
        p_value=float(wilcoxon(nonzero).pvalue) if len(nonzero) else float("nan"),
        n_pairs=len(differences),
        n_nonzero=len(nonzero),
        min_p=smallest_p(len(nonzero)) if len(nonzero) else float("nan"),
    )


def spread(replicates) -> float:
    """The bootstrap standard error: the replicates' standard deviation (NaN replicates left out)."""
    replicates = np.asarray(replicates, dtype=float)
    finite = replicates[np.isfinite(replicates)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")


def detectable_difference(se: float, confidence: float = CONFIDENCE, power: float = POWER) -> float:
    """The true difference whose `confidence` interval excludes 0 with probability `power`, for an
    estimate with standard error `se` (normal approximation, no multiplicity correction): a design
    finds differences this large 4 times in 5 (at the default power), smaller ones less often."""
    return float((norm.ppf(1 - (1 - confidence) / 2) + norm.ppf(power)) * se)


def holm_reachable(n_pairs: int, comparisons: int, alpha: float = ALPHA) -> tuple[bool, int]:
    """Whether a signed-rank test over `n_pairs` nonzero pairs can pass Holm's correction over
    `comparisons` at all (its first step needs p ≤ alpha / comparisons, and the exact test's p is
    never below 2 / 2**n_pairs), and the fewest pairs that would make it possible."""
    needed = 1
    while smallest_p(needed) > alpha / comparisons:
        needed += 1
    return n_pairs >= needed, needed


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment, in the input order; NaN (a comparison not made) stays NaN and
    does not count towards the number of comparisons."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    order = tested[np.argsort(p_values[tested], kind="stable")]
    factors = len(order) - np.arange(len(order))
    adjusted[order] = np.minimum(np.maximum.accumulate(p_values[order] * factors), 1.0)
    return adjusted


def non_inferior(ci_low: float, margin: float = NON_INFERIORITY_MARGIN) -> bool:
    """Whether a difference's interval rules out a loss larger than the margin (a NaN bound shows nothing)."""
    return bool(ci_low > margin)


@dataclass(frozen=True)
class RecoveredFraction:
    """(arm − baseline) / (oracle − baseline). Only meaningful when the oracle's own gain is real:
    `oracle_gain_significant` is False when its interval holds 0 or it is smaller than the minimum
    gain, and the interval is NaN when some replicate's oracle gain is 0."""

    arm: str
    oracle: str
    baseline: str
    metric: str
    estimate: float
    ci_low: float
    ci_high: float
    oracle_gain: float
    oracle_gain_ci_low: float
    oracle_gain_ci_high: float
    oracle_gain_se: float
    oracle_gain_significant: bool
    n_pairs: int


def recovered_fraction(
    table: pd.DataFrame,
    arm: str,
    metric: Metric,
    oracle: str = "oracle",
    baseline: str = BASELINE,
    n_boot: int = N_BOOT,
    rng: int | np.random.Generator = 0,
    confidence: float = CONFIDENCE,
    min_gain: float = MIN_ORACLE_GAIN,
    resample_seeds: bool = True,
    resample_subjects: bool = True,
) -> RecoveredFraction:
    """The fraction of the oracle's gain over the baseline that `arm` recovers, over the pairs all
    three ran, with the interval of the ratio over replicates that resample the three arms alike."""
    sets = _common_runs(table, [baseline, oracle, arm], metric)
    values = _run_values(sets, metric, 3)
    values = values[~np.isnan(values).any(axis=1)]
    base, best, ours = values.mean(axis=0) if len(values) else np.full(3, np.nan)
    replicates = _bootstrap_means(sets, metric, 3, n_boot, rng, resample_seeds, resample_subjects)
    gains = replicates[:, 1] - replicates[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = (replicates[:, 2] - replicates[:, 0]) / gains
        estimate = (ours - base) / (best - base)
    gain_low, gain_high = _interval(gains, confidence)
    low, high = _interval(fractions, confidence) if np.all(gains != 0) else (float("nan"), float("nan"))
    return RecoveredFraction(
        arm=arm,
        oracle=oracle,
        baseline=baseline,
        metric=metric.name,
        estimate=float(estimate),
        ci_low=low,
        ci_high=high,
        oracle_gain=float(best - base),
        oracle_gain_ci_low=gain_low,
        oracle_gain_ci_high=gain_high,
        oracle_gain_se=spread(gains),
        oracle_gain_significant=bool(abs(best - base) >= min_gain and (gain_low > 0 or gain_high < 0)),
        n_pairs=len(values),
    )


@dataclass(frozen=True)
class ArmMean:
    """An arm's metric over its runs: mean ± std (ddof 1) and the bootstrap interval of the mean."""

    arm: str
    metric: str
    mean: float
    std: float
    ci_low: float
    ci_high: float
    n_runs: int


def arm_mean(
    table: pd.DataFrame,
    arm: str,
    metric: Metric,
    n_boot: int = N_BOOT,
    rng: int | np.random.Generator = 0,
    confidence: float = CONFIDENCE,
    resample_seeds: bool = True,
    resample_subjects: bool = False,
) -> ArmMean:
    """The interval resamples training sets, then seeds; with `resample_subjects` test subjects too
    (the uncertainty of the level on this test set, not only from run to run)."""
    sets = _common_runs(table, [arm], metric)
    values = _run_values(sets, metric, 1)[:, 0]
    values = values[~np.isnan(values)]
    low, high = _interval(
        _bootstrap_means(sets, metric, 1, n_boot, rng, resample_seeds, resample_subjects)[:, 0], confidence
    )
    return ArmMean(
        arm=arm,
        metric=metric.name,
        mean=float(values.mean()) if len(values) else float("nan"),
        std=float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
        ci_low=low,
        ci_high=high,
        n_runs=len(values),
    )
