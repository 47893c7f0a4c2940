"""FID and KID (torchmetrics) between sets of precomputed features: real vs synthetic overall,
per subgroup, held-out real vs training real as the floor, and subgroup against subgroup."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class Precomputed(nn.Module):
    """Lets torchmetrics take features computed once instead of images."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid_kid(real: np.ndarray, fake: np.ndarray, subset_size: int, seed: int) -> dict:
    """FID, and KID (mean ± std over 100 random subsets) of two feature sets."""
    if min(len(real), len(fake)) < 2:
        return {"fid": np.nan, "kid": np.nan, "kid_std": np.nan}
    torch.manual_seed(seed)  # KID's subsets
    extractor = Precomputed(real.shape[1])
    fid = FrechetInceptionDistance(feature=extractor)
    # subsets of at most half of the smaller set, so that they differ and their spread means something
    with warnings.catch_warnings():  # "will save all extracted features": a few hundred vectors here
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save")
        kid = KernelInceptionDistance(
            feature=extractor, subsets=100, subset_size=max(2, min(subset_size, len(real) // 2, len(fake) // 2))
        )
    for metric in (fid, kid):
        metric.update(torch.from_numpy(real), real=True)
        metric.update(torch.from_numpy(fake), real=False)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


def matched(
    reference: np.ndarray, synthetic: np.ndarray, held_out: np.ndarray, subset_size: int, seed: int, draws: int
) -> dict:
    """FID/KID of the synthetic images and, as the floor, of the real held-out images against
    the same reference, both at the same sample size (FID's bias depends on it): each side is
    drawn down to the smaller of the two, `draws` times, and averaged."""
    n = min(len(synthetic), len(held_out))
    rng = np.random.default_rng(seed)
    results = {"synthetic": [], "floor": []}
    for name, features in (("synthetic", synthetic), ("floor", held_out)):
        for draw in range(draws if len(features) > n else 1):  # the smaller side is used whole: one draw
            chosen = features[rng.choice(len(features), n, replace=False)]
            results[name].append(fid_kid(reference, chosen, subset_size, seed + draw))
    mean = {name: pd.DataFrame(rows).mean().to_dict() for name, rows in results.items()}
    return {
        "n_real": len(reference),
        "n_synthetic": len(synthetic),
        "n_held_out": len(held_out),
        "n_matched": n,
        **mean["synthetic"],
        "fid_floor": mean["floor"]["fid"],
        "kid_floor": mean["floor"]["kid"],
    }


def by_group(
    real: pd.DataFrame,
    real_features: np.ndarray,
    fake: pd.DataFrame,
    fake_features: np.ndarray,
    held_out: pd.DataFrame,
    held_out_features: np.ndarray,
    attributes: list[str],
    min_count: int,
    subset_size: int,
    seed: int,
    draws: int = 5,
) -> pd.DataFrame:
    """One row per (attribute, group): the group's real training images against its synthetic
    ones and against its real held-out ones (the floor), at matched sample sizes; groups with
    fewer than `min_count` images on any side get NaN and a note."""
    sets = {"overall": {"all": (np.ones(len(real), bool), np.ones(len(fake), bool), np.ones(len(held_out), bool))}}
    for attribute in attributes:
        values = [group_values(t, attribute) for t in (real, fake, held_out)]
        sets[attribute] = {
            group: tuple((v == group).to_numpy() for v in values) for group in sorted(set(values[0]) | set(values[1]))
        }
    rows = []
    for attribute, groups in sets.items():
        for group, (r, f, h) in groups.items():
            row = {
                "attribute": attribute,
                "group": group,
                "n_real": int(r.sum()),
                "n_synthetic": int(f.sum()),
                "n_held_out": int(h.sum()),
            }
            if min(r.sum(), f.sum()) < min_count:
                row["note"] = f"fewer than {min_count} real training or synthetic images"
            elif h.sum() < min_count:  # the synthetic images are still measured, at their own size
                row.update(
                    fid_kid(real_features[r], fake_features[f], subset_size, seed),
                    n_matched=int(f.sum()),
                    note=f"no floor: fewer than {min_count} held-out images",
                )
            else:
                row.update(matched(real_features[r], fake_features[f], held_out_features[h], subset_size, seed, draws))
            rows.append(row)
    columns = [
        "attribute",
        "group",
        "n_real",
        "n_synthetic",
        "n_held_out",
        "n_matched",
        "fid",
        "fid_floor",
        "kid",
        "kid_std",
        "kid_floor",
        "note",
    ]
    table = pd.DataFrame(rows).reindex(columns=columns)
    return table.astype({c: "Int64" for c in columns if c.startswith("n_")})


def group_values(table: pd.DataFrame, attribute: str) -> pd.Series:
    """The attribute as text, a missing value as 'unknown' (pandas 3 keeps NaN through astype(str))."""
    return table[attribute].astype(str).fillna("unknown").replace("nan", "unknown")


def pairwise_kid(
    real: pd.DataFrame,
    real_features: np.ndarray,
    fake: pd.DataFrame,
    fake_features: np.ndarray,
    attribute: str,
    min_count: int,
    subset_size: int,
    seed: int,
) -> pd.DataFrame:
    """KID of every real group (rows) against every synthetic group (columns): a synthetic
    subgroup should be closest to its own real subgroup (the diagonal)."""
    real_values, fake_values = group_values(real, attribute), group_values(fake, attribute)
    groups = sorted(set(real_values) & set(fake_values))
    table = pd.DataFrame(np.nan, index=pd.Index(groups, name=f"real {attribute}"), columns=groups)
    for a in groups:
        r = (real_values == a).to_numpy()
        for b in groups:
            f = (fake_values == b).to_numpy()
            if min(r.sum(), f.sum()) >= min_count:
                table.loc[a, b] = fid_kid(real_features[r], fake_features[f], subset_size, seed)["kid"]
    return table
