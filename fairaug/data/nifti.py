"""NIfTI reading that names the subject and file when something is wrong.

A .nii.gz is decompressed to its end before it is parsed: nibabel alone stops reading
where the voxels end, before the gzip trailer, so a corrupt stream whose damage decompresses
to the right length is read as garbage voxels without any error. Reading to the end checks
the stream's CRC. An uncompressed .nii has no checksum to check.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from fairaug.errors import DataError

READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    nib.filebasedimages.ImageFileError,
    nib.spatialimages.HeaderDataError,
)  # e.g. a scale slope without an intercept


def _open(path: Path, subject: str, needed_by: str):
    if not path.is_file():
        reason = f" ({needed_by} needs it)" if needed_by else ""
        raise DataError(f"subject {subject}: {path.name} not found in {path.parent}{reason}")
    try:
        return nib.load(path)
    except READ_ERRORS as error:
        raise DataError(f"subject {subject}: cannot read {path} ({type(error).__name__}: {error})") from error


def shape(path: Path, subject: str) -> tuple[int, ...]:
    """The stored image's shape from its header, trailing singleton axes beyond three dropped."""
    axes = list(_open(path, subject, "").shape)
    while len(axes) > 3 and axes[-1] == 1:
        axes.pop()
    return tuple(axes)


def _open_verified(path: Path, subject: str, needed_by: str):
    """The image with its whole gzip stream read and CRC-checked (see the module docstring)."""
    image = _open(path, subject, needed_by)  # existence and header errors, and the image class
    if path.suffix != ".gz":
        return image
    try:
        with gzip.open(path) as stream:
            return type(image).from_bytes(stream.read())
    except READ_ERRORS as error:
        raise DataError(f"subject {subject}: cannot read {path} ({type(error).__name__}: {error})") from error


def load_with_affine(
    path: Path, subject: str, ndim: int, needed_by: str = ""
) -> tuple[np.ndarray, tuple[float, ...], np.ndarray]:
    """The array with `ndim` axes (trailing singleton axes dropped or added), voxel sizes and affine."""
    image = _open_verified(path, subject, needed_by)
    try:
        array = np.asanyarray(image.dataobj)
        zooms = tuple(float(z) for z in image.header.get_zooms())
    except READ_ERRORS as error:
        raise DataError(f"subject {subject}: cannot read {path} ({type(error).__name__}: {error})") from error
    while array.ndim > ndim and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == ndim - 1:
        array = array[..., None] if ndim == 3 else array[:, :, None, :]
    if array.ndim != ndim:
        raise DataError(f"subject {subject}: {path.name} has shape {array.shape}, expected {ndim} axes")
    return array, zooms, image.affine


def load(path: Path, subject: str, ndim: int, needed_by: str = "") -> tuple[np.ndarray, tuple[float, ...]]:
    """The array with `ndim` axes (trailing singleton axes dropped or added) and voxel sizes."""
    array, zooms, _ = load_with_affine(path, subject, ndim, needed_by)
    return array, zooms


def cine_frames(cine: Path) -> int:
    """Frames of a 4D cine, from its header alone (sources check ED/ES against it)."""
    if not cine.is_file():
        raise DataError(f"{cine.name} not found in {cine.parent}")
    try:
        shape = nib.load(cine).shape
    except READ_ERRORS as error:
        raise DataError(f"cannot read {cine} ({type(error).__name__}: {error})") from error
    if len(shape) != 4:
        raise DataError(f"{cine} has shape {shape}; expected a 4D cine (X, Y, Z, T)")
    return int(shape[3])
