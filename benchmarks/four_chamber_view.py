"""The phantom's four-chamber cine, one subject per phenotype (not a test; writes a figure for README).

Columns: healthy, HFrEF, HFpEF and ischaemic heart failure (LAD, then LCx territory), the first
such subject of a small cohort at the default geometry and appearance, read back from the
`la_4ch.nii.gz` files the generator wrote. Rows: end-diastole (frame 0), end-systole and
mid-diastole (valves open).

    python benchmarks/four_chamber_view.py                 # docs/four_chamber.png
    python benchmarks/four_chamber_view.py --subjects 120 --cache /tmp/phantom --out fig.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.phantom_vs_reference import phantom_cohort  # noqa: E402
from fairaug.figures import plt  # noqa: E402
from fairaug.io import write_figure  # noqa: E402

COLUMNS = (
    ("phenotype", "healthy"),
    ("phenotype", "hfref"),
    ("phenotype", "hfpef"),
    ("territory", "LAD"),
    ("territory", "LCx"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=80, help="phantom cohort size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="keep the phantom cohort here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "four_chamber.png")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder, physiology = phantom_cohort(args.subjects, args.cache or Path(scratch), args.workers)
        with plt.rc_context({"font.size": 7, "axes.titlesize": 7}):
            fig, axes = plt.subplots(3, len(COLUMNS), figsize=(2.4 * len(COLUMNS), 7.4))
            for column, (attribute, value) in zip(axes.T, COLUMNS):
                chosen = physiology[physiology[attribute] == value]
                if chosen.empty:
                    raise SystemExit(f"no {value} subject among {args.subjects}: pass a larger --subjects")
                subject = chosen.iloc[0]
                cine = np.asanyarray(nib.load(folder / subject.subject_id / "la_4ch.nii.gz").dataobj)[:, :, 0]
                es = int(subject.es_frame)
                frames = {"ED": 0, "ES": es, "mid-diastole": (es + cine.shape[-1]) // 2}
                for ax, (phase, t) in zip(column, frames.items()):
                    ax.imshow(cine[..., t].T, cmap="gray", vmin=0, vmax=np.percentile(cine, 99.5))
                    ax.set_title(f"{subject.subject_id} {value}, {subject.sex}\n{phase} (frame {t})")
                    ax.axis("off")
            fig.suptitle("Phantom four-chamber cine (la_4ch.nii.gz), default settings", fontsize=9)
            fig.tight_layout(rect=(0, 0, 1, 0.97))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            print(write_figure(fig, args.out, dpi=110))


if __name__ == "__main__":
    main()
