"""data=acdc on a fixture in ACDC's published layout, made from phantom subjects."""

import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from fairaug.data.readers import reader_for
from fairaug.data.sources.acdc import load_acdc
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError, DataError
from tests.layouts.acdc import patient, patient_dir, write_acdc

ROLL = 5  # ED moves to frame 5 (Info.cfg "ED: 6"), ES (phantom frame 3) wraps round to frame 0
BROKEN = 6  # the row whose patient the bad-input tests break (training/, Info.cfg in ACDC's own style)


@pytest.fixture
def subjects(tiny_cohort):
    return tiny_cohort.head(8).reset_index(drop=True)


@pytest.fixture
def root(subjects, tmp_path):
    return write_acdc(tmp_path / "ACDC", subjects, {1: "HCM", 2: "RV"}, roll=ROLL)


def acdc_cfg(make_cfg, root, *overrides):
    return make_cfg("data=acdc", f"data.root={root}", *overrides).data


def phantom(path, roll=0):
    return np.roll(np.asanyarray(nib.load(path).dataobj), roll, axis=3)


def test_reads_cine_and_translates_labels_voxel_by_voxel(make_cfg, root, subjects):
    table, problems = load_acdc(acdc_cfg(make_cfg, root))
    assert [s for s, _ in problems] == [patient(1), patient(2)]  # HCM and RV excluded, with reasons
    assert "'HCM' is neither heart failure" in problems[0][1] and "'RV'" in problems[1][1]
    assert len(table) == 6 and set(table.reader) == {"acdc"} and table.la_path.isna().all()
    for position, row in table.iterrows():
        i = int(row.subject_id.removeprefix("patient")) - 1
        source = subjects.iloc[i]
        sa = reader_for(row).short_axis(row)
        assert np.array_equal(sa.cine, phantom(source.image_path, ROLL))
        assert np.array_equal(sa.seg_ed, np.asanyarray(nib.load(source.ed_mask_path).dataobj))  # 1 LV, 3 RV again
        assert np.array_equal(sa.seg_es, np.asanyarray(nib.load(source.es_mask_path).dataobj))
        ed, es = (source.ed_frame + ROLL) % 8, (source.es_frame + ROLL) % 8
        assert (row.ed_frame, row.es_frame, sa.ed, sa.es) == (ed, es, ed, es)  # Info.cfg counts from 1
        assert row.ed_mask_path.endswith(f"{row.subject_id}_frame{ed + 1:02d}_gt.nii.gz")
        assert row.image_path.endswith(f"{row.subject_id}_4d.nii.gz") and row.subject_dir == str(patient_dir(root, i))
        assert row.label == source.label and row.diagnosis == ("NOR" if source.label == 0 else ("DCM", "MINF")[i % 2])
        assert row.bmi == pytest.approx(source.bmi, abs=0.05)
    assert set(table.sex) == {"unknown"} and table.age.isna().all() and set(table.age_group) == {"unknown"}


def test_root_may_be_the_training_folder_itself(make_cfg, root):
    table, _ = load_acdc(acdc_cfg(make_cfg, root / "training"))
    assert set(table.subject_id) == {patient(i) for i in (0, 4, 5, 6)}  # 1, 2 excluded, 3 and 7 in testing/


def test_label_mapping_is_configurable(make_cfg, root, subjects):
    table, problems = load_acdc(acdc_cfg(make_cfg, root, "data.healthy=[NOR,HCM]", "data.heart_failure=[dcm]"))
    assert table.set_index("subject_id").label[patient(1)] == 0  # HCM now counts as healthy
    minf = {patient(i) for i, label in enumerate(subjects.label) if label == 1 and i % 2 and i not in (1, 2)}
    assert {s for s, _ in problems} == {patient(2), *minf} and set(table.diagnosis) <= {"NOR", "HCM", "DCM"}
    with pytest.raises(ConfigError, match="both name"):
        load_acdc(acdc_cfg(make_cfg, root, "data.healthy=[NOR,DCM]"))


def test_bmi_from_height_and_weight_unknown_when_missing(make_cfg, root):
    info = patient_dir(root, BROKEN) / "Info.cfg"
    info.write_text("".join(line + "\n" for line in info.read_text().splitlines() if not line.startswith("Height")))
    table, _ = load_acdc(acdc_cfg(make_cfg, root))
    bmi = table.set_index("subject_id")
    assert np.isnan(bmi.bmi[patient(BROKEN)]) and bmi.bmi_group[patient(BROKEN)] == "unknown"
    assert (bmi.drop(patient(BROKEN)).bmi_group != "unknown").all()


def _replace(folder, old, new):
    info = folder / "Info.cfg"
    info.write_text(re.sub(old, new, info.read_text()))


NAME = patient(BROKEN)
BREAKAGES = {
    "no ES and Group lines": (
        lambda f: (f / "Info.cfg").write_text("ED: 1\nNbFrame: 8\n"),
        r"Info.cfg has no ES, Group line",
    ),
    "ES beyond NbFrame": (lambda f: _replace(f, r"ES: \d+", "ES: 9"), r"Info.cfg: ES 9 is outside frames 1..8"),
    "ED beyond the cine": (
        lambda f: (f / "Info.cfg").write_text("Group: DCM\nED: 12\nES: 1\n"),
        rf"Info.cfg: ED 12 is outside frames 1..8 \({NAME}_4d.nii.gz has 8 frames\)",
    ),
    "ED counted from 0": (lambda f: _replace(f, r"ED: \d+", "ED: 0"), r"Info.cfg: ED 0 is outside frames 1..8"),
    "unparseable ES": (lambda f: _replace(f, r"ES: \d+", "ES: four"), r"Info.cfg: ES 'four' is not a number"),
    "unparseable Height": (
        lambda f: _replace(f, r"Height: [\d.]+", "Height: 1m70"),
        r"Info.cfg: Height '1m70' is not a number",
    ),
    "infinite Height": (
        lambda f: _replace(f, r"Height: [\d.]+", "Height: inf"),
        r"Info.cfg: Height 'inf' is not a number",
    ),
    "NaN written as a Weight": (
        lambda f: _replace(f, r"Weight: [\d.]+", "Weight: nan"),
        r"Info.cfg: Weight 'nan' is not a number",
    ),
    "no Info.cfg": (lambda f: (f / "Info.cfg").unlink(), rf"Info.cfg not found in .*{NAME}"),
    "no 4d file": (lambda f: (f / f"{NAME}_4d.nii.gz").unlink(), rf"{NAME}_4d.nii.gz not found in .*{NAME}"),
    "corrupt 4d file": (
        lambda f: (f / f"{NAME}_4d.nii.gz").write_bytes(b"not a nifti"),
        rf"cannot read .*{NAME}_4d.nii.gz",
    ),
    "no ES ground truth": (
        lambda f: (f / f"{NAME}_frame01_gt.nii.gz").unlink(),  # ES wrapped round to frame 0
        rf"{NAME}_frame01_gt.nii.gz not found in .*{NAME}",
    ),
    "in training and testing": (
        lambda f: shutil.copytree(f, f.parent.parent / "testing" / f.name),
        r"found twice, in .*testing.*training",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_patients_name_subject_and_file(make_cfg, root, breakage):
    break_it, message = BREAKAGES[breakage]
    break_it(patient_dir(root, BROKEN))
    with pytest.raises(DataError, match=f"{patient(BROKEN)}: .*{message}"):
        load_acdc(acdc_cfg(make_cfg, root))
    table, problems = load_acdc(acdc_cfg(make_cfg, root, "data.on_error=skip"))
    assert patient(BROKEN) not in set(table.subject_id) and re.search(message, dict(problems)[patient(BROKEN)])
    assert len(table) == 5


def test_a_root_without_patients_is_an_error_naming_it(make_cfg, tmp_path):
    (tmp_path / "empty" / "training").mkdir(parents=True)
    with pytest.raises(DataError, match=f"no ACDC patient folders .* in {tmp_path / 'empty'}"):
        load_acdc(acdc_cfg(make_cfg, tmp_path / "empty"))
    with pytest.raises(DataError, match="data.root is not a folder"):
        load_acdc(acdc_cfg(make_cfg, tmp_path / "nowhere"))


def test_edes_view_and_no_long_axis(make_cfg, root):
    table, _ = load_acdc(acdc_cfg(make_cfg, root))
    image, masks = ViewBuilder(make_cfg("data=acdc", f"data.root={root}", "input=edes").input)(table.iloc[0])
    assert image.shape == (3, 24, 24) and np.isfinite(image).all()
    assert set(np.unique(masks)) == {0, 1, 2, 3}  # the RV kept label 3 through the translation
    with pytest.raises(DataError, match="no 4-chamber cine"):
        reader_for(table.iloc[0]).long_axis(table.iloc[0])
