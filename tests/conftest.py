"""Tiny cohorts and composed configs shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fairaug.config import CONFIG_DIR, compose_config, register_configs, validate_config

CONF = CONFIG_DIR

# A phantom small enough to generate in seconds, balanced so every split holds both classes.
TINY_PHANTOM = [
    "data.n_subjects=40",
    "data.workers=1",
    "data.geometry.matrix=48",
    "data.geometry.pixel_mm=3.0",
    "data.geometry.n_slices=5",
    "data.geometry.slice_mm=16.0",
    "data.geometry.n_frames=8",
    "data.composition.hf_base_prevalence=0.5",
    "data.composition.hf_odds_ratio={}",
]
TINY_RUN = [
    "input.size=24",
    "input.workers=1",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "loader.batch_size=8",
    "fairness.n_boot=20",
]

# The tiny ControlNet trained for a few steps (task=controlnet_train)
TINY_DIFFUSION = [
    "task=controlnet_train",
    "diffusion.size=16",
    "input.size=${diffusion.size}",
    "diffusion.widths=[16,32]",
    "diffusion.batch_size=8",
    "diffusion.grid_every=4",
    "diffusion.checkpoint_every=2",
    "trainer.max_steps=6",
]

register_configs()


@pytest.fixture(scope="session")
def fairaug_home(tmp_path_factory) -> Path:
    """One home (cache of phantom cohorts and views) shared by the whole session."""
    return tmp_path_factory.mktemp("fairaug_home")


@pytest.fixture
def make_cfg(fairaug_home, tmp_path):
    """Compose the real config on the tiny phantom, writing into this test's tmp_path."""

    def make(*overrides: str):
        phantom = [] if any(o.startswith("data=") for o in overrides) else TINY_PHANTOM
        cfg = compose_config(
            [*phantom, *TINY_RUN, f"paths.home={fairaug_home}", f"paths.output_dir={tmp_path / 'run'}", *overrides]
        )
        OmegaConf.set_struct(cfg, True)
        validate_config(cfg)  # as the entry point does before a task runs
        return cfg

    return make


def unset(cfg, keys):
    """`cfg` with the settings `keys` missing: an attribute read raises, `.get` and
    `to_container` see None or "???" (so a test also compares what the run computed)."""
    for key in keys:
        OmegaConf.update(cfg, key, "???")
    return cfg


@pytest.fixture(scope="session")
def tiny_cohort(fairaug_home):
    """The tiny phantom's cohort table (generated once per session)."""
    from fairaug.data.sources import load_cohort

    cfg = compose_config([*TINY_PHANTOM, f"paths.home={fairaug_home}", "paths.output_dir=unused"])
    table, _ = load_cohort(cfg.data)
    return table


@pytest.fixture(scope="session")
def tiny_cohort_as_ukbb(tiny_cohort) -> list[str]:
    """Overrides that read the tiny phantom as real data: it is written in the UK Biobank layout."""
    root = Path(tiny_cohort.subject_dir[0]).parent
    return ["data=ukbb", f"data.root={root}", f"data.metadata={root / 'metadata.csv'}"]
