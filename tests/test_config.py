"""Config schemas: every group typed, every mistake a ConfigError naming its key."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from fairaug.config import CONFIG_DIR, REGISTERED, compose_config, validate_config
from fairaug.errors import ConfigError


@pytest.mark.parametrize(
    "override, message",
    [
        ("loader.batch_size=0", "loader.batch_size must be at least 1, got 0"),
        ("loader.batch_size=-4", "loader.batch_size must be at least 1, got -4"),
        ("loader.num_workers=-1", "loader.num_workers must be at least 0, got -1"),
        ("data.n_subjects=-5", "data.n_subjects must be at least 1, got -5"),
        ("seed=-1", "seed must be between 0 and 4294967295, got -1"),
        ("seed=abc", "seed: Value 'abc' of type 'str' could not be converted to Integer"),
        ("fold=-1", "fold must be at least 0, got -1"),
        ("trainer.max_epochs=abc", "trainer.max_epochs: Value 'abc' of type 'str' could not be converted to Integer"),
        ("trainer.precision=bf17", r"trainer.precision must be one of \[.*'bf16-mixed'.*\], got 'bf17'"),
        ("trainer.accelerator=gpus", r"trainer.accelerator must be one of \[.*\], got 'gpus'"),
        ("trainer.deterministic=maybe", r"trainer.deterministic must be one of \[True, False, 'warn'\], got 'maybe'"),
        ("trainer.limit_train_batches=-0.5", "trainer.limit_train_batches must be at least 0, got -0.5"),
        ("data.age_groups=quintile", r"data.age_groups must be one of \['decade', 'tertile'\], got 'quintile'"),
        ("data.on_error=ignore", r"data.on_error must be one of \['raise', 'skip'\], got 'ignore'"),
        ("data.composition.p_female=1.5", "data.composition.p_female must be between 0 and 1, got 1.5"),
        ("data.geometry.pixel_mm=0", "data.geometry.pixel_mm must be greater than 0, got 0"),
        ("input.name=movie", r"input.name must be one of \['cine', .*\], got 'movie'"),
        ("input.view=la_2ch", r"input.view must be one of \['sa', 'la_4ch'\], got 'la_2ch'"),
        ("input.size=4", "input.size must be at least 8, got 4"),
        ("split.val_size=1", "split.val_size must be between 0 and 1, got 1"),
        ("sampler.name=balanced", r"sampler.name must be one of \['random', 'label_balanced', 'group_balanced'\]"),
        ("model.lr=0", "model.lr must be greater than 0, got 0"),
        ("model.lr=nan", "model.lr must be greater than 0, got nan"),
        ("model.dropout=1", "model.dropout must be between 0 and 1, got 1"),
        ("model.width=0", "model.width must be at least 1, got 0"),
        (
            "logger=wandb logger.mode=live",
            r"logger.mode must be one of \['online', 'offline', 'disabled'\], got 'live'",
        ),
        ("fairness.ci=95", "fairness.ci must be between 0 and 1, got 95"),
        ("fairness.n_boot=-1", "fairness.n_boot must be at least 0, got -1"),
        ("quality.features=vgg", r"quality.features must be one of \['classifier', 'inception'\], got 'vgg'"),
        ("quality.copy_quantile=2", "quality.copy_quantile must be between 0 and 1, got 2"),
        ("diffusion.widths=[32,4]", "diffusion.widths must be at least 8, got 4"),
        ("diffusion.prompt_dropout=1.0", "diffusion.prompt_dropout must be between 0 and 1, got 1.0"),
        ("diffusion=sd21 diffusion.pretrained=/m diffusion.lr=-1", "diffusion.lr must be greater than 0, got -1"),
        ("generation.dtype=half", r"generation.dtype must be one of \['float32', 'bfloat16', 'float16'\], got 'half'"),
        ("generation.scheduler=euler", r"generation.scheduler must be one of \['ddim', 'dpm\+\+', 'unipc'\]"),
        ("generation=balance generation.max_samples=-3", "generation.max_samples must be at least 0, got -3"),
        ("generation.guidance_scale=inf", "generation.guidance_scale must be at least 0, got inf"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(override, message):
    cfg = compose_config(override.split())
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


@pytest.mark.parametrize(
    "override",
    [
        "data.composition.hf_odds_ratio.sex.female=1",
        "data.composition.phenotypes.odds_ratio.hfpef.sex.female=12",
        "data.composition.bmi_sd=4",
    ],
)
def test_a_whole_number_is_a_valid_float_however_deeply_nested(override):
    """OmegaConf's merge refuses an int inside a dict of dicts of floats; the user wrote a valid
    number (the phantom's spec then holds it as a float: tests/data/phantom)."""
    validate_config(compose_config([override]))


def test_a_word_in_a_nested_dict_of_floats_is_still_refused():
    cfg = compose_config(["data.composition.hf_odds_ratio.sex.female=high"])
    with pytest.raises(ConfigError, match="data.composition.hf_odds_ratio.sex"):
        validate_config(cfg)


@pytest.mark.parametrize(
    "override",
    [
        "model.lrr=1",
        "fairness.nboot=5",
        "quality.feature=x",
        "diffusion.stepz=3",
        "generation.stepz=3",
        "logger.projct=x",
        "split.seeds=1",
        "trainer.max_epoch=1",
    ],
)
def test_a_misspelt_key_is_refused_naming_it(override):
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0].split(".")[-1]):
        compose_config([override])


@pytest.mark.parametrize("override", ["model.lr=abc", "fairness.n_boot=many", "generation.steps=1.5"])
def test_a_wrong_type_is_refused_at_composition(override):
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0]):
        compose_config([override])


def test_every_shipped_choice_is_valid_and_every_schema_is_used():
    """Each YAML of a typed group composes and passes its schema's checks (so a default can
    never be out of range), and names one of the group's registered schemas."""
    used = set()
    for group, schemas in REGISTERED.items():
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            text = path.read_text()
            used |= {(group, name) for name in schemas if f"- {name}\n" in text}
            required = {"data": ["data.root=/r", "data.metadata=/m.csv"], "diffusion": ["diffusion.pretrained=/m"]}
            overrides = [f"{group}={path.stem}", *(required.get(group, []) if path.stem in ("ukbb", "sd21") else [])]
            validate_config(compose_config(overrides))
    assert used == {(group, name) for group, schemas in REGISTERED.items() for name in schemas}


def test_the_trainer_stays_open_to_any_lightning_argument():
    cfg = compose_config(
        [
            "+trainer.benchmark=true",
            "trainer.precision=16",
            "trainer.limit_val_batches=0.5",
            "trainer.limit_train_batches=3",
            "trainer.max_epochs=-1",
            "trainer.max_steps=20",
        ]
    )
    validate_config(cfg)
    assert cfg.trainer.benchmark is True and cfg.trainer.limit_train_batches == 3


def test_a_preset_value_left_unset_is_named_before_the_task_starts():
    with pytest.raises(ConfigError, match="this preset needs data.synthetic.path=<a synth_generate run dir>"):
        validate_config(compose_config(["experiment=real_plus_synth"]))


def test_the_entry_point_names_the_key_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fairaug", "task=classify", "loader.batch_size=0", f"paths.home={tmp_path}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "loader.batch_size must be at least 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists()  # refused before any data was generated
