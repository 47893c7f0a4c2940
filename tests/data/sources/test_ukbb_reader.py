import shutil
from pathlib import Path

import pandas as pd
import pytest

from fairaug.data.metadata import read_metadata
from fairaug.data.sources.ukbb import read_ukbb_layout
from fairaug.errors import DataError
from fairaug.schemas import ColumnsConfig


@pytest.fixture
def ukbb_root(tiny_cohort, tmp_path) -> Path:
    """Three phantom subjects copied under UK Biobank-style numeric eids."""
    root = tmp_path / "ukbb"
    for eid, folder in zip(("1000001", "1000002", "1000003"), tiny_cohort.subject_dir[:3]):
        shutil.copytree(folder, root / eid)
    return root


def write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "metadata.csv"
    frame.to_csv(path, index=False)
    return path


def test_ukbconv_field_ids(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "eid": [1000001, 1000002, 1000003],
                "31-0.0": [0, 1, 0],
                "21003-2.0": [64, 70, 51],
                "21001-2.0": [22.5, 31.0, 27.2],
                "diagnosis": [0, 1, 0],
            }
        ),
    )
    table, problems = read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "raise", "decade")
    assert problems == []
    assert list(table.sex) == ["female", "male", "female"]
    assert list(table.label) == [0, 1, 0]
    assert list(table.age_group) == ["60s", "70s", "50s"]
    assert list(table.bmi_group) == ["normal", "obese", "overweight"]
    assert table.subject_dir.iloc[1].endswith("1000002")


def test_r_style_field_ids_with_age_from_birth_year_and_visit(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "f.eid": ["1000001", "1000002", "1000003"],
                "f.31.0.0": [1, 0, 1],
                "f.34.0.0": [1950, 1960, 1945],
                "f.53.2.0": ["2015-06-01", "2016-03-15", "2019-11-30"],
                "f.21001.2.0": [24.0, 18.0, 35.0],
                "diagnosis": ["healthy", "Heart Failure", "heart failure"],
            }
        ),
    )
    table, _ = read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "raise", "decade")
    assert list(table.age) == [65, 56, 74]
    assert list(table.label) == [0, 1, 1]
    assert list(table.bmi_group) == ["normal", "underweight", "obese"]


def test_configured_column_names(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "patient": ["1000001", "1000002", "1000003"],
                "gender": ["F", "M", "M"],
                "age_years": [50, 60, 70],
                "body_mass_index": [20, 25, 30],
                "hf": [1, 0, 1],
            }
        ),
    )
    columns = ColumnsConfig(subject_id="patient", sex="gender", age="age_years", bmi="body_mass_index", diagnosis="hf")
    table, _ = read_ukbb_layout(ukbb_root, metadata, columns, "raise", "decade")
    assert list(table.sex) == ["female", "male", "male"] and list(table.label) == [1, 0, 1]
    with pytest.raises(DataError, match="'gender_typo'.*data.columns.sex"):
        read_metadata(metadata, ColumnsConfig(**{**columns.__dict__, "sex": "gender_typo"}))


def test_missing_column_is_named(tmp_path):
    metadata = write(tmp_path, pd.DataFrame({"eid": [1], "31-0.0": [0], "21001-2.0": [25], "diagnosis": [0]}))
    with pytest.raises(DataError, match="no age"):
        read_metadata(metadata, ColumnsConfig())
    metadata = write(tmp_path, pd.DataFrame({"eid": [1], "age": [60], "21001-2.0": [25], "diagnosis": [0]}))
    with pytest.raises(DataError, match="no 'sex' column"):
        read_metadata(metadata, ColumnsConfig())


def test_a_metadata_file_without_subjects_is_named(ukbb_root, tmp_path):
    metadata = write(tmp_path, pd.DataFrame(columns=["eid", "sex", "age", "bmi", "diagnosis"]))
    with pytest.raises(DataError, match=rf"the cohort is empty: no usable subject in {ukbb_root} \(metadata.csv\)"):
        read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "raise", "decade")


def test_unknown_values_raise_or_are_skipped_with_reasons(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "eid": ["1000001", "1000002", "1000003"],
                "sex": ["female", "other", "male"],
                "age": [60, 61, 62],
                "bmi": [25, 26, 27],
                "diagnosis": ["healthy", "healthy", "maybe"],
            }
        ),
    )
    with pytest.raises(DataError, match=r"1000002: .*unknown sex 'other'(.|\n)*1000003: .*unknown diagnosis 'maybe'"):
        read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "raise", "decade")
    table, problems = read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "skip", "decade")
    assert list(table.subject_id) == ["1000001"]
    assert [subject for subject, _ in problems] == ["1000002", "1000003"]


def test_missing_subject_folder(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "eid": ["1000001", "1000002", "9999999"],
                "sex": [0, 1, 0],
                "age": [60, 61, 62],
                "bmi": [25, 26, 27],
                "diagnosis": [0, 1, 0],
            }
        ),
    )
    with pytest.raises(DataError, match="9999999: sa.nii.gz not found"):
        read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "raise", "decade")
    table, problems = read_ukbb_layout(ukbb_root, metadata, ColumnsConfig(), "skip", "decade")
    assert len(table) == 2 and problems[0][0] == "9999999"


def test_ukbb_data_config_runs_classify_on_files_in_that_layout(ukbb_root, tmp_path, tiny_cohort, make_cfg):
    """data=ukbb end to end: a copy of the tiny phantom addressed as a user's own cohort, one
    subject with an unknown sex left out under data.on_error=skip."""
    root = tmp_path / "user_cohort"
    shutil.copytree(Path(tiny_cohort.subject_dir.iloc[0]).parent, root)
    metadata = pd.read_csv(root / "metadata.csv")
    metadata.loc[0, "sex"] = "unknown"
    metadata.to_csv(root / "metadata.csv", index=False)
    cfg = make_cfg(
        "data=ukbb", f"data.root={root}", f"data.metadata={root / 'metadata.csv'}", "input=slice", "data.on_error=skip"
    )
    from fairaug.tasks.classify import run

    run(cfg)
    out = Path(cfg.paths.output_dir)
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.subject_id) == [metadata.subject_id[0]] and "unknown sex" in skipped.reason[0]
    predictions = pd.read_csv(out / "predictions.csv").merge(metadata, on="subject_id", suffixes=("", "_meta"))
    assert (predictions.sex == predictions.sex_meta).all() and (predictions.age == predictions.age_meta).all()
    assert (predictions.label == (predictions.diagnosis == "heart failure")).all()
    split = pd.read_csv(out / "split.csv")
    assert metadata.subject_id[0] not in set(split.subject_id) and len(split) == len(metadata) - 1


def test_birth_month_ids_as_text_and_bad_frame_indices(ukbb_root, tmp_path):
    metadata = write(
        tmp_path,
        pd.DataFrame(
            {
                "patient": ["1000001", "1000002", "1000003"],
                "34-0.0": [1950, 1950, 1950],
                "52-0.0": [1, 12, 6],
                "53-2.0": ["2010-01-15", "2010-01-15", "2010-01-15"],
                "sex": [0, 1, 0],
                "bmi": [25, 26, 27],
                "diagnosis": [0, 1, 0],
                "es_frame": [7, 7.5, "x"],
            }
        ),
    )
    table, problems = read_metadata(metadata, ColumnsConfig(subject_id="patient"))
    assert list(table.subject_id) == ["1000001"]  # read as text: leading digits kept
    assert table.age.iloc[0] == pytest.approx(60.0)  # born January 1950, imaged January 2010
    assert [subject for subject, _ in problems] == ["1000002", "1000003"]
    assert "es_frame '7.5' is not a frame index" in problems[0][1]
    assert "es_frame 'x' is not a frame index" in problems[1][1]
