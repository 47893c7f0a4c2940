"""A DICOM cine series (every slice and phase in one folder) -> an (X, Y, Z, T) cine.

File names and listing order say nothing reliable about where an image belongs, so each
image is placed from its header alone: its slice by ImagePositionPatient projected on the
slice normal, its phase by TriggerTime (InstanceNumber where the series has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairaug.errors import ConfigError, DataError

SLICE_TOLERANCE_MM = 0.1  # images closer than this along the normal belong to one slice
ORIENTATION_TOLERANCE = 1e-3


@dataclass
class CineSeries:
    """Where each image of a series sits; the pixels only when read with them."""

    folder: Path
    positions: np.ndarray  # (Z,) slice centres along the normal, mm, increasing
    instances: np.ndarray  # (Z, T) InstanceNumber of the image at each slice and phase
    spacing: tuple[float, float]  # (column spacing, row spacing): the X and Y voxel size, mm
    cine: np.ndarray | None  # (X, Y, Z, T), X = column, Y = row

    def locate(self) -> dict[int, tuple[int, int]]:
        """InstanceNumber -> (slice, phase)."""
        return {int(n): (z, t) for (z, t), n in np.ndenumerate(self.instances)}


@dataclass
class _Image:
    path: Path
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]  # PixelSpacing as stored: (row spacing, column spacing)
    size: tuple[int, int]  # (Rows, Columns)
    instance: int
    trigger: float | None
    pixels: np.ndarray | None


def _pydicom():
    try:
        import pydicom
    except ImportError as error:
        raise ConfigError('data=sunnybrook reads DICOM with pydicom: pip install -e ".[dicom]"') from error
    return pydicom


def read_series(folder: Path, subject: str, pixels: bool = True) -> CineSeries:
    """The series in `folder`; without `pixels` only headers are read, which is fast."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() == ".dcm")
    if not files:
        raise DataError(f"subject {subject}: no DICOM (.dcm) files in {folder}")
    images = [_read(path, subject, pixels) for path in files]
    _check_one_geometry(images, subject)
    _check_unique_instances(images, subject, Path(folder))
    first = images[0]
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    along = np.array([image.position @ normal for image in images])
    order = np.argsort(along, kind="stable")
    slice_of = np.empty(len(images), dtype=int)
    slice_of[order] = np.concatenate([[0], np.cumsum(np.diff(along[order]) > SLICE_TOLERANCE_MM)])
    slices = [np.flatnonzero(slice_of == z) for z in range(slice_of.max() + 1)]
    positions = np.array([along[members].mean() for members in slices])
    phases = {len(members) for members in slices}
    if len(phases) > 1:
        counts = ", ".join(f"{p:.1f} mm: {len(m)}" for p, m in zip(positions, slices))
        raise DataError(
            f"subject {subject}: the slices of {folder} hold different numbers of phases ({counts}): a phase is missing"
        )
    by_trigger = all(image.trigger is not None for image in images)
    instances = np.empty((len(slices), phases.pop()), dtype=int)
    cine = np.empty((first.size[1], first.size[0], *instances.shape), dtype=first.pixels.dtype) if pixels else None
    for z, members in enumerate(slices):
        members = sorted(members, key=lambda i: (images[i].trigger if by_trigger else 0, images[i].instance))
        for t, i in enumerate(members):
            instances[z, t] = images[i].instance
            if pixels:
                cine[:, :, z, t] = images[i].pixels.T
    return CineSeries(Path(folder), positions, instances, (first.spacing[1], first.spacing[0]), cine)


def _read(path: Path, subject: str, pixels: bool) -> _Image:
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        array = ds.pixel_array if pixels else None
    except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError, AttributeError) as error:
        raise DataError(
            f"subject {subject}: cannot read the DICOM file {path} ({type(error).__name__}: {error})"
        ) from error

    def tag(name: str):
        if name not in ds:
            raise DataError(f"subject {subject}: the DICOM file {path} has no {name}")
        return ds.data_element(name).value

    trigger = ds.get("TriggerTime")
    try:
        row_spacing, column_spacing = (float(v) for v in tag("PixelSpacing"))
        return _Image(
            path,
            np.array(tag("ImagePositionPatient"), dtype=float).reshape(3),
            np.array(tag("ImageOrientationPatient"), dtype=float).reshape(6),
            (row_spacing, column_spacing),
            (int(tag("Rows")), int(tag("Columns"))),
            int(tag("InstanceNumber")),
            None if trigger in (None, "") else float(trigger),
            array,
        )
    except DataError:
        raise
    except (ValueError, TypeError) as error:
        raise DataError(f"subject {subject}: the DICOM file {path} has a malformed geometry tag ({error})") from error


def _check_one_geometry(images: list[_Image], subject: str) -> None:
    """Every image shares the plane and the grid of the first: one cine, not a mix of series."""
    first = images[0]
    for image in images[1:]:
        if not np.allclose(image.orientation, first.orientation, atol=ORIENTATION_TOLERANCE):
            raise DataError(
                f"subject {subject}: {image.path} lies in another plane (ImageOrientationPatient) "
                f"than {first.path.name}: not one cine series"
            )
        if image.size != first.size or not np.allclose(image.spacing, first.spacing):
            raise DataError(
                f"subject {subject}: {image.path} has Rows/Columns {image.size} and PixelSpacing "
                f"{image.spacing}, unlike {first.path.name} ({first.size}, {first.spacing})"
            )


def _check_unique_instances(images: list[_Image], subject: str, folder: Path) -> None:
    """Contours name images by InstanceNumber, so two images with one number are ambiguous."""
    seen: dict[int, Path] = {}
    for image in images:
        if image.instance in seen:
            raise DataError(
                f"subject {subject}: {seen[image.instance].name} and {image.path.name} in {folder} "
                f"share InstanceNumber {image.instance}"
            )
        seen[image.instance] = image.path
