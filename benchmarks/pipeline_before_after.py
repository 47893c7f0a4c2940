"""Two task=pipeline runs that differ in one setting (an improvement tried), arm by arm (not a
test; prints evidence as Markdown).

Both runs must hold the same training sets, seeds and test subjects for a scenario: each arm of
the `--after` run is then paired with the same arm of the `--before` run, run for run and subject
for subject, with the pipeline's own statistics (fairaug.experiment.statistics: hierarchical
bootstrap over training sets, seeds and test subjects; Wilcoxon signed-rank over the pairs;
Holm over the whole table). `real_only` is the check that the pairing holds: no diffusion setting
touches it, so its predictions must be identical in both runs, else the script stops.

    python benchmarks/pipeline_before_after.py --before RUN_A --after RUN_B [--arms balance synth_only]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.experiment.arms import BASELINE  # noqa: E402
from fairaug.experiment.report import GAP, OTHER_BA, OVERALL, SCARCE_BA, WORST  # noqa: E402
from fairaug.experiment.statistics import arm_mean, holm, paired_difference  # noqa: E402
from fairaug.fairness.compare import smallest_p  # noqa: E402
from fairaug.markdown import markdown_table  # noqa: E402

ENDPOINTS = (SCARCE_BA, OTHER_BA, OVERALL, WORST, GAP)


def predictions(run: Path, scenario: str) -> pd.DataFrame:
    path = run / "predictions.csv"
    if not path.exists():
        raise SystemExit(f"{run} has no predictions.csv: not a finished task=pipeline run")
    table = pd.read_csv(path, dtype={"subject_id": str})
    table = table[table.scenario == scenario]
    if table.empty:
        raise SystemExit(f"{path} holds no run of scenario {scenario!r}")
    return table


def paired_table(before: pd.DataFrame, after: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """The arms of both runs in one long table (`<arm> before`, `<arm> after`), once real_only
    shows that the runs share their training sets, seeds, test subjects and real-data results."""
    key = ["training_set", "seed", "subject_id"]
    reference = [
        run[run.arm == BASELINE].set_index(key).sort_index()[["label", "prediction"]] for run in (before, after)
    ]
    if reference[0].empty or not reference[0].equals(reference[1]):
        raise SystemExit(
            f"the two runs' {BASELINE} predictions differ (or are missing): they do not share training sets, "
            "seeds and test subjects, so their arms cannot be paired"
        )
    parts = []
    for arm in arms:
        for name, run in (("before", before), ("after", after)):
            rows = run[run.arm == arm]
            if rows.empty:
                raise SystemExit(f"arm {arm!r} is missing from the {name} run")
            parts.append(rows.assign(arm=f"{arm} {name}"))
    return pd.concat(parts, ignore_index=True)


def comparison(table: pd.DataFrame, arms: list[str], n_boot: int) -> tuple[list[list], int]:
    """The Markdown rows, and the fewest pairs any of them rests on."""
    entries = []
    for arm in arms:
        for metric in ENDPOINTS:
            means = [arm_mean(table, f"{arm} {name}", metric, n_boot=n_boot) for name in ("before", "after")]
            d = paired_difference(table, f"{arm} after", metric, baseline=f"{arm} before", n_boot=n_boot)
            entries.append((arm, metric, means, d))
    rows = [
        [arm, metric.name, *(f"{m.mean:.3f} ± {m.std:.3f}" for m in means), f"{d.estimate:+.3f}",
         f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}]", f"{d.p_value:.3g}", f"{p:.3g}", d.n_pairs]
        for (arm, metric, means, d), p in zip(entries, holm([d.p_value for *_, d in entries]))
    ]  # fmt: skip
    return rows, min(d.n_pairs for *_, d in entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the first task=pipeline run folder")
    parser.add_argument("--after", type=Path, required=True, help="the run with the change tried")
    parser.add_argument("--arms", nargs="+", default=["balance", "synth_only"])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args()
    table = paired_table(predictions(args.before, args.scenario), predictions(args.after, args.scenario), args.arms)
    header = ["arm", "endpoint", "before", "after", "after − before", "95 % CI", "p", "p (Holm)", "pairs"]
    rows, pairs = comparison(table, args.arms, args.n_boot)
    print("\n".join(markdown_table(header, rows)))
    print(f"\nWith {pairs} pairs the smallest p the signed-rank test can give is {smallest_p(pairs):.3g}.")


if __name__ == "__main__":
    main()
