import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from fairaug.data.datamodule import CohortDataModule
from fairaug.data.samplers import build_sampler, group_weights
from fairaug.errors import ConfigError
from fairaug.tasks import classify


@pytest.fixture
def train():
    # 60 healthy males, 20 healthy females, 15 HF males, 5 HF females
    rows = [(0, "male")] * 60 + [(0, "female")] * 20 + [(1, "male")] * 15 + [(1, "female")] * 5
    frame = pd.DataFrame(rows, columns=["label", "sex"])
    frame["age_group"] = "60s"
    frame["bmi_group"] = np.where(np.arange(100) % 2, "normal", "obese")
    return frame


def test_group_weights_are_inverse_group_sizes(train):
    weights = group_weights(train, ["sex"])
    assert weights[0] == pytest.approx(1 / 60) and weights[99] == pytest.approx(1 / 5)
    assert group_weights(train, [])[0] == pytest.approx(1 / 80)


def test_group_balanced_sampler_draws_groups_equally(train):
    sampler = build_sampler(OmegaConf.create({"name": "group_balanced", "attributes": ["sex"]}), train, seed=0)
    draws = np.array([i for _ in range(40) for i in sampler])  # 40 epochs
    shares = train.iloc[draws].groupby(["label", "sex"]).size() / len(draws)
    assert np.allclose(shares, 0.25, atol=0.03)


def test_label_balanced_and_random(train):
    sampler = build_sampler(OmegaConf.create({"name": "label_balanced", "attributes": []}), train, seed=0)
    draws = [i for _ in range(40) for i in sampler]
    assert train.label.iloc[draws].mean() == pytest.approx(0.5, abs=0.03)
    cfg = OmegaConf.create({"name": "random", "attributes": []})
    assert sorted(build_sampler(cfg, train, seed=0)) == list(range(100))


def test_sampler_is_seeded_and_rejects_unknown_attributes(train):
    cfg = OmegaConf.create({"name": "group_balanced", "attributes": ["sex", "bmi_group"]})
    assert list(build_sampler(cfg, train, 3)) == list(build_sampler(cfg, train, 3))
    with pytest.raises(ConfigError, match="ethnicity"):
        build_sampler(OmegaConf.create({"name": "group_balanced", "attributes": ["ethnicity"]}), train, 3)


@pytest.mark.parametrize(
    "override, message",
    [
        ("sampler.name=balanced", r"sampler.name must be one of \["),
        ("sampler.attributes=[sexx]", r"unknown attribute\(s\) \['sexx'\]"),
    ],
)
def test_sampler_settings_are_refused_before_any_data_is_prepared(make_cfg, override, message, monkeypatch):
    monkeypatch.setattr(CohortDataModule, "prepare", lambda self: pytest.fail("data prepared before the check"))
    with pytest.raises(ConfigError, match=message):
        classify.run(make_cfg(override))


def test_attributes_no_subject_records_are_left_out_of_the_balance(train):
    no_sex = train.assign(sex="unknown")
    assert np.allclose(group_weights(no_sex, ["sex", "bmi_group"]), group_weights(no_sex, ["bmi_group"]))


def sampler_cfg(name="group_balanced", attributes=("sex",), **extra):
    return OmegaConf.create(
        {"name": name, "attributes": list(attributes), "samples_per_epoch": None, "added_fraction": None, **extra}
    )


def with_added(train, n_added):
    added = train.iloc[:n_added].assign(origin="synthetic", label=1, sex="female")
    return pd.concat([train.assign(origin="real"), added], ignore_index=True)


@pytest.mark.parametrize("name", ["random", "label_balanced", "group_balanced"])
def test_samples_per_epoch_fixes_the_steps_whatever_is_added(train, name):
    """Equal compute: an arm with added subjects draws as many samples per epoch as one without."""
    cfg = sampler_cfg(name, samples_per_epoch=100)
    for table in (train.assign(origin="real"), with_added(train, 60)):
        assert len(list(build_sampler(cfg, table, seed=0))) == 100


def test_added_fraction_is_the_share_of_each_epoch_drawn_from_added_subjects(train):
    table = with_added(train, 60)  # pooled, 60 of 160 rows would be drawn 37.5 % of the time
    cfg = sampler_cfg(samples_per_epoch=100, added_fraction=0.2)
    sampler = build_sampler(cfg, table, seed=0)
    draws = np.array([i for _ in range(60) for i in sampler])
    assert (table.origin.iloc[draws] == "synthetic").mean() == pytest.approx(0.2, abs=0.02)
    # the real subjects are balanced among themselves, as without additions: adding subjects to
    # the scarce cell does not dilute the real subjects of that cell
    real = table.iloc[draws][table.origin.iloc[draws] == "real"]
    shares = real.groupby(["label", "sex"]).size() / len(real)
    assert np.allclose(shares, 0.25, atol=0.03)


def test_added_fraction_with_nothing_added_or_nothing_real(train):
    cfg = sampler_cfg("random", added_fraction=0.3)
    assert sorted(set(build_sampler(cfg, train.assign(origin="real"), seed=0))) == list(range(100))
    only_added = train.assign(origin="synthetic")  # data.use_real=false
    assert sorted(build_sampler(cfg, only_added, seed=0)) == list(range(100))


@pytest.mark.parametrize(
    "override, message",
    [
        ("+sampler.added_fraction=1.0", r"sampler.added_fraction must be between 0 and 1"),
        ("+sampler.samples_per_epoch=0", r"sampler.samples_per_epoch must be at least 1"),
    ],
)
def test_equal_compute_settings_are_checked(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        make_cfg(override.lstrip("+"))
