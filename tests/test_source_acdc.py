"""data=acdc on a fixture in ACDC's published layout, made from phantom subjects."""

import nibabel as nib
import numpy as np
import pytest

from fairaug.data.readers import reader_for
from fairaug.data.sources.acdc import load_acdc
from fairaug.data.views import ViewBuilder
from fairaug.errors import DataError
from tests.layouts.acdc import patient, write_acdc


@pytest.fixture
def subjects(tiny_cohort):
    return tiny_cohort.head(8).reset_index(drop=True)


@pytest.fixture
def root(subjects, tmp_path):
    groups = ["HCM" if i == 1 else "RV" if i == 2 else g for i, g in
              enumerate(["DCM" if label else "NOR" for label in subjects.label])]
    return write_acdc(tmp_path / "ACDC", subjects, groups)


def acdc_cfg(make_cfg, root, *overrides):
    return make_cfg("data=acdc", f"data.root={root}", *overrides).data


def test_reads_cine_and_translates_labels_voxel_by_voxel(make_cfg, root, subjects):
    table, problems = load_acdc(acdc_cfg(make_cfg, root))
    assert sorted(s for s, _ in problems) == [patient(1), patient(2)]  # HCM and RV excluded, with reasons
    assert all("neither heart failure" in reason for _, reason in problems)
    assert len(table) == 6 and set(table.reader) == {"acdc"}
    for row in table.itertuples():
        source = subjects.iloc[int(row.subject_id.removeprefix("patient")) - 1]
        sa = reader_for(table.iloc[row.Index]).short_axis(table.iloc[row.Index])
        assert np.array_equal(sa.cine, np.asanyarray(nib.load(source.image_path).dataobj))
        assert np.array_equal(sa.seg_ed, np.asanyarray(nib.load(source.ed_mask_path).dataobj))  # 1 LV, 3 RV again
        assert np.array_equal(sa.seg_es, np.asanyarray(nib.load(source.es_mask_path).dataobj))
        assert (sa.ed, sa.es) == (source.ed_frame, source.es_frame)  # Info.cfg counts from 1
        assert row.label == source.label and row.diagnosis == ("DCM" if source.label else "NOR")
        assert row.bmi == pytest.approx(source.bmi, abs=0.1)
    assert set(table.sex) == {"unknown"} and table.age.isna().all() and set(table.age_group) == {"unknown"}


def test_label_mapping_is_configurable(make_cfg, root):
    table, problems = load_acdc(acdc_cfg(make_cfg, root, "data.healthy=[NOR,HCM]"))
    assert patient(1) in set(table.subject_id) and [s for s, _ in problems] == [patient(2)]
    with pytest.raises(Exception, match="both name"):
        load_acdc(acdc_cfg(make_cfg, root, "data.healthy=[NOR,DCM]"))


def test_missing_height_leaves_bmi_unknown(make_cfg, root):
    info = root / "training" / patient(4) / "Info.cfg"
    info.write_text("".join(line + "\n" for line in info.read_text().splitlines() if not line.startswith("Height")))
    table, _ = load_acdc(acdc_cfg(make_cfg, root))
    row = table.set_index("subject_id").loc[patient(4)]
    assert np.isnan(row.bmi) and row.bmi_group == "unknown"


@pytest.mark.parametrize("breakage,message", [
    (lambda f: f.joinpath("Info.cfg").write_text("ED: 1\nES: 99\nGroup: DCM\nNbFrame: 8\n"),
     "Info.cfg: ES: 99 is outside frames 1..8"),
    (lambda f: f.joinpath("Info.cfg").write_text("ED: 1\nNbFrame: 8\n"), "Info.cfg has no ES, Group line"),
    (lambda f: next(f.glob("*_gt.nii.gz")).unlink(), r"patient005_frame\d\d_gt.nii.gz not found"),
])
def test_bad_patients_name_subject_and_file(make_cfg, root, breakage, message):
    breakage(root / "training" / patient(4))
    with pytest.raises(DataError, match=f"{patient(4)}: {message}"):
        load_acdc(acdc_cfg(make_cfg, root))
    table, problems = load_acdc(acdc_cfg(make_cfg, root, "data.on_error=skip"))
    assert patient(4) not in set(table.subject_id) and patient(4) in dict(problems)


def test_no_patient_folders_is_an_error_naming_the_root(make_cfg, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no ACDC patient folders"):
        load_acdc(acdc_cfg(make_cfg, tmp_path / "empty"))


def test_edes_view_and_no_long_axis(make_cfg, root):
    table, _ = load_acdc(acdc_cfg(make_cfg, root))
    image, masks = ViewBuilder(make_cfg("input=edes").input)(table.iloc[0])
    assert image.shape == (3, 24, 24) and set(np.unique(masks)) <= {0, 1, 2, 3} and (masks == 1).any()
    assert table.la_path.isna().all()
    with pytest.raises(DataError, match="no 4-chamber cine"):
        reader_for(table.iloc[0]).long_axis(table.iloc[0])
