"""benchmarks/testbed.py: what its external cohort is made of."""

from benchmarks.testbed import external_cohort


def test_the_external_cohort_is_rendered_as_the_jobs_training_images():
    job = [
        "input=edes",
        "seed=3",
        "data.appearance.fat_opposed_phase=false",
        "+data.geometry.matrix=64",
        "data.composition.hf_odds_ratio.sex.female=0.1",
    ]
    cohort = external_cohort(job, n_subjects=1500, seed=1)
    assert "data.appearance.fat_opposed_phase=false" in cohort and "+data.geometry.matrix=64" in cohort
    assert {"data.seed=1", "data.n_subjects=1500", "data.composition.hf_odds_ratio.sex.female=1"} <= set(cohort)
    assert "data.composition.hf_odds_ratio.sex.female=0.1" not in cohort and "seed=3" not in cohort
