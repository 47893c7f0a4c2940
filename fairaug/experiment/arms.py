"""The experiment's arms: how each one samples its training data and what it adds to it.

Every arm trains on the same real training set with the same number of optimizer steps; the
arms that add subjects draw them `added_fraction` of the time (fairaug.data.samplers), so they
differ only in what was added:

- real_only: the real subjects, shuffled (no fairness intervention);
- reweight: group-balanced sampling of the real subjects, nothing added;
- copy: the paper's synthetic copy of the training set (each subject's own prompt and masks);
- balance: the fairness-aware planner's synthetic subjects for the cells the training set lacks;
- synth_only: the synthetic copy alone (no real training subjects);
- shuffled: balance's counts, masks and labels, with the prompts' person attributes permuted
  (right count, wrong attributes);
- classical: real subjects of the planned cells, flipped, deformed and re-contrasted, up to
  balance's counts;
- oracle: new real subjects of exactly balance's cells and counts, drawn from the built-in
  cohort's generator (the most augmentation could hope for);
- oracle_control: as many new real subjects, drawn from the population (not targeted).

`balance` and `oracle` also run at other doses (multiples of the planner's counts): the arms
`balance@2`, `oracle@0.5`, ...
"""

from __future__ import annotations

from dataclasses import dataclass

from fairaug.errors import ConfigError

BASELINE = "real_only"
ORACLE = "oracle"


@dataclass(frozen=True)
class Arm:
    name: str
    sampler: str
    added: str | None = None  # which training addition (folder name), None: nothing added
    use_real: bool = True
    dose: float = 1.0

    @property
    def needs_generator_of_real_subjects(self) -> bool:
        """Only the built-in cohort can draw new real subjects."""
        return self.added is not None and self.added.startswith(ORACLE)

    @property
    def needs_diffusion(self) -> bool:
        return is_generated(self.added)


def is_generated(addition: str | None) -> bool:
    """Whether an addition (folder name, e.g. balance@2) is the ControlNet's synthetic data."""
    return bool(addition) and addition.partition("@")[0] in DIFFUSION_ADDITIONS


DIFFUSION_ADDITIONS = ("copy", "balance", "shuffled")
ARMS = {
    arm.name: arm
    for arm in (
        Arm("real_only", "random"),
        Arm("reweight", "group_balanced"),
        Arm("copy", "group_balanced", "copy"),
        Arm("balance", "group_balanced", "balance"),
        Arm("synth_only", "group_balanced", "copy", use_real=False),
        Arm("shuffled", "group_balanced", "shuffled"),
        Arm("classical", "group_balanced", "classical"),
        Arm("oracle", "group_balanced", "oracle"),
        Arm("oracle_control", "group_balanced", "oracle_control"),
    )
}
DOSED = ("balance", "oracle")  # the arms run at other doses too


def dosed(name: str, dose: float) -> Arm:
    """`name` at `dose` times the planner's counts (1: the arm itself)."""
    if dose == 1:
        return ARMS[name]
    label = f"{name}@{dose:g}"
    return Arm(label, ARMS[name].sampler, label, dose=float(dose))


def chosen_arms(names, doses, real_subjects_can_be_drawn: bool) -> tuple[list[Arm], list[str]]:
    """The arms to run (with the dosed ones), and why any requested arm is left out."""
    unknown = [name for name in names if name not in ARMS]
    if unknown:
        raise ConfigError(f"task.arms: unknown arm(s) {unknown}; known: {list(ARMS)}")
    if BASELINE not in names:
        raise ConfigError(f"task.arms must include {BASELINE}: every arm is compared with it")
    bad = [d for d in doses if not d > 0]
    if bad:
        raise ConfigError(f"task.doses must be positive multiples of the planner's counts, got {bad}")
    arms = [ARMS[name] for name in names]
    arms += [dosed(name, dose) for name in DOSED if name in names for dose in doses if dose != 1]
    if real_subjects_can_be_drawn:
        return arms, []
    left_out = [arm.name for arm in arms if arm.needs_generator_of_real_subjects]
    return [arm for arm in arms if not arm.needs_generator_of_real_subjects], left_out
