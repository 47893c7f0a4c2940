"""ControlNet training and synthetic generation on CPU with the tiny model (fast tier)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from fairaug.diffusion.components import load_components
from fairaug.diffusion.planning import balance_counts, make_plan
from fairaug.diffusion.prompts import (
    DEFAULT_TEMPLATE,
    build_tokenizer,
    check_known,
    load_tokenizer,
    prompt_for,
    prompt_vocabulary,
    tokenize,
)
from fairaug.diffusion.sampling import sample
from fairaug.errors import ConfigError, DataError, OutputExists
from fairaug.tasks import classify, controlnet_train, synth_generate
from tests.conftest import TINY_DIFFUSION, TINY_PHANTOM, TINY_RUN, compose_config, unset


def test_prompts_and_a_tokenizer_built_from_their_words(tmp_path):
    row = {"sex": "female", "age_group": "60s", "bmi_group": "obese", "label": 1}
    prompt = prompt_for(row, DEFAULT_TEMPLATE)
    assert prompt == "Female, age in 60s, obese BMI, heart failure"
    vocabulary = prompt_vocabulary(DEFAULT_TEMPLATE, pd.DataFrame({"age_group": ["50s", "60s"]}))
    tokenizer = build_tokenizer(vocabulary, max_length=12)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert torch.equal(tokenize(loaded, [prompt]), tokenize(tokenizer, [prompt]))
    assert (tokenize(loaded, [prompt]) != 1).all()  # no [UNK]
    with pytest.raises(DataError, match=r"\['90s'\] the tiny tokenizer does not know; its vocabulary: .*'60s'"):
        check_known([prompt.replace("60s", "90s")], loaded)


def test_prompts_leave_out_what_the_data_does_not_record():
    acdc = {"sex": "unknown", "age_group": "unknown", "bmi_group": "obese", "label": 1}
    assert prompt_for(acdc, DEFAULT_TEMPLATE) == "Obese BMI, heart failure"
    mnms = {"sex": "male", "age_group": "50s", "bmi_group": "unknown", "vendor": "Siemens", "label": 0}
    assert prompt_for(mnms, "{sex}, age in {age_group}, {bmi_group} BMI, {vendor} scanner, {diagnosis}") == (
        "Male, age in 50s, Siemens scanner, healthy"
    )
    assert "siemens" in prompt_vocabulary("{vendor}, {diagnosis}", pd.DataFrame({"vendor": ["Siemens", "GE"]}))
    with pytest.raises(ConfigError, match=r"placeholder\(s\) \['ethnicity'\]"):
        prompt_for(mnms, "{ethnicity}, {diagnosis}")


@pytest.fixture
def training():
    """Cells (label, sex, age group): three of the eight hold no subject, e.g. heart-failure women in their 60s."""
    cells = {(0, "male", "60s"): 6, (1, "male", "60s"): 4, (0, "female", "60s"): 3, (1, "female", "50s"): 1}
    cells[(0, "male", "50s")] = 2
    rows = [(*cell, "obese") for cell, n in cells.items() for _ in range(n)]
    table = pd.DataFrame(rows, columns=["label", "sex", "age_group", "bmi_group"])
    table.insert(0, "subject_id", [f"R{i}" for i in range(len(table))])
    return table


def _donors_match(plan, training, columns):
    donors = training.set_index("subject_id").loc[plan.source_subject, columns]
    return (donors.to_numpy() == plan[columns].to_numpy()).all()


def _balance(training, **settings):
    return make_plan("balance", training, OmegaConf.create({"max_samples": None, **settings}), seed=0)


def test_balance_plan_fills_the_observed_cells_to_the_largest(training, caplog):
    counts = balance_counts(training, None)
    assert len(counts) == 8  # 2 labels x 2 sexes x 2 age groups x 1 BMI group
    observed = counts[counts["count"] > 0]
    assert (observed.cell == "observed").all() and ((observed["count"] + observed.generate) == 6).all()
    assert (counts.cell[counts["count"] == 0] == "empty_left_out").all() and counts.generate.sum() == 14
    capped = balance_counts(training, 5)
    assert capped.generate.sum() == 5 and (capped.generate <= counts.generate).all()
    with caplog.at_level("INFO", logger="fairaug.diffusion.planning"):
        plan, _ = _balance(training)
    assert "3 of 8 cells hold no training subject and are left out" in caplog.text
    assert len(plan) == 14 and plan.merge(observed[["label", "sex", "age_group"]]).shape[0] == 14
    assert _donors_match(plan, training, ["label", "sex", "age_group", "bmi_group"])  # from the cell itself
    assert plan.subject_id.is_unique and plan.seed.is_unique


def test_empty_cells_are_filled_only_when_asked_with_donors_of_the_same_label_and_sex(training, caplog):
    with caplog.at_level("INFO", logger="fairaug.diffusion.planning"):
        plan, counts = _balance(training, fill_empty_cells=True)
    assert "3 of 8 cells hold no training subject; filled anyway" in caplog.text and "18 synthetic" in caplog.text
    assert (counts.cell[counts["count"] == 0] == "empty_invented").all() and counts.generate.sum() == 14 + 3 * 6
    women_hf_60s = plan[(plan.sex == "female") & (plan.label == 1) & (plan.age_group == "60s")]
    assert len(women_hf_60s) == 6
    assert _donors_match(plan, training, ["label", "sex"])  # never a man's masks for a woman
    no_women_hf = training[~((training.sex == "female") & (training.label == 1))]
    assert _donors_match(_balance(no_women_hf)[0], no_women_hf, ["label", "sex"])  # their cells left out
    with pytest.raises(DataError, match=r"no training subject with label=1, sex=female .*age_group=50s"):
        _balance(no_women_hf, fill_empty_cells=True)


def test_copy_and_random_prompt_plans(training):
    copy, _ = make_plan("copy", training, OmegaConf.create({"per_sample_multiplier": 2}), seed=0)
    assert len(copy) == 32 and (copy.source_subject.value_counts() == 2).all()
    random, _ = make_plan("random_prompt", training, OmegaConf.create({"num_samples": 40}), seed=1)
    assert len(random) == 40 and _donors_match(random, training, ["label", "sex"])
    assert set(zip(random.label, random.sex)) == {(0, "male"), (1, "male"), (0, "female"), (1, "female")}
    no_women_hf = training[~((training.sex == "female") & (training.label == 1))]
    with pytest.raises(DataError, match="no training subject with label=1, sex=female"):
        make_plan("random_prompt", no_women_hf, OmegaConf.create({"num_samples": 40}), seed=1)


def test_shuffled_prompts_say_other_planned_attributes_but_keep_label_donor_and_plan(training):
    prompted = ["prompt_sex", "prompt_age_group", "prompt_bmi_group"]
    person = ["sex", "age_group", "bmi_group"]
    plan, _ = _balance(training, fill_empty_cells=True)
    assert (plan[prompted].to_numpy() == plan[person].to_numpy()).all()
    shuffled, _ = _balance(training, fill_empty_cells=True, shuffle_attributes=True)
    pd.testing.assert_frame_equal(shuffled.drop(columns=prompted), plan.drop(columns=prompted))
    said, planned = (sorted(map(tuple, shuffled[c].to_numpy())) for c in (prompted, person))
    assert said == planned  # a permutation of the planned attributes
    differ = (shuffled[prompted].to_numpy() != shuffled[person].to_numpy()).any(axis=1)
    assert differ.mean() > 0.4
    again, _ = _balance(training, fill_empty_cells=True, shuffle_attributes=True)
    pd.testing.assert_frame_equal(again, shuffled)


@pytest.fixture(scope="module")
def trained(fairaug_home, tmp_path_factory):
    """One tiny training run shared by the tests of this module."""
    run_dir = tmp_path_factory.mktemp("controlnet_train")
    cfg = compose_config(
        [*TINY_PHANTOM, *TINY_RUN, *TINY_DIFFUSION, f"paths.home={fairaug_home}", f"paths.output_dir={run_dir}"]
    )
    return run_dir, controlnet_train.run(cfg)


def test_controlnet_training_sees_the_training_split_only_and_saves_a_loadable_model(trained):
    run_dir, metrics = trained
    split = pd.read_csv(run_dir / "split.csv", dtype={"subject_id": str})
    seen = set(pd.read_csv(run_dir / "training_subjects.csv", dtype={"subject_id": str}).subject_id)
    assert seen == set(split.subject_id[split.split == "train"])
    assert metrics["steps"] == 6 and np.isfinite(metrics["final_loss"])
    assert {p.name for p in (run_dir / "grids").iterdir()} == {"step_000004.png", "final.png"}
    parts = load_components(run_dir)  # from_pretrained on the folder the run saved
    assert list((run_dir / "model" / "unet").glob("*.safetensors"))
    masks = torch.from_numpy(np.load(run_dir / "model" / "training_masks.npy")[:2])
    ids = tokenize(parts.tokenizer, ["Female, age in 60s, obese BMI, healthy"] * 2)
    images = sample(
        parts, masks, ids, torch.zeros_like(ids), [0, 1], steps=3, scheduler="unipc", guidance=2.0, control_scale=1.0
    )
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1


def test_training_resumes_from_the_last_checkpoint(trained, make_cfg, tmp_path):
    run_dir, first = trained
    folder = shutil.copytree(run_dir, tmp_path / "resumed")
    written = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(OutputExists, match=rf"{folder} already holds a task=controlnet_train run .*diffusion.resume="):
        controlnet_train.run(make_cfg(*TINY_DIFFUSION, f"paths.output_dir={folder}"))  # would start over
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    assert {p: v for p, v in after.items() if p.name != ".owner"} == {
        p: v for p, v in written.items() if p.name != ".owner"
    }  # refused before writing anything: a pipeline keeps the stage's earlier record
    # continued in place: the training sessions and the log are appended to
    in_place = [
        *TINY_DIFFUSION,
        "trainer.max_steps=9",
        "trainer.log_every_n_steps=1",
        f"diffusion.resume={folder}",
        f"paths.output_dir={folder}",
    ]
    resumed = controlnet_train.run(make_cfg(*in_place))
    assert (resumed["start_step"], resumed["steps"]) == (6, 9) and np.isfinite(resumed["final_loss"])
    assert resumed["sessions"][0] == first["sessions"][0]
    assert [(s["start_step"], s["steps"]) for s in resumed["sessions"]] == [(0, 6), (6, 9)]
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 9  # not 8
    log = pd.read_csv(folder / "logs" / "metrics.csv")
    assert (log.step >= 6).any()
    again = controlnet_train.run(make_cfg(*in_place))  # already at step 9: nothing to train, nothing lost
    assert (again["steps"], again["final_loss"], again["sessions"]) == (9, resumed["final_loss"], resumed["sessions"])
    assert json.loads((folder / "metrics.json").read_text()) == again
    pd.testing.assert_frame_equal(pd.read_csv(folder / "logs" / "metrics.csv"), log)
    with pytest.raises(ConfigError, match="no checkpoint"):
        controlnet_train.run(make_cfg(*TINY_DIFFUSION, f"diffusion.resume={tmp_path / 'nowhere'}"))
    # a checkpoint already at trainer.max_steps (a run killed before it saved model/): its model is saved
    finished = controlnet_train.run(
        make_cfg(*TINY_DIFFUSION, f"diffusion.resume={run_dir}", f"paths.output_dir={tmp_path / 'finish'}")
    )
    assert (finished["start_step"], finished["steps"]) == (6, 6)
    saved, original = load_components(tmp_path / "finish"), load_components(run_dir)
    assert all(
        torch.equal(a, b)
        for a, b in zip(saved.controlnet.state_dict().values(), original.controlnet.state_dict().values())
    )
    with pytest.raises(ConfigError, match="another split"):
        controlnet_train.run(
            make_cfg(
                *TINY_DIFFUSION, f"diffusion.resume={run_dir}", "seed=3", f"paths.output_dir={tmp_path / 'other_split'}"
            )
        )


def test_a_session_shorter_than_checkpoint_every_keeps_one_resumable_last_checkpoint(make_cfg, tmp_path):
    """Saved where each session ends, always as last.ckpt (Lightning would version a file it
    did not write itself, and every later save would follow the versioned name)."""
    folder = tmp_path / "run"
    short = [*TINY_DIFFUSION, "diffusion.checkpoint_every=4", "diffusion.grid_every=0", f"paths.output_dir={folder}"]
    controlnet_train.run(make_cfg(*short, "trainer.max_steps=3"))
    resumed = controlnet_train.run(make_cfg(*short, "trainer.max_steps=6", f"diffusion.resume={folder}"))
    assert [(s["start_step"], s["steps"]) for s in resumed["sessions"]] == [(0, 3), (3, 6)]
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6


def test_the_generator_never_reads_the_settings_it_declares_unread(make_cfg, tmp_path):
    """What lets the pipeline keep a ControlNet and its synthetic data when only classifier settings
    change: trained and generated with them unset, the same model and the same images."""
    generated = {}
    for name, hide in (("default", False), ("unset", True)):
        model, out = tmp_path / name / "controlnet", tmp_path / name / "synthetic"
        train = make_cfg(*TINY_DIFFUSION, "trainer.max_steps=2", "diffusion.grid_every=2", f"paths.output_dir={model}")
        controlnet_train.run(unset(train, controlnet_train.UNREAD_SETTINGS) if hide else train)
        generate = make_cfg(
            "task=synth_generate", f"generation.model={model}", f"generation.output={out}", "generation.steps=2"
        )
        synth_generate.run(unset(generate, synth_generate.UNREAD_SETTINGS) if hide else generate)
        manifest = pd.read_csv(out / "manifest.csv")
        model_id = json.loads((out / "generation.json").read_text())["model_id"]  # names a digest of the weights
        generated[name] = model_id, {image: np.asarray(Image.open(out / image)) for image in manifest.image}
    (model, images), (model_unset, images_unset) = generated["default"], generated["unset"]
    assert model_unset == model and images_unset.keys() == images.keys()
    assert all(np.array_equal(images_unset[name], images[name]) for name in images)


def test_training_settings_that_cannot_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="trained no step: .* trainer.limit_train_batches"):
        controlnet_train.run(make_cfg(*TINY_DIFFUSION, "trainer.limit_train_batches=0", f"paths.output_dir={tmp_path}"))
    with pytest.raises(ConfigError, match="multiples of 8"):
        controlnet_train.run(make_cfg(*TINY_DIFFUSION, "diffusion.widths=[12,24]"))


def test_generation_writes_a_dataset_that_classify_can_train_on(trained, make_cfg, tmp_path, capfd):
    run_dir, _ = trained
    out = tmp_path / "synthetic"
    settings = [
        "task=synth_generate",
        f"generation.model={run_dir}",
        f"generation.output={out}",
        "generation.steps=2",
        "generation.batch_size=4",
    ]
    synth_generate.run(make_cfg(*settings))
    err = capfd.readouterr().err
    assert "generating: 100%" in err and "accelerate" not in err  # progress, and no library noise
    manifest = pd.read_csv(out / "manifest.csv")
    training = pd.read_csv(run_dir / "training_subjects.csv")
    assert len(manifest) == len(training) and manifest.subject_id.is_unique
    assert all((out / p).is_file() for p in [*manifest.image, *manifest["mask"]])
    assert manifest.prompt.iloc[0].endswith(("healthy", "heart failure"))
    json.loads((out / "generation.json").read_text())

    uninterrupted = {name: np.asarray(Image.open(out / name)).astype(int) for name in manifest.image}

    # a killed run: the last subjects missing, a half-written PNG left behind
    for name in manifest.image[-3:]:
        (out / name).unlink()
    (out / "images" / ".S000001.png.tmp-123").write_bytes(b"partial")
    manifest.iloc[:-3].to_csv(out / "manifest.csv", index=False)
    synth_generate.run(make_cfg(*settings))
    resumed = pd.read_csv(out / "manifest.csv")
    assert len(resumed) == len(manifest) and resumed.subject_id.is_unique
    assert not list(out.glob("images/.*"))
    # same seeds, same images: up to one grey level where a resumed batch holds other subjects (CPU kernels
    # round differently by batch size)
    assert all(
        np.abs(np.asarray(Image.open(out / name)).astype(int) - image).max() <= 1
        for name, image in uninterrupted.items()
    )
    # killed after its last images but before the manifest: the rerun completes the manifest
    manifest.iloc[:-2].to_csv(out / "manifest.csv", index=False)
    synth_generate.run(make_cfg(*settings))
    assert len(pd.read_csv(out / "manifest.csv")) == len(manifest)
    # a copy folder written before fill_empty_cells and shuffle_attributes existed resumes: they never touched copy
    spec = json.loads((out / "generation.json").read_text())
    del spec["fill_empty_cells"], spec["shuffle_attributes"]
    (out / "generation.json").write_text(json.dumps(spec))
    synth_generate.run(make_cfg(*settings))

    with pytest.raises(OutputExists, match="different generation"):
        synth_generate.run(make_cfg(*settings, "generation.guidance_scale=3"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="foreign files"):
        synth_generate.run(make_cfg(*settings[:-3], f"generation.output={tmp_path / 'foreign'}"))

    cfg = make_cfg(
        "input=edes", f"data.synthetic.path={out}", "data.use_real=false", f"paths.output_dir={tmp_path / 'classify'}"
    )
    assert 0 <= classify.run(cfg)["balanced_accuracy"] <= 1


def test_balance_generation_with_shuffled_prompts_records_what_the_prompts_said(trained, make_cfg, tmp_path):
    run_dir, _ = trained
    out = tmp_path / "shuffled"
    settings = [
        "task=synth_generate",
        "generation=balance",
        "generation.max_samples=8",
        "generation.shuffle_attributes=true",
        f"generation.model={run_dir}",
        f"generation.output={out}",
        "generation.steps=1",
        "generation.batch_size=8",
    ]
    synth_generate.run(make_cfg(*settings))
    manifest = pd.read_csv(out / "manifest.csv")
    counts = pd.read_csv(out / "plan_counts.csv")
    assert len(manifest) == 8 and set(counts.cell) <= {"observed", "empty_left_out"}
    training = pd.read_csv(run_dir / "training_subjects.csv").set_index("subject_id")
    assert (training.loc[manifest.source_subject, "sex"].to_numpy() == manifest.sex).all()
    said = manifest.drop(columns=["sex", "age_group", "bmi_group"])
    said.columns = [c.removeprefix("prompt_") for c in said.columns]
    assert list(manifest.prompt) == [prompt_for(row, DEFAULT_TEMPLATE) for _, row in said.iterrows()]
    assert (said[["sex", "age_group", "bmi_group"]] != manifest[["sex", "age_group", "bmi_group"]]).any(axis=None)
    assert json.loads((out / "generation.json").read_text())["shuffle_attributes"] is True
    with pytest.raises(OutputExists, match="different generation"):
        synth_generate.run(make_cfg(*settings, "generation.shuffle_attributes=false"))
    spec = json.loads((out / "generation.json").read_text())  # a balance plan from before the donor rules
    del spec["fill_empty_cells"]
    (out / "generation.json").write_text(json.dumps(spec))
    with pytest.raises(OutputExists, match="different generation"):
        synth_generate.run(make_cfg(*settings))


def test_bad_model_folder(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="no trained model"):
        synth_generate.run(make_cfg("task=synth_generate", f"generation.model={tmp_path}"))


def test_training_progress_counts_steps_of_max_steps(make_cfg, tmp_path, capfd):
    controlnet_train.run(
        make_cfg(*TINY_DIFFUSION, "trainer.enable_progress_bar=true", f"paths.output_dir={tmp_path / 'bar'}")
    )
    out = capfd.readouterr().out  # Lightning's bars write to stdout
    assert "steps: 100%" in out and "6/6" in out and "Epoch" not in out
