"""The built-in phantom next to the one real reference cine MRI (not a test; writes a figure for README).

Row 1 is the real Sunnybrook subject of ../shared/reference/ (see its README); the rows below
are the first phantom subject of each phenotype in a small cohort at the default geometry and
appearance. Each row shows the mid-ventricular slice at ED and at ES, cropped to the same field
of view in mm around the LV blood pool, and the ED slice's blood-pool and myocardium intensity
histograms divided by the blood-pool mean. Contrast, blood-pool CV and blood SNR are measured
on both by fairaug.data.image_statistics and printed as a Markdown table.

    python benchmarks/phantom_vs_reference.py                  # docs/phantom_vs_reference.png
    python benchmarks/phantom_vs_reference.py --reference DIR --subjects 24 --cache /tmp/phantom --out fig.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.config import compose_config  # noqa: E402
from fairaug.data.image_statistics import (  # noqa: E402
    BLOOD_POOL,
    MYOCARDIUM,
    mid_ventricular_slice,
    tissue_statistics,
)
from fairaug.data.phantom.generate import generate, phantom_spec  # noqa: E402
from fairaug.figures import plt  # noqa: E402
from fairaug.io import write_figure  # noqa: E402

REFERENCE_SUBJECT = "SCD0000101"
PHENOTYPES = ("healthy", "hfref", "ischaemic", "hfpef")
FOV_MM = 140.0  # the default view's crop, so both are seen as the models see them
HISTOGRAM_BINS = np.linspace(0.0, 2.0, 61)  # intensity / blood-pool mean
STATISTICS = {"contrast": "blood/myocardium contrast", "blood_cv": "blood-pool CV", "blood_snr": "blood SNR"}


def load_subject(folder: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Cine (X, Y, Z, T), ED mask, and the in-plane pixel size in mm from the header."""
    sa = nib.load(folder / "sa.nii.gz")
    seg_ed = np.asanyarray(nib.load(folder / "seg_sa_ED.nii.gz").dataobj)
    return np.asanyarray(sa.dataobj), seg_ed, float(sa.header.get_zooms()[0])


def fov_crop(image: np.ndarray, centre: np.ndarray, pixel_mm: float) -> np.ndarray:
    """The FOV_MM square of a slice (X, Y) around `centre` (pixels), zero-padded beyond the image."""
    half = int(round(FOV_MM / 2.0 / pixel_mm))
    cx, cy = np.round(centre).astype(int)
    padded = np.pad(image, half)
    return padded[cx : cx + 2 * half, cy : cy + 2 * half]


def subject_row(folder: Path, ed: int, es: int) -> dict:
    """What one figure row needs: ED/ES crops, normalised tissue intensities, and the statistics."""
    cine, seg_ed, pixel_mm = load_subject(folder)
    z = mid_ventricular_slice(seg_ed)
    mask = seg_ed[..., z]
    centre = np.argwhere(mask == BLOOD_POOL).mean(axis=0)
    ed_slice = cine[..., z, ed].astype(np.float64)
    blood_mean = ed_slice[mask == BLOOD_POOL].mean()
    return {
        "ed": fov_crop(ed_slice, centre, pixel_mm),
        "es": fov_crop(cine[..., z, es].astype(np.float64), centre, pixel_mm),
        "blood": ed_slice[mask == BLOOD_POOL] / blood_mean,
        "myocardium": ed_slice[mask == MYOCARDIUM] / blood_mean,
        "ed_frame": ed,
        "es_frame": es,
        "slice": z,
        **tissue_statistics(cine, seg_ed, ed, pixel_mm),
    }


def phantom_cohort(n_subjects: int, root: Path, workers: int) -> tuple[Path, pd.DataFrame]:
    """A default-appearance cohort with every phenotype likely present (half HF, no HF odds by group)."""
    cfg = OmegaConf.merge(
        compose_config([]).data,
        {"n_subjects": n_subjects, "workers": workers, "composition": {"hf_base_prevalence": 0.5}},
    )
    cfg.composition.hf_odds_ratio = {}  # assigned: merging an empty mapping would keep the default odds
    folder = generate(phantom_spec(cfg), root, workers)
    return folder, pd.read_csv(folder / "physiology.csv")


def number(value: float, statistic: str) -> str:
    return f"{value:.1f}" if statistic == "blood_snr" else f"{value:.2f}"


def markdown_table(reference: dict, phantom: pd.DataFrame) -> str:
    rows = [
        (f"real: Sunnybrook {REFERENCE_SUBJECT} (HF with infarction)", [number(reference[k], k) for k in STATISTICS]),
        (
            f"phantom, all {len(phantom)} subjects: median [min–max]",
            [
                f"{number(phantom[k].median(), k)} [{number(phantom[k].min(), k)}–{number(phantom[k].max(), k)}]"
                for k in STATISTICS
            ],
        ),
    ]
    for phenotype in PHENOTYPES:
        members = phantom[phantom.phenotype == phenotype]
        if len(members):
            rows.append(
                (
                    f"phantom {phenotype} (n={len(members)}): median",
                    [number(members[k].median(), k) for k in STATISTICS],
                )
            )
    lines = ["| image | " + " | ".join(STATISTICS.values()) + " |", "|---" * (len(STATISTICS) + 1) + "|"]
    return "\n".join(lines + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows])


def draw_row(axes, row: dict, label: str) -> None:
    # One window per row, from the ED crop, so ES is shown on the same grey scale as ED
    vmax = np.percentile(row["ed"], 99.5)
    extent = (-FOV_MM / 2, FOV_MM / 2, FOV_MM / 2, -FOV_MM / 2)
    for ax, phase in zip(axes[:2], ("ed", "es")):
        # (X, Y) -> rows Y, columns X, as the views show it
        ax.imshow(row[phase].T, cmap="gray", vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
        ax.set_title(f"{label}\n{phase.upper()} (frame {row[f'{phase}_frame']}, slice {row['slice']})")
        ax.axis("off")
    histogram = axes[2]
    histogram.hist(
        np.clip(row["blood"], 0, HISTOGRAM_BINS[-1]),
        HISTOGRAM_BINS,
        density=True,
        alpha=0.6,
        color="tab:red",
        label="LV blood pool",
    )
    histogram.hist(
        np.clip(row["myocardium"], 0, HISTOGRAM_BINS[-1]),
        HISTOGRAM_BINS,
        density=True,
        alpha=0.6,
        color="tab:green",
        label="LV myocardium",
    )
    histogram.set_title(
        f"ED contrast {row['contrast']:.2f}, blood CV {row['blood_cv']:.2f}, blood SNR {row['blood_snr']:.0f}"
    )
    histogram.set_xlabel("intensity / blood-pool mean (clipped at 2)")
    histogram.set_yticks([])
    histogram.legend(frameon=False)


def draw_figure(rows: list[tuple[str, dict]], out: Path) -> Path:
    with plt.rc_context({"font.size": 7, "axes.titlesize": 7}):
        fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.2 * len(rows)), gridspec_kw={"width_ratios": [1, 1, 1.5]})
        for row_axes, (label, row) in zip(axes, rows):
            draw_row(row_axes, row, label)
        fig.suptitle(
            f"Real short-axis cine (top, Sunnybrook {REFERENCE_SUBJECT}) vs the built-in phantom at its "
            f"defaults (one subject per phenotype): mid-ventricular slice, {FOV_MM:.0f} mm field of view "
            "around the LV",
            fontsize=9,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the suptitle
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_figure(fig, out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--reference",
        type=Path,
        default=REPO.parent / "shared" / "reference" / "sunnybrook",
        help="folder with metadata.csv and the reference subject's folder",
    )
    parser.add_argument("--subjects", type=int, default=24, help="phantom cohort size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="keep the phantom cohort here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "phantom_vs_reference.png")
    args = parser.parse_args()

    if not (args.reference / "metadata.csv").exists() or not (args.reference / REFERENCE_SUBJECT).is_dir():
        raise SystemExit(
            f"no reference cine at {args.reference} (want metadata.csv and {REFERENCE_SUBJECT}/): "
            "it lives outside the repository, in ../shared/reference/sunnybrook; pass --reference"
        )
    frames = pd.read_csv(args.reference / "metadata.csv").set_index("subject_id").loc[REFERENCE_SUBJECT]
    reference = subject_row(args.reference / REFERENCE_SUBJECT, int(frames.ed_frame), int(frames.es_frame))

    with tempfile.TemporaryDirectory() as scratch:
        folder, physiology = phantom_cohort(args.subjects, args.cache or Path(scratch), args.workers)
        # ED is frame 0 of every phantom cine
        phantom = {
            s.subject_id: subject_row(folder / s.subject_id, 0, int(s.es_frame)) for s in physiology.itertuples()
        }
    stats = physiology.assign(**{k: [phantom[s][k] for s in physiology.subject_id] for k in STATISTICS})
    print(markdown_table(reference, stats))

    firsts = physiology.drop_duplicates("phenotype").set_index("phenotype")
    rows = [(f"real {REFERENCE_SUBJECT}, heart failure with infarction", reference)]
    rows += [
        (f"phantom {firsts.subject_id[p]}: {p}, {firsts.sex[p]}", phantom[firsts.subject_id[p]])
        for p in PHENOTYPES
        if p in firsts.index
    ]
    print(f"\nFigure: {draw_figure(rows, args.out)}")


if __name__ == "__main__":
    main()
