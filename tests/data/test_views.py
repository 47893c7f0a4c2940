import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data.cache import build_view_cache, cache_key
from fairaug.data.readers import reader_for
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError, DataError

SHAPES = {  # tiny phantom: 8 frames, time_step 5 -> 2; depth 8; size 24
    ("cine", "sa"): (1, 2, 24, 24),
    ("cine", "la_4ch"): (1, 2, 24, 24),
    ("volume", "sa"): (1, 8, 24, 24),
    ("slice", "sa"): (1, 24, 24),
    ("frame", "sa"): (1, 24, 24),
    ("frame", "la_4ch"): (1, 24, 24),
    ("edes", "sa"): (3, 24, 24),
}


@pytest.mark.parametrize("name,view", list(SHAPES))
def test_view_shapes_and_range(make_cfg, tiny_cohort, name, view):
    cfg = make_cfg(f"input={name}", f"input.view={view}")
    image, masks = ViewBuilder(cfg.input)(tiny_cohort.iloc[0])
    assert image.shape == SHAPES[(name, view)] and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.05
    assert (masks is not None) == (name == "edes")
    if masks is not None:
        assert masks.shape == image.shape and set(np.unique(masks)) <= {0, 1, 2, 3}


def test_long_axis_views_read_the_four_chamber_file(make_cfg, tiny_cohort):
    row = tiny_cohort.iloc[0]
    short = ViewBuilder(make_cfg("input=cine").input)(row)[0]
    long = ViewBuilder(make_cfg("input=cine", "input.view=la_4ch").input)(row)[0]
    assert not np.allclose(short, long)
    la = nib.load(Path(row.subject_dir) / "la_4ch.nii.gz")
    expected = np.asanyarray(la.dataobj)[:, :, 0, 0].T.astype(float)  # ED frame, (Y, X) as the views
    full_view = ("input.crop_mm=144", "input.size=48")  # the whole 48 x 3 mm image, unresized
    frame = ViewBuilder(make_cfg("input=frame", "input.view=la_4ch", "input.frame=ed", *full_view).input)(row)[0][0]
    assert np.corrcoef(frame.ravel(), expected.ravel())[0, 1] > 0.95


def test_cine_frames_and_resampling(make_cfg, tiny_cohort):
    cfg = make_cfg("input=cine", "input.frames=6")
    image, _ = ViewBuilder(cfg.input)(tiny_cohort.iloc[0])
    assert image.shape == (1, 6, 24, 24)
    cfg = make_cfg("input=cine", "input.time_step=1")
    assert ViewBuilder(cfg.input)(tiny_cohort.iloc[0])[0].shape == (1, 8, 24, 24)


def test_crop_is_centred_on_the_heart(make_cfg, tiny_cohort):
    cfg = make_cfg("input=edes", "input.crop_mm=100")
    _, masks = ViewBuilder(cfg.input)(tiny_cohort.iloc[1])
    ys, xs = np.nonzero(masks[0])
    assert abs(ys.mean() - 11.5) < 3 and abs(xs.mean() - 11.5) < 3


def test_edes_stacks_ed_es_ed(make_cfg, tiny_cohort):
    cfg = make_cfg("input=edes")
    image, masks = ViewBuilder(cfg.input)(tiny_cohort.iloc[2])
    assert np.array_equal(image[0], image[2]) and not np.array_equal(image[0], image[1])
    assert (masks[1] == 1).sum() < (masks[0] == 1).sum()  # the cavity is smaller at ES


def test_unknown_view_and_incompatible_view(make_cfg):
    cfg = make_cfg("input=slice", "input.view=la_4ch")
    with pytest.raises(ConfigError, match="la_4ch"):
        ViewBuilder(cfg.input)
    cfg = make_cfg("input=frame", "input.frame=middle")
    with pytest.raises(ConfigError, match="input.frame"):
        ViewBuilder(cfg.input)


@pytest.fixture
def broken_cohort(tiny_cohort, tmp_path):
    """Copies of five subjects, four of them broken in a different way each."""
    rows = tiny_cohort.head(5).copy()
    folders = []
    for folder in rows.subject_dir:
        target = tmp_path / Path(folder).name
        shutil.copytree(folder, target)
        folders.append(str(target))
    rows["subject_dir"] = folders
    for column in ("image_path", "ed_mask_path", "es_mask_path", "la_path"):
        rows[column] = [str(Path(folder, Path(path).name)) for folder, path in zip(folders, rows[column])]
    ids = list(rows.subject_id)
    Path(folders[1], "sa.nii.gz").write_bytes(gzip.compress(b"not a nifti"))  # corrupt
    Path(folders[2], "seg_sa_ED.nii.gz").unlink()  # missing mask
    seg = nib.load(Path(folders[3], "seg_sa_ED.nii.gz"))
    nib.save(nib.Nifti1Image(np.asanyarray(seg.dataobj)[:-2], seg.affine), Path(folders[3], "seg_sa_ED.nii.gz"))
    Path(folders[4], "la_4ch.nii.gz").unlink()
    return rows.reset_index(drop=True), ids


def test_bad_files_name_subject_and_file(make_cfg, broken_cohort):
    rows, ids = broken_cohort
    build = ViewBuilder(make_cfg("input=slice").input)
    with pytest.raises(DataError, match=f"subject {ids[1]}: cannot read .*sa.nii.gz"):
        build(rows.iloc[1])
    with pytest.raises(DataError, match=f"subject {ids[2]}: seg_sa_ED.nii.gz not found"):
        build(rows.iloc[2])
    with pytest.raises(DataError, match=f"subject {ids[3]}: seg_sa_ED.nii.gz has shape .*image/mask mismatch"):
        build(rows.iloc[3])
    with pytest.raises(DataError, match=f"subject {ids[4]}: la_4ch.nii.gz not found .*input.view=la_4ch"):
        ViewBuilder(make_cfg("input=cine", "input.view=la_4ch").input)(rows.iloc[4])


def test_cache_raises_or_skips_bad_subjects(make_cfg, broken_cohort, tmp_path):
    rows, ids = broken_cohort
    cfg = make_cfg("input=slice")
    with pytest.raises(DataError, match=f"3 subject\\(s\\) unusable(.|\\n)*{ids[1]}"):
        build_view_cache(rows, cfg.input, tmp_path / "views", "raise")
    assert not [p for p in (tmp_path / "views").iterdir() if not p.name.endswith(".lock")]  # nothing half-written
    cache = build_view_cache(rows, cfg.input, tmp_path / "views", "skip")
    assert list(cache.index.subject_id) == [ids[0], ids[4]]
    assert [s for s, _ in cache.skipped] == ids[1:4]
    with pytest.raises(DataError, match=ids[1]):  # a skip-built cache does not satisfy on_error=raise
        build_view_cache(rows, cfg.input, tmp_path / "views", "raise")


def test_cache_matches_builder_and_is_reused(make_cfg, tiny_cohort, tmp_path):
    rows = tiny_cohort.head(6)
    cfg = make_cfg("input=edes")
    cache = build_view_cache(rows, cfg.input, tmp_path, "raise")
    images, masks = cache.images(), cache.masks()
    assert images.shape == (6, 3, 24, 24) and isinstance(images, np.memmap)
    direct, direct_masks = ViewBuilder(cfg.input)(rows.iloc[4])
    row = cache.rows([rows.subject_id.iloc[4]])[0]
    np.testing.assert_allclose(images[row], direct, atol=1e-3)
    np.testing.assert_array_equal(masks[row], direct_masks)
    stamp = (cache.folder / "images.bin").stat().st_mtime_ns
    again = build_view_cache(rows, cfg.input, tmp_path, "raise")
    assert again.folder == cache.folder and (again.folder / "images.bin").stat().st_mtime_ns == stamp
    other = build_view_cache(rows, make_cfg("input=edes", "input.size=16").input, tmp_path, "raise")
    assert other.folder != cache.folder and other.shape == (3, 16, 16)
    relabelled = rows.assign(reader="acdc")  # same files, read with another label map: not the same view
    assert cache_key(relabelled, cfg.input) != cache_key(rows, cfg.input)


def test_missing_es_frame_is_estimated_from_the_images(tiny_cohort):
    errors = []
    for _, row in tiny_cohort.iterrows():
        truth = int(row.es_frame)
        row = row.copy()
        row["es_frame"] = pd.NA
        errors.append(abs(reader_for(row).short_axis(row).es - truth))
    assert np.mean(np.array(errors) <= 1) >= 0.8, errors  # 8 frames at 3 mm: a coarse test case


def test_cine_lengths_that_differ_need_input_frames(make_cfg, tiny_cohort, tmp_path):
    rows = tiny_cohort.head(3).copy()
    shorter = tmp_path / "short"
    shutil.copytree(rows.subject_dir.iloc[1], shorter)
    cine = nib.load(shorter / "sa.nii.gz")
    nib.save(nib.Nifti1Image(np.asanyarray(cine.dataobj)[..., :6], cine.affine), shorter / "sa.nii.gz")
    rows.loc[rows.index[1], ["subject_dir", "image_path"]] = [str(shorter), str(shorter / "sa.nii.gz")]
    odd = rows.subject_id.iloc[1]
    with pytest.raises(ConfigError, match=f"6 frames: 1 subjects \\(e.g. {odd}\\), 8 frames: 2 subjects"):
        build_view_cache(rows, make_cfg("input=cine").input, tmp_path / "views", "skip")
    cache = build_view_cache(rows, make_cfg("input=cine", "input.frames=4").input, tmp_path / "views", "raise")
    assert cache.images().shape == (3, 1, 4, 24, 24)


def _rewrite(folder: Path, transform) -> None:
    """Apply `transform` to the slice axis of every short-axis file of a subject folder."""
    for name in ("sa.nii.gz", "seg_sa_ED.nii.gz", "seg_sa_ES.nii.gz"):
        image = nib.load(folder / name)
        nib.save(nib.Nifti1Image(transform(np.asanyarray(image.dataobj)), image.affine), folder / name)


def test_volume_view_holds_the_heart_base_to_apex_whatever_the_stored_order(make_cfg, tiny_cohort, tmp_path):
    row = tiny_cohort.iloc[3]
    sa = reader_for(row).short_axis(row)
    area = np.isin(sa.seg_ed, (1, 2)).sum(axis=(0, 1))
    assert area[sa.base_to_apex()[0]] > area[sa.base_to_apex()[-1]]  # the LV narrows towards the apex
    build = ViewBuilder(make_cfg("input=volume").input)
    expected, _ = build(row)
    variants = {
        "apex_first": lambda a: a[:, :, ::-1].copy(),
        "padded": lambda a: np.concatenate([np.zeros_like(a[:, :, :2]), a, np.zeros_like(a[:, :, :1])], axis=2),
    }
    for name, transform in variants.items():
        folder = tmp_path / name
        shutil.copytree(row.subject_dir, folder)
        _rewrite(folder, transform)
        moved = row.copy()
        for column in ("image_path", "ed_mask_path", "es_mask_path"):
            moved[column] = str(folder / Path(row[column]).name)
        image, _ = build(moved)
        assert np.allclose(image, expected, atol=1e-5), name


def test_a_view_the_data_cannot_provide_is_refused_before_any_work(make_cfg, tiny_cohort):
    from fairaug.data.views import check_view_available

    no_long_axis = tiny_cohort.assign(la_path=pd.NA)
    with pytest.raises(ConfigError, match="data=acdc has no 4-chamber cine"):
        check_view_available(no_long_axis, make_cfg("input=cine", "input.view=la_4ch").input, "acdc")
    check_view_available(no_long_axis, make_cfg("input=cine").input, "acdc")


@pytest.mark.parametrize(
    "name,corrupt,message",
    [
        ("seg_sa_ED.nii.gz", lambda a: np.where(a == 2, 255, a).astype(np.uint8), r"label\(s\) \[255\]"),
        ("seg_sa_ES.nii.gz", lambda a: a.astype(np.float32) * 0.5, "non-integer labels"),
        ("sa.nii.gz", lambda a: np.where(a > a.mean(), np.inf, a).astype(np.float32), "NaN or infinite voxel"),
    ],
)
def test_masks_outside_0_3_and_non_finite_images_are_refused(make_cfg, tiny_cohort, tmp_path, name, corrupt, message):
    row = tiny_cohort.iloc[0].copy()
    folder = tmp_path / "subject"
    shutil.copytree(row.subject_dir, folder)
    image = nib.load(folder / name)
    nib.save(nib.Nifti1Image(corrupt(np.asanyarray(image.dataobj)), image.affine), folder / name)
    for column in ("image_path", "ed_mask_path", "es_mask_path"):
        row[column] = str(folder / Path(row[column]).name)
    with pytest.raises(DataError, match=f"subject {row.subject_id}: {name} .*{message}"):
        ViewBuilder(make_cfg("input=edes").input)(row)
