"""Nothing wrong gets through silently: corrupt files, implausible values, unsafe ids and
paths, impossible splits and incomplete presets are refused by name (or skipped and listed)."""

import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data import cache
from fairaug.data.cache import build_view_cache
from fairaug.data.readers import reader_for
from fairaug.data.sources import load_cohort
from fairaug.data.sources.synthetic import read_synthetic
from fairaug.data.splits import make_split
from fairaug.errors import ConfigError, DataError
from fairaug.tasks import classify
from tests.data.sources.test_synthetic import synthetic_dir  # noqa: F401 - a fixture
from tests.layouts.acdc import write_acdc


def silently_corrupt(source: Path, target: Path) -> None:
    """`source` with 64 bytes flipped inside its gzip stream at the first place where plain
    nibabel still reads it without an error (the damage decompresses to the right length)."""
    raw = source.read_bytes()
    truth = np.asanyarray(nib.load(source).dataobj)
    for offset in range(len(raw) // 4, len(raw) - 200, 997):
        flipped = bytearray(raw)
        flipped[offset : offset + 64] = bytes(b ^ 0xFF for b in flipped[offset : offset + 64])
        target.write_bytes(bytes(flipped))
        try:
            garbage = np.asanyarray(nib.load(target).dataobj)
        except Exception:  # noqa: BLE001 - this damage nibabel notices; look for one it does not
            continue
        if garbage.shape == truth.shape and (garbage != truth).any():
            return
    pytest.fail("no silent corruption found to test with")


@pytest.fixture
def ukbb(tiny_cohort, tmp_path):
    """Four phantom subjects in the UK Biobank layout, with a metadata CSV to edit."""
    root = tmp_path / "ukbb" / "subjects"
    rows = tiny_cohort.head(4)
    for subject, folder in zip(rows.subject_id, rows.subject_dir):
        shutil.copytree(folder, root / subject)
    metadata = rows[["subject_id", "sex", "age", "bmi"]].assign(diagnosis=rows.label)
    return root, metadata


def load_ukbb(make_cfg, root, metadata, tmp_path, *overrides):
    path = tmp_path / "metadata.csv"
    metadata.to_csv(path, index=False)
    return load_cohort(make_cfg("data=ukbb", f"data.root={root}", f"data.metadata={path}", *overrides).data)


def test_corrupt_gzip_stream_is_an_error_not_garbage(tiny_cohort, tmp_path):
    row = tiny_cohort.iloc[0].copy()
    folder = Path(shutil.copytree(row.subject_dir, tmp_path / "subject"))
    silently_corrupt(Path(row.image_path), folder / "sa.nii.gz")
    row["image_path"] = str(folder / "sa.nii.gz")
    with pytest.raises(DataError, match=f"subject {row.subject_id}: cannot read .*sa.nii.gz .*(CRC|Error)"):
        reader_for(row).short_axis(row)


def test_a_cached_view_is_never_nan(make_cfg, tiny_cohort, tmp_path, monkeypatch):
    rows = tiny_cohort.head(3)
    bad = rows.subject_id.iloc[1]
    build = cache.ViewBuilder.__call__

    def nan_for_one(self, row):
        image, masks = build(self, row)
        return (image * np.nan if row.subject_id == bad else image), masks

    monkeypatch.setattr(cache.ViewBuilder, "__call__", nan_for_one)
    cfg = make_cfg("input=slice")
    with pytest.raises(DataError, match=f"{bad}: its slice view holds NaN"):
        build_view_cache(rows, cfg.input, tmp_path / "views", "raise")
    built = build_view_cache(rows, cfg.input, tmp_path / "views", "skip")
    assert bad not in set(built.index.subject_id) and np.isfinite(built.images()).all()


def _rewrite(path: Path, change) -> None:
    image = nib.load(path)
    nib.save(nib.Nifti1Image(change(np.asanyarray(image.dataobj)), image.affine), path)


def _unreadable_header(path: Path) -> None:
    """A scale slope without an intercept: a header nibabel refuses to load."""
    image = nib.Nifti1Image(np.asanyarray(nib.load(path).dataobj).astype(np.int16), np.eye(4))
    image.header["scl_slope"] = 2.0
    nib.save(image, path)


def _with_voxel(value):
    def change(array):
        array = array.astype(np.float32)
        array.flat[array.size // 2] = value
        return array

    return lambda path: _rewrite(path, change)


NIFTI_FAULTS = {  # file, how it is broken, what the error says after the subject
    "zero-byte cine": ("sa.nii.gz", lambda path: path.write_bytes(b""), r"cannot read .*sa.nii.gz"),
    "truncated cine": (
        "sa.nii.gz",
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        r"cannot read .*sa.nii.gz \(EOFError",
    ),
    "not gzip": ("sa.nii.gz", lambda path: path.write_bytes(b"not a nifti file" * 64), r"cannot read .*sa.nii.gz"),
    "unreadable header": ("sa.nii.gz", _unreadable_header, r"cannot read .*sa.nii.gz \(HeaderDataError"),
    "3D cine": (
        "sa.nii.gz",
        lambda path: _rewrite(path, lambda a: a[..., 0]),
        r"sa.nii.gz has shape \(48, 48, 5\); expected a 4D cine \(X, Y, Z, T\)",
    ),
    "NaN voxel": ("sa.nii.gz", _with_voxel(np.nan), r"sa.nii.gz holds 1 NaN or infinite voxel"),
    "infinite voxel": ("sa.nii.gz", _with_voxel(np.inf), r"sa.nii.gz holds 1 NaN or infinite voxel"),
    "zero-byte mask": ("seg_sa_ED.nii.gz", lambda path: path.write_bytes(b""), r"cannot read .*seg_sa_ED.nii.gz"),
}


@pytest.mark.parametrize("view", ["cine", "edes"])
@pytest.mark.parametrize("fault", NIFTI_FAULTS)
def test_bad_nifti_files_are_named_or_skipped(make_cfg, tiny_cohort, tmp_path, fault, view):
    name, break_it, message = NIFTI_FAULTS[fault]
    rows = tiny_cohort.head(3).copy()
    for i, row in rows.iterrows():
        folder = shutil.copytree(row.subject_dir, tmp_path / "subjects" / row.subject_id)
        for column in ("subject_dir", "image_path", "ed_mask_path", "es_mask_path", "la_path"):
            rows.loc[i, column] = str(folder / Path(row[column]).name) if column != "subject_dir" else str(folder)
    bad = rows.subject_id.iloc[1]
    break_it(tmp_path / "subjects" / bad / name)
    cfg = make_cfg(f"input={view}")
    with pytest.raises(DataError, match=rf"{bad}: {message}"):
        build_view_cache(rows, cfg.input, tmp_path / "views", "raise")
    assert not list((tmp_path / "views").glob("*/meta.json"))  # no cache left behind for a later run to use
    built = build_view_cache(rows, cfg.input, tmp_path / "views", "skip")
    assert list(built.index.subject_id) == [s for s in rows.subject_id if s != bad]
    assert re.search(message, dict(built.skipped)[bad]) and np.isfinite(built.images()).all()


def test_unsafe_and_empty_ids_are_refused(make_cfg, ukbb, tmp_path):
    root, metadata = ukbb
    first, second = metadata.subject_id.iloc[:2]
    metadata = metadata.copy()
    metadata.loc[metadata.index[1], "subject_id"] = f"../subjects/{first}"  # would read another subject's files
    metadata.loc[metadata.index[2], "subject_id"] = ""
    with pytest.raises(DataError, match=r"line 4: metadata.csv: empty subject id"):
        load_ukbb(make_cfg, root, metadata, tmp_path)
    table, problems = load_ukbb(make_cfg, root, metadata, tmp_path, "data.on_error=skip")
    assert len(table) == 2 and list(table.subject_id).count(first) == 1
    reasons = dict(problems)
    assert "not a safe file name" in reasons[f"../subjects/{first}"]
    assert reasons["line 4"] == "metadata.csv: empty subject id"


def _beside_root(root, first):
    """An id reaching a real subject folder next to data.root."""
    shutil.copytree(root / first, root.parent / "beside")
    return "../beside"


def _nested(root, first):
    """An id naming a real subject folder one level down inside data.root."""
    shutil.copytree(root / first, root / "group" / first)
    return f"group/{first}"


BAD_METADATA = {  # column, the bad value (given data.root and the first id), reason, overrides
    "infinite age": ("age", lambda root, first: "inf", r"invalid age inf", []),
    "infinite age, whatever the range": (
        "age",
        lambda root, first: "inf",
        r"invalid age inf",
        ["data.plausible.age=[0,inf]"],
    ),
    "infinite BMI, whatever the range": (
        "bmi",
        lambda root, first: "inf",
        r"invalid BMI inf",
        ["data.plausible.bmi=[0,inf]"],
    ),
    "id reaching outside data.root": ("subject_id", _beside_root, "not a safe file name", []),
    "id outside data.root that does not exist": ("subject_id", lambda root, first: "../x", "not a safe file name", []),
    "absolute id": ("subject_id", lambda root, first: str(root / first), "not a safe file name", []),
    "id holding a folder": ("subject_id", _nested, "not a safe file name", []),
}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_bad_metadata_values_are_named_or_skipped(make_cfg, ukbb, tmp_path, case):
    column, bad_value, reason, overrides = BAD_METADATA[case]
    root, metadata = ukbb
    metadata = metadata.astype({column: object})
    metadata.loc[metadata.index[1], column] = bad_value(root, metadata.subject_id.iloc[0])
    subject = metadata.subject_id.iloc[1]
    with pytest.raises(DataError, match=rf"{re.escape(subject)}: metadata.csv: .*{reason}"):
        load_ukbb(make_cfg, root, metadata, tmp_path, *overrides)
    table, problems = load_ukbb(make_cfg, root, metadata, tmp_path, "data.on_error=skip", *overrides)
    assert list(table.subject_id) == [s for s in metadata.subject_id if s != subject]
    assert re.search(reason, dict(problems)[subject])
    # refused by its value alone: an unsafe id never becomes a path that is looked at
    assert not re.search("not found|lies outside", dict(problems)[subject])


def test_a_subject_listed_twice_is_named_or_skipped(make_cfg, ukbb, tmp_path):
    root, metadata = ukbb
    twice = metadata.subject_id.iloc[1]
    metadata = pd.concat([metadata, metadata.iloc[[1]].assign(age=70.0)])  # which age is right is unknown
    with pytest.raises(DataError, match=rf"{twice}: metadata.csv: listed 2 times \(lines 3, 6\)"):
        load_ukbb(make_cfg, root, metadata, tmp_path)
    table, problems = load_ukbb(make_cfg, root, metadata, tmp_path, "data.on_error=skip")
    assert twice not in set(table.subject_id) and len(table) == 3 and [s for s, _ in problems] == [twice]


def test_metadata_with_a_bom_and_crlf_line_ends_reads_the_same(make_cfg, ukbb, tmp_path):
    root, metadata = ukbb
    expected, _ = load_ukbb(make_cfg, root, metadata, tmp_path)
    path = tmp_path / "exported.csv"
    path.write_bytes(b"\xef\xbb\xbf" + metadata.to_csv(index=False).replace("\n", "\r\n").encode())
    table, problems = load_cohort(make_cfg("data=ukbb", f"data.root={root}", f"data.metadata={path}").data)
    assert problems == []
    pd.testing.assert_frame_equal(table, expected)


def test_implausible_ages_and_bmi(make_cfg, ukbb, tmp_path):
    root, metadata = ukbb
    metadata = metadata.copy()
    metadata.loc[metadata.index[0], "age"] = 634
    metadata.loc[metadata.index[1], "age"] = 0.5
    metadata.loc[metadata.index[2], "bmi"] = 250
    ids = list(metadata.subject_id)
    with pytest.raises(DataError, match=rf"3 subject\(s\)(.|\n)*{ids[0]}: age 634 is outside data.plausible.age"):
        load_ukbb(make_cfg, root, metadata, tmp_path)
    table, problems = load_ukbb(make_cfg, root, metadata, tmp_path, "data.on_error=skip")
    assert list(table.subject_id) == ids[3:]
    assert "bmi 250 is outside data.plausible.bmi=[12, 80]" in dict(problems)[ids[2]]
    assert table.age_group.iloc[0] == f"{int(table.age.iloc[0]) // 10 * 10}s"
    wide = ["data.plausible.age=[0,1000]", "data.plausible.bmi=[5,300]"]
    assert len(load_ukbb(make_cfg, root, metadata, tmp_path, *wide)[0]) == 4
    with pytest.raises(ConfigError, match=r"data.plausible.age must be \[low, high\] with low < high"):
        load_ukbb(make_cfg, root, metadata, tmp_path, "data.plausible.age=[110,18]")


def test_implausible_height_names_the_file(make_cfg, tiny_cohort, tmp_path):
    root = write_acdc(tmp_path / "acdc", tiny_cohort.head(8))
    info = next(root.glob("*/patient002/Info.cfg"))
    info.write_text(info.read_text().replace("Height: 170.0", "Height: 1.70"))  # metres, not cm
    with pytest.raises(DataError, match=r"patient002: .*Info.cfg: height_cm 1.7 is outside data.plausible.height_cm"):
        load_cohort(make_cfg("data=acdc", f"data.root={root}").data)


def test_manifest_paths_stay_inside_the_dataset(synthetic_dir):  # noqa: F811 - the imported fixture
    manifest = pd.read_csv(synthetic_dir / "manifest.csv")
    outside = synthetic_dir.parent / "outside.png"
    shutil.copy(synthetic_dir / manifest.image.iloc[0], outside)
    manifest.loc[0, "image"] = "../outside.png"
    manifest.loc[1, "mask"] = str(synthetic_dir / manifest["mask"].iloc[1])  # absolute, even if inside
    manifest.loc[2, "age_group"] = "600s"
    manifest.loc[3, "age_group"] = "60S"
    manifest.to_csv(synthetic_dir / "manifest.csv", index=False)
    with pytest.raises(DataError, match=r"image '../outside.png' is not a path inside"):
        read_synthetic(synthetic_dir, None, 0, "raise")
    table, problems = read_synthetic(synthetic_dir, None, 0, "skip")
    reasons = dict(problems)
    assert len(table) == 8 and len(problems) == 4
    assert "is not a path inside" in reasons[manifest.subject_id[1]]
    assert "unknown age_group '600s'" in reasons[manifest.subject_id[2]]
    assert "unknown age_group '60S'" in reasons[manifest.subject_id[3]]


def test_manifest_ids_are_checked_like_real_ones(synthetic_dir):  # noqa: F811 - the imported fixture
    manifest = pd.read_csv(synthetic_dir / "manifest.csv", dtype=str)
    manifest.loc[1, "subject_id"] = ""
    manifest.loc[2, "subject_id"] = "../SYN0002"
    manifest.loc[4, "subject_id"] = manifest.subject_id[3]
    manifest.to_csv(synthetic_dir / "manifest.csv", index=False)
    with pytest.raises(DataError, match=r"line 3: manifest.csv: empty subject id"):
        read_synthetic(synthetic_dir, None, 0, "raise")
    table, problems = read_synthetic(synthetic_dir, None, 0, "skip")
    reasons = dict(problems)
    assert len(table) == 8 and set(table.subject_id) == set(manifest.subject_id[[0, *range(5, 12)]])
    assert reasons["line 3"] == "manifest.csv: empty subject id"
    assert "not a safe file name" in reasons["../SYN0002"]
    assert reasons[manifest.subject_id[3]] == "manifest.csv: listed 2 times (lines 5, 6)"


def test_a_negative_synthetic_count_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="data.synthetic.max_samples must be at least 0, got -1"):
        make_cfg("data.synthetic.max_samples=-1")


@pytest.mark.parametrize(
    "sizes, fold, message",
    [
        (
            {"test_size": 0.6, "val_size": 0.5},
            None,
            r"split.test_size=0.6 \+ split.val_size=0.5 = 1.1 leaves no training",
        ),
        ({"test_size": -0.1}, None, r"split.test_size must be between 0 and 1, got -0.1"),
        ({"n_splits": 1}, 0, r"split.n_splits must be at least 2, got 1"),
        ({"n_splits": 2, "val_size": 0.5}, 0, r"one fold of split.n_splits=2 \(0.5\) \+ split.val_size=0.5 = 1"),
    ],
)
def test_impossible_splits_are_refused(make_cfg, tiny_cohort, sizes, fold, message):
    with pytest.raises(ConfigError, match=message):
        make_split(tiny_cohort, make_cfg(*(f"split.{k}={v}" for k, v in sizes.items())).split, 0, fold)


@pytest.mark.parametrize("preset", ["real_plus_synth", "real_plus_synth_balanced", "synth_only"])
def test_presets_refuse_to_start_without_what_they_need(make_cfg, preset, tmp_path):
    with pytest.raises(Exception, match="this preset needs data.synthetic.path=<a synth_generate run dir>"):
        classify.run(make_cfg(f"experiment={preset}"))
    assert not (tmp_path / "run" / "checkpoints").exists()
