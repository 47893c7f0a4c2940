"""The four-chamber view shows the short axis's heart: the same widths, motion and infarct."""

import numpy as np
import pytest

from fairaug.data.phantom.four_chamber import TRICUSPID_OFFSET_MM
from fairaug.data.phantom.physiology import HEALTHY_EARLY_FILLING, sample_subjects
from fairaug.data.phantom.render import SubjectRenderer
from fairaug.schemas import AppearanceConfig
from tests.data.phantom.test_phantom import GEOMETRY, default_composition

STEP = 0.05  # mm between the plane points the tests sample


@pytest.fixture(scope="module")
def subjects():
    return sample_subjects(default_composition(200, hf_base_prevalence=0.5, hf_odds_ratio={}), n_frames=50, seed=3)


def pick(subjects, column, value):
    subject = subjects[subjects[column] == value].iloc[0].to_dict()
    return subject, SubjectRenderer(subject, GEOMETRY, AppearanceConfig(), seed=0)


def chambers(renderer, u, v):
    """The chambers at plane points (u, v) (1-D, paired) in every frame."""
    return renderer.four_chamber(u[:, None], v[:, None])


def along_axis(renderer, v=0.0):
    u = np.arange(-60.0, 160.0, STEP, dtype=np.float32)
    return u, chambers(renderer, u, np.full_like(u, v))


def across(renderer, u: float):
    v = np.arange(-90.0, 90.0, STEP, dtype=np.float32)
    return v, chambers(renderer, np.full_like(v, u), v)


def extent(points, inside):
    return points[inside].min(), points[inside].max()


def test_the_apex_stays_while_the_valve_plane_descends(subjects):
    subject, renderer = pick(subjects, "phenotype", "healthy")
    es = int(subject["es_frame"])
    u, c = along_axis(renderer)
    base_ed, apex_ed = extent(u, c.lv_cavity[:, 0] > 0)
    base_es, apex_es = extent(u, c.lv_cavity[:, es] > 0)
    descent = renderer.lv.length[0] - renderer.lv.length[es]
    assert descent > 5.0
    assert apex_es == pytest.approx(apex_ed, abs=0.5)
    assert base_es - base_ed == pytest.approx(descent, abs=0.2)
    assert apex_ed - base_ed == pytest.approx(renderer.lv.length[0], abs=0.2)


@pytest.mark.parametrize(
    "column, value", [("phenotype", "healthy"), ("phenotype", "hfref"), ("phenotype", "hfpef"), ("territory", "LAD")]
)
def test_widths_are_those_of_the_short_axis_slices(subjects, column, value):
    """At each short-axis slice's depth the LV cavity reaches, on either side, as far as the
    slice's endocardium in that direction (also where an infarct stills one side), and the RV is
    as deep as the slice's crescent."""
    subject, renderer = pick(subjects, column, value)
    lv = renderer.lv
    rv = renderer.rv
    septum, lateral = np.array([renderer.rv_angle]), np.array([renderer.rv_angle + np.pi])
    for t in (0, int(subject["es_frame"])):
        base = lv.length[0] - lv.length[t]
        for z in np.flatnonzero((lv.cavity[:, t] > 0) & (lv.depth[:, t] > TRICUSPID_OFFSET_MM + 1.0)):
            v, c = across(renderer, base + lv.depth[z, t])
            low, high = extent(v, c.lv_cavity[:, t] > 0)
            assert high == pytest.approx(lv.radii(lateral, z, t)[0][0], abs=0.1)
            assert -low == pytest.approx(lv.radii(septum, z, t)[0][0], abs=0.1)
            if rv.depth[z, t] > 1.0:
                low, high = extent(v, c.rv_cavity[:, t] > 0)
                assert high - low == pytest.approx(rv.depth[z, t], abs=0.1)


def test_the_moderator_band_crosses_the_rv_between_annulus_and_apex(subjects):
    subject, renderer = pick(subjects, "phenotype", "healthy")
    lv = renderer.lv
    u, c = along_axis(renderer, v=-(lv.base_radius[0] + lv.wall + 8.0))  # through the RV, beside the septum
    rv = u[c.rv_cavity[:, 0] > 0]
    band = u[c.moderator_band[:, 0] > 0]
    assert len(band) and rv.min() + 5.0 < band.min() < band.max() < rv.max() - 5.0


def test_the_right_atrium_stays_beyond_the_septum(subjects):
    for _, row in subjects.groupby("phenotype").head(2).iterrows():
        c = SubjectRenderer(row.to_dict(), GEOMETRY, AppearanceConfig(), seed=0).four_chamber()
        assert not ((c.right_atrium > 0) & (c.lv_wall > 0)).any(), row.subject_id
        assert not ((c.right_atrium > 0) & (c.left_atrium > 0)).any(), row.subject_id


@pytest.mark.parametrize("territory, side", [("LAD", -1.0), ("LCx", 1.0)])
def test_an_infarct_is_thin_and_still_on_its_side_of_the_plane(subjects, territory, side):
    subject, renderer = pick(subjects, "territory", territory)
    lv, es = renderer.lv, int(subject["es_frame"])
    u = 0.6 * lv.length[0]  # mid to apical, where both territories reach
    v, c = across(renderer, u)

    def wall_and_motion(direction):
        outward = v * direction > 0
        wall = (outward & (c.lv_wall[:, 0] > 0)).sum() - (outward & (c.lv_cavity[:, 0] > 0)).sum()
        shortening = (outward & (c.lv_cavity[:, 0] > 0)).sum() - (outward & (c.lv_cavity[:, es] > 0)).sum()
        return wall * STEP, shortening * STEP

    (scar_wall, scar_motion), (wall, motion) = wall_and_motion(side), wall_and_motion(-side)
    assert scar_wall < 0.75 * wall
    assert scar_motion < 0.5 * motion


def test_the_left_atrium_dilates_with_slow_relaxation(subjects):
    subject, _ = pick(subjects, "phenotype", "healthy")
    areas = {}
    for early_filling in (HEALTHY_EARLY_FILLING, 0.4):
        renderer = SubjectRenderer(dict(subject, early_filling=early_filling), GEOMETRY, AppearanceConfig(), seed=0)
        areas[early_filling] = (renderer.four_chamber().left_atrium[..., 0] > 0).sum()
    assert areas[0.4] > 1.3 * areas[HEALTHY_EARLY_FILLING], areas


def test_the_image_shows_the_chambers_with_cine_contrast(subjects):
    subject, renderer = pick(subjects, "phenotype", "healthy")
    image = renderer.long_axis_4ch()[:, :, 0].astype(float)
    c = renderer.four_chamber()
    for t in (0, int(subject["es_frame"])):
        blood = image[..., t][(c.lv_cavity[..., t] > 3.0) & (c.moderator_band[..., t] < -3.0)]
        other = np.maximum.reduce([c.lv_cavity, c.rv_cavity, c.left_atrium, c.right_atrium])[..., t]
        wall = image[..., t][(c.lv_wall[..., t] > 1.0) & (other < -1.0)]
        right = image[..., t][c.rv_cavity[..., t] > 2.0]
        atria = image[..., t][(c.left_atrium[..., t] > 3.0) | (c.right_atrium[..., t] > 3.0)]
        assert len(wall) > 20 and len(right) > 20 and len(atria) > 20
        assert 2.0 < blood.mean() / wall.mean() < 4.0
        assert right.mean() > 1.5 * wall.mean() and atria.mean() > 1.5 * wall.mean()  # blood, shaded by the coil


@pytest.mark.parametrize("tilt_deg", [24.0, 56.0])  # the default lean ± 2 SD
def test_the_whole_heart_stays_inside_the_field_of_view(subjects, tilt_deg):
    """The largest hearts of a cohort, atria to apex, in the 173 mm view."""
    for _, row in subjects.nlargest(5, "lvedv_ml").iterrows():
        renderer = SubjectRenderer(row.to_dict(), GEOMETRY, AppearanceConfig(), seed=0)
        renderer.long_axis_tilt = np.radians(tilt_deg)
        c = renderer.four_chamber()
        heart = np.maximum.reduce([c.lv_wall, c.rv_wall, c.left_atrium, c.right_atrium])[..., 0] > 0
        edges = np.concatenate([heart[0], heart[-1], heart[:, 0], heart[:, -1]])
        assert not edges.any(), row.subject_id
