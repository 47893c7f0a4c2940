"""Each public dataset end to end as a user runs it: task=cohort, then a tiny classify.

The fixture datasets are tiny phantom subjects written in each dataset's published layout
(tests/layouts/), so what the readers return can be checked against known anatomy.
"""

import json

import numpy as np
import pandas as pd
import pytest

from fairaug.tasks import classify, cohort, controlnet_train, synth_generate
from tests.conftest import TINY_DIFFUSION
from tests.layouts.acdc import write_acdc
from tests.layouts.mnms import write_mnms
from tests.layouts.sunnybrook import write_sunnybrook


@pytest.fixture(scope="module")
def datasets(tiny_cohort, tmp_path_factory):
    """name -> (data overrides, number of usable subjects, attributes the dataset records)."""
    root = tmp_path_factory.mktemp("public")
    subjects = tiny_cohort.head(24)
    return {
        "acdc": ([f"data.root={write_acdc(root / 'acdc', subjects)}"], len(subjects), {"bmi_group"}),
        "mnms": (
            [f"data.root={write_mnms(root / 'mnms', subjects)}"],
            len(subjects),
            {"sex", "age_group", "bmi_group", "vendor", "centre"},
        ),
        "sunnybrook": (
            [f"data.root={write_sunnybrook(root / 'sunnybrook', subjects)}"],
            len(subjects),
            {"sex", "age_group"},
        ),
    }


@pytest.mark.parametrize("name", ["acdc", "mnms", "sunnybrook"])
def test_cohort_then_classify(name, datasets, make_cfg, tmp_path):
    overrides, n_subjects, recorded = datasets[name]
    result = cohort.run(make_cfg("task=cohort", f"data={name}", *overrides))
    table = pd.read_csv(tmp_path / "run" / "cohort.csv")
    assert result["n_subjects"] == len(table) == n_subjects
    assert table.lv_ef_percent.between(10, 90).all() and (table.lv_edv_ml > 0).all()
    # heart failure shows in the measurements: the label mapping is right
    assert table.groupby("label").lv_ef_percent.median().diff().iloc[-1] < 0

    metrics = classify.run(
        make_cfg(
            "task=classify",
            f"data={name}",
            *overrides,
            "input=edes",
            "loader.batch_size=4",
            "fairness.attributes=[sex,age_group,bmi_group,vendor,centre]",
            "paths.output_dir=" + str(tmp_path / "classify"),
        )
    )
    assert 0 <= metrics["balanced_accuracy"] <= 1
    predictions = pd.read_csv(tmp_path / "classify" / "predictions.csv")
    assert len(predictions) == metrics["n_test"] > 0
    fairness = json.loads((tmp_path / "classify" / "fairness.json").read_text())
    assert set(fairness["attributes"]) == recorded
    assert set(fairness["not_recorded"]) == {"sex", "age_group", "bmi_group", "vendor", "centre"} - recorded


def test_generator_trains_and_generates_on_masks_without_rv(datasets, make_cfg, tmp_path):
    """Sunnybrook has no RV outline and no BMI: the ControlNet trains on labels 0-2 and the
    prompts leave the BMI out."""
    overrides, _, _ = datasets["sunnybrook"]
    run_dir = tmp_path / "generator"
    controlnet_train.run(make_cfg(*TINY_DIFFUSION, "data=sunnybrook", *overrides, f"paths.output_dir={run_dir}"))
    out = tmp_path / "synthetic"
    synth_generate.run(
        make_cfg(
            "task=synth_generate",
            "data=sunnybrook",
            *overrides,
            f"generation.model={run_dir}",
            f"generation.output={out}",
            "generation.steps=2",
        )
    )
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == len(pd.read_csv(run_dir / "training_subjects.csv"))
    assert not manifest.prompt.str.contains("BMI|unknown").any()
    assert manifest.prompt.str.match(r"^(Female|Male), age in \d0s, (healthy|heart failure)$").all()
    masks = np.load(run_dir / "model" / "training_masks.npy")
    assert set(np.unique(masks)) <= {0, 1, 2}

    # the synthetic subjects (BMI group unknown, like their donors) join the classifier's training
    classify.run(
        make_cfg(
            "task=classify",
            "data=sunnybrook",
            *overrides,
            "input=edes",
            f"data.synthetic.path={out}",
            "paths.output_dir=" + str(tmp_path / "classify"),
        )
    )
    used = pd.read_csv(tmp_path / "classify" / "synthetic.csv")
    assert len(used) == len(manifest) and set(used.bmi_group) == {"unknown"}


def test_generated_subjects_keep_their_donors_vendor_and_centre(datasets, make_cfg, tmp_path):
    """A prompt may name the vendor (M&Ms records it): the balance plan's synthetic subjects
    take vendor and centre from the subject whose masks they are drawn on, and the prompt says it."""
    overrides, _, _ = datasets["mnms"]
    run_dir = tmp_path / "generator"
    controlnet_train.run(
        make_cfg(
            *TINY_DIFFUSION,
            "data=mnms",
            *overrides,
            f"paths.output_dir={run_dir}",
            "diffusion.prompt_template='{sex}, {vendor} scanner, {diagnosis}'",
        )
    )
    training = pd.read_csv(run_dir / "training_subjects.csv", dtype={"centre": str}).set_index("subject_id")
    out = tmp_path / "synthetic"
    synth_generate.run(
        make_cfg(
            "task=synth_generate",
            "generation=balance",
            "data=mnms",
            *overrides,
            f"generation.model={run_dir}",
            f"generation.output={out}",
            "generation.steps=2",
            "generation.max_samples=6",
        )
    )
    manifest = pd.read_csv(out / "manifest.csv", dtype={"centre": str})
    assert len(manifest) == 6
    donors = training.loc[manifest.source_subject]
    assert list(manifest.vendor) == list(donors.vendor) and list(manifest.centre) == list(donors.centre)
    assert all(f", {vendor} scanner, " in prompt for vendor, prompt in zip(manifest.vendor, manifest.prompt))

    classify.run(
        make_cfg(
            "task=classify",
            "data=mnms",
            *overrides,
            "input=edes",
            f"data.synthetic.path={out}",
            "paths.output_dir=" + str(tmp_path / "classify"),
        )
    )
    used = pd.read_csv(tmp_path / "classify" / "synthetic.csv", dtype={"centre": str})
    assert set(used.vendor) <= set(training.vendor) and "unknown" not in set(used.centre)
