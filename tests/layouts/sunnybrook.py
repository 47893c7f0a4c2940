"""Phantom subjects written in the Sunnybrook Cardiac Data layout, exactly as distributed.

    <root>/scd_patientdata.csv                         (UTF-8 BOM, CRLF line ends)
    <root>/SCD_IMAGES_0<k>/<PatientID>/CINESAX_<n>/IM-0001-<NNNN>.dcm
    <root>/SCD_ManualContours/<SC-XX-NN>/contours-manual/IRCCI-expert/IM-0001-<instance>-[io]contour-manual.txt

The files are made awkward on purpose, the way real exports can be, so that a reader that
trusts anything but the headers fails: an oblique slice plane, SliceThickness unlike the
gap between slices, file numbers that follow neither slice nor phase, the cycle rolled so
that ED is not the first phase (`phase_shift`), and every other subject stored apex first
along the slice normal (`apex_first`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from skimage.measure import find_contours

RR_MS = 800.0
SLICE_THICKNESS_MM = 8.0  # deliberately not the gap between slice centres
PATHOLOGY = {
    "HF-I": "Heart failure with infarct",
    "HF-NI": "Heart failure without infarct",
    "HYP": "LV hypertrophy",
    "N": "Normal",
}


def patient_id(index: int) -> str:
    """The PatientID of the `index`-th subject (row order), as the distribution numbers them."""
    return f"SCD{index + 1:05d}01"


def apex_first(index: int) -> bool:
    return index % 2 == 1


def phase_shift(index: int, n_frames: int) -> int:
    """How far the written cycle is rolled: the phantom's frame t is written as phase t + shift."""
    return (3 * index + 1) % n_frames


def write_sunnybrook(root: Path, subjects: pd.DataFrame, categories: list[str] | None = None, seed: int = 0) -> Path:
    """Write `subjects` (rows of a phantom cohort table: image_path, a 4D (X, Y, Z, T) int16
    NIfTI cine; ed_mask_path and es_mask_path, 3D canonical masks; ed_frame, es_frame, label,
    sex, age) under `root` and return `root`.

    Subject i (row order) becomes `patient_id(i)` with OriginalID `SC-<categories[i]>-<n>`;
    by default label 1 alternates HF-I / HF-NI and label 0 is N. Image z * T + p + 1
    (InstanceNumber) is slice z, phase p, where slice z is the phantom's slice z and phase p
    its frame (p - phase_shift(i, T)) % T, so data=sunnybrook finds ED and ES at
    (frame + phase_shift(i, T)) % T. Expert contours (inner and outer LV outlines, no RV)
    are traced from the phantom's masks at its ED and ES frames. A `seed` draws the
    oblique planes and the file numbers."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    categories = categories or _default_categories(subjects)
    if len(categories) != len(subjects):
        raise ValueError(f"{len(categories)} categories for {len(subjects)} subjects")
    counts: dict[str, int] = {}
    records = []
    for index, (row, category) in enumerate(zip(subjects.itertuples(), categories)):
        counts[category] = counts.get(category, 0) + 1
        original_id = f"SC-{category}-{counts[category]}"
        pid = patient_id(index)
        series = root / f"SCD_IMAGES_0{1 + index // 5}" / pid / f"CINESAX_{300 + index}"
        contours = (
            root / "SCD_ManualContours" / f"SC-{category}-{counts[category]:02d}" / "contours-manual" / "IRCCI-expert"
        )
        _write_subject(row, pid, index, series, contours, rng)
        gender = {"male": "Male", "female": "Female"}.get(row.sex, "")
        age = "" if pd.isna(row.age) else f"{round(row.age)}Y"
        records.append([pid, original_id, gender, age, PATHOLOGY.get(category, category)])
    lines = ["PatientID,OriginalID,Gender,Age,Pathology", *(",".join(r) for r in records)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "scd_patientdata.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return root


def _default_categories(subjects: pd.DataFrame) -> list[str]:
    failing = iter(["HF-I", "HF-NI"] * len(subjects))
    return [next(failing) if label == 1 else "N" for label in subjects.label]


def _oblique_plane(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column direction cosines of a tilted plane, and its normal."""
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    row_dir, col_dir = rotation[:, 0], rotation[:, 1]
    return row_dir, col_dir, np.cross(row_dir, col_dir)


def _write_subject(row, pid: str, index: int, series: Path, contours: Path, rng) -> None:
    image = nib.load(row.image_path)
    cine = np.asarray(image.dataobj).astype(np.int16)
    n_frames = cine.shape[3]
    shift = phase_shift(index, n_frames)
    _write_series(cine, tuple(float(z) for z in image.header.get_zooms()[:3]), pid, index, series, rng)
    contours.mkdir(parents=True, exist_ok=True)
    for frame, mask_path in ((int(row.ed_frame), row.ed_mask_path), (int(row.es_frame), row.es_mask_path)):
        mask = np.asarray(nib.load(mask_path).dataobj)
        phase = (frame + shift) % n_frames
        for z in range(cine.shape[2]):
            instance = z * n_frames + phase + 1
            for kind, labels in (("i", (1,)), ("o", (1, 2))):
                outline = _outline(np.isin(mask[:, :, z], labels))
                if outline is not None:
                    np.savetxt(contours / f"IM-0001-{instance:04d}-{kind}contour-manual.txt", outline, fmt="%.2f")


def _write_series(cine: np.ndarray, zooms, pid: str, index: int, series: Path, rng) -> None:
    """One CINESAX series: slice z, phase p is instance z * T + p + 1 in a file of any number."""
    dx, dy, gap = zooms
    n_x, n_y, n_slices, n_frames = cine.shape
    shift = phase_shift(index, n_frames)
    row_dir, col_dir, normal = _oblique_plane(rng)
    origin = rng.uniform(-80, 80, size=3)
    numbers = rng.permutation(n_slices * n_frames) + 1
    study_uid, series_uid = generate_uid(), generate_uid()
    jobs = [(z, phase) for z in range(n_slices) for phase in range(n_frames)]
    series.mkdir(parents=True, exist_ok=True)
    for job in rng.permutation(len(jobs)):  # written in no particular order
        z, phase = jobs[job]
        along = (n_slices - 1 - z) if apex_first(index) else z
        ds = _header(pid, study_uid, series_uid, index)
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [round(float(v), 4) for v in origin + normal * gap * along]
        ds.PixelSpacing = [dy, dx]  # row spacing (between rows, along Y), column spacing (along X)
        ds.SliceThickness = SLICE_THICKNESS_MM
        ds.SliceLocation = round(float(gap * along), 4)
        ds.TriggerTime = round(phase * RR_MS / n_frames, 2)
        ds.CardiacNumberOfImages = n_frames
        ds.InstanceNumber = z * n_frames + phase + 1
        ds.Rows, ds.Columns = n_y, n_x
        ds.PixelData = np.ascontiguousarray(cine[:, :, z, (phase - shift) % n_frames].T).tobytes()
        ds.save_as(series / f"IM-0001-{numbers[job]:04d}.dcm", enforce_file_format=True)


def _outline(region: np.ndarray) -> np.ndarray | None:
    """The longest iso-contour of a binary region, as (x, y) = (column, row) points."""
    if not region.any():
        return None
    traced = find_contours(region.astype(float), 0.5)
    return max(traced, key=len)


def _header(pid: str, study_uid: str, series_uid: str, index: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID = pid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 300 + index
    ds.SeriesDescription = "CINESAX"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds
