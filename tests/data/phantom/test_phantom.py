from dataclasses import asdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fairaug.data.image_statistics import tissue_statistics
from fairaug.data.phantom.generate import generate, phantom_spec
from fairaug.data.phantom.heart import wrapped
from fairaug.data.phantom.physiology import Composition, sample_subjects
from fairaug.data.phantom.render import Geometry, SubjectRenderer, rician
from fairaug.schemas import AppearanceConfig
from tests.conftest import compose_config

DEFAULT = compose_config([]).data
GEOMETRY = Geometry(**DEFAULT.geometry)
VOXEL_ML = GEOMETRY.pixel_mm**2 * GEOMETRY.slice_mm / 1000.0


def default_composition(n: int, **changes) -> Composition:
    """The composition conf/data/phantom.yaml defines, for n subjects."""
    return Composition(**{**phantom_spec(DEFAULT)["composition"], "n_subjects": n, **changes})


def test_a_whole_number_and_its_float_name_the_same_cohort():
    from fairaug.data.phantom.generate import spec_hash

    overrides = (
        "data.composition.hf_odds_ratio.sex.female={}",
        "data.composition.phenotypes.odds_ratio.hfpef.sex.female={}",
    )
    whole, decimal = (compose_config([o.format(value) for o in overrides]).data for value in ("2", "2.0"))
    assert spec_hash(phantom_spec(whole)) == spec_hash(phantom_spec(decimal))


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

    from fairaug.schemas import PhantomDataConfig

    cfg = OmegaConf.structured(PhantomDataConfig(root=str(tmp_path), n_subjects=4, workers=1))
    cfg.geometry.matrix, cfg.geometry.n_frames, cfg.geometry.n_slices = 32, 4, 3
    first = generate(phantom_spec(cfg), tmp_path, workers=1)
    stamp = (first / "metadata.csv").stat().st_mtime_ns
    assert generate(phantom_spec(cfg), tmp_path, workers=1) == first
    assert (first / "metadata.csv").stat().st_mtime_ns == stamp  # reused, not regenerated
    cfg.seed = 1
    assert generate(phantom_spec(cfg), tmp_path, workers=1) != first
    assert not list(tmp_path.glob(".*.tmp-*"))  # no staging folder left (the build locks stay)


@pytest.mark.parametrize("signal", [0.0, 0.05, 1.0])
def test_rician_noise_has_the_distribution_of_two_gaussian_channels(signal):
    rng = np.random.default_rng(0)
    sigma, n = 0.02, 400_000
    polar = rician(np.full(n, signal, np.float32), sigma, rng)
    channels = np.hypot(signal + sigma * rng.standard_normal(n), sigma * rng.standard_normal(n))
    quantiles = [0.01, 0.1, 0.5, 0.9, 0.99]
    assert np.quantile(polar, quantiles) == pytest.approx(np.quantile(channels, quantiles), rel=0.02)
    assert polar.dtype == np.float32 and np.isfinite(polar).all()


def test_angles_fold_into_one_turn():
    angles = np.linspace(-4 * np.pi, 4 * np.pi, 1001, dtype=np.float32)
    folded = wrapped(angles)
    assert folded.dtype == np.float32
    assert (folded >= -np.pi - 1e-5).all() and (folded <= np.pi + 1e-5).all()
    assert np.allclose(np.cos(folded), np.cos(angles), atol=1e-4) and np.allclose(
        np.sin(folded), np.sin(angles), atol=1e-4
    )


def test_a_config_saved_for_the_previous_generator_is_refused_by_name():
    from omegaconf import OmegaConf

    from fairaug.errors import ConfigError

    old = OmegaConf.to_container(DEFAULT)
    del old["appearance"]
    old["composition"].pop("phenotypes")
    old["composition"].update(hf_severity=0.6, hf_severity_ratio={"sex": {"female": 0.7}})
    with pytest.raises(ConfigError, match="older fairaug .*generator version 1"):
        phantom_spec(OmegaConf.create(old))


def test_healthy_function_matches_uk_biobank_reference_ranges():
    cohort = sample_subjects(default_composition(6000), n_frames=50, seed=0)
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


def test_heart_failure_phenotypes_as_clinicians_see_them():
    cohort = sample_subjects(default_composition(20000), n_frames=50, seed=1)
    hf, healthy = cohort[cohort.label == 1], cohort[cohort.label == 0]
    assert set(hf.phenotype) == {"hfref", "ischaemic", "hfpef"} and set(healthy.phenotype) == {"healthy"}
    assert (hf.lvef_pct < 40).mean() >= 0.3
    by = hf.groupby("phenotype")
    assert by.lvef_pct.max()["hfref"] <= 40 and by.lvef_pct.min()["hfpef"] >= 50
    assert by.lvef_pct.min()["ischaemic"] >= 25 and by.lvef_pct.max()["ischaemic"] <= 45
    mass_index = cohort.lv_mass_g / cohort.bsa_m2
    for sex in ("female", "male"):
        of_sex = cohort.sex == sex
        healthy_mass = mass_index[of_sex & (cohort.label == 0)].mean()
        assert mass_index[of_sex & (cohort.phenotype == "hfpef")].mean() > 1.3 * healthy_mass
    edv_index = cohort.lvedv_ml / cohort.bsa_m2
    assert edv_index[cohort.phenotype == "hfref"].mean() > 1.3 * edv_index[cohort.label == 0].mean()
    assert edv_index[cohort.phenotype == "hfpef"].mean() < edv_index[cohort.label == 0].mean()
    assert set(hf[hf.phenotype == "ischaemic"].territory) == {"LAD", "RCA", "LCx"}
    assert (hf[hf.phenotype == "hfpef"].early_filling < healthy.early_filling.min()).all()


def test_sexes_differ_in_phenotype_mix_not_in_severity():
    cohort = sample_subjects(default_composition(40000), n_frames=50, seed=2)
    hf = cohort[cohort.label == 1]
    share = pd.crosstab(hf.sex, hf.phenotype, normalize="index")
    assert share.loc["female", "hfpef"] > 1.5 * share.loc["male", "hfpef"]
    assert share.loc["male", "ischaemic"] > share.loc["female", "ischaemic"]
    # Same disease, same severity: EF of reduced-EF heart failure, and every phenotype's
    # change from healthy subjects of the same sex.
    ef = hf.groupby(["phenotype", "sex"]).lvef_pct.mean().unstack()
    assert (ef["female"] - ef["male"])[["hfref", "ischaemic"]].abs().max() < 1.0
    healthy = cohort[cohort.label == 0].groupby("sex")
    ef_change = ef - healthy.lvef_pct.mean()
    assert abs(ef_change.loc["hfpef", "female"] - ef_change.loc["hfpef", "male"]) < 1.0
    dilation = (hf.lvedv_ml / hf.bsa_m2).groupby([hf.phenotype, hf.sex]).mean().unstack() / (
        cohort.lvedv_ml / cohort.bsa_m2
    )[cohort.label == 0].groupby(cohort.sex).mean()
    assert (dilation["female"] - dilation["male"]).abs().max() < 0.05
    older = hf[hf.age_group == "70s"].phenotype.eq("hfpef").mean()
    assert older > hf[hf.age_group == "50s"].phenotype.eq("hfpef").mean()
    assert (
        hf[hf.bmi_group == "obese"].phenotype.eq("hfpef").mean()
        > hf[hf.bmi_group == "normal"].phenotype.eq("hfpef").mean()
    )


def test_default_bias_makes_female_normal_bmi_and_young_heart_failure_scarce():
    cohort = sample_subjects(default_composition(20000), n_frames=50, seed=2)
    prevalence = cohort.groupby("sex").label.mean()
    assert prevalence["female"] < 0.6 * prevalence["male"]
    by_bmi = cohort.groupby("bmi_group").label.mean()
    assert by_bmi["normal"] < 0.6 * by_bmi["overweight"]
    by_age = cohort.groupby("age_group").label.mean()
    assert by_age["40s"] < 0.5 * by_age["60s"]
    assert (cohort.age_group == "40s").mean() < (cohort.age_group == "60s").mean()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"phenotype_weights": {"hfmref": 1.0}}, r"unknown phenotype.*'hfmref'"),
        ({"phenotype_odds_ratio": {"hfpef": {"race": {"x": 2.0}}}}, "odds_ratio.hfpef names unknown attribute 'race'"),
        (
            {"phenotype_odds_ratio": {"hfpef": {"sex": {"female": 0.0}}}},
            r"odds_ratio.hfpef.sex.female must be a positive",
        ),
        ({"phenotype_weights": {"hfref": -1.0, "hfpef": 1.0}}, "phenotypes.weights must be non-negative"),
        ({"hf_odds_ratio": {"sex": {"female": -2.0}}}, r"hf_odds_ratio.sex.female must be a positive odds ratio"),
        ({"hf_odds_ratio": {"sex": {"Female": 0.5}}}, r"hf_odds_ratio.sex names unknown group 'Female'"),
        ({"hf_odds_ratio": {"age": {"60": 2.0}}}, r"hf_odds_ratio names unknown attribute 'age'"),
        ({"age_weights": {"30s": 1.0}}, r"age_weights names \['30s'\]"),
        ({"hf_base_prevalence": 1.0}, r"hf_base_prevalence must lie in \(0, 1\)"),
        ({"p_female": 1.5}, r"p_female must lie in \[0, 1\]"),
        ({"bmi_sd": -1.0}, "bmi_sd non-negative"),
    ],
)
def test_a_wrong_composition_is_named(change, message):
    from fairaug.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        sample_subjects(default_composition(10, **change), 50, seed=0)


def test_a_wrong_appearance_is_named():
    from fairaug.config import validate_config
    from fairaug.errors import ConfigError

    with pytest.raises(ConfigError, match="data.appearance.noise must be at least 0, got -0.1"):
        validate_config(compose_config(["data.appearance.noise=-0.1"]))
    with pytest.raises(ConfigError, match="data.appearance.rotation_female_deg must be between -180 and 180, got nan"):
        validate_config(compose_config(["data.appearance.rotation_female_deg=nan"]))
    validate_config(compose_config(["data.appearance.rotation_female_deg=-5.0"]))


def test_ages_spread_over_each_decade_within_uk_biobank_ages():
    cohort = sample_subjects(default_composition(5000), 50, seed=0)
    assert cohort.age.between(45, 82).all() and (cohort.age == 45.0).mean() < 0.001
    assert cohort[cohort.age_group == "40s"].age.min() >= 45


APPEARANCE = AppearanceConfig()


def render(subject: dict, seed: int = 0, appearance: AppearanceConfig = APPEARANCE):
    return SubjectRenderer(subject, GEOMETRY, appearance, seed).short_axis()


@pytest.fixture(scope="module")
def subjects():
    return sample_subjects(default_composition(200, hf_base_prevalence=0.5, hf_odds_ratio={}), n_frames=50, seed=3)


@pytest.mark.parametrize("kind", ["healthy", "hfref", "hfpef", "LAD", "RCA", "LCx"])
def test_masks_measure_the_subject_physiology(subjects, kind):
    column = "territory" if kind in ("LAD", "RCA", "LCx") else "phenotype"
    subject = subjects[subjects[column] == kind].iloc[0]
    _, seg_ed, seg_es = render(subject.to_dict())
    edv, esv = (seg_ed == 1).sum() * VOXEL_ML, (seg_es == 1).sum() * VOXEL_ML
    assert edv == pytest.approx(subject.lvedv_ml, rel=0.03)
    assert 100 * (edv - esv) / edv == pytest.approx(subject.lvef_pct, abs=2.0)
    # The outflow tract opens a few per cent of the basal wall, outside the masks.
    assert (seg_ed == 2).sum() * VOXEL_ML * 1.05 == pytest.approx(subject.lv_mass_g, rel=0.06)
    assert (seg_ed == 2).sum() * VOXEL_ML * 1.05 < subject.lv_mass_g
    assert (seg_ed == 3).sum() * VOXEL_ML == pytest.approx(subject.rvedv_ml, rel=0.03)
    assert (seg_es == 3).sum() * VOXEL_ML == pytest.approx(subject.rvesv_ml, rel=0.05)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A small cohort at the default geometry and appearance, as written to disk."""
    from omegaconf import OmegaConf

    root = tmp_path_factory.mktemp("phantom")
    cfg = OmegaConf.merge(DEFAULT, {"n_subjects": 24, "workers": 1, "composition": {"hf_base_prevalence": 0.5}})
    cfg.composition.hf_odds_ratio = {}  # assigned: merging an empty mapping would keep the defaults
    folder = generate(phantom_spec(cfg), root, workers=1)
    physiology = pd.read_csv(folder / "physiology.csv")
    loaded = {}
    for subject in physiology.subject_id:
        loaded[subject] = [
            np.asanyarray(nib.load(folder / subject / f"{name}.nii.gz").dataobj)
            for name in ("sa", "seg_sa_ED", "seg_sa_ES")
        ]
    return physiology, loaded


def test_image_statistics_like_real_cine(generated):
    physiology, loaded = generated
    stats = pd.DataFrame([tissue_statistics(cine, seg_ed, 0, GEOMETRY.pixel_mm) for cine, seg_ed, _ in loaded.values()])
    assert stats.contrast.between(2.0, 3.2).all(), stats.contrast.describe()
    assert stats.blood_cv.between(0.22, 0.45).all(), stats.blood_cv.describe()
    assert stats.blood_snr.between(25, 80).all(), stats.blood_snr.describe()
    cine = next(iter(loaded.values()))[0]
    assert cine.shape[3] == 50 and cine.dtype == np.int16


def test_default_view_crop_stays_inside_the_field_of_view(generated):
    from fairaug.schemas import InputConfig

    _, loaded = generated
    half_fov = GEOMETRY.matrix * GEOMETRY.pixel_mm / 2.0
    for cine, seg_ed, _ in loaded.values():
        xs, ys, _ = np.nonzero(seg_ed == 1)
        centre_mm = (np.array([xs.mean(), ys.mean()]) - (GEOMETRY.matrix - 1) / 2.0) * GEOMETRY.pixel_mm
        assert (np.abs(centre_mm) + InputConfig.crop_mm / 2.0 <= half_fov).all(), centre_mm
        assert (cine[0, :, :, 0] > 0).mean() > 0.5 and (cine[:, 0, :, 0] > 0).mean() > 0.5  # body to the edge


def test_healthy_function_in_the_masks_matches_reference_by_sex(generated):
    physiology, loaded = generated
    volumes = pd.DataFrame(
        [{"edv": (ed == 1).sum() * VOXEL_ML, "esv": (es == 1).sum() * VOXEL_ML} for _, ed, es in loaded.values()],
        index=list(loaded),
    )
    physiology = physiology.set_index("subject_id").join(volumes)
    healthy = physiology[physiology.label == 0]
    ef = 100 * (healthy.edv - healthy.esv) / healthy.edv
    for sex, (mean, sd) in {"female": (61.0, 5.0), "male": (58.0, 5.0)}.items():
        assert mean - sd <= ef[healthy.sex == sex].mean() <= mean + sd
    assert healthy[healthy.sex == "male"].edv.mean() > healthy[healthy.sex == "female"].edv.mean()


def _sector_pixels(seg_slice, label, centre, angle, half_width=0.35):
    gx, gy = np.meshgrid(*map(np.arange, seg_slice.shape), indexing="ij")
    theta = np.arctan2(gy - centre[1], gx - centre[0])
    return int(((seg_slice == label) & (np.abs(wrapped(theta - angle)) < half_width)).sum())


def test_ischaemic_territory_is_thin_and_akinetic_in_the_masks():
    cohort = sample_subjects(
        default_composition(300, hf_base_prevalence=0.9, hf_odds_ratio={}, phenotype_weights={"ischaemic": 1.0}),
        n_frames=50,
        seed=4,
    )
    for territory in ("LAD", "RCA", "LCx"):
        subject = cohort[cohort.territory == territory].iloc[0].to_dict()
        renderer = SubjectRenderer(subject, GEOMETRY, APPEARANCE, seed=0)
        _, seg_ed, seg_es = renderer.short_axis()
        lv = renderer.lv
        z = next(z for z in range(GEOMETRY.n_slices) if lv.defect_extent[z] == 1 and (seg_es[..., z] == 1).any())
        xs, ys = np.nonzero(seg_ed[..., z] == 1)
        centre = (xs.mean(), ys.mean())
        infarct, remote = lv.defect_centre, lv.defect_centre + np.pi
        # Scar: thinner wall at ED than the remote myocardium ...
        assert _sector_pixels(seg_ed[..., z], 2, centre, infarct) < 0.7 * _sector_pixels(
            seg_ed[..., z], 2, centre, remote
        ), territory
        # ... and akinetic: its share of the cavity barely shrinks from ED to ES.
        shrink = [
            _sector_pixels(seg_es[..., z], 1, centre, a) / _sector_pixels(seg_ed[..., z], 1, centre, a)
            for a in (infarct, remote)
        ]
        assert shrink[0] > 0.8 and shrink[0] > shrink[1] + 0.05, (territory, shrink)


def test_bmi_degrades_image_quality(subjects):
    subject = subjects.iloc[0].to_dict()
    lean, obese = dict(subject, bmi=21.0), dict(subject, bmi=40.0)
    z = GEOMETRY.n_slices // 2

    def noise_and_sharpness(subject_dict):
        image, seg, _ = render(subject_dict, seed=5)
        stats = tissue_statistics(image, seg, 0, GEOMETRY.pixel_mm)
        edge = np.abs(np.diff(image[..., z, 0].astype(float), axis=0)).max()
        return 1.0 / stats["blood_snr"], edge

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


def test_base_descends_in_systole_and_the_basal_slice_shows_the_atrium(subjects):
    subject = subjects[subjects.phenotype == "healthy"].iloc[0].to_dict()
    cine, seg_ed, seg_es = render(subject)
    assert (seg_ed[..., 0] == 1).any() and not (seg_es[..., 0] == 1).any()
    assert cine[..., 0, subject["es_frame"]].max() > 0.8 * cine[..., 0, 0].max()  # atrial blood, not unlabelled void


def test_appearance_settings_shape_the_image(subjects):
    subject = subjects.iloc[2].to_dict()
    cine, seg, _ = render(subject)
    darker = render(subject, appearance=AppearanceConfig(myocardium=0.2))[0]
    noisier = render(subject, appearance=AppearanceConfig(noise=0.05))[0]
    base = tissue_statistics(cine, seg, 0, GEOMETRY.pixel_mm)
    assert tissue_statistics(darker, seg, 0, GEOMETRY.pixel_mm)["contrast"] > 1.2 * base["contrast"]
    assert tissue_statistics(noisier, seg, 0, GEOMETRY.pixel_mm)["blood_snr"] < 0.6 * base["blood_snr"]


def test_women_have_breast_tissue_in_front_of_the_chest_wall(subjects):
    subject = subjects.iloc[0].to_dict()
    geometry = Geometry(**{**asdict(GEOMETRY), "matrix": 160})  # a field of view wide enough to see the chest
    images = {
        sex: np.abs(SubjectRenderer(dict(subject, sex=sex), geometry, APPEARANCE, seed=1).chest.plane(np.inf))
        for sex in ("female", "male")
    }
    anterior = slice(0, 40)  # rows of y: the anterior chest
    assert (images["female"][:, anterior] > 0.5).sum() > 1.5 * (images["male"][:, anterior] > 0.5).sum()


@pytest.mark.parametrize("female_deg", [8.0, -15.0])
def test_womens_hearts_sit_rotated_against_mens(subjects, female_deg):
    subject = subjects.iloc[0].to_dict()
    appearance = AppearanceConfig(rotation_female_deg=female_deg)
    angles = {
        sex: np.array(
            [SubjectRenderer(dict(subject, sex=sex), GEOMETRY, appearance, seed).rv_angle for seed in range(300)]
        )
        for sex in ("female", "male")
    }
    shift = np.degrees(np.angle(np.mean(np.exp(1j * angles["female"])) / np.mean(np.exp(1j * angles["male"]))))
    assert shift == pytest.approx(female_deg, abs=3.0)
    assert np.degrees(angles["male"].std()) == pytest.approx(APPEARANCE.rotation_sd_deg, rel=0.15)


def test_partial_volume_softens_the_apex_not_the_mid_ventricle(subjects):
    renderer = SubjectRenderer(subjects.iloc[0].to_dict(), GEOMETRY, APPEARANCE, seed=0)
    lv = renderer.lv
    filled = np.flatnonzero(lv.cavity[:, 0] > 0)
    middle, apex = filled[len(filled) // 2], filled[-1]
    assert lv.through_plane[middle, 0] < GEOMETRY.pixel_mm < 2.0 * GEOMETRY.pixel_mm < lv.through_plane[apex, 0]
    assert (lv.through_plane[lv.cavity == 0] == 0).all()  # nothing to smear where the slice misses the cavity


def test_the_sex_gap_is_not_built_into_the_physiology():
    """On a cohort balanced by sex and diagnosis, a model per sex on the true physiology is
    nearly as accurate for women as for men (benchmarks/testbed.py prints more seeds)."""
    from fairaug.data.phantom.testbed import per_sex_accuracy

    accuracy = per_sex_accuracy(default_composition(1), n_subjects=8000, seed=7)
    assert accuracy["female"] > 0.85 and abs(accuracy["male"] - accuracy["female"]) < 0.03, accuracy


def test_outflow_tract_opens_the_basal_wall_outside_the_masks(subjects):
    subject = subjects[subjects.phenotype == "healthy"].iloc[0].to_dict()
    renderer = SubjectRenderer(subject, GEOMETRY, APPEARANCE, seed=0)
    cine, seg_ed, _ = renderer.short_axis()
    z = 0  # within the outflow tract's depth below the ED base
    xs, ys = np.nonzero(seg_ed[..., z] == 1)
    centre = (xs.mean(), ys.mean())
    outflow = renderer.rv_angle + 1.5
    wall = [_sector_pixels(seg_ed[..., z], 2, centre, outflow + offset, half_width=0.15) for offset in (0.0, np.pi)]
    assert wall[0] < 0.5 * wall[1]  # the anterior wall is open towards the aortic root ...
    gx, gy = np.meshgrid(*map(np.arange, seg_ed.shape[:2]), indexing="ij")
    distance = np.hypot(gx - centre[0], gy - centre[1]) * GEOMETRY.pixel_mm
    towards = np.abs(wrapped(np.arctan2(gy - centre[1], gx - centre[0]) - outflow)) < 0.2
    root = towards & (distance > 45.0) & (distance < 55.0)
    assert root.any() and (seg_ed[..., z][root] == 0).all()  # ... the root is in no mask
    assert cine[..., z, 0][root].mean() > 0.6 * cine[..., z, 0][seg_ed[..., z] == 1].mean()  # but holds blood


def test_generation_and_view_caching_show_progress(tmp_path, capfd):
    from omegaconf import OmegaConf

    from fairaug.data.cache import build_view_cache
    from fairaug.data.sources import load_cohort
    from fairaug.schemas import PhantomDataConfig

    cfg = OmegaConf.structured(PhantomDataConfig(root=str(tmp_path / "phantom"), n_subjects=3, workers=1))
    cfg.geometry.matrix, cfg.geometry.n_frames, cfg.geometry.n_slices = 32, 4, 3
    cohort, _ = load_cohort(cfg)
    assert "phantom: 100%" in capfd.readouterr().err
    build_view_cache(cohort, compose_config(["input=edes", "input.size=16"]).input, tmp_path / "views", "raise")
    assert "edes view: 100%" in capfd.readouterr().err


def test_under_representation_opens_a_gap_that_a_model_of_the_image_sizes_shows():
    """benchmarks/testbed.py --screen: the gap follows hf_odds_ratio.sex.female, as the CNN's does."""
    from dataclasses import replace

    from fairaug.data.phantom.testbed import biased_gap

    composition = default_composition(1)
    gaps = {}
    for ratio in (1.0, 0.1):
        odds = {**composition.hf_odds_ratio, "sex": {"female": ratio}}
        gaps[ratio] = biased_gap(replace(composition, hf_odds_ratio=odds), n_train=400, n_external=4000, seeds=8)
    assert abs(gaps[1.0].gap.mean()) < 0.03 and gaps[0.1].gap.mean() > gaps[1.0].gap.mean() + 0.05, gaps
    assert gaps[0.1].hf_women_in_training.mean() < gaps[1.0].hf_women_in_training.mean() / 3


def _noiseless(**changes) -> AppearanceConfig:
    return AppearanceConfig(noise=0.0, misregistration_mm=0.0, **changes)


def _outer_wall(seg_slice: np.ndarray) -> np.ndarray:
    """Myocardium pixels next to a pixel outside the heart's masks (the epicardial edge)."""
    from scipy import ndimage

    return (seg_slice == 2) & ndimage.binary_dilation(seg_slice == 0)


def test_fat_water_boundaries_are_dark_as_in_bssfp(subjects):
    """bSSFP at TE = TR/2 images fat and water in opposed phase: a pixel holding both cancels,
    so the epicardial edge against its fat is darker than either tissue; the blood pool is not."""
    subject = subjects[subjects.phenotype == "healthy"].iloc[0].to_dict()
    z = GEOMETRY.n_slices // 2
    images = {}
    for opposed in (True, False):
        cine, seg, _ = render(subject, appearance=_noiseless(fat_opposed_phase=opposed))
        images[opposed] = cine[..., z, 0].astype(float)
    edge, blood = _outer_wall(seg[..., z]), seg[..., z] == 1
    assert images[True][edge].mean() < 0.8 * images[False][edge].mean()
    assert images[True][blood].mean() == pytest.approx(images[False][blood].mean(), rel=0.01)
    chest = SubjectRenderer(dict(subject, bmi=32.0), GEOMETRY, _noiseless(), seed=1).chest.plane(-50.0)
    fat = np.abs(chest) > 0.7 * APPEARANCE.fat
    assert (chest[fat] < 0).mean() > 0.9  # fat's signal is the opposite phase of water's


def test_partial_volume_softens_the_rv_free_wall_where_it_ends(subjects):
    """In the RV's last slice its free wall smears over the slice thickness (RV blood spills out
    of the mask), while the septum beside it stays muscle: only the free wall moves between the
    slice's top and bottom."""
    from scipy import ndimage

    dark = _noiseless(myocardium=0.0, fat=0.0, soft_tissue=0.0, liver=0.0, lung=0.0, breast=0.0, blur_px=0.0)
    renderer = SubjectRenderer(subjects.iloc[0].to_dict(), GEOMETRY, dark, seed=0)
    cine, seg, _ = renderer.short_axis()
    filled = np.flatnonzero(renderer.rv.depth[:, 0] > 0)
    middle, end = filled[len(filled) // 3], filled[-1]
    assert renderer.rv.through_plane[middle, 0] < 2.0 * GEOMETRY.pixel_mm < renderer.rv.through_plane[end, 0]

    def spill(z):
        image, labels = cine[..., z, 0].astype(float), seg[..., z]
        rv = labels == 3
        near = ndimage.binary_dilation(rv, iterations=3) & ~rv
        outside, septum = near & (labels == 0), near & (labels == 2)
        return image[outside].sum() / image[rv].sum(), image[septum].mean() / image[rv].mean()

    (middle_out, _), (end_out, end_septum) = spill(middle), spill(end)
    assert end_out > 2.0 * middle_out
    assert end_septum < 0.1


def test_the_liver_dome_rises_gradually_into_the_apical_planes(subjects):
    """The liver's cross-section grows from its dome downwards, with partial volume where the
    dome runs oblique to the slice, instead of appearing whole in one plane."""
    subject = subjects.iloc[0].to_dict()
    bright = _noiseless(liver=3.0)  # no other tissue comes near
    renderer = SubjectRenderer(subject, GEOMETRY, bright, seed=1)
    planes = [renderer.chest.plane(renderer.below_liver_dome(z)) for z in range(GEOMETRY.n_slices)]
    area = np.array([(plane > 1.5).sum() for plane in planes])
    partial = np.array([((plane > 1.0) & (plane < 2.0)).sum() for plane in planes])
    liver = np.flatnonzero(area > 0)
    assert liver[-1] == GEOMETRY.n_slices - 1 and len(liver) >= 2
    assert np.all(np.diff(area[liver]) > 0)
    assert area[liver[0]] < 0.6 * area[-1]
    assert partial[liver[0]] / area[liver[0]] > 2.0 * partial[-1] / area[-1]


def test_papillary_muscles_are_irregular_not_round(subjects):
    """Seen at 0.6 mm pixels (no blur, no trabeculae), each muscle is lobed or elongated, as real
    papillary muscles with their several heads are, not a disc."""
    from skimage.measure import label, regionprops

    subject = dict(subjects[subjects.phenotype == "healthy"].iloc[0].to_dict(), es_frame=1)
    fine = Geometry(**{**asdict(GEOMETRY), "matrix": 288, "pixel_mm": 0.6, "n_frames": 2})
    renderer = SubjectRenderer(subject, fine, _noiseless(trabeculation_mm=0.0, blur_px=0.0), seed=0)
    cine, seg, _ = renderer.short_axis()
    z = int(np.argmax(renderer.lv.depth[:, 0] / renderer.lv.length[0] > 0.5))
    cavity = seg[..., z] == 1
    muscle = cavity & (cine[..., z, 0] < 0.6 * np.median(cine[..., z, 0][cavity]))
    regions = [region for region in regionprops(label(muscle)) if region.area >= 30]
    assert len(regions) == 2
    assert min(r.solidity for r in regions) < 0.9 or max(r.eccentricity for r in regions) > 0.6, [
        (r.solidity, r.eccentricity) for r in regions
    ]


def test_nothing_but_fat_surrounds_the_free_wall(subjects):
    """Beyond the LV's free wall (away from the RV crescent) the image holds no RV blood or wall:
    with every tissue outside the heart dark, the pixels just outside the mask are dark."""
    from scipy import ndimage

    subject = subjects[subjects.phenotype == "healthy"].iloc[0].to_dict()
    dark = _noiseless(soft_tissue=0.0, fat=0.0, liver=0.0, lung=0.0, breast=0.0, blur_px=0.0, blur_per_bmi=0.0)
    renderer = SubjectRenderer(subject, GEOMETRY, dark, seed=0)
    cine, seg, _ = renderer.short_axis()
    z = GEOMETRY.n_slices // 2
    wall = seg[..., z] == 2
    xs, ys = np.nonzero(seg[..., z] == 1)
    gx, gy = np.meshgrid(*map(np.arange, wall.shape), indexing="ij")
    free_wall = np.abs(wrapped(np.arctan2(gy - ys.mean(), gx - xs.mean()) - renderer.rv_angle - np.pi)) < 0.8
    beyond = free_wall & (seg[..., z] == 0) & ndimage.binary_dilation(wall, iterations=2)
    assert beyond.sum() > 20
    assert cine[..., z, 0][beyond].mean() < 0.2 * cine[..., z, 0][wall].mean()


def _wide(subject: dict, appearance: AppearanceConfig = None, seed: int = 1):
    """The chest of a subject in a field of view wide enough to hold all of it."""
    geometry = Geometry(**{**asdict(GEOMETRY), "matrix": 200})
    return SubjectRenderer(subject, geometry, appearance or _noiseless(), seed=seed).chest


def test_ribs_cross_the_chest_wall_and_lungs_lie_inside_it(subjects):
    from skimage.measure import label

    from fairaug.data.phantom.body import ellipse_distance

    chest = _wide(dict(subjects.iloc[0].to_dict(), sex="male", bmi=25.0))
    plane = np.abs(chest.plane(-50.0))
    depth = ellipse_distance(chest.x, chest.y, *chest.midline, chest.half_width, chest.half_depth)
    wall = (depth > chest.subcutaneous + 2.0) & (depth < chest.subcutaneous + 9.0) & (chest.y < chest.midline[1])
    dark = wall & (plane < 0.15)
    assert 0.05 < dark.sum() / wall.sum() < 0.5
    assert label(dark).max() >= 3  # several ribs, not one band


def test_vessels_run_through_the_liver(subjects):
    from skimage.measure import label

    subject = subjects.iloc[0].to_dict()
    plane = np.abs(_wide(subject, _noiseless(liver=0.2)).plane(100.0))
    from scipy import ndimage

    liver = np.abs(_wide(subject, _noiseless(liver=3.0)).plane(100.0)) - plane > 1.0  # where liver signal shows
    liver = ndimage.binary_fill_holes(liver)  # with the vessels inside it
    vessels = liver & (plane > 0.6)
    assert label(vessels).max() >= 2 and vessels.sum() < 0.2 * liver.sum()
