import fcntl
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import wilcoxon
from sklearn.metrics import balanced_accuracy_score

from fairaug.errors import ConfigError
from fairaug.fairness import sweep
from fairaug.fairness.compare import compare
from fairaug.fairness.simulated import simulated_run
from fairaug.fairness.sweep import LOCK_FILE, summarise
from fairaug.runtime import RunDir
from fairaug.tasks import evaluate as evaluate_task

from .test_fairness import fairness_cfg


def record_launch(sweep_dir: Path, overrides: list[str]) -> None:
    """multirun.yaml as Hydra's basic sweeper writes it when it launches a sweep."""
    sweeper = {
        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
        "max_batch_size": None,
        "params": None,
    }
    (sweep_dir / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"sweeper": sweeper, "overrides": {"task": overrides}}})
    )


def fake_sweep(root: Path, error_rate: float, seeds=range(4), failing: int | None = None) -> list:
    return [simulated_run(root / str(i), seed, 0, error_rate, failed=i == failing) for i, seed in enumerate(seeds)]


def test_summary_is_mean_and_std_over_runs_and_lists_failures(tmp_path):
    tables = fake_sweep(tmp_path, 0.2, failing=2)
    summary = summarise(tmp_path, fairness_cfg())
    assert (summary["jobs"], summary["completed"]) == (4, 3)
    assert summary["failed"] == [{"job": "2", "overrides": "seed=2 fold=0", "error": "ValueError: boom"}]
    accuracies = [balanced_accuracy_score(t.label, t.pred) for t in tables if t is not None]
    assert summary["metrics"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["metrics"]["balanced_accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    female = [
        balanced_accuracy_score(t[t.sex == "female"].label, t[t.sex == "female"].pred) for t in tables if t is not None
    ]
    row = next(
        r
        for r in summary["by_group"]
        if (r["metric"], r["attribute"], r["group"]) == ("balanced_accuracy", "sex", "female")
    )
    assert row["mean"] == pytest.approx(np.mean(female)) and row["n"] == 3
    csv = pd.read_csv(tmp_path / "summary.csv")
    assert list(csv.status) == ["completed", "completed", "failed", "completed"]
    assert "balanced_accuracy[sex=female]" in csv and "equalized_odds_difference[sex]" in csv
    pooled = pd.concat([t for t in tables if t is not None])
    assert summary["pooled"]["overall"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(pooled.label, pooled.pred)
    )
    assert (tmp_path / "pooled" / "by_group.csv").exists()
    markdown = (tmp_path / "summary.md").read_text()
    assert "3 of 4 jobs completed" in markdown and "## Failed jobs" in markdown and " ± " in markdown
    assert (tmp_path / "summary_balanced_accuracy.png").stat().st_size > 5000


def test_summary_lists_every_launched_job_of_a_killed_sweep(tmp_path):
    """A sweep of 4 jobs killed in job 2: jobs 0-1 finished, job 2 started (its folder holds an
    earlier run's results), job 3 never started (its folder, and folder 4, hold jobs of an
    earlier sweep into the same folder, with other overrides)."""
    record_launch(tmp_path, ["seed=0,1,2,3", "fold=0"])
    fake_sweep(tmp_path, 0.2, seeds=range(3))
    RunDir(tmp_path / "2").job_status.write_text(json.dumps({"status": "started"}))
    simulated_run(tmp_path / "3", 7, 0, 0.2)
    simulated_run(tmp_path / "4", 8, 0, 0.2)
    summary = summarise(tmp_path, fairness_cfg())
    assert (summary["jobs"], summary["completed"], summary["failed"]) == (4, 2, [])
    assert (summary["incomplete"], summary["not_started"]) == (["2"], ["3"])
    csv = pd.read_csv(tmp_path / "summary.csv")
    assert list(csv.status) == ["completed", "completed", "incomplete", "not started"]
    assert csv.overrides.iloc[3] == "seed=3 fold=0"
    assert (
        "# Sweep summary: 2 of 4 jobs completed; job 2 incomplete, job 3 not started"
        in (tmp_path / "summary.md").read_text()
    )
    RunDir(tmp_path / "1").job_status.write_text(json.dumps({"status": "failed", "error": "ValueError: boom"}))
    assert "1 of 4 jobs completed; job 1 failed, job 2 incomplete, job 3 not started" in sweep.status_line(
        summarise(tmp_path, fairness_cfg())
    )


def test_results_are_one_long_table_of_every_job_and_measurement(tmp_path):
    tables = fake_sweep(tmp_path, 0.2, seeds=range(3), failing=1)
    summary = summarise(tmp_path, fairness_cfg())
    results = pd.read_csv(tmp_path / "results.csv", keep_default_na=False, na_values=[""])
    assert list(results.columns) == [
        "job",
        "status",
        "overrides",
        "seed",
        "fold",
        "attribute",
        "group",
        "metric",
        "value",
    ]
    failed = results[results.job == 1]  # a job that measured nothing: one row, without a metric
    assert len(failed) == 1 and failed.status.item() == "failed" and failed.metric.isna().all()
    assert failed.overrides.item() == "seed=1 fold=0" and (failed.seed.item(), failed.fold.item()) == (1, 0)
    completed = results[results.status == "completed"]
    assert not completed.duplicated(["job", "attribute", "group", "metric"]).any()
    groups = {"sex": 2, "age_group": 2, "bmi_group": 4}  # bmi_group lists the known groups, empty ones too
    per_job = 7 + 4 + 6 * sum(groups.values()) + 7 * len(groups)  # overall metrics and rates, groups, criteria
    assert completed.groupby("job").size().to_dict() == {0: per_job, 2: per_job}

    def value(job, attribute, group, metric):
        return completed.set_index(["job", "attribute", "group", "metric"]).value[(job, attribute, group, metric)]

    job2 = tables[2]
    assert value(2, "overall", "all", "balanced_accuracy") == pytest.approx(
        balanced_accuracy_score(job2.label, job2.pred)
    )
    women = job2[job2.sex == "female"]
    assert value(2, "sex", "female", "balanced_accuracy") == pytest.approx(
        balanced_accuracy_score(women.label, women.pred)
    )
    assert value(2, "sex", "female", "count") == len(women)
    assert np.isnan(value(2, "bmi_group", "underweight", "tpr"))  # listed, undefined
    criteria = json.loads((tmp_path / "2" / "fairness.json").read_text())["attributes"]["sex"]
    assert value(2, "sex", "all", "equalized_odds_difference") == pytest.approx(criteria["equalized_odds_difference"])
    # README's examples: the summary is a groupby, a comparison a pivot
    stats = completed.groupby(["attribute", "group", "metric"]).value.agg(["mean", "std", "count"])
    female = next(
        g
        for g in summary["by_group"]
        if (g["attribute"], g["group"], g["metric"]) == ("sex", "female", "balanced_accuracy")
    )
    assert stats.loc[("sex", "female", "balanced_accuracy")].tolist() == pytest.approx(
        [female["mean"], female["std"], female["n"]]
    )
    wide = completed[completed.metric == "balanced_accuracy"].pivot(
        index=["seed", "fold"], columns=["attribute", "group"], values="value"
    )
    assert wide.loc[(2, 0), ("sex", "female")] == pytest.approx(value(2, "sex", "female", "balanced_accuracy"))


def test_the_hydra_callbacks_live_beside_the_entry_point():
    from hydra.utils import get_class

    from fairaug import hydra_callbacks
    from fairaug.config import CONFIG_DIR

    callbacks = yaml.safe_load((Path(CONFIG_DIR) / "hydra" / "default.yaml").read_text())["callbacks"]
    assert {get_class(c["_target_"]) for c in callbacks.values()} == {
        hydra_callbacks.RunFolderCallback,
        hydra_callbacks.SweepSummaryCallback,
    }


def test_summary_is_written_under_the_sweep_lock(tmp_path, monkeypatch):
    fake_sweep(tmp_path, 0.2, seeds=range(2))
    held = []

    def write_json(data, path):  # another writer cannot take the lock while the summary is written
        with open(tmp_path / LOCK_FILE) as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        path.write_text(json.dumps(data))

    monkeypatch.setattr(sweep, "write_json", write_json)
    summarise(tmp_path, fairness_cfg())
    assert held == [True]


def test_compare_arms_pairs_runs_by_seed(tmp_path):
    baseline = fake_sweep(tmp_path / "baseline", 0.3, seeds=range(6))
    augmented = fake_sweep(tmp_path / "augmented", 0.1, seeds=range(6))
    table = compare(
        [str(tmp_path / "baseline"), str(tmp_path / "augmented")],
        ["real", "synth"],
        tmp_path / "out",
        "balanced_accuracy",
    )
    overall = table[(table.label == "overall") & (table.arm == "synth")].iloc[0]
    differences = [
        balanced_accuracy_score(a.label, a.pred) - balanced_accuracy_score(b.label, b.pred)
        for a, b in zip(augmented, baseline)
    ]
    assert overall.difference_to_first == pytest.approx(np.mean(differences))
    assert overall.p_value == pytest.approx(wilcoxon(differences).pvalue)
    assert overall.pairs == 6
    assert {"sex=female", "bmi_group=obese"} <= set(table.label)
    assert "synth − real" in (tmp_path / "out" / "comparison.md").read_text()
    assert (tmp_path / "out" / "comparison_balanced_accuracy.png").stat().st_size > 5000


def test_compare_corrects_across_subgroups_and_says_when_pairs_are_too_few(tmp_path, caplog):
    from scipy.stats import false_discovery_control

    fake_sweep(tmp_path / "baseline", 0.3, seeds=range(6))
    fake_sweep(tmp_path / "augmented", 0.1, seeds=range(6))
    table = compare(
        [str(tmp_path / "baseline"), str(tmp_path / "augmented")],
        ["real", "synth"],
        tmp_path / "out",
        "balanced_accuracy",
    )
    tested = table[table.arm == "synth"].dropna(subset=["p_value"])
    assert len(tested) > 5
    assert tested.q_value.to_numpy() == pytest.approx(false_discovery_control(tested.p_value.to_numpy()))
    assert (tested.q_value >= tested.p_value - 1e-12).all()
    assert "q = Benjamini-Hochberg" in (tmp_path / "out" / "comparison.md").read_text()

    fake_sweep(tmp_path / "few_a", 0.3, seeds=range(3))
    fake_sweep(tmp_path / "few_b", 0.1, seeds=range(3))
    with caplog.at_level("WARNING"):
        few = compare([str(tmp_path / "few_a"), str(tmp_path / "few_b")], None, tmp_path / "few", "balanced_accuracy")
    overall = few[(few.label == "overall") & (few.arm == "few_b")].iloc[0]
    assert "3 pairs: no p below 0.25 is possible" in overall.note
    assert "3 pairs" in caplog.text and "0.25" in caplog.text
    assert "no p below 0.25 is possible" in (tmp_path / "few" / "comparison.md").read_text()


def test_compare_needs_two_pairable_sweeps(tmp_path):
    fake_sweep(tmp_path / "a", 0.2, seeds=[0, 0])
    fake_sweep(tmp_path / "b", 0.2)
    with pytest.raises(ConfigError, match="two or more"):
        compare([str(tmp_path / "a")], None, tmp_path, "balanced_accuracy")
    with pytest.raises(ConfigError, match="same \\(seed, fold\\)"):
        compare([str(tmp_path / "a"), str(tmp_path / "b")], None, tmp_path, "balanced_accuracy")


def test_compare_refuses_to_pair_runs_trained_on_different_splits(tmp_path):
    fake_sweep(tmp_path / "real", 0.3, seeds=range(3))
    fake_sweep(tmp_path / "synth", 0.1, seeds=range(3))
    compare([str(tmp_path / "real"), str(tmp_path / "synth")], None, tmp_path / "same", "balanced_accuracy")
    metrics = RunDir(tmp_path / "synth" / "1").metrics
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "split_hash": "another"}))
    with pytest.raises(ConfigError, match=r"synth.*\(seed 1, fold 0\).*another split.*split.seed"):
        compare([str(tmp_path / "real"), str(tmp_path / "synth")], None, tmp_path / "differ", "balanced_accuracy")


def test_evaluate_task_modes(make_cfg, tmp_path):
    fake_sweep(tmp_path / "sweep", 0.2, seeds=range(3))
    fake_sweep(tmp_path / "other", 0.1, seeds=range(3))
    result = evaluate_task.run(make_cfg("task=evaluate", f"predictions={tmp_path / 'sweep' / '0'}"))
    out = Path(make_cfg().paths.output_dir)
    assert result["attributes"]["sex"]["worst_group"] in ("female", "male")
    assert (out / "by_group.csv").exists() and (out / "report.md").exists()
    summary = evaluate_task.run(make_cfg("task=evaluate", f"sweep_dir={tmp_path / 'sweep'}"))
    assert summary["completed"] == 3 and (tmp_path / "sweep" / "summary.md").exists()
    evaluate_task.run(make_cfg("task=evaluate", f"compare=[{tmp_path / 'sweep'},{tmp_path / 'other'}]"))
    assert (out / "comparison.csv").exists()
    with pytest.raises(ConfigError, match="exactly one"):
        evaluate_task.run(make_cfg("task=evaluate"))


GOLDEN = Path(__file__).parent / "golden" / "sweep"


def golden_arms(root: Path) -> dict[str, Path]:
    """Two arms of six seeds: in `real` job 2 failed; `synth` launched a seventh job that never
    started. The report's BMI groups include empty ones (NaN metrics)."""
    fake_sweep(root / "real", 0.3, seeds=range(6), failing=2)
    fake_sweep(root / "synth", 0.1, seeds=range(6))
    record_launch(root / "synth", ["seed=0,1,2,3,4,5,6", "fold=0"])
    return {"real": root / "real", "synth": root / "synth"}


def _rounded(value):
    """JSON as compared with the recording: floats to 10 significant digits (the summation
    order of a mean may move the last bits)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return float(f"{value:.10g}") if isinstance(value, float) else value


def _same_table(actual: Path, recorded: Path) -> None:
    actual, recorded = pd.read_csv(actual), pd.read_csv(recorded)
    assert sorted(actual.columns) == sorted(recorded.columns)
    pd.testing.assert_frame_equal(actual[recorded.columns], recorded, check_dtype=False, rtol=1e-10)


def test_summaries_and_comparisons_keep_the_numbers_recorded_before_the_long_table(tmp_path):
    """summary.* and comparison.* of golden_arms as the wide-column code (commit 6e0f94a) wrote
    them, in tests/golden/sweep/ (paths written as <root>)."""
    arms = golden_arms(tmp_path)
    for name, sweep_dir in arms.items():
        summary = summarise(sweep_dir, fairness_cfg())
        recorded = json.loads((GOLDEN / name / "summary.json").read_text())
        assert _rounded({**summary, "sweep_dir": "<root>"}) == _rounded(recorded)
        _same_table(sweep_dir / "summary.csv", GOLDEN / name / "summary.csv")
        markdown = (sweep_dir / "summary.md").read_text().replace(str(sweep_dir), "<root>")
        assert markdown == (GOLDEN / name / "summary.md").read_text()
    for metric in ("balanced_accuracy", "tpr"):
        out = tmp_path / f"compare_{metric}"
        compare([str(d) for d in arms.values()], list(arms), out, metric)
        _same_table(out / "comparison.csv", GOLDEN / f"comparison_{metric}.csv")
        markdown = (out / "comparison.md").read_text().replace(str(tmp_path), "<root>")
        assert markdown == (GOLDEN / f"comparison_{metric}.md").read_text()


def test_a_job_whose_records_are_still_being_written_counts_as_not_started(tmp_path):
    """A parallel launcher starts jobs while others end: a job folder holding .hydra/ without its
    overrides yet (or half of them) is not read as a job of another sweep, nor as an error."""
    fake_sweep(tmp_path, 0.2, seeds=range(2))
    record_launch(tmp_path, ["seed=0,1,2,3", "fold=0"])
    RunDir(tmp_path / "2").hydra.mkdir(parents=True)  # Hydra has created the folder, nothing more
    starting = RunDir(tmp_path / "3")
    starting.hydra.mkdir(parents=True)
    starting.hydra_overrides.write_text("- seed=3\n- 'fold")  # cut off mid-write
    starting.hydra_config.write_text("seed: 3\n")
    summary = summarise(tmp_path, fairness_cfg())
    assert (summary["jobs"], summary["completed"], summary["not_started"]) == (4, 2, ["2", "3"])
