"""report.md of the capstone experiment: every arm per subgroup, paired differences against
real_only, non-inferiority, the share of the oracle's gain each synthetic arm recovers, the
dose-response, the synthetic data's quality, and a diagnosis written from these numbers.

Endpoints, fixed before any run: primary, the scarce group's balanced accuracy (women), its
AUROC (better discrimination rather than a moved threshold) and the sex gap; the worst group's
balanced accuracy (sex) for the oracle's recovered share; secondary, normal-BMI heart-failure
sensitivity, calibration per sex and sensitivity at a fixed false-positive rate.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from scipy.stats import wilcoxon
from sklearn.metrics import roc_auc_score, roc_curve

from fairaug.experiment.arms import BASELINE, ORACLE, Arm
from fairaug.experiment.statistics import (
    ALPHA,
    POWER,
    Metric,
    arm_mean,
    detectable_difference,
    holm,
    holm_reachable,
    non_inferior,
    paired_difference,
    per_run,
    recovered_fraction,
    spread,
)
from fairaug.fairness.compare import smallest_p
from fairaug.figures import plt
from fairaug.io import write_json, write_text
from fairaug.markdown import markdown_table

log = logging.getLogger(__name__)
SCARCE = ("sex", "female")
OTHER = ("sex", "male")
OVERALL = Metric()
SCARCE_BA = Metric(attribute=SCARCE[0], group=SCARCE[1])
OTHER_BA = Metric(attribute=OTHER[0], group=OTHER[1])
WORST = Metric("worst_group", SCARCE[0])
GAP = Metric("gap", SCARCE[0])
PRIMARY = (SCARCE_BA, GAP)  # with the scarce group's AUROC (per run, below)
SUBGROUP_ATTRIBUTES = ("sex", "age_group", "bmi_group", "sex_bmi")
FIXED_FPR = 0.1
NI_MARGIN = -0.02
POWER_TEXT = f"{POWER * 100:.0f} %"
SYNTHETIC = ("balance", "copy", "shuffled", "classical", "synth_only")


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _signed(value) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.3f}"


def _p(value) -> str:
    return "n/a" if not np.isfinite(value) else (f"{value:.2g}" if value >= 0.001 else "<0.001")


def per_run_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """What the bootstrap of balanced accuracies does not cover, per run: AUROC, calibration and
    sensitivity at a fixed false-positive rate per sex, normal-BMI heart-failure sensitivity,
    and the fairness criteria over sex (fairlearn)."""
    rows = []
    for (scenario, arm, training_set, seed), run in predictions.groupby(["scenario", "arm", "training_set", "seed"]):
        row = {"scenario": scenario, "arm": arm, "training_set": training_set, "seed": seed}
        for sex in ("female", "male"):
            part = run[run.sex == sex]
            both = part.label.nunique() == 2
            row[f"auroc_{sex}"] = roc_auc_score(part.label, part.probability) if both else np.nan
            row[f"ece_{sex}"] = _calibration_error(part) if len(part) else np.nan
            row[f"tpr_at_fpr{FIXED_FPR:g}_{sex}"] = _tpr_at_fpr(part) if both else np.nan
        normal_hf = run[(run.bmi_group == "normal") & (run.label == 1)]
        row["tpr_normal_bmi"] = normal_hf.prediction.mean() if len(normal_hf) else np.nan
        frame = MetricFrame(
            metrics={"selection": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=run.label,
            y_pred=run.prediction,
            sensitive_features=run.sex,
        )
        difference = frame.difference()
        row["demographic_parity_difference"] = difference["selection"]
        row["equal_opportunity_difference"] = difference["tpr"]
        row["equalized_odds_difference"] = max(difference["tpr"], difference["fpr"])
        rows.append(row)
    return pd.DataFrame(rows)


def _calibration_error(part: pd.DataFrame, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    which = np.minimum((part.probability.to_numpy() * bins).astype(int), bins - 1)
    frame = pd.DataFrame({"bin": which, "p": part.probability, "y": part.label})
    per_bin = frame.groupby("bin").agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
    return float((per_bin.n * (per_bin.p - per_bin.y).abs()).sum() / len(frame))


def _tpr_at_fpr(part: pd.DataFrame) -> float:
    fpr, tpr, _ = roc_curve(part.label, part.probability)
    return float(tpr[fpr <= FIXED_FPR].max())


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def _arm_row(table, arm: str, metric: Metric, n_boot: int) -> str:
    mean = arm_mean(table, arm, metric, n_boot=n_boot)
    return f"{mean.mean:.3f} ± {_fmt(mean.std)} [{_fmt(mean.ci_low)}, {_fmt(mean.ci_high)}]"


def _with_sex_bmi(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions.assign(sex_bmi=predictions.sex.astype(str) + "/" + predictions.bmi_group.astype(str))


def write_experiment_report(folder: Path, runs, predictions, arms: list[Arm], left_out: list[str], cfg) -> dict:
    """report.md, results.json, dose_response.png (one section per scenario)."""
    folder = Path(folder)
    n_boot = int(cfg.task.n_boot)
    predictions = _with_sex_bmi(predictions)
    extra = per_run_metrics(predictions)
    lines = [
        "# Does fairness-aware augmentation work?",
        "",
        _design(cfg, runs, predictions, left_out),
    ]
    results = {}
    for scenario, table in predictions.groupby("scenario", sort=False):
        names = [arm.name for arm in arms if arm.name in set(table.arm)]
        section, result = _scenario(
            folder, scenario, table, extra[extra.scenario == scenario], runs[runs.scenario == scenario], names, n_boot
        )
        lines += section
        results[scenario] = result
    write_text("\n".join(lines) + "\n", folder / "report.md")
    write_json(results, folder / "results.json")
    return results


def _design(cfg, runs, predictions, left_out) -> str:
    task = cfg.task
    test = predictions.drop_duplicates(["scenario", "training_set", "subject_id"])
    first = test[(test.scenario == test.scenario.iloc[0]) & (test.training_set == 0)]
    scarce_hf = int(((first[SCARCE[0]] == SCARCE[1]) & (first.label == 1)).sum())
    text = (
        f"Data: `data={cfg.data.name}`; scenarios {list(task.scenarios)}; {int(task.training_sets)} training sets × "
        f"{int(task.seeds)} classifier seeds per arm, paired over (training set, seed). Training set 0's test set: "
        f"{len(first)} subjects, {scarce_hf} of them heart-failure {SCARCE[1]}s"
        + (" (the same test subjects for every training set)." if cfg.data.name == "phantom" else ".")
        + f" Every arm draws {int(runs.n_train_real.iloc[0])} samples per epoch for {int(cfg.trainer.max_epochs)} "
        f"epochs (the same optimizer steps); augmented arms draw {float(task.added_fraction):g} of them from their "
        f"added subjects{_generator(cfg)}; the tested checkpoint is the one with the best validation worst-group "
        f"balanced accuracy (sex). Intervals: 95 % hierarchical bootstrap ({int(task.n_boot)} replicates) over "
        "training sets, seeds and, for paired differences, test subjects; p: Wilcoxon signed-rank over the pairs, "
        "Holm-corrected over every comparison of a scenario's primary endpoints."
    )
    if task.quick:
        text = (
            "**Quick profile** (`QUICK=1`): a small cohort, few training sets and seeds, a briefly trained "
            "ControlNet. It shows that every stage runs; its numbers are not meaningful.\n\n" + text
        )
    if left_out:
        text += (
            f"\n\nLeft out: {', '.join(left_out)}. The oracle arms add new real subjects, which only the built-in "
            f"cohort's generator can draw; `data={cfg.data.name}` has no generator of real subjects."
        )
    return text


def _generator(cfg) -> str:
    """What drew the synthetic subjects, as the design sentence's clause (before/after comparisons
    of generator settings read it from here)."""
    diffusion, generation = cfg.diffusion, cfg.generation
    return (
        f" (synthetic ones from a `diffusion={diffusion.name}` ControlNet per training set, `diffusion.steps` "
        f"{int(diffusion.steps)}, sampled with {generation.scheduler} in {int(generation.steps)} steps at guidance "
        f"{float(generation.guidance_scale):g}, `generation.max_samples` {generation.max_samples})"
    )


def _scenario(folder, scenario, table, extra, runs, names, n_boot) -> tuple[list[str], dict]:
    lines = ["", f"## Scenario `{scenario}`", ""]
    added = runs.groupby("arm").added.mean()
    rows = []
    for arm in names:
        accuracies = [_arm_row(table, arm, metric, n_boot) for metric in (OVERALL, SCARCE_BA, OTHER_BA, WORST, GAP)]
        scarce_auroc = _mean_std(extra[extra.arm == arm][f"auroc_{SCARCE[1]}"])
        rows.append([arm, f"{added.get(arm, 0):.0f}", *accuracies, scarce_auroc])
    lines += [
        "### Arms",
        "",
        "Balanced accuracy on the test set, mean ± std over runs [95 % CI over training sets and seeds].",
        "",
        *markdown_table(
            ["arm", "added", "overall", "women", "men", "worst group (sex)", "gap (sex)", "AUROC women"], rows
        ),
        "",
    ]
    lines += _subgroups(table, names)
    lines += _secondary(extra, names)
    differences, section = _paired(table, extra, names, n_boot)
    lines += section
    lines += _non_inferiority(table, names, n_boot)
    recovered, section = _recovered(table, names, n_boot)
    lines += section
    lines += _dose_response(folder, scenario, table, runs, names)
    lines += _quality(runs)
    lines += ["### Diagnosis", "", *diagnosis(table, recovered, differences, names), ""]
    return lines, {"differences": differences, "recovered": recovered}


def _subgroups(table, names) -> list[str]:
    """One table per attribute: balanced accuracy per group, mean ± std over runs."""
    per_run = pd.DataFrame(
        [{"arm": arm, **_group_accuracies(run)} for (arm, _, _), run in table.groupby(["arm", "training_set", "seed"])]
    )
    lines = ["### Subgroups", "", "Balanced accuracy per subgroup, mean ± std over runs.", ""]
    for attribute in SUBGROUP_ATTRIBUTES:
        columns = sorted(c for c in per_run.columns if c.startswith(f"{attribute}="))
        rows = [[arm, *(_mean_std(per_run[per_run.arm == arm][c]) for c in columns)] for arm in names]
        header = ["arm", *(c.split("=", 1)[1] for c in columns)]
        lines += [f"`{attribute}`:", "", *markdown_table(header, rows), ""]
    return lines


def _group_accuracies(run: pd.DataFrame) -> dict[str, float]:
    values = {}
    for attribute in SUBGROUP_ATTRIBUTES:
        for group in sorted(run[attribute].astype(str).unique()):
            values[f"{attribute}={group}"] = Metric(attribute=attribute, group=group).evaluate(run)
    return values


def _secondary(extra, names) -> list[str]:
    columns = [
        "tpr_normal_bmi",
        "ece_female",
        "ece_male",
        f"tpr_at_fpr{FIXED_FPR:g}_female",
        f"tpr_at_fpr{FIXED_FPR:g}_male",
        "demographic_parity_difference",
        "equal_opportunity_difference",
        "equalized_odds_difference",
    ]
    rows = [[arm, *(_mean_std(extra[extra.arm == arm][c]) for c in columns)] for arm in names]
    return [
        "### Secondary endpoints and fairness criteria (sex)",
        "",
        f"Normal-BMI heart-failure sensitivity, expected calibration error per sex, sensitivity at a "
        f"false-positive rate of {FIXED_FPR:g} per sex, and fairlearn's differences between the sexes; "
        "mean ± std over runs.",
        "",
        *markdown_table(["arm", *columns], rows),
        "",
    ]


def _paired(table, extra, names, n_boot) -> tuple[list[dict], list[str]]:
    """Every arm against real_only on the primary endpoints; Holm over all of them."""
    results = []
    for arm in names:
        if arm == BASELINE:
            continue
        for metric in PRIMARY:
            d = paired_difference(table, arm, metric, n_boot=n_boot)
            results.append(
                {
                    "arm": arm,
                    "endpoint": metric.name,
                    "difference": d.estimate,
                    "ci_low": d.ci_low,
                    "ci_high": d.ci_high,
                    "se": d.se,
                    "p": d.p_value,
                    "pairs": d.n_pairs,
                    "differing_pairs": d.n_nonzero,
                }
            )
        results.append({"arm": arm, "endpoint": f"AUROC ({SCARCE[0]}={SCARCE[1]})", **_auroc_difference(extra, arm)})
    adjusted = holm([r["p"] for r in results])
    for result, p in zip(results, adjusted):
        result["p_holm"] = float(p)
        result["detectable"] = detectable_difference(result["se"])
    rows = [
        [
            r["arm"],
            r["endpoint"],
            _signed(r["difference"]),
            f"[{_signed(r['ci_low'])}, {_signed(r['ci_high'])}]",
            _fmt(r["detectable"]),
            _p(r["p"]),
            _p(r["p_holm"]),
            r["pairs"],
        ]
        for r in results
    ]
    section = [
        f"### Paired differences against `{BASELINE}` (primary endpoints)",
        "",
        "Arm minus real_only over the same (training set, seed) pairs. The AUROC interval resamples training "
        f"sets and seeds only. Detectable: the true difference whose 95 % interval excludes 0 with {POWER_TEXT} power "
        "(2.8 bootstrap standard errors, not corrected for the number of comparisons): smaller differences are "
        "often missed; the interval says which differences the data rule out.",
        "",
        *markdown_table(
            ["arm", "endpoint", "difference", "95 % CI", f"detectable ({POWER_TEXT} power)", "p", "p (Holm)", "pairs"],
            rows,
        ),
        "",
        *_holm_reach(results),
    ]
    return results, section


def _holm_reach(results: list[dict]) -> list[str]:
    """Whether any comparison can pass Holm's correction at all: the exact signed-rank test's p is
    never below 2 / 2**n over n differing pairs, so the comparison with the most of them decides."""
    tested = [r for r in results if np.isfinite(r["p"])]
    if not tested:
        return []
    pairs, comparisons = max(r["differing_pairs"] for r in tested), len(tested)
    reachable, needed = holm_reachable(pairs, comparisons)
    verdict = (
        "a large enough difference can pass."
        if reachable
        else f"no difference can pass Holm's correction, however large; that needs at least {needed} differing "
        "pairs, best from more training sets (`task.training_sets`): the seeds of one training set are not "
        "independent draws of training data."
    )
    return [
        f"With {pairs} differing pairs the smallest signed-rank p is {smallest_p(pairs):.2g}; Holm over "
        f"{comparisons} comparisons needs {ALPHA / comparisons:.2g} for the first: {verdict}",
        "",
    ]


def _auroc_difference(extra, arm: str) -> dict:
    column = f"auroc_{SCARCE[1]}"
    pairs = extra[extra.arm.isin([arm, BASELINE])].pivot_table(
        index=["training_set", "seed"], columns="arm", values=column
    )
    differences = (
        (pairs[arm] - pairs[BASELINE]).dropna() if arm in pairs and BASELINE in pairs else pd.Series(dtype=float)
    )
    if differences.empty:
        empty = {"difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "se": np.nan, "p": np.nan}
        return {**empty, "pairs": 0, "differing_pairs": 0}
    rng = np.random.default_rng(0)
    by_set = [group.to_numpy() for _, group in differences.groupby(level="training_set")]
    replicates = []
    for _ in range(2000):
        chosen = [by_set[i] for i in rng.integers(len(by_set), size=len(by_set))]
        replicates.append(np.mean(np.concatenate([rng.choice(d, len(d)) for d in chosen])))
    nonzero = differences[differences != 0]
    return {
        "difference": float(differences.mean()),
        "ci_low": float(np.percentile(replicates, 2.5)),
        "ci_high": float(np.percentile(replicates, 97.5)),
        "se": spread(replicates),
        "p": float(wilcoxon(nonzero).pvalue) if len(nonzero) else np.nan,
        "pairs": len(differences),
        "differing_pairs": len(nonzero),
    }


def _non_inferiority(table, names, n_boot) -> list[str]:
    rows = []
    for arm in names:
        if arm == BASELINE:
            continue
        cells = [arm]
        for metric in (OVERALL, OTHER_BA):
            d = paired_difference(table, arm, metric, n_boot=n_boot)
            verdict = "non-inferior" if non_inferior(d.ci_low, NI_MARGIN) else "not shown"
            cells.append(f"{_signed(d.estimate)} [{_signed(d.ci_low)}, {_signed(d.ci_high)}]: {verdict}")
        rows.append(cells)
    return [
        f"### Non-inferiority (margin {NI_MARGIN})",
        "",
        "Shown where the lower end of the difference's 95 % interval lies above the margin.",
        "",
        *markdown_table(["arm", "overall", "men"], rows),
        "",
    ]


def _recovered(table, names, n_boot) -> tuple[list[dict], list[str]]:
    if ORACLE not in names:
        return [], ["### Recovered share of the oracle's gain", "", "No oracle arm ran.", ""]
    results = []
    for arm in names:
        if arm in (BASELINE, ORACLE) or arm.startswith(f"{ORACLE}"):
            continue
        r = recovered_fraction(table, arm, WORST, n_boot=n_boot)
        results.append(
            {
                "arm": arm,
                "fraction": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "oracle_gain": r.oracle_gain,
                "oracle_gain_ci": [r.oracle_gain_ci_low, r.oracle_gain_ci_high],
                "oracle_gain_detectable": detectable_difference(r.oracle_gain_se),
                "oracle_gain_significant": r.oracle_gain_significant,
            }
        )
    gain = results[0] if results else None
    lines = ["### Recovered share of the oracle's gain", ""]
    if gain is not None:
        lines.append(
            f"The oracle raised worst-group balanced accuracy (sex) by {_signed(gain['oracle_gain'])} "
            f"[{_signed(gain['oracle_gain_ci'][0])}, {_signed(gain['oracle_gain_ci'][1])}] over real_only"
            + ("." if gain["oracle_gain_significant"] else ": not a clear gain, so the shares below divide by noise.")
        )
        lines.append("")
    rows = [[r["arm"], _fmt(r["fraction"], 2), f"[{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}]"] for r in results]
    lines += [*markdown_table(["arm", "share recovered", "95 % CI"], rows), ""]
    return results, lines


def _dose_response(folder, scenario, table, runs, names) -> list[str]:
    dosed = [n for n in names if n.split("@")[0] in ("balance", ORACLE)]
    if len(dosed) < 2:
        return []
    worst = per_run(table, WORST).groupby("arm").value
    values = []
    for arm in dosed:
        scores = worst.get_group(arm).to_numpy()
        added = runs[runs.arm == arm].added.mean()
        values.append(
            {
                "arm": arm,
                "kind": arm.split("@")[0],
                "added": added,
                "mean": np.nanmean(scores),
                "sem": np.nanstd(scores, ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else 0.0,
            }
        )
    values = pd.DataFrame(values).sort_values("added")
    baseline = np.nanmean(worst.get_group(BASELINE).to_numpy())
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for kind, label in (("balance", "synthetic (balance)"), (ORACLE, "real (oracle)")):
        part = values[values.kind == kind]
        axis.errorbar(part.added, part["mean"], yerr=part["sem"], marker="o", capsize=3, label=label)
    axis.axhline(baseline, color="grey", linestyle="--", label="real only")
    axis.set(
        xlabel="subjects added to training",
        ylabel="worst-group balanced accuracy (sex)",
        title=f"Dose-response, scenario {scenario}",
    )
    axis.legend()
    figure.tight_layout()
    name = f"dose_response_{scenario}.png"
    figure.savefig(folder / name, dpi=120)
    plt.close(figure)
    rows = [[r["arm"], f"{r['added']:.0f}", f"{r['mean']:.3f} ± {r['sem']:.3f}"] for _, r in values.iterrows()]
    return [
        "### Dose-response",
        "",
        f"![dose-response]({name})",
        "",
        *markdown_table(["arm", "added", "worst group (sex), mean ± s.e.m."], rows),
        "",
    ]


def _quality(runs) -> list[str]:
    first = Path(runs.run.iloc[0]).parents[2] / "quality"
    rows = []
    for name in SYNTHETIC:
        report = first / name / "quality.json"
        if report.is_file():
            quality = json.loads(report.read_text())
            overall, fidelity = quality["overall"], quality["mask_fidelity"]
            rows.append(
                [
                    name,
                    _fmt(overall["fid"], 2),
                    _fmt(overall["fid_floor"], 2),
                    _fmt(overall["kid"], 4),
                    quality["memorisation"].get("n_flagged"),
                    _fmt(fidelity["synthetic_ED"], 2),
                    _fmt(fidelity["real_ED"], 2),
                ]
            )
    if not rows:
        return []
    return [
        "### Synthetic data quality (training set 0)",
        "",
        *markdown_table(["added data", "FID", "FID floor", "KID", "flagged copies", "mask contrast ED", "real"], rows),
        "",
    ]


def diagnosis(table, recovered: list[dict], differences: list[dict], names) -> list[str]:
    """Sentences that follow from the numbers: is there an oracle gain (at the threshold, or in
    discrimination), and if the synthetic arms recover little of it, is it image quality,
    quantity or the planner."""
    lines = []
    means = {metric: per_run(table, metric).groupby("arm").value.mean() for metric in (WORST, SCARCE_BA, OTHER_BA)}

    def mean(arm, metric):
        return means[metric].get(arm, np.nan)

    base = mean(BASELINE, WORST)
    reweight = mean("reweight", WORST)
    if np.isfinite(reweight):
        lines.append(
            f"- Group-balanced sampling alone (reweight) moves worst-group balanced accuracy from "
            f"{base:.3f} to {reweight:.3f}."
        )
    gain = next((r for r in recovered if r["arm"] == "balance"), recovered[0] if recovered else None)
    gap_sources = _gap_sources(mean, names)
    if gain is None:
        lines.append("- Without an oracle arm the experiment cannot say how much any augmentation could gain.")
        return lines + gap_sources
    if not gain["oracle_gain_significant"]:
        lines.append(
            f"- Even new real subjects of exactly the planned cells did not clearly raise worst-group balanced "
            f"accuracy ({_signed(gain['oracle_gain'])}, 95 % CI {_signed(gain['oracle_gain_ci'][0])} to "
            f"{_signed(gain['oracle_gain_ci'][1])}; this design finds a gain of "
            f"{_fmt(gain['oracle_gain_detectable'])} with {POWER_TEXT} power, smaller ones less often)."
        )
        discrimination = _discrimination(differences, names, threshold_gain=False)
        if not discrimination:
            lines.append(
                "- In this scenario, at this size, under-representation is not what limits the scarce group, or the "
                "runs are too few to show a smaller gain. No augmentation can be expected to help here, so the "
                "synthetic arms' results say nothing about the generator."
            )
            return lines + gap_sources
        return lines + discrimination + gap_sources + _causes(mean, names)
    share = gain["fraction"]
    lines.append(
        f"- The oracle gains {_signed(gain['oracle_gain'])}; `{gain['arm']}` recovers "
        f"{_fmt(share, 2)} of it (95 % CI {_fmt(gain['ci_low'], 2)} to {_fmt(gain['ci_high'], 2)})."
    )
    lines += _discrimination(differences, names, threshold_gain=True) + gap_sources
    if share >= 0.5:
        return lines + ["- Augmentation recovers most of what perfect extra data gives."]
    return lines + _causes(mean, names)


def _causes(mean, names) -> list[str]:
    """Why the synthetic arms recover little: image quality, quantity, the prompts' attributes,
    and classical augmentation of the same cells for comparison (point estimates)."""
    lines = []
    synth_only, real_only = mean("synth_only", SCARCE_BA), mean(BASELINE, SCARCE_BA)
    if np.isfinite(synth_only):
        verdict = "far less" if synth_only < real_only - 0.05 else "about as much"
        lines.append(
            f"- Image quality: trained on synthetic images alone, women's balanced accuracy is "
            f"{synth_only:.3f} against {real_only:.3f} with real images: the synthetic images carry {verdict} "
            "of the diagnosis for women."
        )
    doses = sorted((n for n in names if n.startswith("balance@")), key=lambda n: float(n.split("@")[1]))
    if doses:
        top = doses[-1]
        rise = mean(top, WORST) - mean("balance", WORST)
        lines.append(
            f"- Quantity: {top} against balance changes worst-group balanced accuracy by {rise:+.3f}: "
            + ("more synthetic data helps." if rise > 0.01 else "more of the same synthetic data does not help.")
        )
    if "shuffled" in names:
        shuffle = mean("balance", WORST) - mean("shuffled", WORST)
        lines.append(
            f"- Attributes: balance minus shuffled prompts {shuffle:+.3f}: "
            + (
                "the prompts' attributes matter."
                if shuffle > 0.01
                else "the prompts' attributes make no measurable difference: the generator does not render what "
                "distinguishes the scarce group (or the planner fills the wrong cells)."
            )
        )
    if "classical" in names:
        classical = mean("classical", WORST) - mean("balance", WORST)
        lines.append(f"- Classical augmentation of the same cells minus balance: {classical:+.3f}.")
    return lines


def _discrimination(differences: list[dict], names, threshold_gain: bool) -> list[str]:
    """Where the oracle clearly raises the scarce group's AUROC (interval above 0 and Holm's p at
    most ALPHA: a better ranking that balanced accuracy at the selected threshold can hide), how
    much of it each synthetic arm shows."""
    auroc = {r["arm"]: r for r in differences if r["endpoint"].startswith("AUROC")}
    oracle = auroc.get(ORACLE)
    if oracle is None or not (oracle["ci_low"] > 0 and oracle["p_holm"] <= ALPHA):
        return []
    arms = [a for a in names if a.split("@")[0] in SYNTHETIC and a in auroc and np.isfinite(auroc[a]["difference"])]
    shown = "; ".join(
        f"{arm} {_signed(auroc[arm]['difference'])} [{_signed(auroc[arm]['ci_low'])}, "
        f"{_signed(auroc[arm]['ci_high'])}], {auroc[arm]['difference'] / oracle['difference']:.0%} of it"
        for arm in arms
    )
    lines = [
        f"- Discrimination: the oracle's new real subjects raise women's AUROC by {_signed(oracle['difference'])} "
        f"[{_signed(oracle['ci_low'])}, {_signed(oracle['ci_high'])}] (Holm p {_p(oracle['p_holm'])}): the "
        "scarce group is ranked better"
        + ("." if threshold_gain else ", a gain the balanced accuracy at the selected threshold does not clearly show.")
    ]
    if shown:
        lines.append(
            f"- Against it (women's AUROC minus real_only, share of the oracle's gain as a point estimate): {shown}."
        )
    return lines


def _gap_sources(mean, names) -> list[str]:
    """Whether an arm narrows the sex gap by raising the scarce group or by lowering the other."""
    arms = [arm for arm in names if arm != BASELINE]
    if BASELINE not in names or not arms:
        return []

    def change(arm, metric):
        return mean(arm, metric) - mean(BASELINE, metric)

    shown = "; ".join(
        f"{arm} {_signed(change(arm, OTHER_BA) - change(arm, SCARCE_BA))} "
        f"(women {_signed(change(arm, SCARCE_BA))}, men {_signed(change(arm, OTHER_BA))})"
        for arm in arms
    )
    return [
        "- Where the sex gap's change comes from (men's minus women's balanced accuracy, arm minus real_only, "
        f"with each sex's change): {shown}."
    ]
