"""A phantom cohort made of given (label x sex x age group x BMI group) cells: the oracle's real subjects."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from fairaug.config import validate_config
from fairaug.data.phantom.generate import phantom_spec, spec_hash
from fairaug.data.phantom.physiology import Composition, cells_from_counts, sample_subjects
from fairaug.data.sources import load_cohort
from fairaug.errors import ConfigError
from tests.conftest import compose_config

DEFAULT = compose_config([]).data
CELL = ["label", "sex", "age_group", "bmi_group"]
CELLS = [
    {"label": 1, "sex": "female", "age_group": "60s", "bmi_group": "normal", "count": 2},
    {"label": 0, "sex": "male", "age_group": "40s", "bmi_group": "underweight", "count": 3},
    {"label": 1, "sex": "female", "age_group": "80s", "bmi_group": "obese", "count": 1},
]


def composition(cells: list[dict], **changes) -> Composition:
    return Composition(**{**phantom_spec(DEFAULT)["composition"], "cells": cells, **changes})


def override(cells: list[dict]) -> str:
    """`data.composition.cells=[{label:1,sex:female,...},...]`, as typed on the command line."""
    return "data.composition.cells=[{}]".format(
        ",".join("{" + ",".join(f"{k}:{v}" for k, v in cell.items()) + "}" for cell in cells)
    )


def cell_counts(table: pd.DataFrame) -> dict:
    return table.groupby(CELL).size().to_dict()


def test_a_cohort_of_cells_holds_exactly_those_subjects(make_cfg):
    cohorts = {seed: load_cohort(make_cfg(override(CELLS), f"data.seed={seed}").data)[0] for seed in (0, 1)}
    wanted = {tuple(cell[c] for c in CELL): cell["count"] for cell in CELLS}
    for table in cohorts.values():
        assert cell_counts(table) == wanted
        assert table.label.tolist() == [1, 1, 0, 0, 0, 1]  # cell by cell, in the order given
    assert (cohorts[0].age.to_numpy() != cohorts[1].age.to_numpy()).all()
    again = load_cohort(make_cfg(override(CELLS), "data.seed=0").data)[0]
    pd.testing.assert_frame_equal(again[["subject_id", "age", "bmi"]], cohorts[0][["subject_id", "age", "bmi"]])


def test_the_cells_are_part_of_the_cohort_hash():
    with_cells = compose_config([override(CELLS)]).data
    assert "cells" not in phantom_spec(DEFAULT)["composition"]  # the default cohort keeps its folder
    assert phantom_spec(with_cells)["composition"]["cells"] == CELLS
    assert phantom_spec(with_cells)["composition"]["n_subjects"] is None  # ignored: no cache per n_subjects
    fewer = compose_config([override([{**CELLS[0], "count": 1}])]).data
    assert len({spec_hash(phantom_spec(cfg)) for cfg in (DEFAULT, with_cells, fewer)}) == 3


def test_cells_pass_on_the_command_line():
    cfg = compose_config(["data.composition.cells=[{label:1,sex:female,age_group:60s,bmi_group:normal,count:3}]"])
    validate_config(cfg)
    assert phantom_spec(cfg.data)["composition"]["cells"] == [
        {"label": 1, "sex": "female", "age_group": "60s", "bmi_group": "normal", "count": 3}
    ]


@pytest.mark.parametrize(
    "cell, message",
    [
        (
            {"label": 1, "sex": "f", "age_group": "60s", "bmi_group": "normal", "count": 1},
            r"sex must be one of \['female', 'male'\], got 'f'",
        ),
        (
            {"label": 2, "sex": "male", "age_group": "60s", "bmi_group": "normal", "count": 1},
            r"label must be one of \[0, 1\]",
        ),
        (
            {"label": 1, "sex": "male", "age_group": "30s", "bmi_group": "normal", "count": 1},
            r"age_group must be one of .* \(UK Biobank imaging ages 45-82\), got '30s'",
        ),
        (
            {"label": 1, "sex": "male", "age_group": "60s", "bmi_group": "thin", "count": 1},
            r"bmi_group must be one of \['underweight', .*\], got 'thin'",
        ),
        (
            {"label": 1, "sex": "male", "age_group": "60s", "bmi_group": "normal", "count": 0},
            "count must be an integer of at least 1, got 0",
        ),
        ({"label": 1, "sex": "male", "age_group": "60s", "bmi_group": "normal"}, "a cell has exactly the keys"),
    ],
)
def test_a_wrong_cell_is_named(cell, message):
    with pytest.raises(ConfigError, match=rf"data\.composition\.cells\[1\] \{{.*\}}: {message}"):
        sample_subjects(composition([CELLS[0], cell]), 50, seed=0)


def test_a_repeated_or_impossible_cell_and_no_cells_are_refused():
    with pytest.raises(ConfigError, match=r"cells\[1\] .* repeats an earlier cell"):
        sample_subjects(composition([CELLS[0], {**CELLS[0], "count": 5}]), 50, seed=0)
    with pytest.raises(ConfigError, match="cells must list at least one cell, or be null"):
        sample_subjects(composition([]), 50, seed=0)
    with pytest.raises(ConfigError, match=r"cells\[0\] .* with data.composition.bmi_sd=0 every BMI is bmi_mean=27.0"):
        sample_subjects(composition(CELLS, bmi_sd=0.0), 50, seed=0)


def test_each_cell_is_drawn_from_the_population_given_the_cell():
    cells = [
        {"label": 1, "sex": "female", "age_group": "40s", "bmi_group": "underweight", "count": 2000},
        {"label": 0, "sex": "male", "age_group": "80s", "bmi_group": "obese", "count": 2000},
    ]
    drawn = sample_subjects(composition(cells), 50, seed=4)
    assert cell_counts(drawn) == {tuple(cell[c] for c in CELL): cell["count"] for cell in cells}
    young, old = drawn[drawn.age_group == "40s"], drawn[drawn.age_group == "80s"]
    assert young.age.between(45.0, 49.9).all() and old.age.between(80.0, 82.0).all()
    assert young.age.mean() == pytest.approx(47.5, abs=0.15) and old.age.mean() == pytest.approx(81.0, abs=0.1)
    assert young.bmi.between(16.0, 18.4).all() and old.bmi.between(30.0, 50.0).all()
    assert (young.phenotype != "healthy").all() and (old.phenotype == "healthy").all()
    # BMI as the population has it within each group (its log-normal, clipped at 16 and 50).
    population = sample_subjects(composition(None, n_subjects=60000), 50, seed=5)
    for group, subjects in (("underweight", young), ("obese", old)):
        assert ks_2samp(subjects.bmi, population.bmi[population.bmi_group == group]).pvalue > 0.001
    pd.testing.assert_frame_equal(sample_subjects(composition(cells), 50, seed=4), drawn)
    assert not np.array_equal(sample_subjects(composition(cells), 50, seed=6).bmi, drawn.bmi)


def test_cells_from_a_balance_plan():
    counts = pd.DataFrame(
        {
            "label": np.array([0, 1, 1]),
            "sex": ["male", "female", "female"],
            "age_group": ["60s", "60s", "70s"],
            "bmi_group": ["normal", "normal", "obese"],
            "count": np.array([9, 2, 5]),
            "generate": np.array([0, 7, 4]),
        }
    )
    cells = cells_from_counts(counts)
    assert cells == [
        {"label": 1, "sex": "female", "age_group": "60s", "bmi_group": "normal", "count": 7},
        {"label": 1, "sex": "female", "age_group": "70s", "bmi_group": "obese", "count": 4},
    ]
    json.dumps(cells)  # plain Python values: they go into the cohort's spec.json
    cfg = compose_config([override(cells)])
    validate_config(cfg)
    assert len(sample_subjects(composition(phantom_spec(cfg.data)["composition"]["cells"]), 50, seed=0)) == 11
