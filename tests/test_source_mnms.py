"""data=mnms on a fixture in the M&Ms-1 published layout, made from phantom subjects."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data.readers import reader_for
from fairaug.data.sources.mnms import load_mnms
from fairaug.data.views import ViewBuilder
from fairaug.errors import DataError
from tests.layouts.mnms import INFORMATION, code, write_mnms


@pytest.fixture
def subjects(tiny_cohort):
    return tiny_cohort.head(8).reset_index(drop=True)


@pytest.fixture
def root(subjects, tmp_path):
    pathologies = ["HCM" if i == 1 else "DCM" if label else "NOR" for i, label in enumerate(subjects.label)]
    return write_mnms(tmp_path / "OpenDataset", subjects, pathologies)


def mnms_cfg(make_cfg, root, *overrides):
    return make_cfg("data=mnms", f"data.root={root}", *overrides).data


def test_reads_nested_subjects_with_vendor_centre_and_4d_labels(make_cfg, root, subjects):
    table, problems = load_mnms(mnms_cfg(make_cfg, root))
    assert [s for s, _ in problems] == [code(1)] and "HCM" in problems[0][1]  # excluded, with the reason
    assert len(table) == 7
    for row in table.itertuples():
        i = int(row.subject_id[1:3])
        source = subjects.iloc[i]
        sa = reader_for(table.iloc[row.Index]).short_axis(table.iloc[row.Index])
        assert np.array_equal(sa.cine, np.asanyarray(nib.load(source.image_path).dataobj))
        assert np.array_equal(sa.seg_ed, np.asanyarray(nib.load(source.ed_mask_path).dataobj))
        assert np.array_equal(sa.seg_es, np.asanyarray(nib.load(source.es_mask_path).dataobj))
        assert (sa.ed, sa.es, row.label, row.sex) == (source.ed_frame, source.es_frame, source.label, source.sex)
        assert row.centre == str([1, 2, 4, 5][i % 4]) and row.vendor == ["Siemens", "Philips Medical Systems", "GE",
                                                                          "Canon"][i % 4]
    first = table.set_index("subject_id").loc[code(0)]
    assert np.isnan(first.bmi) and first.bmi_group == "unknown"  # empty Height and Weight
    assert (table.bmi_group != "unknown").sum() == 6


def test_unlabelled_subjects_are_excluded_and_codes_without_folders_are_errors(make_cfg, root):
    next(root.rglob(f"{code(2)}_sa_gt.nii.gz")).unlink()
    table, problems = load_mnms(mnms_cfg(make_cfg, root))
    assert "unlabelled" in dict(problems)[code(2)] and code(2) not in set(table.subject_id)
    information = pd.read_csv(root / INFORMATION, index_col=0)
    information.loc[len(information)] = information.iloc[0].replace({code(0): "Z99Z9Z"})
    information.to_csv(root / INFORMATION)
    with pytest.raises(DataError, match=f"Z99Z9Z: {INFORMATION} lists it, but no Z99Z9Z/Z99Z9Z_sa.nii.gz"):
        load_mnms(mnms_cfg(make_cfg, root))
    table, problems = load_mnms(mnms_cfg(make_cfg, root, "data.on_error=skip"))
    assert "Z99Z9Z" in dict(problems) and len(table) == 6


def test_bad_information_files(make_cfg, root):
    information = pd.read_csv(root / INFORMATION, index_col=0)
    information.drop(columns=["Centre"]).to_csv(root / INFORMATION)
    with pytest.raises(DataError, match=r"missing column\(s\) \['Centre'\]"):
        load_mnms(mnms_cfg(make_cfg, root))
    information.assign(Sex=["X", *information.Sex[1:]]).to_csv(root / INFORMATION)
    with pytest.raises(DataError, match=f"{code(0)}: .*unknown Sex 'X'"):
        load_mnms(mnms_cfg(make_cfg, root))
    information.to_csv(root / "copy.csv")
    with pytest.raises(DataError, match="expected one M&Ms information"):
        load_mnms(mnms_cfg(make_cfg, root))
    table, _ = load_mnms(mnms_cfg(make_cfg, root, f"data.metadata={root / 'copy.csv'}"))
    assert len(table) == 7


def test_views_and_vendor_as_a_sampler_attribute(make_cfg, root):
    from fairaug.data.samplers import group_weights

    table, _ = load_mnms(mnms_cfg(make_cfg, root))
    image, masks = ViewBuilder(make_cfg("input=edes").input)(table.iloc[0])
    assert image.shape == (3, 24, 24) and (masks == 3).any()  # M&Ms has the RV
    volume, _ = ViewBuilder(make_cfg("input=volume").input)(table.iloc[0])
    assert volume.shape == (1, 8, 24, 24)
    weights = group_weights(table, ["vendor"])
    sizes = table.groupby(["label", "vendor"]).subject_id.transform("size")
    assert np.allclose(weights, 1 / sizes)
