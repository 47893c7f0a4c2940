"""Typed schemas for the config groups users edit most.

Each YAML file in `fairaug/conf/data`, `conf/input`, `conf/split` and `conf/sampler` extends one
of these schemas, so a misspelt key or a wrong type is an error naming the key instead
of a silently ignored setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from fairaug.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # shipped inside the package, so a wheel runs


@dataclass
class SyntheticConfig:
    path: Optional[str] = None  # a synthetic dataset folder (manifest.csv + PNGs): added to the training split
    max_samples: Optional[int] = None  # use at most this many synthetic subjects (drawn with the seed)


@dataclass
class PlausibleConfig:
    """[low, high] of each recorded value; a subject outside is an error (or, with
    data.on_error=skip, left out and listed in skipped.csv), never a one-subject group."""

    age: list[float] = field(default_factory=lambda: [18.0, 110.0])  # years; adults (widen for paediatric data)
    bmi: list[float] = field(default_factory=lambda: [12.0, 80.0])  # kg/m²
    height_cm: list[float] = field(default_factory=lambda: [120.0, 230.0])  # where BMI is computed (ACDC, M&Ms)
    weight_kg: list[float] = field(default_factory=lambda: [25.0, 350.0])


@dataclass
class DataConfig:
    name: str = MISSING
    root: str = MISSING
    on_error: str = "raise"  # raise | skip (skipped subjects are logged with their reason)
    age_groups: str = "decade"  # decade | tertile
    use_real: bool = True  # false: train on the synthetic subjects only (validation and test stay real)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    plausible: PlausibleConfig = field(default_factory=PlausibleConfig)


@dataclass
class GeometryConfig:
    matrix: int = 96  # 173 mm field of view: the default 140 mm view crop stays inside it
    pixel_mm: float = 1.8
    n_slices: int = 9
    slice_mm: float = 10.0
    n_frames: int = 50  # UK Biobank's cine; ED is frame 0


@dataclass
class PhenotypesConfig:
    """Mixture of heart-failure phenotypes: base weights for a man in his 60s with BMI 25-30,
    multiplied per phenotype by odds ratios per subgroup (then renormalised)."""

    weights: dict[str, float] = field(default_factory=lambda: {"hfref": 0.4, "ischaemic": 0.35, "hfpef": 0.25})
    odds_ratio: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # conf/data/phantom.yaml sets them


@dataclass
class CompositionConfig:
    p_female: float = 0.5
    age_weights: dict[str, float] = field(default_factory=lambda: {"40s": 0.08, "50s": 0.22, "60s": 0.38, "70s": 0.32})
    bmi_mean: float = 27.0
    bmi_sd: float = 4.5
    hf_base_prevalence: float = 0.35
    hf_odds_ratio: dict[str, dict[str, float]] = field(default_factory=dict)
    phenotypes: PhenotypesConfig = field(default_factory=PhenotypesConfig)


@dataclass
class AppearanceConfig:
    """bSSFP signal and acquisition of the phantom images; tissue signals relative to blood = 1."""

    myocardium: float = 0.31
    fat: float = 0.85
    soft_tissue: float = 0.28
    liver: float = 0.38
    lung: float = 0.04
    breast: float = 0.55  # glandular tissue in women's anterior chest (fat around it is brighter)
    noise: float = 0.015  # Gaussian sigma of each Rician channel, relative to blood, at BMI 22
    noise_per_bmi: float = 0.04  # relative noise increase per BMI unit above 22 (body habitus)
    blur_px: float = 0.35  # in-plane point-spread sigma at BMI 22, pixels
    blur_per_bmi: float = 0.035  # added sigma per BMI unit above 22
    coil_falloff_mm: float = 180.0  # anterior coil array: signal falls by 1/e over this depth
    shading: float = 0.08  # amplitude of smooth coil-sensitivity ripples
    trabeculation_mm: float = 6.0  # depth of the trabecular layer at ED in a 25 mm cavity (scales with it)
    flow: float = 0.12  # amplitude of in-flow intensity variation in the blood pools
    misregistration_mm: float = 1.0  # SD of per-slice in-plane shifts (breath-hold mismatch); 0 = none
    rotation_sd_deg: float = 11.5  # SD of the heart's in-plane rotation (direction of the RV) between subjects
    rotation_female_deg: float = 8.0  # mean rotation of women's hearts against men's (a sex-linked position)


@dataclass
class PhantomDataConfig(DataConfig):
    name: str = "phantom"
    n_subjects: int = 400
    seed: int = 0
    workers: int = 2
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    composition: CompositionConfig = field(default_factory=CompositionConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)


@dataclass
class ColumnsConfig:
    """Metadata column names; null means: recognise our name or the UK Biobank field id."""

    subject_id: Optional[str] = None
    sex: Optional[str] = None
    age: Optional[str] = None
    birth_year: Optional[str] = None
    birth_month: Optional[str] = None
    visit_date: Optional[str] = None
    bmi: Optional[str] = None
    diagnosis: Optional[str] = None
    ed_frame: Optional[str] = None
    es_frame: Optional[str] = None


@dataclass
class UKBBDataConfig(DataConfig):
    name: str = "ukbb"
    metadata: str = MISSING
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)


@dataclass
class PublicDataConfig(DataConfig):
    """A public dataset read as distributed; `heart_failure` and `healthy` name the dataset's
    diagnosis groups of each label, every other group is excluded (listed in skipped.csv)."""

    heart_failure: list[str] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)


@dataclass
class ACDCDataConfig(PublicDataConfig):
    name: str = "acdc"
    heart_failure: list[str] = field(default_factory=lambda: ["DCM", "MINF"])
    healthy: list[str] = field(default_factory=lambda: ["NOR"])


@dataclass
class MnMsDataConfig(PublicDataConfig):
    name: str = "mnms"
    metadata: Optional[str] = None  # null: the one *.csv in data.root
    heart_failure: list[str] = field(default_factory=lambda: ["DCM"])
    healthy: list[str] = field(default_factory=lambda: ["NOR"])


@dataclass
class SunnybrookDataConfig(PublicDataConfig):
    name: str = "sunnybrook"
    metadata: Optional[str] = None  # null: scd_patientdata.csv found under data.root
    contours: Optional[str] = None  # null: the SCD_ManualContours folder found under data.root
    heart_failure: list[str] = field(default_factory=lambda: ["HF-I", "HF-NI"])
    healthy: list[str] = field(default_factory=lambda: ["N"])


@dataclass
class InputConfig:
    name: str = MISSING  # cine | volume | slice | frame | edes
    view: str = "sa"  # sa | la_4ch (cine and frame)
    size: int = 64  # output height and width, pixels
    crop_mm: float = 140.0  # square field of view around the heart, before resizing
    time_step: int = 2  # cine: keep every n-th frame
    frames: Optional[int] = None  # cine: resample to this many frames (needed when cine lengths differ)
    depth: int = 8  # volume: slices after resampling base to apex
    slice_index: Optional[int] = None  # slice/frame/edes/cine: null = mid-ventricular slice
    frame: str = "es"  # frame view: ed | es | <index>
    workers: int = 2  # processes that build the cache


@dataclass
class SplitConfig:
    seed: int = 0  # the yaml sets ${seed}; fix it to vary the seed of a run but keep its split
    test_size: float = 0.25
    val_size: float = 0.1
    n_splits: int = 5  # k-fold (when the top-level `fold` is set): the test set is fold `fold` of n_splits
    prevalence: dict[str, Optional[float]] = field(default_factory=lambda: {"train": None, "val": None, "test": None})


@dataclass
class SamplerConfig:
    name: str = MISSING  # random | label_balanced | group_balanced
    attributes: list[str] = field(default_factory=list)


def _required(key: str, what: str):
    raise ConfigError(f"this preset needs {key}=<{what}>; it was not given")


def compose_config(overrides=()) -> DictConfig:
    """The root config with `overrides`, composed as `python -m fairaug` would (for scripts and tests)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def register_configs() -> None:
    # `${required:key,what}` in a preset: unlike `???`, which a merge onto an existing null
    # silently drops, it refuses to resolve until the user sets the key.
    if not OmegaConf.has_resolver("required"):
        OmegaConf.register_new_resolver("required", _required)
    store = ConfigStore.instance()
    store.store(group="data", name="phantom_schema", node=PhantomDataConfig)
    store.store(group="data", name="ukbb_schema", node=UKBBDataConfig)
    store.store(group="data", name="acdc_schema", node=ACDCDataConfig)
    store.store(group="data", name="mnms_schema", node=MnMsDataConfig)
    store.store(group="data", name="sunnybrook_schema", node=SunnybrookDataConfig)
    store.store(group="input", name="input_schema", node=InputConfig)
    store.store(group="split", name="split_schema", node=SplitConfig)
    store.store(group="sampler", name="sampler_schema", node=SamplerConfig)
