"""task=cohort: the cohort table with measurements from the masks, its report and plots."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data.cohort_summary import plot_counts
from fairaug.data.groups import age_groups
from fairaug.errors import ConfigError, DataError
from fairaug.tasks import cohort

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sunnybrook"


def test_phantom_cohort_measures_its_known_physiology(make_cfg, tiny_cohort, tmp_path):
    result = cohort.run(make_cfg("task=cohort"))
    table = pd.read_csv(tmp_path / "run" / "cohort.csv", dtype={"subject_id": str})
    assert result["n_subjects"] == len(table) == len(tiny_cohort)
    assert result["attributes"] == ["sex", "age_group", "bmi_group"]  # the phantom records no vendor or centre
    truth = pd.read_csv(Path(tiny_cohort.subject_dir.iloc[0]).parent / "physiology.csv", dtype={"subject_id": str})
    merged = table.merge(truth[["subject_id", "lvedv_ml", "lvef_pct"]], on="subject_id")
    # the phantom renders each subject's volumes into its masks within 3 % (EF within 2 points)
    assert np.allclose(merged.lv_edv_ml, merged.lvedv_ml, rtol=0.03)
    assert np.allclose(merged.lv_ef_percent, merged.lvef_pct, atol=2)
    assert (merged.groupby("label").lv_ef_percent.median().diff().iloc[-1]) < -5  # heart failure: lower EF
    assert set(table.slice_gap_mm) == {16.0} and set(table["shape"]) == {"48x48x5x8"}
    assert table.vendor.isna().all() and table.sex.notna().all()
    report = (tmp_path / "run" / "cohort.md").read_text()
    assert "Not recorded by this dataset: vendor, centre" in report and "| female |" in report
    for name in ("cohort_counts.png", "cohort_ef_edv.png", "skipped.csv", "config.yaml"):
        assert (tmp_path / "run" / name).is_file()


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not present at {REFERENCE}")
def test_reference_patient_volumes_match_its_masks(make_cfg, tmp_path):
    metadata = pd.read_csv(REFERENCE / "metadata.csv").assign(sex="female", age=64, bmi=27.5)
    metadata.to_csv(tmp_path / "metadata.csv", index=False)
    cohort.run(
        make_cfg("task=cohort", "data=ukbb", f"data.root={REFERENCE}", f"data.metadata={tmp_path / 'metadata.csv'}")
    )
    row = pd.read_csv(tmp_path / "run" / "cohort.csv").iloc[0]
    # computed directly: voxels of the blood pool times the voxel volume in the header
    volumes = {}
    for phase in ("ED", "ES"):
        image = nib.load(REFERENCE / "SCD0000101" / f"seg_sa_{phase}.nii.gz")
        volumes[phase] = (np.asanyarray(image.dataobj) == 1).sum() * np.prod(image.header.get_zooms()[:3]) / 1000
    ef = 100 * (volumes["ED"] - volumes["ES"]) / volumes["ED"]
    assert row.lv_edv_ml == pytest.approx(volumes["ED"], rel=0.02)
    assert row.lv_esv_ml == pytest.approx(volumes["ES"], rel=0.02)
    assert row.lv_ef_percent == pytest.approx(ef, rel=0.02)
    assert row.lv_edv_ml == pytest.approx(196, rel=0.05) and row.lv_ef_percent == pytest.approx(26, abs=2)
    assert (row.ed_frame, row.es_frame, row.label) == (18, 7, 1)


def test_unreadable_subject_raises_or_is_listed(make_cfg, tiny_cohort, tmp_path):
    root = tmp_path / "ukbb"
    rows = tiny_cohort.head(6)
    for subject, folder in zip(rows.subject_id, rows.subject_dir):
        (root / subject).mkdir(parents=True)
        for name in ("sa.nii.gz", "seg_sa_ED.nii.gz", "seg_sa_ES.nii.gz"):
            (root / subject / name).write_bytes((Path(folder) / name).read_bytes())
    broken = rows.subject_id.iloc[2]
    (root / broken / "seg_sa_ES.nii.gz").unlink()
    rows[["subject_id", "sex", "age", "bmi"]].assign(diagnosis=rows.label).to_csv(tmp_path / "meta.csv", index=False)
    settings = ["task=cohort", "data=ukbb", f"data.root={root}", f"data.metadata={tmp_path / 'meta.csv'}"]
    with pytest.raises(Exception, match=f"{broken}: seg_sa_ES.nii.gz not found"):
        cohort.run(make_cfg(*settings))
    assert not (tmp_path / "run" / "cohort.csv").exists()
    result = cohort.run(make_cfg(*settings, "data.on_error=skip"))
    assert result["n_subjects"] == 5
    skipped = pd.read_csv(tmp_path / "run" / "skipped.csv")
    assert list(skipped.subject_id) == [broken] and "seg_sa_ES.nii.gz" in skipped.reason.iloc[0]


def test_unexpected_failure_names_the_subject(make_cfg, tiny_cohort, monkeypatch):
    broken = tiny_cohort.subject_id.iloc[1]
    real = cohort.lv_measurements

    def fails_for_one(sa):
        if sa.subject == broken:
            raise ZeroDivisionError("float division by zero")
        return real(sa)

    monkeypatch.setattr(cohort, "lv_measurements", fails_for_one)
    with pytest.raises(DataError, match=f"{broken}: ZeroDivisionError: float division by zero"):
        cohort.run(make_cfg("task=cohort", "input.workers=1"))


def test_counts_plot_without_any_recorded_attribute(tiny_cohort, tmp_path):
    assert plot_counts(tiny_cohort.assign(diagnosis="DCM"), [], tmp_path / "counts.png").stat().st_size > 0


def test_age_tertiles_need_ages(tiny_cohort):
    assert age_groups(tiny_cohort.age, "tertile").nunique() == 3
    with pytest.raises(ConfigError, match="tertile needs at least three distinct ages.*0 of 5 subjects have an age"):
        age_groups(pd.Series([np.nan] * 5), "tertile")
