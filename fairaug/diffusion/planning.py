"""What to generate: the paper's copy of the training set, random prompts, or a fairness-aware
plan that fills the (label x sex x age group x BMI group) cells the training split lacks.

Vendor and centre are not cells to fill (not every vendor exists at every centre): each
synthetic subject takes them from the training subject whose masks it is drawn on."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from fairaug.data.cohort import PERSON_ATTRIBUTES, SITE_ATTRIBUTES, UNKNOWN

CELL = ["label", *PERSON_ATTRIBUTES]
FROM_DONOR = SITE_ATTRIBUTES  # a synthetic subject is scanned where its mask donor was


def balance_counts(training: pd.DataFrame, max_samples: int | None) -> pd.DataFrame:
    """Per cell of the full grid of observed values: how many training subjects it has and how
    many synthetic ones it needs to reach the largest cell, scaled down to `max_samples` in all."""
    values = [sorted(training[c].unique()) for c in CELL]
    grid = pd.DataFrame(list(itertools.product(*values)), columns=CELL)
    counts = training.groupby(CELL).size().rename("count").reset_index()
    cells = grid.merge(counts, on=CELL, how="left").fillna({"count": 0})
    cells["count"] = cells["count"].astype(int)
    need = (cells["count"].max() - cells["count"]).to_numpy(float)
    if max_samples is not None and need.sum() > max_samples:
        scaled = need * max_samples / need.sum()
        need = np.floor(scaled)
        remainder = int(max_samples - need.sum())
        need[np.argsort(-(scaled - need), kind="stable")[:remainder]] += 1  # largest remainders
    cells["generate"] = need.astype(int)
    return cells


def make_plan(mode: str, training: pd.DataFrame, cfg, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One row per synthetic subject: its attributes and the training subject whose masks it uses."""
    rng = np.random.default_rng(seed)
    counts = None
    if mode == "copy":
        plan = training.loc[training.index.repeat(int(cfg.per_sample_multiplier)), CELL + ["subject_id"]]
        plan = plan.rename(columns={"subject_id": "source_subject"})
    elif mode == "random_prompt":
        n = int(cfg.num_samples)
        plan = pd.DataFrame({c: rng.choice(sorted(training[c].unique()), n) for c in CELL})
        plan["source_subject"] = [
            rng.choice(training.subject_id[training.label == label].to_numpy()) for label in plan.label
        ]
    else:
        counts = balance_counts(training, cfg.max_samples)
        rows = []
        for cell in counts[counts.generate > 0].itertuples():
            same = training[(training[CELL] == [getattr(cell, c) for c in CELL]).all(axis=1)]
            donors = same if len(same) else training[training.label == cell.label]
            for source in rng.choice(donors.subject_id.to_numpy(), cell.generate):
                rows.append({**{c: getattr(cell, c) for c in CELL}, "source_subject": source})
        plan = pd.DataFrame(rows, columns=[*CELL, "source_subject"])
    plan = plan.reset_index(drop=True)
    donors = training.set_index("subject_id").reindex(columns=FROM_DONOR).fillna(UNKNOWN)
    plan[FROM_DONOR] = donors.loc[plan.source_subject].to_numpy()
    plan.insert(0, "subject_id", [f"S{i:06d}" for i in range(len(plan))])
    plan["seed"] = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(len(plan))]
    return plan, counts
