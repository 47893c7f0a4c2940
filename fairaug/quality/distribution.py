"""FID and KID (torchmetrics) between sets of precomputed features: real vs synthetic overall,
per subgroup, held-out real vs training real as the floor, and subgroup against subgroup."""

from __future__ import annotations

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
        return {"n_real": len(real), "n_synthetic": len(fake), "fid": np.nan, "kid": np.nan, "kid_std": np.nan}
    torch.manual_seed(seed)  # KID's subsets
    extractor = Precomputed(real.shape[1])
    fid = FrechetInceptionDistance(feature=extractor)
    kid = KernelInceptionDistance(feature=extractor, subsets=100,
                                  subset_size=min(subset_size, len(real), len(fake)))
    for metric in (fid, kid):
        metric.update(torch.from_numpy(real), real=True)
        metric.update(torch.from_numpy(fake), real=False)
    kid_mean, kid_std = kid.compute()
    return {"n_real": len(real), "n_synthetic": len(fake), "fid": float(fid.compute()), "kid": float(kid_mean),
            "kid_std": float(kid_std)}


def by_group(real: pd.DataFrame, real_features: np.ndarray, fake: pd.DataFrame, fake_features: np.ndarray,
             attributes: list[str], min_count: int, subset_size: int, seed: int) -> pd.DataFrame:
    """One row per (attribute, group): the group's real images against its synthetic ones;
    groups with fewer than `min_count` on either side get NaN and a note."""
    rows = [{"attribute": "overall", "group": "all",
             **fid_kid(real_features, fake_features, subset_size, seed)}]
    for attribute in attributes:
        for group in sorted(set(real[attribute].astype(str)) | set(fake[attribute].astype(str))):
            r, f = (real[attribute].astype(str) == group).to_numpy(), (fake[attribute].astype(str) == group).to_numpy()
            row = {"attribute": attribute, "group": group}
            if min(r.sum(), f.sum()) < min_count:
                row.update(n_real=int(r.sum()), n_synthetic=int(f.sum()), fid=np.nan, kid=np.nan, kid_std=np.nan,
                           note=f"fewer than {min_count} images")
            else:
                row.update(fid_kid(real_features[r], fake_features[f], subset_size, seed))
            rows.append(row)
    return pd.DataFrame(rows)


def pairwise_kid(real: pd.DataFrame, real_features: np.ndarray, fake: pd.DataFrame, fake_features: np.ndarray,
                 attribute: str, min_count: int, subset_size: int, seed: int) -> pd.DataFrame:
    """KID of every real group (rows) against every synthetic group (columns): a synthetic
    subgroup should be closest to its own real subgroup (the diagonal)."""
    groups = sorted(set(real[attribute].astype(str)) & set(fake[attribute].astype(str)))
    table = pd.DataFrame(np.nan, index=pd.Index(groups, name=f"real {attribute}"), columns=groups)
    for a in groups:
        r = (real[attribute].astype(str) == a).to_numpy()
        for b in groups:
            f = (fake[attribute].astype(str) == b).to_numpy()
            if min(r.sum(), f.sum()) >= min_count:
                table.loc[a, b] = fid_kid(real_features[r], fake_features[f], subset_size, seed)["kid"]
    return table
