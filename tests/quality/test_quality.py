"""task=synth_quality on synthetic datasets whose answers are known: exact copies of the
training subjects (memorised, faithful to their masks, close in distribution) against noise
drawn on the same masks (nothing memorised, far in distribution, blind to the mask)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fairaug.data.datamodule import CohortDataModule
from fairaug.errors import ConfigError
from fairaug.quality.distribution import by_group, fid_kid
from fairaug.quality.features import InceptionFeatures
from fairaug.quality.mask_fidelity import mask_contrast
from fairaug.tasks import classify, synth_quality
from tests.conftest import TINY_PHANTOM, TINY_RUN, compose_config


@pytest.fixture(scope="module")
def classifier_run(fairaug_home, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("classify")
    classify.run(
        compose_config(
            [
                *TINY_PHANTOM,
                *TINY_RUN,
                "input=edes",
                "trainer.max_epochs=4",
                f"paths.home={fairaug_home}",
                f"paths.output_dir={run_dir}",
            ]
        )
    )
    return run_dir


def write_synthetic(folder: Path, cfg, make_image) -> Path:
    """A synthetic dataset of one subject per real training subject, its image made by
    make_image(real image (3, H, W) in [0, 1], rng)."""
    data = CohortDataModule.from_config(cfg)
    data.prepare()
    train = data.datasets["train"]
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng, rows = np.random.default_rng(0), []
    for i, row in enumerate(train.table.itertuples()):
        item = train[i]
        name = f"SYN{i:04d}"
        image = make_image(item["image"].numpy(), rng)
        pixels = (image.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{name}.png")
        Image.fromarray(item["masks"].numpy().transpose(1, 2, 0)).save(folder / "masks" / f"{name}.png")
        rows.append(
            {
                "subject_id": name,
                "image": f"images/{name}.png",
                "mask": f"masks/{name}.png",
                "label": row.label,
                "sex": row.sex,
                "age_group": row.age_group,
                "bmi_group": row.bmi_group,
                "source_subject": row.subject_id,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def quality(make_cfg, classifier_run, synthetic, name):
    cfg = make_cfg(
        "task=synth_quality",
        f"quality.synthetic={synthetic}",
        f"quality.classifier={classifier_run}",
        "quality.min_count=3",
        "quality.kid_subset_size=10",
        f"paths.output_dir={synthetic.parent / name}",
    )
    synth_quality.run(cfg)
    return synthetic.parent / name


def test_copies_are_flagged_and_noise_is_far(make_cfg, classifier_run, tmp_path):
    cfg = make_cfg("input=edes")
    copies = write_synthetic(tmp_path / "copies", cfg, lambda image, rng: image)
    noise = write_synthetic(tmp_path / "noise", cfg, lambda image, rng: rng.random(image.shape))
    copied, noisy = (
        quality(make_cfg, classifier_run, copies, "q_copies"),
        quality(make_cfg, classifier_run, noise, "q_noise"),
    )
    copy_report, noise_report = (json.loads((d / "quality.json").read_text()) for d in (copied, noisy))

    memorised = pd.read_csv(copied / "memorisation.csv")
    assert memorised.flagged.all() and memorised.nearest_is_source.all()  # every copy found, and of whom
    assert copy_report["memorisation"]["synthetic_median"] < 0.01
    assert noise_report["memorisation"]["n_flagged"] == 0
    assert noise_report["memorisation"]["ratio_of_medians"] > 2

    copy_fid, noise_fid, floor = (
        copy_report["overall"]["fid"],
        noise_report["overall"]["fid"],
        noise_report["overall"]["fid_floor"],
    )
    assert copy_fid < floor < noise_fid / 5  # the same images: the same distribution; noise: far off
    assert noise_report["overall"]["kid"] > copy_report["overall"]["kid"]

    fidelity = copy_report["mask_fidelity"]
    assert fidelity["synthetic_ED"] == pytest.approx(fidelity["real_ED"], abs=0.02)
    assert fidelity["synthetic_ES"] > fidelity["synthetic_shuffled_masks_ES"] + 0.2
    assert abs(noise_report["mask_fidelity"]["synthetic_ED"]) < 0.3 < fidelity["synthetic_ED"] - 1.0

    groups = pd.read_csv(noisy / "fid_kid_by_group.csv")
    assert set(groups.attribute) == {"overall", "label", "sex", "age_group", "bmi_group"}
    assert {"fid_floor", "kid_floor"} <= set(groups.columns)
    pairwise = pd.read_csv(noisy / "pairwise_kid_sex.csv", index_col=0)
    assert list(pairwise.index) == ["female", "male"] == list(pairwise.columns)
    assert (noisy / "closest_pairs.png").stat().st_size > 0
    assert "Mask fidelity" in (noisy / "quality.md").read_text()


def test_fid_and_kid_match_torchmetrics_semantics():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    near, far = fid_kid(a, b, 50, 0), fid_kid(a, b + 3.0, 50, 0)
    assert near["fid"] < 0.5 and far["fid"] == pytest.approx(8 * 9.0, rel=0.1)  # |mean shift|^2 = 8 x 3^2
    assert abs(near["kid"]) < 0.05 < far["kid"]


def test_mask_contrast_on_a_drawn_heart():
    mask = np.zeros((20, 20), np.uint8)
    mask[4:16, 4:16] = 2  # myocardium
    mask[7:13, 7:13] = 1  # LV blood
    image = np.where(mask == 1, 0.9, 0.3)
    assert mask_contrast(image, mask) > 2
    assert mask_contrast(1.0 - image, mask) == pytest.approx(-mask_contrast(image, mask))
    assert np.isnan(mask_contrast(image, np.zeros_like(mask)))


def test_inception_features_from_a_local_weights_file(tmp_path, monkeypatch):
    """The loading path of the standard FID network, on a weights file this test saves."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    monkeypatch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: None)
    monkeypatch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
    random_weights = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    monkeypatch.undo()
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(random_weights, weights)
    features = InceptionFeatures(str(weights))(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    with pytest.raises(ConfigError, match="nothing is downloaded"):
        InceptionFeatures(str(tmp_path / "missing.pth"))


def test_bad_quality_settings(make_cfg, classifier_run, tmp_path):
    with pytest.raises(ConfigError, match="needs quality.synthetic"):
        synth_quality.run(make_cfg("task=synth_quality"))
    with pytest.raises(ConfigError, match="needs quality.classifier"):
        synth_quality.run(make_cfg("task=synth_quality", f"quality.synthetic={tmp_path}"))
    with pytest.raises(ConfigError, match="must be one of"):
        synth_quality.run(make_cfg("task=synth_quality", f"quality.synthetic={tmp_path}", "quality.features=vgg"))
    with pytest.raises(ConfigError, match="no config.yaml"):
        synth_quality.run(
            make_cfg("task=synth_quality", f"quality.synthetic={tmp_path}", f"quality.classifier={tmp_path}")
        )


def test_a_group_too_small_for_a_floor_is_still_measured():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"sex": ["female"] * 30 + ["male"] * 30})
    fake = pd.DataFrame({"sex": ["female"] * 30 + ["male"] * 30})
    held_out = pd.DataFrame({"sex": ["female"] * 20 + ["male"] * 2 + [np.nan] * 3})
    table = by_group(
        real,
        rng.normal(size=(60, 4)),
        fake,
        rng.normal(size=(60, 4)),
        held_out,
        rng.normal(size=(25, 4)),
        ["sex"],
        min_count=5,
        subset_size=10,
        seed=0,
        draws=2,
    )
    male = table[table.group == "male"].iloc[0]
    assert np.isfinite(male.fid) and pd.isna(male.fid_floor) and "no floor" in male.note
    female = table[table.group == "female"].iloc[0]
    assert female.n_matched == 20 and np.isfinite(female.fid_floor)


@pytest.mark.parametrize("accuracy", [0.52, 0.9])
def test_the_feature_classifiers_own_accuracy_is_reported_and_chance_is_warned_of(
    make_cfg, classifier_run, tmp_path, caplog, capfd, accuracy
):
    import shutil

    run = shutil.copytree(classifier_run, tmp_path / "classifier")
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "balanced_accuracy": accuracy}))
    copies = write_synthetic(tmp_path / "copies", make_cfg("input=edes"), lambda image, rng: image)
    with caplog.at_level("WARNING"):
        report = quality(make_cfg, run, copies, "q")
    assert "features of synthetic images: 100%" in capfd.readouterr().err  # progress of the long step
    text = (report / "quality.md").read_text()
    assert f"its own test balanced accuracy {accuracy:.2f}" in text
    near_chance = accuracy < 0.6
    assert ("near chance" in text) == near_chance and ("near chance" in caplog.text) == near_chance
    assert json.loads((report / "quality.json").read_text())["feature_classifier_balanced_accuracy"] == accuracy


def test_closest_pairs_show_ed_and_es_in_grey_with_the_distance_and_its_threshold(monkeypatch, tmp_path):
    from fairaug.quality import report

    figures = []
    monkeypatch.setattr(report, "write_figure", lambda fig, path, **kwargs: figures.append(fig) or path)
    rng = np.random.default_rng(0)
    images = {name: rng.random((3, 16, 16)) for name in ("SYN1", "A")}
    memorised = pd.DataFrame({"subject_id": ["SYN1"], "nearest_train_subject": ["A"], "distance": [0.02]})
    report.closest_pairs_figure(memorised, images, images, 0.05, tmp_path / "pairs.png")
    fig = figures[0]
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4 and all(ax.images[0].get_array().ndim == 2 for ax in panels)  # grey frames, no RGB
    assert [ax.get_title() for ax in panels] == [
        "SYN1 (synthetic) ED",
        "SYN1 (synthetic) ES",
        "A (train) ED",
        "A (train) ES",
    ]
    assert "RMS pixel distance" in fig._suptitle.get_text() and "0.050" in fig._suptitle.get_text()
    assert "flagged" in " ".join(t.get_text() for t in panels[0].texts)
