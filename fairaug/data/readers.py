"""Per-row readers: a cohort row's files -> arrays in one canonical form.

Every source writes, per subject, the name of its reader (`reader`) and the paths it
reads (`image_path`, `ed_mask_path`, `es_mask_path`, `la_path`). Views, the view cache and
`task=cohort` only ever call `short_axis(row)`, `long_axis(row)` and `files(row)` (or, for a
reader whose files hold one view ready-made, `ready_view` and `view(row, input_cfg)`), so
they never ask which dataset a row came from.

Canonical form: a cine is (X, Y, Z, T) with slices in increasing position along the
slice normal (`positions`, mm); masks are (X, Y, Z) with 0 background, 1 LV blood pool,
2 LV myocardium, 3 RV; ED and ES are 0-based frame indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairaug.data import nifti
from fairaug.errors import DataError

MASK_LABELS = (0, 1, 2, 3)
ACDC_LABELS = {0: 0, 1: 3, 2: 2, 3: 1}  # ACDC: 1 RV, 2 myocardium, 3 LV cavity


@dataclass
class ShortAxis:
    """A subject's short-axis cine with its ED/ES masks, in canonical form."""

    subject: str
    cine: np.ndarray  # (X, Y, Z, T)
    spacing: tuple[float, float]  # in-plane voxel size (X, Y), mm
    positions: np.ndarray  # (Z,) slice positions along the normal, mm, increasing
    seg_ed: np.ndarray  # (X, Y, Z) canonical labels
    seg_es: np.ndarray
    ed: int
    es: int

    def centre(self) -> tuple[float, float]:
        heart = np.argwhere(self.seg_ed > 0)
        if len(heart) == 0:
            raise DataError(f"subject {self.subject}: the ED mask is empty, no heart to centre on")
        return float(heart[:, 0].mean()), float(heart[:, 1].mean())

    def heart_slices(self) -> np.ndarray:
        """Indices of the slices whose ED mask holds the LV (blood pool or myocardium)."""
        return np.flatnonzero(np.isin(self.seg_ed, (1, 2)).any(axis=(0, 1)))

    def mid_slice(self) -> int:
        ventricle = self.heart_slices()
        return int(ventricle[len(ventricle) // 2]) if len(ventricle) else self.cine.shape[2] // 2

    def base_to_apex(self) -> np.ndarray:
        """The heart's slices ordered base to apex. Positions give the order along the normal;
        the LV tapers towards the apex, so the end where its ED cross-section is larger is
        the base (headers rarely say which way the normal points anatomically)."""
        slices = self.heart_slices()
        if len(slices) < 2:
            return slices
        area = np.isin(self.seg_ed[:, :, slices], (1, 2)).sum(axis=(0, 1)).astype(float)
        order = np.arange(len(slices))
        centroid = float((area * order).sum() / area.sum())
        return slices if centroid <= (len(slices) - 1) / 2.0 else slices[::-1]

    def slice_gap_mm(self) -> float:
        """Distance between neighbouring slice centres (not the slice thickness)."""
        if len(self.positions) < 2:
            return float("nan")
        return float(np.median(np.diff(self.positions)))


def _is_given(value) -> bool:
    return not (value is None or pd.isna(value) or value == "")


def frame_index(value, n_frames: int, subject: str, what: str) -> int:
    index = int(value)
    if not 0 <= index < n_frames:
        raise DataError(f"subject {subject}: {what} {index} is outside the cine's {n_frames} frames")
    return index


def estimate_es(cine: np.ndarray, seg_ed: np.ndarray) -> int:
    """ES as the frame where most of the ED blood-pool region has turned to myocardium (the
    cavity is smallest): pixels darker than halfway between blood and myocardium, counted over
    the middle slices (in systole the base descends and the basal slice fills with atrial blood).
    Counting dark pixels, not averaging, keeps in-flow brightening of the blood from deciding."""
    pool, muscle = seg_ed == 1, seg_ed == 2
    slices = np.flatnonzero(pool.any(axis=(0, 1)))
    if not len(slices) or not muscle.any():
        return int(cine.shape[3] * 0.35)
    middle = slices[len(slices) // 4 : len(slices) - len(slices) // 4]
    region = cine[:, :, middle][pool[:, :, middle]].astype(np.float32)  # (pixels, T)
    threshold = 0.5 * (np.median(region) + np.median(cine[muscle]))
    return int(np.argmax((region < threshold).sum(axis=0)))


def check_finite(image: np.ndarray, subject: str, path: Path) -> None:
    """NaN or inf voxels would turn the whole normalised view into NaN: refuse them."""
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise DataError(f"subject {subject}: {path.name} holds {bad} NaN or infinite voxel(s)")


def canonical_labels(mask: np.ndarray, label_map: dict | None, subject: str, path: Path) -> np.ndarray:
    """Integer labels 0-3 in the canonical convention; anything else names the file."""
    if np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all() or (mask % 1 != 0).any():
            raise DataError(f"subject {subject}: {path.name} holds non-integer labels (a mask must hold 0-3)")
    found = np.unique(mask)
    known = label_map.keys() if label_map else MASK_LABELS
    unknown = [int(v) for v in found if int(v) not in known]
    if unknown:
        raise DataError(f"subject {subject}: {path.name} holds label(s) {unknown[:5]}; expected {sorted(known)}")
    labels = mask.astype(np.uint8)
    if label_map:
        lookup = np.zeros(max(label_map) + 1, dtype=np.uint8)
        for source, target in label_map.items():
            lookup[source] = target
        labels = lookup[labels]
    return labels


class NiftiReader:
    """A 4D NIfTI cine with NIfTI masks at ED and ES: each a 3D file, or a 4D file labelled
    at those frames (M&Ms). `label_map` translates a dataset's mask labels."""

    ready_view = None  # every view is built from the cine

    def __init__(self, label_map: dict[int, int] | None = None):
        self.label_map = label_map

    def short_axis(self, row) -> ShortAxis:
        subject = row.subject_id
        image = Path(row.image_path)
        stored = nifti.shape(image, subject)
        if len(stored) != 4:  # a 3D file holds one frame or one slice, and its shape cannot say which
            raise DataError(f"subject {subject}: {image.name} has shape {stored}; expected a 4D cine (X, Y, Z, T)")
        cine, zooms, affine = nifti.load_with_affine(image, subject, 4)
        check_finite(cine, subject, image)
        n_frames = cine.shape[3]
        ed = 0 if not _is_given(row.ed_frame) else frame_index(row.ed_frame, n_frames, subject, "ed_frame")
        seg_ed = self._mask(row, Path(row.ed_mask_path), ed, cine.shape, "cropping around the heart")
        es = (
            estimate_es(cine, seg_ed)
            if not _is_given(row.es_frame)
            else frame_index(row.es_frame, n_frames, subject, "es_frame")
        )
        seg_es = self._mask(row, Path(row.es_mask_path), es, cine.shape, "the ES mask")
        return ShortAxis(
            subject, cine, (zooms[0], zooms[1]), slice_positions(affine, cine.shape[2]), seg_ed, seg_es, ed, es
        )

    def _mask(self, row, path: Path, frame: int, cine_shape, needed_by: str) -> np.ndarray:
        subject = row.subject_id
        mask, _ = nifti.load(path, subject, 4 if len(nifti.shape(path, subject)) == 4 else 3, needed_by)
        if mask.ndim == 4:  # a 4D label file (M&Ms): labels at ED and ES only
            if mask.shape[3] != cine_shape[3]:
                raise DataError(
                    f"subject {subject}: {path.name} has {mask.shape[3]} frames but the cine has {cine_shape[3]}"
                )
            mask = mask[..., frame]
            if not mask.any():
                raise DataError(f"subject {subject}: {path.name} has no labels at frame {frame}")
        if tuple(mask.shape) != tuple(cine_shape[:3]):
            raise DataError(
                f"subject {subject}: {path.name} has shape {tuple(mask.shape)} but the cine "
                f"{Path(row.image_path).name} has {tuple(cine_shape[:3])} (image/mask mismatch)"
            )
        return canonical_labels(np.asarray(mask), self.label_map, subject, path)

    def long_axis(self, row) -> tuple[np.ndarray, tuple[float, ...]]:
        if not _is_given(row.get("la_path")):
            raise DataError(f"subject {row.subject_id}: no 4-chamber cine in this dataset (input.view=la_4ch)")
        cine, zooms = nifti.load(Path(row.la_path), row.subject_id, 4, "input.view=la_4ch")
        check_finite(cine, row.subject_id, Path(row.la_path))
        return cine, zooms

    def files(self, row) -> list[Path]:
        paths = [row.image_path, row.ed_mask_path, row.es_mask_path, row.get("la_path")]
        return [Path(p) for p in dict.fromkeys(paths) if _is_given(p)]


def slice_positions(affine: np.ndarray, n_slices: int) -> np.ndarray:
    """Slice centres along the normal, from the voxel-to-world affine."""
    step = float(np.linalg.norm(affine[:3, 2])) or 1.0
    return np.arange(n_slices, dtype=float) * step


def _dicom_reader():
    from fairaug.data.sources.sunnybrook import SunnybrookReader

    return SunnybrookReader()


def _png_reader():
    from fairaug.data.sources.synthetic import PngReader

    return PngReader()


NIFTI_READERS = ("nifti", "acdc")
READERS = {
    "nifti": NiftiReader,
    "acdc": lambda: NiftiReader(ACDC_LABELS),
    "sunnybrook": _dicom_reader,
    "png": _png_reader,
}
_instances: dict = {}


def reader_for(row):
    """The reader named by a cohort row's `reader` column."""
    name = row.get("reader", "nifti")
    if name not in READERS:
        raise DataError(f"subject {row.subject_id}: unknown reader '{name}'; known: {sorted(READERS)}")
    if name not in _instances:
        _instances[name] = READERS[name]()
    return _instances[name]
