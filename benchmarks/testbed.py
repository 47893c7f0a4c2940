"""Can the phantom test fairness-aware augmentation? (not a test; prints its evidence)

1. The subgroup gap is not built in: on a large cohort balanced by sex and diagnosis, a
   model per sex on the true physiology (EF, EDV, ESV and mass, indexed to body surface
   area; logistic regression, 5-fold cross-validated) reaches nearly the same balanced
   accuracy for women and men, over several seeds. Whatever gap a classifier shows on the
   default cohort is therefore learnable away, not irreducible.
2. The bias is visible: given a finished sweep of the default classifier on the default
   (biased) cohort, e.g. `./multirun.sh` (8 seeds), the male - female balanced-accuracy gap
   of every job, read from its by_group.csv.

    python benchmarks/testbed.py                          # part 1 (seconds)
    python benchmarks/testbed.py --sweep ~/.fairaug/runs/protocol/<sweep>   # and part 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.data.phantom.generate import phantom_spec  # noqa: E402
from fairaug.data.phantom.physiology import Composition, sample_subjects  # noqa: E402
from tests.conftest import compose_config  # noqa: E402


def physiology_features(cohort: pd.DataFrame) -> pd.DataFrame:
    bsa = cohort.bsa_m2
    return pd.DataFrame({"lvef": cohort.lvef_pct, "lvedv_index": cohort.lvedv_ml / bsa,
                         "lvesv_index": cohort.lvesv_ml / bsa, "mass_index": cohort.lv_mass_g / bsa})


def per_sex_accuracy(n_subjects: int, seed: int) -> dict[str, float]:
    """Cross-validated balanced accuracy of a model per sex on a balanced default-mixture cohort."""
    composition = phantom_spec(compose_config([]).data)["composition"]
    balanced = Composition(**{**composition, "n_subjects": n_subjects, "p_female": 0.5,
                              "hf_base_prevalence": 0.5, "hf_odds_ratio": {}})
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


def sweep_gaps(sweep: Path) -> pd.DataFrame:
    """Per job of a finished sweep: women's and men's test balanced accuracy."""
    rows = []
    for by_group in sorted(sweep.glob("*/by_group.csv")):
        table = pd.read_csv(by_group)
        sex = table[table.attribute == "sex"].set_index("group").balanced_accuracy
        rows.append({"job": by_group.parent.name, "female": sex.get("female"), "male": sex.get("male")})
    if not rows:
        raise SystemExit(f"no job with a by_group.csv under {sweep}")
    return pd.DataFrame(rows).assign(gap=lambda t: t.male - t.female)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep", type=Path, help="a finished classify sweep on the default cohort")
    args = parser.parse_args()

    results = pd.DataFrame([per_sex_accuracy(args.subjects, seed) for seed in range(args.seeds)])
    results["gap"] = results.male - results.female
    print(f"1. True physiology, balanced cohort of {args.subjects} per seed, model per sex, {args.seeds} seeds:")
    for column in ("female", "male", "gap"):
        print(f"   {column:6s} balanced accuracy {results[column].mean():.3f} ± {results[column].std():.3f}"
              if column != "gap" else
              f"   male - female gap {results.gap.mean():+.3f} ± {results.gap.std():.3f} "
              f"(largest |gap| {results.gap.abs().max():.3f})")
    if args.sweep:
        gaps = sweep_gaps(args.sweep)
        print(f"2. Default classifier on the default biased cohort ({len(gaps)} jobs of {args.sweep}):")
        print(f"   female {gaps.female.mean():.3f} ± {gaps.female.std():.3f}, male {gaps.male.mean():.3f} ± "
              f"{gaps.male.std():.3f}; male - female gap {gaps.gap.mean():+.3f} ± {gaps.gap.std():.3f} "
              f"(positive in {int((gaps.gap > 0).sum())} of {len(gaps)} jobs)")
        print(np.round(gaps.set_index("job"), 3).to_string())


if __name__ == "__main__":
    main()
