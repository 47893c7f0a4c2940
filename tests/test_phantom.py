from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.config import CompositionConfig
from fairaug.data.phantom.generate import generate, phantom_spec
from fairaug.data.phantom.physiology import Composition, sample_subjects
from fairaug.data.phantom.render import Geometry, SubjectRenderer


def default_composition(n: int, **changes) -> Composition:
    defaults = CompositionConfig()
    values = dict(n_subjects=n, p_female=defaults.p_female, age_weights=defaults.age_weights,
                  bmi_mean=defaults.bmi_mean, bmi_sd=defaults.bmi_sd, hf_base_prevalence=0.35,
                  hf_odds_ratio={"sex": {"female": 0.35},
                                 "bmi_group": {"underweight": 0.5, "normal": 0.4, "obese": 1.8},
                                 "age_group": {"40s": 0.25, "50s": 0.5, "70s": 1.5, "80s": 1.5}},
                  hf_severity=1.0, hf_severity_ratio={})
    values.update(changes)
    return Composition(**values)


def test_layout_headers_and_metadata(tiny_cohort):
    folder = Path(tiny_cohort.subject_dir.iloc[0]).parent
    metadata = pd.read_csv(folder / "metadata.csv")
    assert list(metadata.columns) == ["subject_id", "sex", "age", "bmi", "diagnosis", "ed_frame", "es_frame"]
    assert set(metadata.diagnosis) == {"healthy", "heart failure"}
    assert set(metadata.sex) == {"female", "male"}
    subject = folder / metadata.subject_id.iloc[0]
    sa = nib.load(subject / "sa.nii.gz")
    la = nib.load(subject / "la_4ch.nii.gz")
    ed = nib.load(subject / "seg_sa_ED.nii.gz")
    es = nib.load(subject / "seg_sa_ES.nii.gz")
    assert sa.shape == (48, 48, 5, 8) and sa.get_data_dtype() == np.int16
    assert la.shape == (48, 48, 1, 8)
    assert ed.shape == es.shape == (48, 48, 5)
    assert sa.header.get_zooms()[:3] == pytest.approx((3.0, 3.0, 16.0))
    assert set(np.unique(np.asanyarray(ed.dataobj))) == {0, 1, 2, 3}
    assert (metadata.es_frame > metadata.ed_frame).all() and (metadata.es_frame < 8).all()


def test_generation_is_content_addressed(tmp_path):
    from omegaconf import OmegaConf

    from fairaug.config import PhantomDataConfig

    cfg = OmegaConf.structured(PhantomDataConfig(root=str(tmp_path), n_subjects=4, workers=1))
    cfg.geometry.matrix, cfg.geometry.n_frames, cfg.geometry.n_slices = 32, 4, 3
    first = generate(phantom_spec(cfg), tmp_path, workers=1)
    stamp = (first / "metadata.csv").stat().st_mtime_ns
    assert generate(phantom_spec(cfg), tmp_path, workers=1) == first
    assert (first / "metadata.csv").stat().st_mtime_ns == stamp  # reused, not regenerated
    cfg.seed = 1
    assert generate(phantom_spec(cfg), tmp_path, workers=1) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_healthy_function_matches_uk_biobank_reference_ranges():
    cohort = sample_subjects(default_composition(6000), n_frames=20, seed=0)
    healthy = cohort[cohort.label == 0]
    ef = healthy.groupby("sex").lvef_pct.agg(["mean", "std"])
    assert ef.loc["female", "mean"] == pytest.approx(61.0, abs=0.6)
    assert ef.loc["male", "mean"] == pytest.approx(58.0, abs=0.6)
    assert ef.loc["female", "std"] == pytest.approx(5.0, abs=0.6)
    mass_index = (healthy.lv_mass_g / healthy.bsa_m2).groupby(healthy.sex).mean()
    assert mass_index["male"] == pytest.approx(53.0, abs=1.5)
    assert mass_index["female"] == pytest.approx(42.0, abs=1.5)
    edv = healthy.groupby("sex").lvedv_ml.mean()
    assert edv["male"] > edv["female"]
    young, old = healthy[healthy.age < 55], healthy[healthy.age > 70]
    assert (young.lvedv_ml / young.bsa_m2).mean() > (old.lvedv_ml / old.bsa_m2).mean()


def test_heart_failure_is_dilated_with_low_ejection_fraction():
    cohort = sample_subjects(default_composition(4000), n_frames=20, seed=1)
    hf, healthy = cohort[cohort.label == 1], cohort[cohort.label == 0]
    assert hf.lvef_pct.mean() < 45 and healthy.lvef_pct.mean() > 55
    assert hf.lvedv_ml.mean() > 1.15 * healthy.lvedv_ml.mean()
    milder = sample_subjects(default_composition(4000, hf_severity=0.5), n_frames=20, seed=1)
    assert milder[milder.label == 1].lvef_pct.mean() > hf.lvef_pct.mean()


def test_default_bias_makes_female_normal_bmi_and_young_heart_failure_scarce():
    cohort = sample_subjects(default_composition(20000), n_frames=20, seed=2)
    prevalence = cohort.groupby("sex").label.mean()
    assert prevalence["female"] < 0.6 * prevalence["male"]
    by_bmi = cohort.groupby("bmi_group").label.mean()
    assert by_bmi["normal"] < 0.6 * by_bmi["overweight"]
    by_age = cohort.groupby("age_group").label.mean()
    assert by_age["40s"] < 0.5 * by_age["60s"]
    assert (cohort.age_group == "40s").mean() < (cohort.age_group == "60s").mean()


def render(subject: dict, seed: int = 0):
    geometry = Geometry(matrix=80, pixel_mm=1.8, n_slices=9, slice_mm=10.0, n_frames=20)
    return SubjectRenderer(subject, geometry, seed).short_axis()


@pytest.fixture(scope="module")
def subjects():
    return sample_subjects(default_composition(40), n_frames=20, seed=3)


def test_masks_measure_the_subject_physiology(subjects):
    voxel_ml = 1.8 * 1.8 * 10.0 / 1000.0
    for _, subject in subjects.head(4).iterrows():
        _, seg_ed, seg_es = render(subject.to_dict())
        edv, esv = (seg_ed == 1).sum() * voxel_ml, (seg_es == 1).sum() * voxel_ml
        assert edv == pytest.approx(subject.lvedv_ml, rel=0.03)
        assert 100 * (edv - esv) / edv == pytest.approx(subject.lvef_pct, abs=2.0)
        assert (seg_ed == 2).sum() * voxel_ml * 1.05 == pytest.approx(subject.lv_mass_g, rel=0.08)
        assert (seg_ed == 3).sum() * voxel_ml == pytest.approx(subject.rvedv_ml, rel=0.15)


def test_contrast_like_bssfp_and_bmi_degrades_image_quality(subjects):
    subject = subjects.iloc[0].to_dict()
    lean, obese = dict(subject, bmi=21.0), dict(subject, bmi=40.0)
    cine, seg_ed, _ = render(lean)
    z = 3
    blood = cine[..., z, 0][seg_ed[..., z] == 1].mean()
    myocardium = cine[..., z, 0][seg_ed[..., z] == 2].mean()
    assert 2.0 < blood / myocardium < 4.0  # the reference cine measures about 2.8

    def noise_and_sharpness(subject_dict):
        image, seg, _ = render(subject_dict, seed=5)
        image = image.astype(float)
        corner = image[:12, -12:, z]  # static tissue far from the heart: frame differences are noise
        noise = (corner[..., 0] - corner[..., 10]).std() / image[..., z, 0][seg[..., z] == 1].mean()
        edge = np.abs(np.diff(image[..., z, 0], axis=0)).max()
        return noise, edge

    lean_noise, lean_edge = noise_and_sharpness(lean)
    obese_noise, obese_edge = noise_and_sharpness(obese)
    assert obese_noise > 1.3 * lean_noise
    assert obese_edge < lean_edge


def test_heart_contracts_and_narrows_towards_the_apex(subjects):
    _, seg_ed, seg_es = render(subjects.iloc[1].to_dict())
    area_ed = (seg_ed == 1).sum(axis=(0, 1))
    assert (seg_es == 1).sum() < (seg_ed == 1).sum()
    assert area_ed[0] > area_ed[5] > 0
    assert np.all(np.diff(area_ed[area_ed > 0]) <= 0)


def test_milder_heart_failure_in_women_by_default_ratio():
    cohort = sample_subjects(default_composition(8000, hf_severity_ratio={"sex": {"female": 0.5}}), 20, seed=4)
    hf = cohort[cohort.label == 1]
    healthy_ef = cohort[cohort.label == 0].groupby("sex").lvef_pct.mean()
    ef_loss = healthy_ef - hf.groupby("sex").lvef_pct.mean()
    assert ef_loss["female"] == pytest.approx(0.5 * ef_loss["male"], rel=0.25)
