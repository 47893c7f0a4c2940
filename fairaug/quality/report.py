"""quality.md / quality.json / CSVs and the closest-pairs figure of a synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fairaug.figures import FRAMES, show_frame
from fairaug.io import write_csv, write_figure, write_json, write_text
from fairaug.markdown import format_mean_std, format_value, markdown_table


def _count(value) -> str:
    return "–" if pd.isna(value) else str(int(value))


def closest_pairs_figure(
    memorised: pd.DataFrame,
    synthetic_images: dict[str, np.ndarray],
    train_images: dict[str, np.ndarray],
    threshold: float,
    path: Path,
    rows: int = 6,
) -> Path:
    """The synthetic images nearest a training image, ED and ES of both, with their distance."""
    from fairaug.figures import plt

    closest = memorised.head(rows)
    fig, axes = plt.subplots(len(closest), 4, figsize=(6.4, 1.9 * len(closest) + 0.6), squeeze=False)
    for r, row in enumerate(closest.itertuples()):
        pair = (
            (synthetic_images[row.subject_id], f"{row.subject_id} (synthetic)"),
            (train_images[row.nearest_train_subject], f"{row.nearest_train_subject} (train)"),
        )
        for p, (image, name) in enumerate(pair):
            for f, frame in enumerate(FRAMES):
                show_frame(axes[r, 2 * p + f], image[f], title=f"{name} {frame}")
        flag = "flagged" if row.distance < threshold else "not flagged"
        axes[r, 0].text(
            -0.1,
            0.5,
            f"d = {row.distance:.3f}\n{flag}",
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=7,
        )
    fig.suptitle(
        f"Synthetic images closest to a training image; d: RMS pixel distance (intensities on 0-1), "
        f"flagged as a possible copy below {threshold:.3f}",
        fontsize=7,
    )
    fig.tight_layout()
    return write_figure(fig, path, dpi=120)


def write_quality_report(
    output_dir: Path,
    header: dict,
    groups: pd.DataFrame,
    pairwise: dict[str, pd.DataFrame],
    memorised: pd.DataFrame,
    memorisation: dict,
    fidelity: dict,
    near_chance: float,
) -> None:
    write_csv(groups, output_dir / "fid_kid_by_group.csv")
    for attribute, table in pairwise.items():
        write_csv(table.reset_index(), output_dir / f"pairwise_kid_{attribute}.csv")
    write_csv(memorised, output_dir / "memorisation.csv")
    records = json.loads(groups.to_json(orient="records"))  # NaN -> null: strict JSON
    write_json(
        {**header, "overall": records[0], "memorisation": memorisation, "mask_fidelity": fidelity, "by_group": records},
        output_dir / "quality.json",
    )

    accuracy = header.get("feature_classifier_balanced_accuracy")
    features = (
        f"{header['features']} ({header['feature_dim']}-d"
        + (
            ""
            if accuracy is None
            else f", the classifier {header['classifier']}, its own test balanced accuracy {accuracy:.2f}"
        )
        + ")"
    )
    warning = (
        [
            f"**Warning**: the feature classifier is near chance (balanced accuracy {accuracy:.2f} < "
            f"{near_chance}): its features do not see what separates the classes, and FID/KID in them say "
            "little.",
            "",
        ]
        if accuracy is not None and accuracy < near_chance
        else []
    )
    lines = [
        f"# Quality of {header['synthetic']}",
        "",
        *warning,
        f"Features: {features}. Real training images: "
        f"{header['n_real_train']}, real held-out: {header['n_held_out']}, synthetic: {header['n_synthetic']}.",
        "",
        "## FID / KID, real training images against synthetic ones",
        "The floor is the same measure for real held-out images against the same training images. Both "
        "are computed at the same sample size (n matched: the smaller of the synthetic and held-out "
        "groups, random draws of that size averaged), since FID's bias depends on it.",
        "",
    ]
    rows = [
        [
            r.attribute,
            r.group,
            _count(r.n_real),
            _count(r.n_synthetic),
            _count(r.n_held_out),
            _count(r.n_matched),
            format_value(r.fid, 2),
            format_value(r.fid_floor, 2),
            format_mean_std(r.kid, r.kid_std, 4),
            format_value(r.kid_floor, 4),
            "" if pd.isna(r.note) else r.note,
        ]
        for r in groups.itertuples()
    ]
    lines += markdown_table(
        [
            "attribute",
            "group",
            "n real train",
            "n synthetic",
            "n held-out",
            "n matched",
            "FID",
            "FID floor",
            "KID",
            "KID floor",
            "note",
        ],
        rows,
    )
    for attribute, table in pairwise.items():
        lines += ["", f"## KID, real {attribute} (rows) against synthetic {attribute} (columns)", ""]
        lines += markdown_table(
            ["real \\ synthetic", *table.columns],
            [[index, *[format_value(v, 4) for v in values]] for index, values in zip(table.index, table.to_numpy())],
        )
    m = memorisation
    lines += [
        "",
        "## Memorisation (RMS pixel distance to the nearest real training image)",
        "",
        f"Synthetic: median {m['synthetic_median']:.4f}, min {m['synthetic_min']:.4f}; real held-out "
        f"patients: median {m['held_out_median']:.4f}, min {m['held_out_min']:.4f} (ratio of medians "
        f"{m['ratio_of_medians']:.2f}). Flagged as possible copies (closer than the {m['quantile']:.0%} quantile "
        f"of the held-out distances, {m['threshold']:.4f}): {m['n_flagged']} of {m['n_synthetic']}. "
        f"The nearest training image is the synthetic image's own source subject for "
        f"{m['share_nearest_is_source']:.0%}.",
        "",
        "![closest pairs](closest_pairs.png)",
    ]
    f = fidelity
    lines += [
        "",
        "## Mask fidelity: blood-myocardium contrast under the mask ((mean blood - mean myocardium) / "
        "SD over the heart; noise scores 0)",
        "",
    ]
    lines += markdown_table(
        ["images", "ED", "ES"],
        [
            ["real, own masks (reference)", format_value(f["real_ED"]), format_value(f["real_ES"])],
            ["synthetic, own masks", format_value(f["synthetic_ED"]), format_value(f["synthetic_ES"])],
            [
                "synthetic, shuffled masks (floor)",
                format_value(f["synthetic_shuffled_masks_ED"]),
                format_value(f["synthetic_shuffled_masks_ES"]),
            ],
        ],
    )
    write_text("\n".join(lines) + "\n", output_dir / "quality.md")
