"""report.md from hand-made predictions whose effects are known."""

import re

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from fairaug.experiment.arms import ARMS
from fairaug.experiment.report import write_experiment_report

# share of correct calls among women and men per arm: the oracle helps women by 0.2, balance by 0.1
CORRECT = {"real_only": (0.6, 0.9), "oracle": (0.8, 0.9), "balance": (0.7, 0.9), "synth_only": (0.5, 0.7)}


def predictions(rng, correct=CORRECT, training_sets=3, ranked=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calls right at the given rates; probabilities follow the calls, or for the `ranked` arms the
    true labels (a better ranking at the same calls)."""
    n = 200
    subjects = pd.DataFrame(
        {
            "subject_id": [f"test-{i}" for i in range(n)],
            "label": np.tile([0, 1], n // 2),
            "sex": np.repeat(["female", "male"], n // 2),
            "age_group": "60s",
            "bmi_group": np.tile(["normal", "obese", "normal", "overweight"], n // 4),
        }
    )
    tables, runs = [], []
    for arm, (women, men) in correct.items():
        for training_set in range(training_sets):
            for seed in range(3):
                right = rng.uniform(size=n) < np.where(subjects.sex == "female", women, men)
                call = np.where(right, subjects.label, 1 - subjects.label)
                ranking = subjects.label if arm in ranked else call
                tables.append(
                    subjects.assign(arm=arm, training_set=training_set, seed=seed, scenario="default",
                                    prediction=call, probability=np.clip(ranking * 0.6 + rng.uniform(0, 0.4, n), 0, 1))
                )  # fmt: skip
                runs.append({"scenario": "default", "arm": arm, "training_set": training_set, "seed": seed,
                             "run": f"/nowhere/default/train{training_set}/arms/{arm}/seed{seed}",
                             "dose": 1.0, "added": 0 if arm == "real_only" else 50, "n_train_real": 400})  # fmt: skip
    return pd.DataFrame(runs), pd.concat(tables, ignore_index=True)


def gap_change(report: str, arm: str) -> tuple[float, float, float]:
    """An arm's change in men's minus women's balanced accuracy, and each sex's, from the diagnosis."""
    found = re.search(rf"{arm} ([+-][\d.]+) \(women ([+-][\d.]+), men ([+-][\d.]+)\)", report)
    return tuple(float(v) for v in found.groups())


def report_config(training_sets=3):
    return OmegaConf.create(
        {"data": {"name": "phantom"}, "trainer": {"max_epochs": 12},
         "diffusion": {"name": "tiny", "steps": 1500},
         "generation": {"scheduler": "ddim", "steps": 25, "guidance_scale": 2.0, "max_samples": 300},
         "task": {"scenarios": ["default"], "training_sets": training_sets, "seeds": 3, "added_fraction": 0.25,
                  "n_boot": 300, "quick": False}}
    )  # fmt: skip


def test_the_report_measures_the_known_effects_and_writes_the_diagnosis_from_them(tmp_path):
    runs, table = predictions(np.random.default_rng(0))
    arms = [ARMS[name] for name in CORRECT]
    results = write_experiment_report(tmp_path, runs, table, arms, [], report_config())["default"]
    women = {d["arm"]: d for d in results["differences"] if d["endpoint"] == "balanced accuracy (sex=female)"}
    assert abs(women["oracle"]["difference"] - 0.2) < 0.03 and abs(women["balance"]["difference"] - 0.1) < 0.03
    assert women["oracle"]["ci_low"] > 0.1 and women["oracle"]["p_holm"] < 0.05
    # what the design detects with 80 % power: 2.80 standard errors, about 0.71 of the 95 % interval's width
    oracle = women["oracle"]
    assert 0.55 < oracle["detectable"] / (oracle["ci_high"] - oracle["ci_low"]) < 0.9 and oracle["detectable"] < 0.2
    balance = next(r for r in results["recovered"] if r["arm"] == "balance")
    assert balance["oracle_gain_significant"] and 0.35 < balance["fraction"] < 0.65
    report = (tmp_path / "report.md").read_text()
    assert "`balance` recovers" in report and "Image quality" in report and "far less" in report
    assert "| synth_only |" in report and "Holm" in report
    assert "`diffusion.steps` 1500, sampled with ddim in 25 steps at guidance 2" in report
    assert "| detectable (80 % power) |" in report
    # balance narrows the gap by raising women (+0.1), not by lowering men
    gap, women_change, men_change = gap_change(report, "balance")
    assert abs(gap + 0.1) < 0.04 and abs(women_change - 0.1) < 0.03 and abs(men_change) < 0.03
    # 9 pairs, 9 comparisons (3 arms x 3 endpoints): 2 / 2**9 = 0.0039 <= 0.05 / 9
    assert (
        "With 9 differing pairs the smallest signed-rank p is 0.0039; Holm over 9 comparisons needs 0.0056 for "
        "the first: a large enough difference can pass.\n" in report
    )


def test_a_null_oracle_reports_what_the_design_could_have_detected(tmp_path):
    no_gain = {**CORRECT, "oracle": CORRECT["real_only"]}
    runs, table = predictions(np.random.default_rng(1), no_gain, training_sets=2)
    arms = [ARMS[name] for name in no_gain]
    results = write_experiment_report(tmp_path, runs, table, arms, [], report_config(training_sets=2))["default"]
    balance = next(r for r in results["recovered"] if r["arm"] == "balance")
    gain_ci = balance["oracle_gain_ci"]
    assert not balance["oracle_gain_significant"]
    assert 0.55 < balance["oracle_gain_detectable"] / (gain_ci[1] - gain_ci[0]) < 0.9
    report = (tmp_path / "report.md").read_text()
    assert f"this design finds a gain of {balance['oracle_gain_detectable']:.3f} with 80 % power" in report
    # 6 pairs: 2 / 2**6 = 0.031 > 0.05 / 9, so nothing can pass Holm; 9 pairs could
    assert "With 6 differing pairs the smallest signed-rank p is 0.031; Holm over 9 comparisons needs 0.0056" in report
    assert "no difference can pass Holm's correction, however large; that needs at least 9 differing pairs" in report
    assert "No augmentation can be expected to help here" in report and "Discrimination" not in report
    assert "Image quality" not in report  # nothing to explain without a gain


def test_without_an_oracle_the_diagnosis_still_says_where_the_gap_change_comes_from(tmp_path):
    no_oracle = {arm: rates for arm, rates in CORRECT.items() if arm != "oracle"}
    runs, table = predictions(np.random.default_rng(3), no_oracle, training_sets=2)
    write_experiment_report(tmp_path, runs, table, [ARMS[n] for n in no_oracle], [], report_config(training_sets=2))
    report = (tmp_path / "report.md").read_text()
    assert "Without an oracle arm" in report
    gap, women_change, men_change = gap_change(report, "balance")
    assert (
        gap < -0.03 and women_change > 0.03 and abs(men_change) < 0.03 and abs(gap + women_change - men_change) < 0.002
    )


def test_an_oracle_that_ranks_the_scarce_group_better_at_the_same_calls_is_a_gain_in_discrimination(tmp_path):
    same_calls = {**CORRECT, "oracle": CORRECT["real_only"]}
    runs, table = predictions(np.random.default_rng(2), same_calls, ranked=("oracle",))
    arms = [ARMS[name] for name in same_calls]
    results = write_experiment_report(tmp_path, runs, table, arms, [], report_config())["default"]
    assert not results["recovered"][0]["oracle_gain_significant"]
    auroc = {d["arm"]: d for d in results["differences"] if d["endpoint"].startswith("AUROC")}
    assert auroc["oracle"]["ci_low"] > 0.1
    report = (tmp_path / "report.md").read_text()
    assert "No augmentation can be expected to help here" not in report
    assert f"raise women's AUROC by {auroc['oracle']['difference']:+.3f}" in report
    share = auroc["balance"]["difference"] / auroc["oracle"]["difference"]
    assert f"balance {auroc['balance']['difference']:+.3f} [" in report and f"{share:.0%} of it" in report
    assert "Image quality" in report  # a gain to explain: the causes follow
