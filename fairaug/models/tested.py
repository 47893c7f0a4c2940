"""The classifier a finished task=classify run tested, rebuilt from its folder."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fairaug.errors import ConfigError
from fairaug.io import load_checkpoint
from fairaug.models.classifier import HeartFailureClassifier
from fairaug.run_folder import tested_checkpoint
from fairaug.runtime import RunDir


def run_config(run_dir: Path) -> DictConfig:
    """The resolved config a task=classify run saved."""
    config = RunDir(run_dir).config
    if not config.is_file():
        raise ConfigError(f"{run_dir} is not a finished task=classify run (no config.yaml)")
    return OmegaConf.load(config)


def classifier_from(cfg: DictConfig, checkpoint: Path, input_shape: tuple[int, ...]) -> HeartFailureClassifier:
    """The network of a run's config `cfg` with the weights of `checkpoint`."""
    architecture = OmegaConf.merge(cfg.model, {"weights": None})  # the checkpoint holds every weight
    module = HeartFailureClassifier(architecture, input_shape, float(cfg.model.lr), float(cfg.model.weight_decay))
    state = load_checkpoint(checkpoint, "the tested checkpoint")["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(f"{checkpoint} does not fit its own config: {error}") from error
    return module


def load_tested_classifier(run_dir: Path, input_shape: tuple[int, ...]) -> HeartFailureClassifier:
    """The run's network (its own model config) with the weights of the checkpoint it tested."""
    return classifier_from(run_config(run_dir), tested_checkpoint(run_dir), input_shape)
