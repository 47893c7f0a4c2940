"""data=mnms on a fixture in the M&Ms-1 published layout, made from phantom subjects."""

import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data.readers import reader_for
from fairaug.data.sources.mnms import load_mnms
from fairaug.data.views import ViewBuilder
from fairaug.errors import DataError
from tests.layouts.mnms import INFORMATION, code, subject_dir, vendor, write_mnms

ROLL = 6  # ED moves to frame 6, ES (phantom frame 3) wraps round to frame 1
HCM, UNLABELLED, BROKEN = 1, 5, 3  # rows: excluded by pathology, without labels, broken by the bad-input tests


@pytest.fixture
def subjects(tiny_cohort):
    return tiny_cohort.head(8).reset_index(drop=True)


@pytest.fixture
def root(subjects, tmp_path):
    return write_mnms(tmp_path / "OpenDataset", subjects, {HCM: "HCM"}, unlabelled={UNLABELLED}, roll=ROLL)


def mnms_cfg(make_cfg, root, *overrides):
    return make_cfg("data=mnms", f"data.root={root}", *overrides).data


def phantom(path, roll=0):
    return np.roll(np.asanyarray(nib.load(path).dataobj), roll, axis=3)


def test_reads_nested_subjects_with_vendor_centre_and_4d_labels(make_cfg, root, subjects):
    table, problems = load_mnms(mnms_cfg(make_cfg, root))
    assert dict(problems).keys() == {code(HCM), code(UNLABELLED)}
    assert "'HCM' is neither heart failure" in dict(problems)[code(HCM)]
    assert dict(problems)[code(UNLABELLED)].startswith(f"unlabelled: no {code(UNLABELLED)}_sa_gt.nii.gz")
    assert len(table) == 6 and set(table.reader) == {"nifti"}
    for _, row in table.iterrows():
        i = int(row.subject_id[1:3])
        source = subjects.iloc[i]
        assert row.subject_dir == str(subject_dir(root, i)) and row.ed_mask_path == row.es_mask_path
        sa = reader_for(row).short_axis(row)
        assert np.array_equal(sa.cine, phantom(source.image_path, ROLL))
        assert np.array_equal(sa.seg_ed, np.asanyarray(nib.load(source.ed_mask_path).dataobj))
        assert np.array_equal(sa.seg_es, np.asanyarray(nib.load(source.es_mask_path).dataobj))
        assert sa.spacing == (3.0, 3.0) and sa.slice_gap_mm() == pytest.approx(16.0)  # the oblique affine
        ed, es = (source.ed_frame + ROLL) % 8, (source.es_frame + ROLL) % 8
        assert (row.ed_frame, row.es_frame, sa.ed, sa.es) == (ed, es, ed, es)  # the CSV counts from 0
        assert (row.label, row.sex, row.diagnosis) == (source.label, source.sex, "DCM" if source.label else "NOR")
        assert (row.vendor, row.centre) == (vendor(i)[0], str(vendor(i)[2]))
        assert row.age == round(source.age)
        if i:
            assert row.bmi == pytest.approx(source.bmi, abs=0.05)
    first = table.set_index("subject_id").loc[code(0)]
    assert np.isnan(first.bmi) and first.bmi_group == "unknown"  # empty Height and Weight
    assert {len(Path(d).relative_to(root).parts) for d in table.subject_dir} == {2, 3}  # nested at two depths


def test_label_mapping_is_configurable(make_cfg, root):
    table, problems = load_mnms(mnms_cfg(make_cfg, root, "data.heart_failure=[DCM,hcm]"))
    assert table.set_index("subject_id").label[code(HCM)] == 1 and dict(problems).keys() == {code(UNLABELLED)}
    table, problems = load_mnms(mnms_cfg(make_cfg, root, "data.healthy=[DCM]", "data.heart_failure=[HCM]"))
    assert set(table.diagnosis) == {"DCM", "HCM"} and set(table.label[table.diagnosis == "DCM"]) == {0}
    assert all("'NOR' is neither" in reason for s, reason in problems if s != code(UNLABELLED))


def _edit(root, **columns):
    information = pd.read_csv(root / INFORMATION, index_col=0, dtype=str, keep_default_na=False)
    for column, value in columns.items():
        information.loc[information.index[BROKEN], column] = value
    information.to_csv(root / INFORMATION)


def _twice(root):
    information = pd.read_csv(root / INFORMATION, index_col=0, dtype=str, keep_default_na=False)
    pd.concat([information, information.iloc[[BROKEN]]]).to_csv(root / INFORMATION)


NAME = code(BROKEN)
BREAKAGES = {
    "two folders": (
        lambda root: shutil.copytree(subject_dir(root, BROKEN), root / "Extra" / "Copy" / NAME),
        rf"{NAME}_sa.nii.gz found in 2 folders",
    ),
    "unknown Sex": (lambda root: _edit(root, Sex="X"), rf"unknown Sex 'X' in {INFORMATION} \(expected M or F\)"),
    "ES beyond the cine": (
        lambda root: _edit(root, ES="8"),
        rf"ES '8' in {INFORMATION} is not a frame of {NAME}_sa.nii.gz \(0..7, counted from 0\)",
    ),
    "no ED": (lambda root: _edit(root, ED=""), rf"ED '' in {INFORMATION} is not a frame"),
    "unparseable Age": (lambda root: _edit(root, Age="forty"), rf"Age 'forty' in {INFORMATION} is not a number"),
    "unparseable Weight": (lambda root: _edit(root, Weight="80kg"), rf"Weight '80kg' in {INFORMATION} is not a number"),
    "infinite Age": (lambda root: _edit(root, Age="inf"), rf"Age 'inf' in {INFORMATION} is not a number"),
    "infinite Height": (
        lambda root: _edit(root, Height="Infinity"),
        rf"Height 'Infinity' in {INFORMATION} is not a number",
    ),
    "NaN written as a Weight": (
        lambda root: _edit(root, Weight="nan"),
        rf"Weight 'nan' in {INFORMATION} is not a number",
    ),
    "listed twice": (lambda root: _twice(root), rf"{INFORMATION}: listed 2 times \(lines 5, 10\)"),
    "corrupt cine": (
        lambda root: (subject_dir(root, BROKEN) / f"{NAME}_sa.nii.gz").write_bytes(b"\x00" * 10),
        rf"cannot read .*{NAME}/{NAME}_sa.nii.gz",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_subjects_name_subject_and_file(make_cfg, root, breakage):
    break_it, message = BREAKAGES[breakage]
    break_it(root)
    with pytest.raises(DataError, match=f"{NAME}: {message}"):
        load_mnms(mnms_cfg(make_cfg, root))
    table, problems = load_mnms(mnms_cfg(make_cfg, root, "data.on_error=skip"))
    assert NAME not in set(table.subject_id) and re.search(message, dict(problems)[NAME]) and len(table) == 5


def test_a_row_without_external_code_is_listed_by_line(make_cfg, root):
    _edit(root, **{"External code": ""})
    with pytest.raises(DataError, match=rf"line 5: {INFORMATION}: empty External code"):
        load_mnms(mnms_cfg(make_cfg, root))
    table, problems = load_mnms(mnms_cfg(make_cfg, root, "data.on_error=skip"))
    assert NAME not in set(table.subject_id) and len(table) == 5
    assert dict(problems)["line 5"] == f"{INFORMATION}: empty External code"


def test_excluded_subjects_need_no_files(make_cfg, root):
    shutil.rmtree(subject_dir(root, HCM))  # a partial download without the HCM subject is fine
    table, problems = load_mnms(mnms_cfg(make_cfg, root))
    assert len(table) == 6 and "'HCM'" in dict(problems)[code(HCM)]


def test_subjects_missing_from_this_copy_are_listed_not_fatal(make_cfg, root):
    shutil.rmtree(subject_dir(root, BROKEN))  # the CSV lists the whole release; this copy lacks one subject
    table, problems = load_mnms(mnms_cfg(make_cfg, root))
    assert NAME not in set(table.subject_id) and len(table) == 5
    assert re.search(rf"not in this copy of the dataset: no {NAME}/{NAME}_sa.nii.gz under", dict(problems)[NAME])
    for i in range(8):  # no subject at all: data.root is the wrong folder
        shutil.rmtree(subject_dir(root, i, unlabelled=i == UNLABELLED), ignore_errors=True)
    with pytest.raises(DataError, match=rf"none of the \d+ subjects {INFORMATION} lists .* set data.root"):
        load_mnms(mnms_cfg(make_cfg, root))


def test_bad_information_files(make_cfg, root):
    information = pd.read_csv(root / INFORMATION, index_col=0, dtype=str, keep_default_na=False)
    information.drop(columns=["Centre"]).to_csv(root / INFORMATION)
    with pytest.raises(DataError, match=rf"{INFORMATION} has no column\(s\) \['Centre'\]"):
        load_mnms(mnms_cfg(make_cfg, root, "data.on_error=skip"))
    pd.concat([information, information.iloc[[2]]]).to_csv(root / INFORMATION)
    with pytest.raises(DataError, match=rf"{code(2)}: {INFORMATION}: listed 2 times \(lines 4, 10\)"):
        load_mnms(mnms_cfg(make_cfg, root))
    information.to_csv(root / INFORMATION)
    information.to_csv(root / "copy.csv")
    with pytest.raises(DataError, match=r"expected one M&Ms information \*.csv in .*found \['.*', 'copy.csv'\]"):
        load_mnms(mnms_cfg(make_cfg, root))
    table, _ = load_mnms(mnms_cfg(make_cfg, root, f"data.metadata={root / 'copy.csv'}"))
    assert len(table) == 6
    with pytest.raises(DataError, match="data.metadata not found: .*nowhere.csv"):
        load_mnms(mnms_cfg(make_cfg, root, f"data.metadata={root / 'nowhere.csv'}"))
    for csv in root.glob("*.csv"):
        csv.unlink()
    with pytest.raises(DataError, match=r"expected one M&Ms information \*.csv .*found none"):
        load_mnms(mnms_cfg(make_cfg, root))


def test_views_and_vendor_as_a_sampler_attribute(make_cfg, root):
    from fairaug.data.samplers import group_weights

    table, _ = load_mnms(mnms_cfg(make_cfg, root))
    image, masks = ViewBuilder(make_cfg("data=mnms", f"data.root={root}", "input=edes").input)(table.iloc[0])
    assert image.shape == (3, 24, 24) and np.isfinite(image).all() and set(np.unique(masks)) == {0, 1, 2, 3}
    volume, _ = ViewBuilder(make_cfg("data=mnms", f"data.root={root}", "input=volume").input)(table.iloc[0])
    assert volume.shape == (1, 8, 24, 24)
    weights = group_weights(table, ["vendor"])
    sizes = table.groupby(["label", "vendor"]).subject_id.transform("size")
    assert np.allclose(weights, 1 / sizes)
