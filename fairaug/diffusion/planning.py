"""What to generate: the paper's copy of the training set, random prompts, or a fairness-aware
plan that fills the (label x sex x age group x BMI group) cells the training split lacks.

Vendor and centre are not cells to fill (not every vendor exists at every centre): each
synthetic subject takes them from the training subject whose masks it is drawn on. A mask
donor always has the synthetic subject's label and sex: a heart-failure woman drawn on a man's
masks would carry a male heart into the female cells."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd

from fairaug.data.cohort import PERSON_ATTRIBUTES, SITE_ATTRIBUTES, UNKNOWN
from fairaug.errors import DataError

log = logging.getLogger(__name__)
CELL = ["label", *PERSON_ATTRIBUTES]
DONOR_MATCH = ["label", "sex"]  # what a mask donor shares with its synthetic subject, at least
FROM_DONOR = SITE_ATTRIBUTES  # a synthetic subject is scanned where its mask donor was
PROMPT_ATTRIBUTES = [f"prompt_{a}" for a in PERSON_ATTRIBUTES]  # what the prompt says (shuffled control)
# plan_counts.csv's `cell` column: a cell with training subjects, or an empty one left out or filled
OBSERVED, LEFT_OUT, INVENTED = "observed", "empty_left_out", "empty_invented"


def balance_counts(training: pd.DataFrame, max_samples: int | None, fill_empty_cells: bool = False) -> pd.DataFrame:
    """Per cell of the full grid of observed values: how many training subjects it has and how
    many synthetic ones it needs to reach the largest cell, scaled down to `max_samples` in all.
    A cell no training subject falls in is filled only with `fill_empty_cells` (the data never
    showed such a subject: its synthetic ones would be invented)."""
    values = [sorted(training[c].unique()) for c in CELL]
    grid = pd.DataFrame(list(itertools.product(*values)), columns=CELL)
    counts = training.groupby(CELL).size().rename("count").reset_index()
    cells = grid.merge(counts, on=CELL, how="left").fillna({"count": 0})
    cells["count"] = cells["count"].astype(int)
    cells["cell"] = np.where(cells["count"] > 0, OBSERVED, INVENTED if fill_empty_cells else LEFT_OUT)
    need = (cells["count"].max() - cells["count"]).to_numpy(float)
    need[(cells.cell == LEFT_OUT).to_numpy()] = 0
    if max_samples is not None and need.sum() > max_samples:
        scaled = need * max_samples / need.sum()
        need = np.floor(scaled)
        remainder = int(max_samples - need.sum())
        need[np.argsort(-(scaled - need), kind="stable")[:remainder]] += 1  # largest remainders
    cells["generate"] = need.astype(int)
    return cells


def scaled_counts(counts: pd.DataFrame, dose: float) -> pd.DataFrame:
    """The plan's per-cell counts times `dose` (largest remainders keep the total at
    round(dose x total)); cells planned nothing stay at nothing."""
    if dose == 1:
        return counts
    planned = counts.generate.to_numpy(float) * dose
    scaled = np.floor(planned)
    remainder = int(round(planned.sum()) - scaled.sum())
    scaled[np.argsort(-(planned - scaled), kind="stable")[:remainder]] += 1
    return counts.assign(generate=scaled.astype(int))


def log_empty_cells(counts: pd.DataFrame) -> None:
    """Say how many cells of the grid hold no training subject, and what became of them."""
    left_out, invented = (counts[counts.cell == kind] for kind in (LEFT_OUT, INVENTED))
    if len(left_out):
        log.info(
            "Balance plan: %d of %d cells hold no training subject and are left out "
            "(generation.fill_empty_cells=true would fill them)",
            len(left_out),
            len(counts),
        )
    if len(invented):
        log.warning(
            "Balance plan: %d of %d cells hold no training subject; filled anyway "
            "(generation.fill_empty_cells=true): their %d synthetic subjects are invented",
            len(invented),
            len(counts),
            invented.generate.sum(),
        )


def _donor_pools(training: pd.DataFrame, by: list[str]) -> dict[tuple, np.ndarray]:
    return {key: group.subject_id.to_numpy() for key, group in training.groupby(by)}


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _draw_donors(pools: dict[tuple, np.ndarray], planned: dict, n: int, rng) -> np.ndarray:
    """`n` training subjects of the planned label and sex, drawn with replacement."""
    match = {c: planned[c] for c in DONOR_MATCH}
    key = tuple(match.values())
    if key not in pools:
        raise DataError(
            f"no training subject with {_describe(match)} to draw masks from for the synthetic subjects "
            f"planned as {_describe(planned)}: a mask donor must have the same label and sex"
        )
    return rng.choice(pools[key], n)


def _balance_plan(training: pd.DataFrame, counts: pd.DataFrame, rng) -> pd.DataFrame:
    """Donors from the cell itself, or for an invented cell from the same label and sex."""
    in_cell, same_label_sex = _donor_pools(training, CELL), _donor_pools(training, DONOR_MATCH)
    rows = []
    for cell in counts[counts.generate > 0].itertuples(index=False):
        values = {c: getattr(cell, c) for c in CELL}
        if cell.cell == OBSERVED:
            sources = rng.choice(in_cell[tuple(values.values())], cell.generate)
        else:
            sources = _draw_donors(same_label_sex, values, cell.generate, rng)
        rows += [{**values, "source_subject": source} for source in sources]
    return pd.DataFrame(rows, columns=[*CELL, "source_subject"])


def _random_prompt_plan(training: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    plan = pd.DataFrame({c: rng.choice(sorted(training[c].unique()), n) for c in CELL})
    pools = _donor_pools(training, DONOR_MATCH)
    plan["source_subject"] = [_draw_donors(pools, planned, 1, rng)[0] for planned in plan[CELL].to_dict("records")]
    return plan


def with_prompt_attributes(plan: pd.DataFrame, shuffle: bool, rng) -> pd.DataFrame:
    """The person attributes each subject's prompt will say (`prompt_sex`, ...): its own, or with
    `shuffle` those of a random permutation of the plan's rows (the shuffled-prompt control: the
    plan's counts and attributes, but images conditioned on other attributes). The label stays
    the row's own, and so do the mask donor and the planned attributes the manifest records."""
    order = rng.permutation(len(plan)) if shuffle else np.arange(len(plan))
    prompted = plan[PERSON_ATTRIBUTES].to_numpy()[order]
    return plan.assign(**dict(zip(PROMPT_ATTRIBUTES, prompted.T)))


def subject_seeds(seed: int, n: int) -> list[int]:
    """A seed per planned subject, from the plan's seed and its position (independent of batching)."""
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def make_plan(mode: str, training: pd.DataFrame, cfg, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One row per synthetic subject: its attributes, the attributes its prompt says and the
    training subject whose masks it uses."""
    rng = np.random.default_rng(seed)
    counts = None
    if mode == "copy":
        plan = training.loc[training.index.repeat(int(cfg.per_sample_multiplier)), CELL + ["subject_id"]]
        plan = plan.rename(columns={"subject_id": "source_subject"})
    elif mode == "random_prompt":
        plan = _random_prompt_plan(training, int(cfg.num_samples), rng)
    else:
        counts = balance_counts(training, cfg.max_samples, bool(cfg.get("fill_empty_cells", False)))
        counts = scaled_counts(counts, float(cfg.get("dose", 1.0)))
        log_empty_cells(counts)
        plan = _balance_plan(training, counts, rng)
    plan = plan.reset_index(drop=True)
    donors = training.set_index("subject_id").reindex(columns=FROM_DONOR).fillna(UNKNOWN)
    plan[FROM_DONOR] = donors.loc[plan.source_subject].to_numpy()
    plan.insert(0, "subject_id", [f"S{i:06d}" for i in range(len(plan))])
    plan["seed"] = subject_seeds(seed, len(plan))
    return with_prompt_attributes(plan, bool(cfg.get("shuffle_attributes", False)), rng), counts
