"""Input views: what a model sees of one subject.

| view   | tensor        | content                                                      |
|--------|---------------|--------------------------------------------------------------|
| cine   | (1, T, H, W)  | mid-ventricular short-axis slice over the cycle (or 4-chamber) |
| volume | (1, D, H, W)  | the heart's short-axis slices at ED, base to apex, resampled to `depth` |
| slice  | (1, H, W)     | one short-axis slice at ED                                    |
| frame  | (1, H, W)     | one time frame (ed, es or an index), short axis or 4-chamber  |
| edes   | (3, H, W)     | ED, ES, ED of one short-axis slice; masks stacked the same way |

Every view is cropped to a square `crop_mm` field of view centred on the heart (the
centroid of the ED mask; the image centre for the 4-chamber view, which has no mask),
resized to `size` x `size`, and scaled to [0, 1] between the 1st and 99th intensity
percentile of the crop. Arrays are (Y, X) so that they display like the scanner image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fairaug.data.readers import ShortAxis, frame_index, reader_for
from fairaug.errors import ConfigError, DataError

LONG_AXIS_VIEWS = ("cine", "frame")


def crop_resize(planes: np.ndarray, centre, spacing, crop_mm: float, size: int, mask: bool = False) -> np.ndarray:
    """Square crop of (..., X, Y) planes around `centre` (voxels), zero-padded, resized to
    (..., size, size) and transposed to (Y, X)."""
    lead = planes.shape[:-2]
    flat = planes.reshape(-1, *planes.shape[-2:])
    half = [max(1, int(round(crop_mm / (2.0 * s)))) for s in spacing]
    start = [int(round(c)) - h for c, h in zip(centre, half)]
    out = np.zeros((flat.shape[0], 2 * half[0], 2 * half[1]), dtype=np.float32)
    src = [slice(max(0, st), min(n, st + 2 * h)) for st, h, n in zip(start, half, flat.shape[1:])]
    dst = [slice(s.start - st, s.stop - st) for s, st in zip(src, start)]
    out[:, dst[0], dst[1]] = flat[:, src[0], src[1]]
    tensor = torch.from_numpy(out.transpose(0, 2, 1).copy())[:, None]
    if mask:
        resized = F.interpolate(tensor, size=(size, size), mode="nearest-exact")
    else:
        resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized[:, 0].numpy().reshape(*lead, size, size)


def normalise(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [1.0, 99.0])
    return np.clip((image - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def check_view_available(cohort: pd.DataFrame, cfg, source: str) -> None:
    """Refuse, before any work, a view that no subject of the data can provide."""
    if cfg.view == "la_4ch" and cohort["la_path"].isna().all():
        raise ConfigError(
            f"data={source} has no 4-chamber cine for any subject: input.view=la_4ch needs "
            "la_4ch.nii.gz files (UK Biobank layout); use input.view=sa"
        )


class ViewBuilder:
    """Turns a cohort row into the view's image (and masks, for `edes`)."""

    def __init__(self, cfg):
        if cfg.view == "la_4ch" and cfg.name not in LONG_AXIS_VIEWS:
            raise ConfigError(f"input.view=la_4ch works with input={'/'.join(LONG_AXIS_VIEWS)}, not {cfg.name}")
        if cfg.name == "frame" and cfg.frame not in ("ed", "es") and not str(cfg.frame).isdigit():
            raise ConfigError(f"input.frame must be ed, es or a frame index, got '{cfg.frame}'")
        self.cfg = cfg
        self.has_masks = cfg.name == "edes"

    def __call__(self, row: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
        cfg = self.cfg
        reader = reader_for(row)
        if reader.ready_view is not None:
            return reader.view(row, cfg)
        if cfg.view == "la_4ch":
            return self._long_axis(row), None
        sa = reader.short_axis(row)
        centre = sa.centre()
        z = self._slice(sa)

        def crop(planes, mask=False):
            return crop_resize(planes, centre, sa.spacing, cfg.crop_mm, cfg.size, mask)

        if cfg.name == "cine":
            frames = self._frames(sa.cine.shape[3], sa.ed)
            return normalise(crop(np.moveaxis(sa.cine[:, :, z, frames], -1, 0)))[None], None
        if cfg.name == "volume":
            stack = crop(np.moveaxis(sa.cine[:, :, self._volume_slices(sa), sa.ed], -1, 0))
            volume = F.interpolate(
                torch.from_numpy(stack)[None, None],
                size=(cfg.depth, cfg.size, cfg.size),
                mode="trilinear",
                align_corners=False,
            )[0]
            return normalise(volume.numpy()), None
        if cfg.name == "slice":
            return normalise(crop(sa.cine[:, :, z, sa.ed]))[None], None
        if cfg.name == "frame":
            t = self._named_frame(sa.cine.shape[3], sa.ed, sa.es, sa.subject)
            return normalise(crop(sa.cine[:, :, z, t]))[None], None
        seg_es = sa.seg_es
        image = normalise(crop(np.stack([sa.cine[:, :, z, sa.ed], sa.cine[:, :, z, sa.es], sa.cine[:, :, z, sa.ed]])))
        masks = crop(np.stack([sa.seg_ed[:, :, z], seg_es[:, :, z], sa.seg_ed[:, :, z]]).astype(np.float32), mask=True)
        return image, masks.astype(np.uint8)

    @staticmethod
    def _volume_slices(sa: ShortAxis) -> np.ndarray:
        """The slices whose ED mask holds the LV, base to apex."""
        slices = sa.base_to_apex()
        if len(slices) == 0:
            raise DataError(f"subject {sa.subject}: the ED mask marks no LV slice, so the volume view has no heart")
        return slices

    def _slice(self, sa: ShortAxis) -> int:
        if self.cfg.slice_index is None:
            return sa.mid_slice()
        if not 0 <= self.cfg.slice_index < sa.cine.shape[2]:
            raise DataError(
                f"subject {sa.subject}: input.slice_index {self.cfg.slice_index} is outside "
                f"its {sa.cine.shape[2]} slices"
            )
        return self.cfg.slice_index

    def _frames(self, n_frames: int, ed: int) -> np.ndarray:
        """Cine frames starting at ED: every `time_step`-th, or `frames` evenly spaced."""
        if self.cfg.frames:
            steps = np.linspace(0, n_frames, self.cfg.frames, endpoint=False).astype(int)
        else:
            steps = np.arange(0, n_frames, self.cfg.time_step)
        return (ed + steps) % n_frames

    def _named_frame(self, n_frames: int, ed: int, es: int, subject: str) -> int:
        named = {"ed": ed, "es": es}
        frame = str(self.cfg.frame)
        return named[frame] if frame in named else frame_index(frame, n_frames, subject, "input.frame")

    def _long_axis(self, row: pd.Series) -> np.ndarray:
        cfg = self.cfg
        cine, zooms = reader_for(row).long_axis(row)
        planes = np.moveaxis(cine[:, :, 0, :], -1, 0)
        centre = ((cine.shape[0] - 1) / 2.0, (cine.shape[1] - 1) / 2.0)
        ed = 0 if pd.isna(row.ed_frame) else frame_index(row.ed_frame, cine.shape[3], row.subject_id, "ed_frame")
        if cfg.name == "cine":
            frames = self._frames(cine.shape[3], ed)
        else:
            if cfg.frame == "es" and pd.isna(row.es_frame):
                raise DataError(
                    f"subject {row.subject_id}: input.frame=es on the 4-chamber view needs es_frame in the metadata"
                )
            es = -1 if pd.isna(row.es_frame) else frame_index(row.es_frame, cine.shape[3], row.subject_id, "es_frame")
            frames = [self._named_frame(cine.shape[3], ed, es, row.subject_id)]
        image = normalise(crop_resize(planes[frames], centre, zooms[:2], cfg.crop_mm, cfg.size))
        return image[None] if cfg.name == "cine" else image
