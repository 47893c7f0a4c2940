"""The Sunnybrook Cardiac Data (SCD) read exactly as distributed.

Anywhere under data.root: `scd_patientdata.csv` (PatientID, OriginalID, Gender, Age,
Pathology); `<PatientID>/CINESAX_<n>/*.dcm`, one DICOM series holding every slice and phase
(of several, the one the contours fit); `SCD_ManualContours/<OriginalID, number padded to 2>/
contours-manual/IRCCI-expert/IM-0001-<InstanceNumber>-[io]contour-manual.txt`, the expert's
inner (blood pool) and outer (epicardium) outlines at ED and ES. The label follows the
category in OriginalID (SC-HF-I-1 -> HF-I), never the free-text Pathology. There is no RV
outline, so label 3 never appears, and no BMI.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.draw import polygon

from fairaug.data.dicom import CineSeries, read_series
from fairaug.data.plausibility import check_ids
from fairaug.data.readers import ShortAxis
from fairaug.data.sources.public import exclusion_reason, finish, group_labels
from fairaug.errors import DataError

log = logging.getLogger(__name__)

METADATA_FILE = "scd_patientdata.csv"
CONTOURS_FOLDER = "SCD_ManualContours"
EXPERT = Path("contours-manual", "IRCCI-expert")
REQUIRED_COLUMNS = ("PatientID", "OriginalID", "Gender", "Age")
SERIES_PREFIX = "CINESAX_"
ORIGINAL_ID = re.compile(r"SC-(?P<category>[A-Z]+(?:-[A-Z]+)*)-(?P<number>\d+)", re.IGNORECASE)
CONTOUR_FILE = re.compile(r"IM-\d{4}-(?P<instance>\d{4})-(?P<kind>[io])contour-manual\.txt")
AGE = re.compile(r"(?P<years>\d+(?:\.\d+)?)\s*Y?", re.IGNORECASE)
SEXES = {"male": "male", "m": "male", "female": "female", "f": "female"}
INNER, OUTER = "i", "o"


@dataclass
class Contour:
    slice: int
    phase: int
    kind: str  # INNER (blood pool) or OUTER (epicardium)
    points: np.ndarray  # (n, 2): x = column, y = row, in pixels
    path: Path


@dataclass
class _Survey:
    """What one walk over data.root found (the series folders themselves are not entered)."""

    metadata: list[Path] = field(default_factory=list)
    contours: list[Path] = field(default_factory=list)
    folders: dict[str, list[Path]] = field(default_factory=dict)


def load_sunnybrook(cfg) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"data.root is not a folder: {root}")
    survey = _survey(root)
    metadata = _one(cfg.metadata, survey.metadata, "data.metadata", METADATA_FILE, root)
    contours = _one(cfg.contours, survey.contours, "data.contours", CONTOURS_FOLDER, root)
    labels = group_labels(cfg)
    patients, errors = read_patientdata(metadata)
    rows, excluded = [], []
    for record in patients.itertuples():
        subject = record.PatientID
        try:
            category, contour_folder = _original_id(record.OriginalID, subject, metadata, contours)
            if category not in labels:
                excluded.append((subject, exclusion_reason(category, cfg)))
                continue
            rows.append(
                {
                    "subject_id": subject,
                    "label": labels[category],
                    "diagnosis": category,
                    "sex": _sex(record.Gender, subject, metadata),
                    "age": _age(record.Age, subject, metadata),
                    "bmi": float("nan"),
                    "reader": "sunnybrook",
                    "la_path": pd.NA,
                    **_files_and_phases(subject, survey, root, contour_folder),
                }
            )
        except DataError as error:
            errors.append((subject, str(error).removeprefix(f"subject {subject}: ")))
    return finish(rows, errors, excluded, cfg, f"Sunnybrook in {root}")


def read_patientdata(path: Path) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """scd_patientdata.csv as text (a BOM and CRLF line ends are fine), one row per subject, and
    the rows no PatientID names unambiguously (empty, unsafe or listed twice), as problems."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"cannot read {path} ({type(error).__name__}: {error})") from error
    table.columns = [str(c).strip() for c in table.columns]
    for column in REQUIRED_COLUMNS:
        if column not in table:
            raise DataError(f"{path} has no '{column}' column (found {list(table.columns)})")
    table = table.apply(lambda column: column.str.strip())
    table = table[(table[list(REQUIRED_COLUMNS)] != "").any(axis=1)]  # a spreadsheet's empty trailing rows
    problems, identified = check_ids(table.PatientID, "PatientID")
    return table[identified], [(subject, f"{path.name}: {reason}") for subject, reason in problems]


class SunnybrookReader:
    """The cine from the DICOM series, masks rasterised from the expert contours."""

    ready_view = None  # every view is built from the cine

    def short_axis(self, row) -> ShortAxis:
        subject = row.subject_id
        series = read_series(Path(row.image_path), subject, pixels=True)
        contours = read_contours(Path(row.ed_mask_path), series, subject)
        ed, es = ed_es(contours, subject, Path(row.ed_mask_path))
        shape = series.cine.shape[:3]
        return ShortAxis(
            subject,
            series.cine,
            series.spacing,
            series.positions,
            rasterise(contours, ed, shape),
            rasterise(contours, es, shape),
            ed,
            es,
        )

    def long_axis(self, row):
        raise DataError(
            f"subject {row.subject_id}: Sunnybrook has no 4-chamber cine (input.view=la_4ch needs "
            "one); use input.view=sa"
        )

    def files(self, row) -> list[Path]:
        return [Path(p) for p in dict.fromkeys([row.image_path, row.ed_mask_path, row.es_mask_path])]


def read_contours(folder: Path, series: CineSeries, subject: str) -> list[Contour]:
    """The inner and outer outlines in `folder`, each placed at its image's slice and phase."""
    located = series.locate()
    contours = []
    for path in sorted(folder.iterdir()):
        match = CONTOUR_FILE.fullmatch(path.name)
        if not match:
            continue  # papillary muscle outlines (p1/p2) and other files are not part of the masks
        instance = int(match["instance"])
        if instance not in located:
            raise DataError(
                f"subject {subject}: {path} outlines image {instance}, but no image of the series "
                f"{series.folder} has that InstanceNumber"
            )
        contours.append(Contour(*located[instance], match["kind"], _points(path, subject), path))
    if not contours:
        raise DataError(f"subject {subject}: no i/o contour files (IM-0001-NNNN-icontour-manual.txt) in {folder}")
    return contours


def ed_es(contours: list[Contour], subject: str, folder: Path) -> tuple[int, int]:
    """The two outlined phases: ED is the one with the larger blood pool, ES the other."""
    phases = sorted({c.phase for c in contours})
    if len(phases) != 2:
        raise DataError(
            f"subject {subject}: the contours in {folder} outline {len(phases)} phase(s) {phases}; "
            "expected exactly two (ED and ES)"
        )
    pool = {p: sum(_area(c.points) for c in contours if c.phase == p and c.kind == INNER) for p in phases}
    ed = max(phases, key=pool.get)
    return ed, phases[1] if ed == phases[0] else phases[0]


def rasterise(contours: list[Contour], phase: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Canonical labels at `phase`: inside the inner outline 1, between outer and inner 2."""
    mask = np.zeros(shape, dtype=np.uint8)
    for kind, label in ((OUTER, 2), (INNER, 1)):
        for contour in (c for c in contours if c.phase == phase and c.kind == kind):
            x, y = polygon(contour.points[:, 0], contour.points[:, 1], shape[:2])
            mask[x, y, contour.slice] = label
    return mask


def _points(path: Path, subject: str) -> np.ndarray:
    try:
        points = np.loadtxt(path, ndmin=2)
    except ValueError as error:
        raise DataError(f"subject {subject}: cannot read the contour {path} ({error})") from error
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise DataError(f"subject {subject}: the contour {path} does not hold at least three 'x y' points")
    return points


def _area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _survey(root: Path) -> _Survey:
    found = _Survey()
    for parent, dirs, files in os.walk(root):
        found.metadata += [Path(parent, f) for f in files if f.lower() == METADATA_FILE]
        found.contours += [Path(parent, d) for d in dirs if d == CONTOURS_FOLDER]
        for name in dirs:
            found.folders.setdefault(name, []).append(Path(parent, name))
        dirs[:] = [d for d in dirs if not d.upper().startswith(SERIES_PREFIX) and d != CONTOURS_FOLDER]
    return found


def _one(configured, found: list[Path], key: str, name: str, root: Path) -> Path:
    """The configured path, or the single `name` found under root."""
    if configured:
        if not Path(configured).exists():
            raise DataError(f"{key} not found: {configured}")
        return Path(configured)
    if len(found) != 1:
        where = f"found {len(found)}: {[str(p) for p in found[:5]]}" if found else "none found"
        raise DataError(f"expected one {name} under {root} ({where}); set {key}=<path>")
    return found[0]


def _original_id(original_id: str, subject: str, metadata: Path, contours: Path) -> tuple[str, Path]:
    """The diagnosis category and the expert contour folder named by an OriginalID."""
    match = ORIGINAL_ID.fullmatch(original_id)
    if not match:
        raise DataError(f"subject {subject}: OriginalID '{original_id}' in {metadata} is not SC-<category>-<n>")
    category = match["category"].upper()
    return category, contours / f"SC-{category}-{int(match['number']):02d}" / EXPERT


def _sex(value: str, subject: str, metadata: Path):
    if value == "":
        return pd.NA
    if value.lower() not in SEXES:
        raise DataError(f"subject {subject}: unknown Gender '{value}' in {metadata} (expected Male or Female)")
    return SEXES[value.lower()]


def _age(value: str, subject: str, metadata: Path) -> float:
    if value == "":
        return float("nan")
    match = AGE.fullmatch(value)
    if not match:
        raise DataError(f"subject {subject}: unreadable Age '{value}' in {metadata} (expected e.g. 66Y or 66)")
    return float(match["years"])


def _files_and_phases(subject: str, survey: _Survey, root: Path, contour_folder: Path) -> dict:
    """The subject's series and contour folders, with ED and ES found from headers and contours."""
    folders = survey.folders.get(subject, [])
    if len(folders) != 1:
        found = f"found {[str(f) for f in folders]}" if folders else "none found"
        raise DataError(f"subject {subject}: expected one image folder named {subject} under {root} ({found})")
    candidates = sorted(
        (d for d in folders[0].iterdir() if d.is_dir() and d.name.upper().startswith(SERIES_PREFIX)), key=_series_number
    )
    if not candidates:
        raise DataError(f"subject {subject}: no {SERIES_PREFIX}<n> series in {folders[0]}")
    if not contour_folder.is_dir():
        raise DataError(f"subject {subject}: no expert contours: {contour_folder} not found")
    series, contours = _contoured_series(subject, candidates, contour_folder)
    ed, es = ed_es(contours, subject, contour_folder)
    return {
        "image_path": str(series),
        "ed_mask_path": str(contour_folder),
        "es_mask_path": str(contour_folder),
        "subject_dir": str(folders[0]),
        "ed_frame": ed,
        "es_frame": es,
    }


def _series_number(folder: Path) -> int:
    suffix = folder.name[len(SERIES_PREFIX) :]
    return int(suffix) if suffix.isdigit() else -1


def _contoured_series(subject: str, candidates: list[Path], contour_folder: Path) -> tuple[Path, list[Contour]]:
    """The series the expert outlined: the only one, or among several the ones every contour
    file's image exists in; of those the last acquired (highest <n>), with a warning."""
    if len(candidates) == 1:
        return candidates[0], read_contours(contour_folder, read_series(candidates[0], subject, pixels=False), subject)
    fits, reasons = {}, []
    for folder in candidates:
        try:
            fits[folder] = read_contours(contour_folder, read_series(folder, subject, pixels=False), subject)
        except DataError as error:
            reasons.append(f"{folder.name}: {str(error).removeprefix(f'subject {subject}: ')}")
    if not fits:
        raise DataError(
            f"subject {subject}: none of its {len(candidates)} series fits the contours in "
            f"{contour_folder}:\n    " + "\n    ".join(reasons)
        )
    chosen = list(fits)[-1]
    if len(fits) > 1:
        log.warning(
            "Subject %s: the contours fit %d series %s; using the last acquired, %s",
            subject,
            len(fits),
            [f.name for f in fits],
            chosen.name,
        )
    return chosen, fits[chosen]
