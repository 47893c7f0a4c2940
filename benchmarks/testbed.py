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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.data.phantom.generate import phantom_spec  # noqa: E402
from fairaug.data.phantom.physiology import Composition  # noqa: E402
from fairaug.data.phantom.testbed import per_sex_accuracy  # noqa: E402
from tests.conftest import compose_config  # noqa: E402


def sweep_gaps(sweep: Path) -> pd.DataFrame:
    """Per job of a finished sweep: women's and men's test balanced accuracy."""
    rows = []
    jobs = [path for path in sweep.glob("*/by_group.csv") if path.parent.name.isdigit()]  # not pooled/
    for by_group in sorted(jobs, key=lambda path: int(path.parent.name)):
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

    composition = Composition(**phantom_spec(compose_config([]).data)["composition"])
    results = pd.DataFrame([per_sex_accuracy(composition, args.subjects, seed) for seed in range(args.seeds)])
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
