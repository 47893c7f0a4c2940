from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairaug.data.datamodule import CohortDataModule
from fairaug.data.sources.synthetic import read_synthetic
from fairaug.data.views import ViewBuilder
from fairaug.errors import ConfigError, DataError
from fairaug.tasks import classify


@pytest.fixture
def synthetic_dir(make_cfg, tmp_path) -> Path:
    """A synthetic dataset as generation writes it, made from the edes views of training subjects."""
    folder = tmp_path / "synthetic"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    build = ViewBuilder(make_cfg("input=edes", "input.size=32").input)
    data = CohortDataModule.from_config(make_cfg("input=edes"))
    data.prepare()
    training = data.datasets["train"].table.head(12)
    rows = []
    for i, row in enumerate(training.itertuples()):
        image, masks = build(training.iloc[i])
        name = f"SYN{i:04d}"
        pixels = (image.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{name}.png")
        Image.fromarray(masks.transpose(1, 2, 0)).save(folder / "masks" / f"{name}.png")
        rows.append(
            {
                "subject_id": name,
                "image": f"images/{name}.png",
                "mask": f"masks/{name}.png",
                "label": "heart failure" if row.label else "healthy",
                "sex": row.sex,
                "age_group": row.age_group,
                "bmi_group": row.bmi_group,
                "prompt": "ignored",
                "source_subject": row.subject_id,
                "seed": i,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def test_manifest_rows_are_synthetic_cohort_rows(synthetic_dir):
    table, problems = read_synthetic(synthetic_dir, None, 0, "raise")
    assert len(table) == 12 and problems == [] and set(table.origin) == {"synthetic"}
    assert table.age.isna().all() and set(table.label) <= {0, 1}
    assert len(read_synthetic(synthetic_dir, 5, 0, "raise")[0]) == 5


def test_bad_manifests(synthetic_dir):
    manifest = pd.read_csv(synthetic_dir / "manifest.csv")
    manifest.drop(columns=["sex"]).to_csv(synthetic_dir / "manifest.csv", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['sex'\]"):
        read_synthetic(synthetic_dir, None, 0, "raise")
    manifest.loc[3, "bmi_group"] = "huge"
    manifest.to_csv(synthetic_dir / "manifest.csv", index=False)
    (synthetic_dir / "masks" / "SYN0005.png").unlink()
    with pytest.raises(DataError, match="SYN0003: .*unknown bmi_group 'huge'(.|\\n)*SYN0005: .*SYN0005.png not found"):
        read_synthetic(synthetic_dir, None, 0, "raise")
    table, problems = read_synthetic(synthetic_dir, None, 0, "skip")
    assert len(table) == 10 and [s for s, _ in problems] == ["SYN0003", "SYN0005"]


def test_mask_image_size_mismatch_and_views_other_than_edes(make_cfg, synthetic_dir):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(synthetic_dir / "masks" / "SYN0002.png")
    table, _ = read_synthetic(synthetic_dir, None, 0, "raise")
    with pytest.raises(DataError, match="subject SYN0002: image .* and mask .* sizes differ"):
        ViewBuilder(make_cfg("input=edes").input)(table.iloc[2])
    with pytest.raises(ConfigError, match="edes view only"):
        ViewBuilder(make_cfg("input=slice").input)(table.iloc[0])


def test_synthetic_subjects_join_the_training_split_only(make_cfg, synthetic_dir):
    data = CohortDataModule.from_config(make_cfg("input=edes", f"data.synthetic.path={synthetic_dir}"))
    data.prepare()
    train = data.datasets["train"].table
    assert (train.origin == "synthetic").sum() == 12 and (train.origin == "real").sum() > 0
    for split in ("val", "test"):
        assert set(data.datasets[split].table.origin) == {"real"}
    image = data.datasets["train"][len(train) - 1]["image"]
    assert image.shape == (3, 24, 24) and 0 <= image.min() and image.max() <= 1


def test_classify_with_synthetic_only(make_cfg, synthetic_dir):
    cfg = make_cfg("input=edes", f"data.synthetic.path={synthetic_dir}", "data.use_real=false")
    classify.run(cfg)
    out = Path(cfg.paths.output_dir)
    assert len(pd.read_csv(out / "synthetic.csv")) == 12
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions.origin) == {"real"} and not predictions.subject_id.str.startswith("SYN").any()
    with pytest.raises(ConfigError, match="needs data.synthetic.path"):
        CohortDataModule.from_config(make_cfg("input=edes", "data.use_real=false")).prepare()


def test_synthetic_data_from_held_out_subjects_is_refused(make_cfg, synthetic_dir):
    """A classifier on another split than the generator's would train on its test subjects' data."""
    with pytest.raises(DataError, match="validation/test subject\\(s\\).*shaped the synthetic data"):
        CohortDataModule.from_config(make_cfg("input=edes", f"data.synthetic.path={synthetic_dir}", "seed=7")).prepare()
