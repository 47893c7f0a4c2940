"""Composing the config as `python -m fairaug` does, and checking it against the schemas.

Hydra checks keys and types at composition (every group's YAML extends its schema in
`fairaug.schemas`); `validate_config` adds the choices and ranges, and the top-level and
trainer settings, which stay open to new keys, before any task starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fairaug import schemas
from fairaug.errors import ConfigError

# The classifier's own settings: what the generator's tasks never read (their UNREAD_SETTINGS).
CLASSIFIER_SETTINGS = ("model", "sampler", "fairness", "loader.batch_size", "trainer.max_epochs")
CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # shipped inside the package, so a wheel runs

REGISTERED = {  # group -> {schema name used in the group's YAML defaults: schema}
    "data": {
        "phantom_schema": schemas.PhantomDataConfig,
        "ukbb_schema": schemas.UKBBDataConfig,
        "acdc_schema": schemas.ACDCDataConfig,
        "mnms_schema": schemas.MnMsDataConfig,
        "sunnybrook_schema": schemas.SunnybrookDataConfig,
    },
    "input": {"input_schema": schemas.InputConfig},
    "split": {"split_schema": schemas.SplitConfig},
    "sampler": {"sampler_schema": schemas.SamplerConfig},
    "model": {"model_schema": schemas.ModelConfig, "small_cnn_schema": schemas.SmallCNNConfig},
    "logger": {"logger_schema": schemas.LoggerConfig, "wandb_schema": schemas.WandbLoggerConfig},
    "fairness": {"fairness_schema": schemas.FairnessConfig},
    "quality": {"quality_schema": schemas.QualityConfig},
    "diffusion": {"tiny_schema": schemas.TinyDiffusionConfig, "sd21_schema": schemas.StableDiffusionConfig},
    "generation": {"generation_schema": schemas.GenerationConfig},
    "app": {"app_schema": schemas.AppConfig},
}
OPEN = {"trainer": schemas.TrainerConfig}  # groups that accept any further key (+trainer.<arg>=...)


def _required(key: str, what: str):
    raise ConfigError(f"this preset needs {key}=<{what}>; it was not given")


def compose_config(overrides=()) -> DictConfig:
    """The root config with `overrides`, composed as `python -m fairaug` would (for scripts and tests)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def dotted_leaves(changes: dict, prefix: str = ""):
    """(dotted key, value) of every leaf of a nested mapping: {"a": {"b": 1}} -> ("a.b", 1)."""
    for key, value in changes.items():
        if isinstance(value, dict) and value:
            yield from dotted_leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def register_configs() -> None:
    # `${required:key,what}` in a preset: unlike `???`, which a merge onto an existing null
    # silently drops, it refuses to resolve until the user sets the key.
    if not OmegaConf.has_resolver("required"):
        OmegaConf.register_new_resolver("required", _required)
    store = ConfigStore.instance()
    for group, named in REGISTERED.items():
        for name, schema in named.items():
            store.store(group=group, name=name, node=schema)


def validate_config(cfg: DictConfig) -> None:
    """Every setting with a schema against its type, choices and range; the first mistake is a
    ConfigError naming its key (`loader.batch_size must be at least 1, got 0`)."""
    _check_against(schemas.RootConfig, cfg, "")
    for group, schema in OPEN.items():
        if group in cfg:
            _check_against(schema, cfg[group], f"{group}.")
    for group in REGISTERED:
        if group in cfg and dataclasses.is_dataclass(OmegaConf.get_type(cfg[group])):
            _check_against(OmegaConf.get_type(cfg[group]), cfg[group], f"{group}.")


def _check_against(schema, node: DictConfig, prefix: str) -> None:
    """The schema's keys of `node`, resolved (interpolations point anywhere in the root), merged
    onto the schema for types, then checked for choices and ranges."""
    try:
        hints = typing.get_type_hints(schema)
        values = {key: _as_declared(hints[key], _resolved(node, key)) for key in hints if key in node}
        _check_fields(schema, OmegaConf.merge(OmegaConf.structured(schema), values), prefix)
    except OmegaConfBaseException as error:
        preset_error = _config_error_within(error)  # a `${required:...}` preset key left unset
        if preset_error:
            raise preset_error from None
        key = f"{prefix}{error.full_key}" if error.full_key else prefix.rstrip(".")
        raise ConfigError(f"{key}: {str(error.msg).splitlines()[0]}") from None


def _as_declared(annotation, value):
    """`value` with whole numbers as floats wherever `annotation` declares a float. OmegaConf's
    merge converts them itself except inside a dict of dicts (`data.composition.hf_odds_ratio
    .sex.female=1` would be refused as an int)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        declared = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = declared[0] if len(declared) == 1 else annotation
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        return {key: _as_declared(hints.get(key), item) for key, item in value.items()}
    if isinstance(value, dict) and typing.get_origin(annotation) is dict:
        inner = typing.get_args(annotation)[1]
        return {key: _as_declared(inner, item) for key, item in value.items()}
    return value


def _config_error_within(error: BaseException | None) -> ConfigError | None:
    while error is not None and not isinstance(error, ConfigError):
        error = error.__cause__ or error.__context__
    return error


def _resolved(node: DictConfig, key: str):
    if OmegaConf.is_missing(node, key):
        return "???"
    value = node[key]
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _check_fields(schema, node: DictConfig, prefix: str) -> None:
    for spec in dataclasses.fields(schema):
        if OmegaConf.is_missing(node, spec.name):
            continue
        value = node[spec.name]
        if isinstance(value, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(value)):
            _check_fields(OmegaConf.get_type(value), value, f"{prefix}{spec.name}.")
        elif spec.metadata:
            for item in value if isinstance(value, ListConfig) else [value]:
                _check_value(f"{prefix}{spec.name}", item, spec.metadata)


def _check_value(key: str, value, rule) -> None:
    if value is None:
        return
    if "choices" in rule:
        if value not in rule["choices"] or (isinstance(value, bool) and not any(c is value for c in rule["choices"])):
            raise ConfigError(f"{key} must be one of {list(rule['choices'])}, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    low, high = rule.get("low", -math.inf), rule.get("high", math.inf)
    inside = (
        math.isfinite(value)
        and (low < value if rule.get("open_low") else low <= value)
        and (value < high if rule.get("open_high") else value <= high)
    )
    if inside:
        return
    if "high" in rule:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")
    raise ConfigError(f"{key} must be {'greater than' if rule.get('open_low') else 'at least'} {low}, got {value}")
