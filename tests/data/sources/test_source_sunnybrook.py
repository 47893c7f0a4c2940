"""data=sunnybrook on phantom subjects written in the Sunnybrook layout with awkward headers."""

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from fairaug.data.dicom import read_series
from fairaug.data.readers import reader_for
from fairaug.data.sources import load_cohort
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError, DataError
from tests.conftest import compose_config
from tests.layouts.sunnybrook import SLICE_THICKNESS_MM, apex_first, patient_id, phase_shift, write_sunnybrook

N_SUBJECTS = 10
HYP = 2  # the subject written as hypertrophy: excluded by the default groups
BROKEN = patient_id(0)  # SC-HF-I-1, the subject the bad-input cases break


@pytest.fixture(scope="module")
def phantom(tiny_cohort) -> pd.DataFrame:
    return tiny_cohort.head(N_SUBJECTS).reset_index(drop=True)


@pytest.fixture(scope="module")
def pristine(phantom, tmp_path_factory) -> Path:
    categories = [("HF-I", "HF-NI")[i % 2] if label else "N" for i, label in enumerate(phantom.label)]
    categories[HYP] = "HYP"
    return write_sunnybrook(tmp_path_factory.mktemp("sunnybrook"), phantom, categories)


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    """A copy of the dataset that a test may break."""
    return Path(shutil.copytree(pristine, tmp_path / "scd"))


def load(root: Path, *overrides: str):
    cfg = compose_config(["data=sunnybrook", f"data.root={root}", "paths.output_dir=unused", *overrides])
    return load_cohort(cfg.data)


def series_of(root: Path, subject: str) -> Path:
    return next(root.glob(f"SCD_IMAGES_*/{subject}/CINESAX_*"))


def expert(root: Path, original_id: str) -> Path:
    return root / "SCD_ManualContours" / original_id / "contours-manual" / "IRCCI-expert"


def rewrite_headers(folder: Path, change) -> None:
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_reader_returns_the_phantom_from_dicom_and_contours(pristine, phantom):
    table, _ = load(pristine)
    assert len(table) == N_SUBJECTS - 1
    names = [int(p.stem[-4:]) for p in series_of(pristine, BROKEN).glob("*.dcm")]
    numbers = [
        int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber)
        for p in series_of(pristine, BROKEN).glob("*.dcm")
    ]
    assert names != numbers  # the file names do not follow the instances
    for _, row in table.iterrows():
        index = int(row.subject_id[3:8]) - 1
        source = phantom.iloc[index]
        cine = np.asarray(nib.load(source.image_path).dataobj)
        shift = phase_shift(index, cine.shape[3])
        along = slice(None, None, -1) if apex_first(index) else slice(None)
        sa = reader_for(row).short_axis(row)
        np.testing.assert_array_equal(sa.cine, np.roll(cine, shift, axis=3)[:, :, along])
        assert (
            (sa.ed, sa.es)
            == ((source.ed_frame + shift) % 8, (source.es_frame + shift) % 8)
            == (row.ed_frame, row.es_frame)
        )
        for mask, path in ((sa.seg_ed, source.ed_mask_path), (sa.seg_es, source.es_mask_path)):
            truth = np.asarray(nib.load(path).dataobj)[:, :, along]
            assert mask.shape == truth.shape and not (mask == 3).any()
            assert all(dice(mask == label, truth == label) > 0.9 for label in (1, 2))
        assert sa.spacing == (3.0, 3.0)
        assert np.all(np.diff(sa.positions) > 0)
        assert sa.slice_gap_mm() == pytest.approx(16.0, abs=1e-3) != SLICE_THICKNESS_MM
    assert any(apex_first(int(s[3:8]) - 1) for s in table.subject_id)


def test_cohort_rows_labels_from_original_id_and_demographics(root, phantom):
    csv = root / "scd_patientdata.csv"
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    metadata = pd.read_csv(csv, dtype=str, encoding="utf-8-sig")
    metadata.loc[0, "Pathology"] = "Normal"  # wording that disagrees with SC-HF-I-1
    metadata.loc[1, ["Gender", "Age"]] = ["F", "61"]
    metadata.loc[3, ["Gender", "Age"]] = [np.nan, np.nan]
    csv.write_bytes(("\ufeff" + metadata.to_csv(index=False, lineterminator="\r\n")).encode())
    table, problems = load(root)
    reader = reader_for(table.iloc[0])
    assert reader.files(table.iloc[0]) == [series_of(root, BROKEN), expert(root, "SC-HF-I-01")]
    table = table.set_index("subject_id")
    assert len(problems) == 1 and problems[0][0] == patient_id(HYP) and "'HYP'" in problems[0][1]
    assert patient_id(HYP) not in table.index
    first = table.loc[BROKEN]
    assert (first.label, first.diagnosis) == (1, "HF-I")
    assert first.age == round(phantom.age[0]) and first.sex == phantom.sex[0]
    assert table.loc[patient_id(1), ["sex", "age"]].tolist() == ["female", 61.0]
    assert table.loc[patient_id(3), ["sex", "age_group"]].tolist() == ["unknown", "unknown"]
    assert np.isnan(table.loc[patient_id(3), "age"])
    assert set(table.diagnosis) == {"HF-I", "HF-NI", "N"}
    assert (table.label == table.diagnosis.str.startswith("HF").astype(int)).all()
    assert table.bmi.isna().all() and table.la_path.isna().all() and (table.reader == "sunnybrook").all()
    assert Path(first.image_path) == series_of(root, BROKEN) and Path(first.subject_dir).name == BROKEN
    assert Path(first.ed_mask_path) == Path(first.es_mask_path) == expert(root, "SC-HF-I-01")


def test_of_several_series_the_one_the_contours_fit(root, caplog):
    series = series_of(root, BROKEN)
    localiser = shutil.copytree(series, series.parent / "CINESAX_900")  # later, but missing outlined images
    outlined = {int(p.name[8:12]) for p in expert(root, "SC-HF-I-01").glob("*contour*")}
    for path in localiser.glob("*.dcm"):
        if int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber) in outlined:
            path.unlink()
    shutil.copytree(series, series.parent / "CINESAX_12")  # an identical earlier repeat
    table, _ = load(root)
    assert table.set_index("subject_id").loc[BROKEN, "image_path"] == str(series)
    assert "fit 2 series ['CINESAX_12', 'CINESAX_300']; using the last acquired, CINESAX_300" in caplog.text


def test_metadata_and_contours_found_or_configured(root):
    shutil.copy(root / "scd_patientdata.csv", root / "SCD_IMAGES_01" / "scd_patientdata.csv")
    with pytest.raises(DataError, match="expected one scd_patientdata.csv.*data.metadata"):
        load(root)
    table, _ = load(
        root, f"data.metadata={root / 'scd_patientdata.csv'}", f"data.contours={root / 'SCD_ManualContours'}"
    )
    assert len(table) == N_SUBJECTS - 1


def test_missing_column_names_column_and_file(root):
    csv = root / "scd_patientdata.csv"
    pd.read_csv(csv, encoding="utf-8-sig").drop(columns="OriginalID").to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"scd_patientdata.csv has no 'OriginalID' column"):
        load(root)


def test_rows_without_or_sharing_a_patient_id_are_named_or_skipped(root):
    csv = root / "scd_patientdata.csv"
    metadata = pd.read_csv(csv, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    metadata.loc[0, "PatientID"] = ""
    metadata = pd.concat([metadata, metadata.iloc[[1]]])
    csv.write_bytes(("\ufeff" + metadata.to_csv(index=False, lineterminator="\r\n")).encode())
    with pytest.raises(DataError, match=r"line 2: scd_patientdata.csv: empty PatientID"):
        load(root)
    table, problems = load(root, "data.on_error=skip")
    reasons = dict(problems)
    assert reasons["line 2"] == "scd_patientdata.csv: empty PatientID" and len(table) == N_SUBJECTS - 3
    assert reasons[patient_id(1)] == "scd_patientdata.csv: listed 2 times (lines 3, 12)"
    assert not {BROKEN, patient_id(1)} & set(table.subject_id)


def _no_image_folder(root):
    shutil.rmtree(series_of(root, BROKEN).parent)
    return f"{BROKEN}: expected one image folder named {BROKEN}"


def _no_series(root):
    series = series_of(root, BROKEN)
    series.rename(series.parent / "SAX_OTHER")
    return f"{BROKEN}: no CINESAX_<n> series in .*{BROKEN}"


def _no_series_fits(root):
    series = series_of(root, BROKEN)
    other = shutil.copytree(series, series.parent / "CINESAX_9")
    for path in other.glob("*.dcm"):
        if int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber) % 8 == 1:  # drop one phase
            path.unlink()
    folder = expert(root, "SC-HF-I-01")
    shutil.copy(next(folder.glob("*icontour*")), folder / "IM-0001-0999-icontour-manual.txt")
    return f"{BROKEN}: none of its 2 series fits the contours in .*SC-HF-I-01"


def _missing_phase(root):
    next(series_of(root, BROKEN).glob("*.dcm")).unlink()
    return f"{BROKEN}: the slices of .*CINESAX_300 hold different numbers of phases"


def _unknown_instance(root):
    folder = expert(root, "SC-HF-I-01")
    shutil.copy(next(folder.glob("*icontour*")), folder / "IM-0001-0999-icontour-manual.txt")
    return f"{BROKEN}: .*IM-0001-0999-icontour-manual.txt outlines image 999, .*CINESAX_300"


def _no_contours(root):
    shutil.rmtree(expert(root, "SC-HF-I-01").parents[1])
    return f"{BROKEN}: no expert contours: .*SC-HF-I-01"


def _one_phase(root):
    files = sorted(expert(root, "SC-HF-I-01").glob("*.txt"))
    phases = {(int(p.name[8:12]) - 1) % 8 for p in files}
    for path in files:
        if (int(path.name[8:12]) - 1) % 8 == max(phases):
            path.unlink()
    return f"{BROKEN}: the contours in .*SC-HF-I-01.* outline 1 phase"


def _three_phases(root):
    folder = expert(root, "SC-HF-I-01")
    source = next(folder.glob("*icontour*"))
    instance = int(source.name[8:12])  # the writer numbers slice z, phase p as z * 8 + p + 1
    free = next(p for p in range(8) if not list(folder.glob(f"IM-0001-{instance - (instance - 1) % 8 + p:04d}-*")))
    shutil.copy(source, folder / f"IM-0001-{instance - (instance - 1) % 8 + free:04d}-icontour-manual.txt")
    return f"{BROKEN}: the contours in .*SC-HF-I-01.* outline 3 phase"


def _unreadable_dicom(root):
    path = next(series_of(root, BROKEN).glob("*.dcm"))
    path.write_bytes(b"not a dicom file")
    return f"{BROKEN}: cannot read the DICOM file .*CINESAX_300/{path.name}"


@pytest.mark.parametrize(
    "breaks",
    [
        _no_image_folder,
        _no_series,
        _no_series_fits,
        _missing_phase,
        _unknown_instance,
        _no_contours,
        _one_phase,
        _three_phases,
        _unreadable_dicom,
    ],
    ids=lambda f: f.__name__[1:],
)
def test_bad_input_raises_naming_subject_and_file_or_is_skipped(root, breaks):
    expected = breaks(root)
    with pytest.raises(DataError, match=expected):
        load(root)
    table, problems = load(root, "data.on_error=skip")
    assert BROKEN not in set(table.subject_id) and len(table) == N_SUBJECTS - 2
    assert [s for s, _ in problems] == [BROKEN, patient_id(HYP)]
    assert pd.Series([problems[0][1]]).str.contains(expected.split(": ", 1)[1]).all()


def test_phase_order_without_trigger_time_and_spacing_order(root):
    before = load(root)[0].iloc[0]
    expected = reader_for(before).short_axis(before)
    series = series_of(root, BROKEN)

    def anisotropic_without_trigger(ds):
        del ds.TriggerTime
        ds.PixelSpacing = [2.5, 3.5]  # row spacing, column spacing

    rewrite_headers(series, anisotropic_without_trigger)
    row = load(root)[0].iloc[0]
    sa = reader_for(row).short_axis(row)
    np.testing.assert_array_equal(sa.cine, expected.cine)
    assert (sa.ed, sa.es) == (expected.ed, expected.es) == (row.ed_frame, row.es_frame)
    assert sa.spacing == (3.5, 2.5)


def test_reader_reports_corrupt_pixels_and_has_no_long_axis(root):
    row = load(root)[0].iloc[0]
    path = next(Path(row.image_path).glob("*.dcm"))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=f"{BROKEN}: cannot read the DICOM file .*{path.name}"):
        reader_for(row).short_axis(row)
    with pytest.raises(DataError, match=f"{BROKEN}: Sunnybrook has no 4-chamber cine"):
        reader_for(row).long_axis(row)


def test_without_pydicom_the_error_says_what_to_install(pristine, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[dicom\]"'):
        read_series(series_of(pristine, BROKEN), BROKEN, pixels=False)


@pytest.mark.parametrize("view, shape", [("edes", (3, 24, 24)), ("volume", (1, 8, 24, 24))])
def test_views_built_from_sunnybrook_rows(pristine, make_cfg, view, shape):
    cfg = make_cfg("data=sunnybrook", f"data.root={pristine}", f"input={view}")
    table, _ = load_cohort(cfg.data)
    image, masks = ViewBuilder(cfg.input)(table.iloc[0])
    assert image.shape == shape and np.isfinite(image).all() and image.max() > image.min()
    if view == "edes":
        assert masks.shape == shape and set(np.unique(masks)) == {0, 1, 2}
