import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from omegaconf import OmegaConf
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from fairaug.fairness.report import BY_GROUP_COLUMNS, evaluate, write_report


def fairness_cfg(**changes):
    return OmegaConf.create(
        {
            "attributes": ["sex", "age_group", "bmi_group"],
            "intersections": [],
            "n_boot": 50,
            "ci": 0.95,
            "min_count": 5,
            **changes,
        }
    )


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    n = 400
    table = pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(n)],
            "label": rng.integers(0, 2, n),
            "sex": rng.choice(["female", "male"], n),
            "age_group": rng.choice(["50s", "60s", "70s"], n),
            "bmi_group": rng.choice(["normal", "overweight", "obese"], n),
        }
    )
    noise = np.where(table.sex == "female", 0.35, 0.15)  # a biased classifier
    table["pred"] = np.where(rng.uniform(size=n) < noise, 1 - table.label, table.label)
    table["prob"] = table.pred * 0.8 + 0.1
    return table


def test_per_group_numbers_match_scikit_learn(predictions):
    report = evaluate(predictions, fairness_cfg())
    for row in report.by_group.itertuples():
        part = predictions[predictions[row.attribute] == row.group]
        if part.empty:
            continue
        assert row.balanced_accuracy == pytest.approx(balanced_accuracy_score(part.label, part.pred))
        assert row.accuracy == pytest.approx(accuracy_score(part.label, part.pred))
        assert row.f1 == pytest.approx(f1_score(part.label, part.pred))
        assert row.tpr == pytest.approx(recall_score(part.label, part.pred))
        assert row.fpr == pytest.approx(1 - recall_score(part.label, part.pred, pos_label=0))
        assert row.fnr == pytest.approx(1 - row.tpr)
        assert row.selection_rate == pytest.approx(part.pred.mean())
        assert (row.count, row.positives) == (len(part), part.label.sum())
        assert row.balanced_accuracy_ci_low <= row.balanced_accuracy <= row.balanced_accuracy_ci_high
    assert report.overall["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(predictions.label, predictions.pred)
    )


def test_criteria_match_fairlearn(predictions):
    report = evaluate(predictions, fairness_cfg(n_boot=0))
    for attribute in ("sex", "age_group", "bmi_group"):
        kwargs = {"sensitive_features": predictions[attribute]}
        y, p = predictions.label, predictions.pred
        summary = report.attributes[attribute]
        assert summary["demographic_parity_difference"] == pytest.approx(demographic_parity_difference(y, p, **kwargs))
        assert summary["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(y, p, **kwargs))
        assert summary["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(y, p, **kwargs))
        assert summary["equalized_odds_ratio"] == pytest.approx(equalized_odds_ratio(y, p, **kwargs))
        assert summary["equal_opportunity_difference"] == pytest.approx(equal_opportunity_difference(y, p, **kwargs))
        assert summary["equal_opportunity_ratio"] == pytest.approx(equal_opportunity_ratio(y, p, **kwargs))
    sex = report.attributes["sex"]
    assert sex["worst_group"] == "female" and sex["best_group"] == "male"
    by_sex = report.by_group.set_index(["attribute", "group"]).loc["sex", "balanced_accuracy"]
    assert sex["balanced_accuracy_gap"] == pytest.approx(by_sex["male"] - by_sex["female"])


def test_undefined_groups_are_reported_with_the_reason(predictions):
    normal = predictions.bmi_group == "normal"
    predictions.loc[normal & (predictions.age_group == "70s"), "age_group"] = "60s"
    predictions.loc[normal, "label"] = 0  # no heart failure among normal BMI
    predictions.loc[predictions.age_group == "70s", "label"] = 1  # only heart failure in the 70s
    report = evaluate(predictions, fairness_cfg())
    rows = report.by_group.set_index(["attribute", "group"])
    normal, seventies = rows.loc[("bmi_group", "normal")], rows.loc[("age_group", "70s")]
    assert np.isnan(normal.balanced_accuracy) and np.isnan(normal.tpr) and not np.isnan(normal.fpr)
    assert "no heart-failure subjects" in normal.note
    assert np.isnan(seventies.balanced_accuracy) and np.isnan(seventies.fpr) and "no healthy" in seventies.note
    underweight = rows.loc[("bmi_group", "underweight")]  # a known group absent from the test split
    assert underweight["count"] == 0 and underweight.note == "no test subjects"
    bmi = report.attributes["bmi_group"]
    assert bmi["worst_group"] in ("overweight", "obese")
    assert set(bmi["excluded_groups"]) == {"normal", "underweight"}


def test_single_group_and_intersections(predictions):
    predictions["sex"] = "female"
    report = evaluate(predictions, fairness_cfg(intersections=[["sex", "bmi_group"]]))
    assert report.attributes["sex"]["balanced_accuracy_gap"] is None
    assert report.attributes["sex"]["demographic_parity_difference"] is None
    groups = set(report.by_group[report.by_group.attribute == "sex×bmi_group"].group)
    assert groups == {"female×normal", "female×overweight", "female×obese"}


def test_written_report(predictions, tmp_path):
    report = evaluate(predictions, fairness_cfg(intersections=[["sex", "bmi_group"]]))
    plots = write_report(report, tmp_path)
    by_group = pd.read_csv(tmp_path / "by_group.csv")
    assert list(by_group.columns[:11]) == [
        "attribute",
        "group",
        "balanced_accuracy",
        "accuracy",
        "f1",
        "tpr",
        "fpr",
        "fnr",
        "selection_rate",
        "count",
        "positives",
    ]
    assert list(by_group.columns) == BY_GROUP_COLUMNS
    fairness = json.loads((tmp_path / "fairness.json").read_text())
    for key in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "equal_opportunity_difference",
        "equal_opportunity_ratio",
        "worst_group",
        "balanced_accuracy_gap",
    ):
        assert key in fairness["attributes"]["sex"]
    assert "| female |" in (tmp_path / "report.md").read_text()
    assert [p.name for p in plots] == [
        "balanced_accuracy_by_sex.png",
        "balanced_accuracy_by_age_group.png",
        "balanced_accuracy_by_bmi_group.png",
        "balanced_accuracy_by_sex_x_bmi_group.png",
    ]
    assert all(p.stat().st_size > 5000 for p in plots)


def test_groups_below_min_count_are_reported_but_left_out_of_the_criteria(predictions):
    tiny = [*predictions.index[predictions.label == 1][:2], *predictions.index[predictions.label == 0][:2]]
    predictions.loc[tiny, "bmi_group"] = "underweight"
    predictions.loc[tiny, "pred"] = 1 - predictions.loc[tiny, "label"]  # all wrong: would be the worst group
    report = evaluate(predictions, fairness_cfg(min_count=5))
    row = report.by_group.set_index(["attribute", "group"]).loc[("bmi_group", "underweight")]
    assert row["count"] == 4 and "fewer than 5 test subjects" in row.note
    bmi = report.attributes["bmi_group"]
    assert bmi["worst_group"] != "underweight" and "underweight" in bmi["excluded_groups"]
    assert evaluate(predictions, fairness_cfg(min_count=1)).attributes["bmi_group"]["worst_group"] == "underweight"


def test_attributes_no_subject_records_are_left_out_and_named(predictions, tmp_path):
    acdc_like = predictions.assign(sex="unknown", vendor="unknown")
    report = evaluate(
        acdc_like, fairness_cfg(attributes=["sex", "age_group", "vendor"], intersections=[["sex", "age_group"]])
    )
    assert report.not_recorded == ["sex", "vendor", "sex×age_group"]
    assert set(report.by_group.attribute) == {"age_group"} and list(report.attributes) == ["age_group"]
    write_report(report, tmp_path)
    assert json.loads((tmp_path / "fairness.json").read_text())["not_recorded"] == report.not_recorded
    assert "Not reported: sex, vendor, sex×age_group" in (tmp_path / "report.md").read_text()


def test_unknown_attribute_names_are_refused_with_the_known_ones():
    from fairaug.errors import ConfigError
    from fairaug.fairness.report import check_attributes

    with pytest.raises(ConfigError, match=r"unknown attribute\(s\) \['sexx'\]; known: \['sex'"):
        check_attributes(fairness_cfg(attributes=["sexx"]))
    check_attributes(fairness_cfg(attributes=["sex", "vendor", "centre"]))


def _captured_figures(monkeypatch):
    """The figures the plots module writes, kept open for inspection."""
    from fairaug.fairness import plots

    figures = []
    monkeypatch.setattr(plots, "write_figure", lambda fig, path, **kwargs: figures.append(fig) or path)
    return figures


def test_report_plot_draws_no_bar_for_an_undefined_group_and_says_what_it_shows(monkeypatch):
    from fairaug.fairness.plots import plot_balanced_accuracy

    figures = _captured_figures(monkeypatch)
    table = pd.DataFrame(
        {
            "group": ["40s", "50s", "60s"],
            "count": [3, 20, 30],
            "balanced_accuracy": [np.nan, 0.8, 0.7],
            "balanced_accuracy_ci_low": [np.nan, 0.7, 0.7],
            "balanced_accuracy_ci_high": [np.nan, 0.9, 0.7],
        }
    )
    plot_balanced_accuracy(table, "age_group", Path("unused"), ci=0.95)
    ax = figures[0].axes[0]
    assert len(ax.patches) == 2  # two bars: the undefined 40s has none, not one of height 0
    assert "undefined" in [t.get_text() for t in ax.texts]
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert "95 % bootstrap interval" in legend and "chance (0.5)" in legend
    errorbars = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    segments = [s for c in errorbars for s in c.get_segments()]
    assert len(segments) == 1  # only the 50s has an interval of non-zero width: no zero-width whiskers


def test_comparison_plot_leaves_undefined_groups_without_a_bar(monkeypatch):
    from fairaug.fairness.plots import plot_arms

    figures = _captured_figures(monkeypatch)
    table = pd.DataFrame(
        {
            "label": ["overall", "overall", "age_group=40s", "age_group=40s"],
            "arm": ["real", "synth", "real", "synth"],
            "mean": [0.8, 0.82, np.nan, 0.6],
            "std": [0.05, 0.04, np.nan, np.nan],
        }
    )
    plot_arms(table, "balanced_accuracy", Path("unused"))
    ax = figures[0].axes[0]
    assert len(ax.patches) == 3 and "undefined" in [t.get_text() for t in ax.texts]
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert {"real", "synth", "chance (0.5)"} <= set(legend)
    assert "mean ± std over runs" in ax.get_ylabel()
