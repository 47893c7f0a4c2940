"""Does the generator copy patients? Each synthetic image's distance to its nearest real
training image, against the same distance for real held-out patients (who are, by
construction, not copies): a synthetic image closer than nearly all of those is flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def nearest(queries: np.ndarray, references: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """RMS pixel distance from each query image to its nearest reference image, and which one
    (queries in chunks, so memory stays bounded for large sets)."""
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"images of different shapes: {queries.shape[1:]} against {references.shape[1:]}")
    r = torch.from_numpy(references.reshape(len(references), -1)).double()
    distances, indices = [np.empty(0)], [np.empty(0, dtype=int)]
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        q = torch.from_numpy(block.reshape(len(block), -1)).double()
        best = (torch.cdist(q, r) / np.sqrt(r.shape[1])).min(dim=1)
        distances.append(best.values.numpy())
        indices.append(best.indices.numpy())
    return np.concatenate(distances), np.concatenate(indices)


def memorisation(
    train: pd.DataFrame,
    train_images: np.ndarray,
    held_out_images: np.ndarray,
    synthetic: pd.DataFrame,
    synthetic_images: np.ndarray,
    quantile: float,
) -> tuple[pd.DataFrame, dict]:
    """Per synthetic subject: its nearest training subject, the distance, and whether it is
    flagged (closer than the `quantile` of the held-out-to-training distances)."""
    baseline, _ = nearest(held_out_images, train_images)
    distance, index = nearest(synthetic_images, train_images)
    threshold = float(np.quantile(baseline, quantile))
    sources = synthetic["source_subject"] if "source_subject" in synthetic else pd.Series([None] * len(synthetic))
    table = pd.DataFrame(
        {
            "subject_id": synthetic.subject_id.to_numpy(),
            "source_subject": sources.to_numpy(),
            "nearest_train_subject": train.subject_id.to_numpy()[index],
            "distance": distance.round(5),
        }
    )
    table["nearest_is_source"] = table.nearest_train_subject.astype(str) == table.source_subject.astype(str)
    table["flagged"] = table.distance < threshold
    summary = {
        "synthetic_median": float(np.median(distance)),
        "synthetic_min": float(distance.min()),
        "held_out_median": float(np.median(baseline)),
        "held_out_min": float(baseline.min()),
        "ratio_of_medians": float(np.median(distance) / np.median(baseline)),
        "quantile": quantile,
        "threshold": threshold,
        "n_flagged": int(table.flagged.sum()),
        "n_synthetic": len(table),
        "n_held_out": len(baseline),
        "share_nearest_is_source": float(table.nearest_is_source.mean()),
    }
    return table.sort_values("distance").reset_index(drop=True), summary
