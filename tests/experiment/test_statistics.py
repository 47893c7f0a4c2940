import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from fairaug.errors import DataError
from fairaug.experiment.statistics import (
    Metric,
    arm_mean,
    detectable_difference,
    holm,
    holm_reachable,
    non_inferior,
    paired_difference,
    per_run,
    recovered_fraction,
)

OVERALL = Metric()
FEMALE = Metric("balanced_accuracy", "sex", "female")
WORST_SEX = Metric("worst_group", "sex")
GAP_SEX = Metric("gap", "sex")
CELL = 20  # test subjects per (sex, label)


def make_subjects(cell: int = CELL) -> pd.DataFrame:
    """`cell` subjects of each (sex, label), in that order."""
    cells = [(sex, label) for sex in ("female", "male") for label in (1, 0)]
    rows = [{"sex": sex, "label": label, "age_group": "40-59"} for sex, label in cells for _ in range(cell)]
    frame = pd.DataFrame(rows)
    return frame.assign(subject_id=[f"s{i:03d}" for i in range(len(frame))])


def run(arm, training_set, seed, correct, subjects=None) -> pd.DataFrame:
    """One run's rows: `correct[(sex, label)]` subjects of that cell (the first ones) predicted right,
    the others wrong."""
    subjects = make_subjects() if subjects is None else subjects
    rank = subjects.groupby(["sex", "label"]).cumcount()
    right = np.array([rank[i] < correct[(s, y)] for i, (s, y) in enumerate(zip(subjects.sex, subjects.label))])
    prediction = np.where(right, subjects.label, 1 - subjects.label)
    return subjects.assign(
        arm=arm, training_set=training_set, seed=seed, prediction=prediction, probability=prediction * 0.8 + 0.1
    )


def uniform(correct_per_cell: int) -> dict:
    """The same number right in every cell: balanced accuracy correct_per_cell / CELL everywhere."""
    return {(s, y): correct_per_cell for s in ("female", "male") for y in (0, 1)}


def arms_table(values: dict, training_sets=(0, 1), seeds=(0, 1, 2)) -> pd.DataFrame:
    """Every run of arm a has balanced accuracy values[a] (in twentieths) in every cell."""
    return pd.concat(
        [run(arm, t, s, uniform(k)) for arm, k in values.items() for t in training_sets for s in seeds],
        ignore_index=True,
    )


def test_metric_names_and_validation():
    assert OVERALL.name == "balanced accuracy"
    assert FEMALE.name == "balanced accuracy (sex=female)"
    assert WORST_SEX.name == "worst-group balanced accuracy (sex)"
    assert GAP_SEX.name == "balanced accuracy gap (sex)"
    with pytest.raises(ValueError, match="kind"):
        Metric("auroc")
    with pytest.raises(ValueError, match="both"):
        Metric("balanced_accuracy", "sex")
    with pytest.raises(ValueError, match="attribute"):
        Metric("gap")


def test_metrics_by_hand():
    # women: TPR 15/20, TNR 10/20 -> 0.625; men: TPR 18/20, TNR 16/20 -> 0.85
    rows = run("a", 0, 0, {("female", 1): 15, ("female", 0): 10, ("male", 1): 18, ("male", 0): 16})
    assert FEMALE.evaluate(rows) == pytest.approx(0.625)
    assert Metric("balanced_accuracy", "sex", "male").evaluate(rows) == pytest.approx(0.85)
    assert OVERALL.evaluate(rows) == pytest.approx((33 / 40 + 26 / 40) / 2)
    assert WORST_SEX.evaluate(rows) == pytest.approx(0.625)
    assert GAP_SEX.evaluate(rows) == pytest.approx(0.225)
    # a group with one class only has no balanced accuracy: not the worst group, not in the gap
    unknown = pd.DataFrame({"subject_id": ["u1", "u2"], "sex": "unknown", "label": 0, "prediction": 1})
    with_unknown = pd.concat([rows, unknown], ignore_index=True)
    assert WORST_SEX.evaluate(with_unknown) == pytest.approx(0.625)
    assert GAP_SEX.evaluate(with_unknown) == pytest.approx(0.225)
    assert np.isnan(Metric("balanced_accuracy", "sex", "unknown").evaluate(with_unknown))
    # nor is a group under min_count
    tiny = pd.DataFrame({"subject_id": ["t1", "t2"], "sex": "other", "label": [0, 1], "prediction": [1, 0]})
    with_tiny = pd.concat([rows, tiny], ignore_index=True)
    assert WORST_SEX.evaluate(with_tiny) == 0.0
    assert Metric("worst_group", "sex", min_count=3).evaluate(with_tiny) == pytest.approx(0.625)
    # a gap needs two groups
    assert np.isnan(GAP_SEX.evaluate(rows[rows.sex == "female"]))


def test_weights_count_subjects_like_sample_weights():
    rng = np.random.default_rng(3)
    rows = make_subjects().assign(prediction=rng.integers(0, 2, 4 * CELL))
    weights = rng.integers(0, 4, len(rows))
    for metric, subset in ((OVERALL, rows.index), (FEMALE, rows.index[rows.sex == "female"])):
        expected = balanced_accuracy_score(rows.label[subset], rows.prediction[subset], sample_weight=weights[subset])
        assert metric.evaluate(rows, weights) == pytest.approx(expected)
    repeated = rows.loc[rows.index.repeat(weights)]
    assert WORST_SEX.evaluate(rows, weights) == pytest.approx(WORST_SEX.evaluate(repeated))
    assert GAP_SEX.evaluate(rows, weights) == pytest.approx(GAP_SEX.evaluate(repeated))


def test_per_run():
    table = arms_table({"real_only": 12, "oracle": 14}, seeds=(0, 1))
    values = per_run(table, OVERALL)
    assert list(values.columns) == ["arm", "training_set", "seed", "value"]
    assert len(values) == 8
    expected = values.arm.map({"real_only": 0.6, "oracle": 0.7})
    np.testing.assert_allclose(values.value, expected)


def test_paired_difference_is_exact_on_constant_runs():
    table = arms_table({"real_only": 12, "balance": 13})  # 0.60 and 0.65 on each of 2 x 3 pairs
    result = paired_difference(table, "balance", OVERALL, n_boot=200, resample_subjects=False)
    assert (result.arm, result.baseline, result.n_pairs) == ("balance", "real_only", 6)
    assert result.estimate == pytest.approx(0.05)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.05, 0.05))
    assert result.p_value == pytest.approx(2 / 2**6)  # six positive differences: the exact test's floor
    assert result.min_p == pytest.approx(2 / 2**6) and result.n_nonzero == 6
    assert result.se == pytest.approx(0, abs=1e-12)
    with_subjects = paired_difference(table, "balance", OVERALL, n_boot=200)
    assert with_subjects.estimate == pytest.approx(0.05)
    assert with_subjects.ci_low < 0.05 < with_subjects.ci_high


def test_no_difference_has_no_p_value():
    table = arms_table({"real_only": 12, "copy": 12})
    result = paired_difference(table, "copy", OVERALL, n_boot=100)
    assert result.estimate == 0 and (result.ci_low, result.ci_high) == (0, 0)
    assert np.isnan(result.p_value) and np.isnan(result.min_p)


def pairs_that_vary() -> pd.DataFrame:
    """Runs whose level varies a lot from pair to pair; the arm is one subject per cell better in each."""
    levels = {(t, s): 10 + 2 * t + s for t in range(3) for s in range(3)}
    return pd.concat(
        [run("real_only", t, s, uniform(k)) for (t, s), k in levels.items()]
        + [run("balance", t, s, uniform(k + 1)) for (t, s), k in levels.items()],
        ignore_index=True,
    )


def test_runs_are_paired_by_training_set_and_seed():
    table = pairs_that_vary()
    paired = paired_difference(table, "balance", OVERALL, n_boot=300, resample_subjects=False)
    assert (paired.ci_low, paired.ci_high) == pytest.approx((0.05, 0.05))  # no pair-to-pair noise left
    shuffled = table.sample(frac=1, random_state=0, ignore_index=True)
    assert paired_difference(shuffled, "balance", OVERALL, n_boot=300, resample_subjects=False) == paired
    resampled = paired_difference(table, "balance", FEMALE, n_boot=300)
    assert paired_difference(shuffled, "balance", FEMALE, n_boot=300) == resampled
    # pairing the arm's runs with the wrong baseline runs lets the pair-to-pair variation in
    balance = table.arm == "balance"
    mispaired = table.assign(seed=np.where(balance, (table.seed + 1) % 3, table.seed))
    wrong = paired_difference(mispaired, "balance", OVERALL, n_boot=300, resample_subjects=False)
    assert wrong.estimate == pytest.approx(0.05) and wrong.ci_high - wrong.ci_low > 0.02


def test_only_common_pairs_are_compared():
    table = pd.concat(
        [arms_table({"real_only": 12}, seeds=(0, 1, 2)), arms_table({"balance": 13}, seeds=(1, 2, 3))],
        ignore_index=True,
    )
    assert paired_difference(table, "balance", OVERALL, n_boot=50).n_pairs == 4
    disjoint = pd.concat([arms_table({"real_only": 12}, seeds=(0,)), arms_table({"balance": 13}, seeds=(1,))])
    with pytest.raises(DataError, match=r"\['real_only', 'balance'\] share no"):
        paired_difference(disjoint, "balance", OVERALL)
    with pytest.raises(DataError, match="share no"):
        paired_difference(table, "no_such_arm", OVERALL)


def test_runs_must_score_the_same_subjects():
    table = arms_table({"real_only": 12, "balance": 13})
    dropped = table.drop(table.index[(table.arm == "balance") & (table.seed == 1) & (table.subject_id == "s000")])
    with pytest.raises(DataError, match=r"\('balance', 1\)"):
        paired_difference(dropped, "balance", OVERALL)
    relabelled = table.assign(label=np.where(table.index == 5, 1 - table.label, table.label))
    with pytest.raises(DataError, match="label"):
        per_run(relabelled, OVERALL)
    with pytest.raises(DataError, match="repeat"):
        per_run(pd.concat([table, table.head(1)]), OVERALL)


def test_holm_by_hand():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])  # NaN: not a comparison
    np.testing.assert_allclose(holm([0.5, 0.6, 0.01]), [1.0, 1.0, 0.03])  # monotone, clipped at 1
    assert holm([]).shape == (0,)


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p_values = np.random.default_rng(0).uniform(0, 0.2, 12)
    np.testing.assert_allclose(holm(p_values), multitest.multipletests(p_values, method="holm")[1])


def test_detectable_difference_by_hand():
    # two-sided 5 % test, 80 % power: (1.95996 + 0.84162) standard errors
    assert detectable_difference(0.01) == pytest.approx(0.0280158, abs=1e-6)
    assert detectable_difference(0.01, power=0.5) == pytest.approx(0.0195996, abs=1e-6)
    assert detectable_difference(0.0) == 0 and np.isnan(detectable_difference(float("nan")))


def test_holm_reachable_by_hand():
    # 6 pairs: the smallest signed-rank p is 2 / 64 = 0.031, below 0.05 / 1 but not 0.05 / 2
    assert holm_reachable(6, 1) == (True, 6)
    assert holm_reachable(6, 2) == (False, 7)  # 2 / 128 = 0.0156 <= 0.025
    assert holm_reachable(8, 30) == (False, 11)  # 0.0078 > 0.05 / 30; 2 / 2**11 = 0.00098 <= 0.00167
    assert holm_reachable(15, 52) == (True, 12)  # 2 / 2**11 = 0.000977 > 0.05 / 52 = 0.000962


def test_non_inferiority():
    assert non_inferior(-0.019) and not non_inferior(-0.02) and not non_inferior(-0.05)
    assert non_inferior(-0.04, margin=-0.05) and not non_inferior(float("nan"))


def test_recovered_fraction_by_hand():
    table = arms_table({"real_only": 12, "oracle": 14, "balance": 13})  # 0.60, 0.70, 0.65 on every run
    exact = recovered_fraction(table, "balance", OVERALL, n_boot=200, resample_subjects=False)
    assert exact.estimate == pytest.approx(0.5) and (exact.ci_low, exact.ci_high) == pytest.approx((0.5, 0.5))
    assert exact.oracle_gain == pytest.approx(0.1) and exact.oracle_gain_significant and exact.n_pairs == 6
    assert exact.oracle_gain_se == pytest.approx(0, abs=1e-12)
    resampled = recovered_fraction(table, "balance", OVERALL, n_boot=200)
    assert resampled.estimate == pytest.approx(0.5) and resampled.ci_low <= 0.5 <= resampled.ci_high
    assert resampled.oracle_gain_ci_low > 0 and resampled.oracle_gain_significant
    # no oracle gain: the ratio has no interval and is flagged
    flat = arms_table({"real_only": 12, "oracle": 12, "balance": 13})
    unstable = recovered_fraction(flat, "balance", OVERALL, n_boot=100)
    assert not unstable.oracle_gain_significant and np.isnan(unstable.ci_low) and np.isnan(unstable.ci_high)
    # a gain too small to divide by
    tiny = recovered_fraction(table, "balance", OVERALL, n_boot=100, min_gain=0.2)
    assert not tiny.oracle_gain_significant


def test_recovered_fraction_averages_before_dividing():
    # oracle gains 1 and 3 twentieths on two pairs, the arm 1 and 1: (2/2) / (4/2) = 0.5, not mean(1, 1/3)
    table = pd.concat(
        [
            run("real_only", 0, 0, uniform(10)),
            run("oracle", 0, 0, uniform(11)),
            run("balance", 0, 0, uniform(11)),
            run("real_only", 0, 1, uniform(10)),
            run("oracle", 0, 1, uniform(13)),
            run("balance", 0, 1, uniform(11)),
        ]
    )
    result = recovered_fraction(table, "balance", WORST_SEX, n_boot=100, resample_subjects=False)
    assert result.estimate == pytest.approx(0.5)
    assert result.ci_low == pytest.approx(1 / 3) and result.ci_high == pytest.approx(1.0)  # either pair alone


def test_arm_mean():
    table = pairs_that_vary()
    values = per_run(table, OVERALL).query("arm == 'real_only'").value
    summary = arm_mean(table, "real_only", OVERALL, n_boot=300)
    assert summary.mean == pytest.approx(values.mean()) and summary.std == pytest.approx(values.std(ddof=1))
    assert summary.n_runs == 9 and values.min() < summary.ci_low < summary.mean < summary.ci_high < values.max()
    constant = arm_mean(arms_table({"real_only": 12}), "real_only", OVERALL, n_boot=100)
    assert (constant.mean, constant.std, constant.ci_low, constant.ci_high) == pytest.approx((0.6, 0, 0.6, 0.6))


def simulated(rng, shared_test_set: bool, effect=0.05, training_sets=6, seeds=3, n=200) -> pd.DataFrame:
    """Predictions right with probability 0.65 + a subject's ease (shared by every run) + the arm's
    effect in that training set (mean `effect`): the true difference in balanced accuracy is `effect`."""
    tables, subjects = [], None
    for t in range(training_sets):
        if subjects is None or not shared_test_set:
            subjects = pd.DataFrame(
                {
                    "subject_id": [f"t{t}s{i}" for i in range(n)],
                    "label": rng.integers(0, 2, n),
                    "sex": rng.choice(["female", "male"], n),
                }
            )
            ease = rng.uniform(-0.15, 0.15, n)
        gain = rng.normal(effect, 0.02)
        runs = pd.DataFrame({"arm": np.repeat(["real_only", "balance"], seeds), "seed": np.tile(range(seeds), 2)})
        right = rng.random((len(runs), n)) < 0.65 + ease + np.where(runs.arm == "balance", gain, 0)[:, None]
        rows = pd.concat([subjects] * len(runs), ignore_index=True).assign(
            arm=np.repeat(runs.arm, n).to_numpy(),
            seed=np.repeat(runs.seed, n).to_numpy(),
            training_set=t,
            prediction=np.where(
                right.ravel(), np.tile(subjects.label, len(runs)), 1 - np.tile(subjects.label, len(runs))
            ),
        )
        tables.append(rows)
    return pd.concat(tables, ignore_index=True)


@pytest.mark.parametrize("shared_test_set", [True, False])
def test_interval_covers_the_true_difference(shared_test_set):
    rng = np.random.default_rng(11)
    effect, results = 0.05, []
    for _ in range(20):
        results.append(paired_difference(simulated(rng, shared_test_set), "balance", OVERALL, n_boot=300, rng=rng))
    covered = np.mean([r.ci_low <= effect <= r.ci_high for r in results])
    spread = np.std([r.estimate for r in results], ddof=1)
    width = np.median([r.ci_high - r.ci_low for r in results])
    assert covered >= 0.9
    # the standard error is the replicates' spread: about a quarter of the 95 % interval's width
    assert all(0.8 < 2 * 1.96 * r.se / (r.ci_high - r.ci_low) < 1.25 for r in results)
    # resampling every level is conservative (see the module), but not without bound
    assert 0.8 < width / (2 * 1.96 * spread) < 2.0
