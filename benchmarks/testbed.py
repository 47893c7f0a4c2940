"""Can the phantom test fairness-aware augmentation? (not a test; prints its evidence)

1. The subgroup gap is not built in: on a large cohort balanced by sex and diagnosis, a
   model per sex on the true physiology (EF, EDV, ESV and mass, indexed to body surface
   area; logistic regression, 5-fold cross-validated) reaches nearly the same balanced
   accuracy for women and men, over several seeds. Whatever gap a classifier shows on the
   default cohort is therefore learnable away, not irreducible.
2. The bias is visible: given a finished sweep of the default classifier on the default
   (biased) cohort, e.g. `./multirun.sh` (8 seeds), the male - female balanced-accuracy gap
   of every completed job, from the sweep's long results table. A job's test split holds
   only about 8 women with heart failure, so with `--external N` every job's classifier also
   scores one large external cohort (`task=predict`, another phantom seed, N subjects, heart
   failure as frequent in women as in men), which measures each job's gap far more precisely.
3. With --screen: how wide a gap under-representation opens, per `hf_odds_ratio.sex.female`,
   for a model of what an ED/ES image shows (absolute LV and RV volumes, LV mass, body size;
   gradient boosting) trained on cohorts of the default size and scored per sex on one unbiased
   cohort: the CNN's measurements of part 2 in seconds per setting, to screen compositions first.

    python benchmarks/testbed.py                          # part 1 (seconds)
    python benchmarks/testbed.py --screen                 # parts 1 and 3 (minutes)
    python benchmarks/testbed.py --sweep ~/.fairaug/runs/protocol/<sweep> [--external 1500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.config import compose_config  # noqa: E402
from fairaug.data.phantom.generate import phantom_spec  # noqa: E402
from fairaug.data.phantom.physiology import Composition  # noqa: E402
from fairaug.data.phantom.testbed import biased_gap, per_sex_accuracy  # noqa: E402
from fairaug.fairness.runs import find_jobs, results_table  # noqa: E402
from fairaug.runtime import RunDir  # noqa: E402


def _completed_jobs(sweep: Path) -> list:
    jobs = [job for job in find_jobs(sweep) if job.status == "completed"]
    if not jobs:
        raise SystemExit(f"no completed job under {sweep}")
    return jobs


def sweep_gaps(sweep: Path) -> pd.DataFrame:
    """Per completed job of a finished sweep: women's and men's test balanced accuracy, a pivot
    of the sweep's long results table."""
    results = results_table(_completed_jobs(sweep))
    by_sex = results[(results.attribute == "sex") & (results.metric == "balanced_accuracy")]
    gaps = by_sex.pivot(index="job", columns="group", values="value").reindex(
        index=by_sex.job.unique(), columns=["female", "male"]
    )
    return gaps.rename_axis(columns=None).reset_index().assign(gap=lambda t: t.male - t.female)


IMAGE_SETTINGS = ("data.appearance.", "data.geometry.")


def external_cohort(job_overrides: list[str], n_subjects: int, seed: int) -> list[str]:
    """Overrides of the external cohort a job's classifier is scored on: another seed of the
    population without the sex bias, its images rendered as the job's training images were
    (the job's data.appearance and data.geometry overrides)."""
    images = [override for override in job_overrides if override.lstrip("+~").startswith(IMAGE_SETTINGS)]
    unbiased = "data.composition.hf_odds_ratio.sex.female=1"
    return [f"data.seed={seed}", f"data.n_subjects={n_subjects}", unbiased, *images]


def external_gaps(sweep: Path, n_subjects: int, seed: int) -> pd.DataFrame:
    """Per completed job of a finished sweep: its classifier's balanced accuracy by sex on one
    large external phantom cohort without the sex bias (scored by task=predict, once per job)."""
    rows = []
    for job in _completed_jobs(sweep):
        cohort = external_cohort(job.overrides, n_subjects, seed)
        out = RunDir(sweep / "external" / job.name)
        if not out.by_group.exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fairaug",
                    "task=predict",
                    f"checkpoint={job.folder}",
                    *cohort,
                    f"paths.output_dir={out.path}",
                    "trainer.enable_progress_bar=false",
                ],
                check=True,
                cwd=REPO,
            )
        table = pd.read_csv(out.by_group)
        sex = table[table.attribute == "sex"].set_index("group")
        rows.append(
            {
                "job": job.name,
                "female": sex.balanced_accuracy.get("female"),
                "male": sex.balanced_accuracy.get("male"),
                "female_tpr": sex.tpr.get("female"),
                "male_tpr": sex.tpr.get("male"),
                "hf_women": int(sex.positives.get("female")),
            }
        )
    return pd.DataFrame(rows).assign(gap=lambda t: t.male - t.female)


def print_gaps(gaps: pd.DataFrame, what: str) -> None:
    print(
        f"{what}: female {gaps.female.mean():.3f} ± {gaps.female.std():.3f}, male {gaps.male.mean():.3f} ± "
        f"{gaps.male.std():.3f}; male - female gap {gaps.gap.mean():+.3f} ± {gaps.gap.std():.3f} "
        f"(positive in {int((gaps.gap > 0).sum())} of {len(gaps)} jobs)"
    )
    print(np.round(gaps.set_index("job"), 3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep", type=Path, help="a finished classify sweep on the default cohort")
    parser.add_argument("--external", type=int, default=0, help="subjects of an external test cohort (0: none)")
    parser.add_argument("--external-seed", type=int, default=1, help="data.seed of the external cohort")
    parser.add_argument("--screen", action="store_true", help="part 3: the gap per hf_odds_ratio.sex.female")
    args = parser.parse_args()

    data = compose_config([]).data
    composition = Composition(**phantom_spec(data)["composition"])
    results = pd.DataFrame([per_sex_accuracy(composition, args.subjects, seed) for seed in range(args.seeds)])
    results["gap"] = results.male - results.female
    print(f"1. True physiology, balanced cohort of {args.subjects} per seed, model per sex, {args.seeds} seeds:")
    for column in ("female", "male", "gap"):
        print(
            f"   {column:6s} balanced accuracy {results[column].mean():.3f} ± {results[column].std():.3f}"
            if column != "gap"
            else f"   male - female gap {results.gap.mean():+.3f} ± {results.gap.std():.3f} "
            f"(largest |gap| {results.gap.abs().max():.3f})"
        )
    if args.sweep:
        print_gaps(
            sweep_gaps(args.sweep),
            f"2. Default classifier on the default biased cohort, jobs of {args.sweep}, each on its own test split",
        )
    if args.sweep and args.external:
        print_gaps(
            external_gaps(args.sweep, args.external, args.external_seed),
            f"   the same classifiers on one external cohort of {args.external} (data.seed="
            f"{args.external_seed}, data.composition.hf_odds_ratio.sex.female=1)",
        )
    if args.screen:
        screen(composition, n_train=int(data.n_subjects), seeds=20)


def screen(composition: Composition, n_train: int, seeds: int, n_external: int = 4000) -> None:
    """Part 3: the gap per hf_odds_ratio.sex.female, training cohorts of n_train (the default size)."""
    print(
        f"3. A model of the image's sizes, trained on {seeds} cohorts of {n_train} per setting, scored on one "
        f"unbiased cohort of {n_external} (male - female balanced-accuracy gap):"
    )
    for ratio in (1.0, 0.35, 0.15, 0.1):
        odds = {**composition.hf_odds_ratio, "sex": {"female": ratio}}
        gaps = biased_gap(replace(composition, hf_odds_ratio=odds), n_train, n_external, seeds)
        print(
            f"   hf_odds_ratio.sex.female={ratio}: {gaps.hf_women_in_training.mean():.0f} women with heart failure "
            f"in training; gap {gaps.gap.mean():+.3f} ± {gaps.gap.std():.3f} (women worse in "
            f"{int((gaps.gap > 0).sum())} of {seeds})"
        )


if __name__ == "__main__":
    main()
