"""Typed schemas of every config group: types, choices and ranges.

Each YAML file of a group in `fairaug/conf` extends one of these schemas, so a misspelt key or a
wrong type is refused by Hydra with the key named. Choices and ranges live in each field's
metadata (`one_of`, `at_least`, `above`, `between`) and `fairaug.config.validate_config` checks
them before a task runs. Choices are strings, not Enums: several (`32-true`, `dpm++`) are not
Python identifiers, and OmegaConf matches Enums by member name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

INPUTS = ("cine", "volume", "slice", "frame", "edes")
SAMPLERS = ("random", "label_balanced", "group_balanced")
SCHEDULERS = ("ddim", "dpm++", "unipc")
GENERATION_MODES = ("copy", "random_prompt", "balance")
DTYPES = ("float32", "bfloat16", "float16")
QUALITY_FEATURES = ("classifier", "inception")
ON_ERROR = ("raise", "skip")
AGE_GROUPS = ("decade", "tertile")
LOGGERS = ("csv", "tensorboard", "wandb")
PRECISIONS = (
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
    "32-true",
    "64-true",
    "64",
    "32",
    "16",
    "bf16",
    "transformer-engine",
    "transformer-engine-float16",
)  # Lightning's accepted values
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _default(default) -> dict:
    if isinstance(default, (list, dict)):
        return {"default_factory": lambda: type(default)(default)}
    return {"default": default}


def one_of(default, choices: tuple) -> Any:
    return field(**_default(default), metadata={"choices": choices})


def at_least(default, low: float) -> Any:
    """A number (or each number of a list) not below `low`."""
    return field(**_default(default), metadata={"low": low})


def above(default, low: float) -> Any:
    return field(**_default(default), metadata={"low": low, "open_low": True})


def between(default, low: float, high: float, open_low: bool = False, open_high: bool = False) -> Any:
    return field(**_default(default), metadata={"low": low, "high": high, "open_low": open_low, "open_high": open_high})


@dataclass
class SyntheticConfig:
    path: Optional[str] = None  # a synthetic dataset folder (manifest.csv + PNGs): added to the training split
    max_samples: Optional[int] = at_least(None, 0)  # use at most this many synthetic subjects (drawn with the seed)


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
    on_error: str = one_of("raise", ON_ERROR)  # skip: skipped subjects are logged with their reason
    age_groups: str = one_of("decade", AGE_GROUPS)
    use_real: bool = True  # false: train on the synthetic subjects only (validation and test stay real)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    plausible: PlausibleConfig = field(default_factory=PlausibleConfig)


@dataclass
class GeometryConfig:
    matrix: int = at_least(96, 16)  # 173 mm field of view: the default 140 mm view crop stays inside it
    pixel_mm: float = above(1.8, 0)
    n_slices: int = at_least(9, 1)
    slice_mm: float = above(10.0, 0)
    n_frames: int = at_least(50, 2)  # UK Biobank's cine; ED is frame 0


@dataclass
class PhenotypesConfig:
    """Mixture of heart-failure phenotypes: base weights for a man in his 60s with BMI 25-30,
    multiplied per phenotype by odds ratios per subgroup (then renormalised)."""

    weights: dict[str, float] = field(default_factory=lambda: {"hfref": 0.4, "ischaemic": 0.35, "hfpef": 0.25})
    odds_ratio: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # conf/data/phantom.yaml sets them


@dataclass
class CellConfig:
    """`count` phantom subjects of one label, sex, age decade ('60s') and BMI group ('normal')."""

    label: int = MISSING
    sex: str = MISSING
    age_group: str = MISSING
    bmi_group: str = MISSING
    count: int = MISSING


@dataclass
class CompositionConfig:
    p_female: float = between(0.5, 0, 1)
    age_weights: dict[str, float] = field(default_factory=lambda: {"40s": 0.08, "50s": 0.22, "60s": 0.38, "70s": 0.32})
    bmi_mean: float = above(27.0, 0)
    bmi_sd: float = at_least(4.5, 0)
    hf_base_prevalence: float = between(0.35, 0, 1, open_low=True, open_high=True)
    hf_odds_ratio: dict[str, dict[str, float]] = field(default_factory=dict)
    phenotypes: PhenotypesConfig = field(default_factory=PhenotypesConfig)
    cells: Optional[list[CellConfig]] = None  # null: sample the population; else exactly these subjects


@dataclass
class AppearanceConfig:
    """bSSFP signal and acquisition of the phantom images; tissue signals relative to blood = 1."""

    myocardium: float = at_least(0.33, 0)
    fat: float = at_least(0.85, 0)
    soft_tissue: float = at_least(0.28, 0)
    liver: float = at_least(0.38, 0)
    lung: float = at_least(0.04, 0)
    breast: float = at_least(0.55, 0)  # glandular tissue in women's anterior chest (fat around it is brighter)
    fat_opposed_phase: bool = True  # bSSFP at TE = TR/2: a pixel holding fat and water cancels (dark edges)
    noise: float = at_least(0.015, 0)  # Gaussian sigma of each Rician channel, relative to blood, at BMI 22
    noise_per_bmi: float = at_least(0.04, 0)  # relative noise increase per BMI unit above 22 (body habitus)
    blur_px: float = at_least(0.35, 0)  # in-plane point-spread sigma at BMI 22, pixels
    blur_per_bmi: float = at_least(0.035, 0)  # added sigma per BMI unit above 22
    coil_falloff_mm: float = above(180.0, 0)  # anterior coil array: signal falls by 1/e over this depth
    shading: float = at_least(0.08, 0)  # amplitude of smooth coil-sensitivity ripples
    trabeculation_mm: float = at_least(6.0, 0)  # depth of the trabecular layer at ED in a 25 mm cavity
    flow: float = at_least(0.12, 0)  # amplitude of in-flow intensity variation in the blood pools
    misregistration_mm: float = at_least(1.0, 0)  # SD of per-slice in-plane shifts (breath-hold mismatch); 0 = none
    rotation_sd_deg: float = at_least(11.5, 0)  # SD of the heart's in-plane rotation (direction of the RV)
    rotation_female_deg: float = between(8.0, -180, 180)  # mean rotation of women's hearts against men's


@dataclass
class PhantomDataConfig(DataConfig):
    name: str = "phantom"
    n_subjects: int = at_least(400, 1)
    seed: int = at_least(0, 0)
    workers: int = at_least(2, 1)
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
    name: str = one_of(MISSING, INPUTS)
    view: str = one_of("sa", ("sa", "la_4ch"))  # la_4ch: cine and frame
    size: int = at_least(64, 8)  # output height and width, pixels
    crop_mm: float = above(140.0, 0)  # square field of view around the heart, before resizing
    time_step: int = at_least(2, 1)  # cine: keep every n-th frame
    frames: Optional[int] = at_least(None, 1)  # cine: resample to this many frames (needed when cine lengths differ)
    depth: int = at_least(8, 1)  # volume: slices after resampling base to apex
    slice_index: Optional[int] = None  # slice/frame/edes/cine: null = mid-ventricular slice
    frame: str = "es"  # frame view: ed | es | <index>
    workers: int = at_least(2, 1)  # processes that build the cache


@dataclass
class SplitConfig:
    name: str = one_of("holdout", ("holdout", "external"))
    seed: int = at_least(0, 0)  # the yaml sets ${seed}; fix it to vary the seed of a run but keep its split
    test_size: float = between(0.25, 0, 1, open_low=True, open_high=True)
    val_size: float = between(0.1, 0, 1, open_low=True, open_high=True)
    n_splits: int = at_least(5, 2)  # k-fold (when the top-level `fold` is set): the test set is fold `fold`
    prevalence: dict[str, Optional[float]] = field(default_factory=lambda: {"train": None, "val": None, "test": None})
    val: Optional[dict[str, Any]] = None  # split=external: the validation cohort, `data` with these changes
    test: Optional[dict[str, Any]] = None  # split=external: the test cohort, `data` with these changes


@dataclass
class SamplerConfig:
    name: str = one_of(MISSING, SAMPLERS)
    attributes: list[str] = field(default_factory=list)
    samples_per_epoch: Optional[int] = at_least(None, 1)  # null: one per training subject
    added_fraction: Optional[float] = between(None, 0, 1, open_high=True)  # null: added subjects pooled with real


@dataclass
class ModelConfig:
    name: str = MISSING  # the zoo refuses an unknown name, listing the known ones
    weights: Optional[str] = None  # imagenet (torchvision's local cache) or a local file
    dropout: float = between(0.0, 0, 1, open_high=True)
    lr: float = above(1.0e-4, 0)
    weight_decay: float = at_least(1.0e-4, 0)


@dataclass
class SmallCNNConfig(ModelConfig):
    name: str = "small_cnn"
    width: int = at_least(16, 1)


@dataclass
class TrainerConfig:
    """The settings fairaug presets for lightning.Trainer. The group stays open (any other Trainer
    argument: +trainer.<arg>=<value>), so this schema checks the keys it knows and is not
    registered with Hydra."""

    max_epochs: Optional[int] = at_least(12, -1)  # -1: no limit (then max_steps bounds training)
    min_epochs: Optional[int] = at_least(1, 0)
    max_steps: int = at_least(-1, -1)
    accelerator: Optional[str] = one_of("auto", ACCELERATORS)
    devices: Any = "auto"
    precision: Optional[str] = one_of("32-true", PRECISIONS)
    gradient_clip_val: Optional[float] = at_least(None, 0)
    accumulate_grad_batches: int = at_least(1, 1)
    check_val_every_n_epoch: Optional[int] = at_least(1, 1)
    log_every_n_steps: int = at_least(10, 1)
    limit_train_batches: Any = at_least(None, 0)  # a count (int) or a fraction (float), as Lightning reads it
    limit_val_batches: Any = at_least(None, 0)
    limit_test_batches: Any = at_least(None, 0)
    num_sanity_val_steps: int = at_least(0, -1)
    deterministic: Any = one_of("warn", (True, False, "warn"))
    enable_progress_bar: bool = True
    enable_model_summary: bool = False
    fast_dev_run: Any = False


@dataclass
class LoaderConfig:
    batch_size: int = at_least(16, 1)
    num_workers: int = at_least(0, 0)


@dataclass
class RootConfig:
    """The top-level settings beside the groups (checked, not registered: task configs add keys)."""

    seed: int = between(0, 0, 2**32 - 1)  # numpy's seed range
    fold: Optional[int] = at_least(None, 0)
    threads: Optional[int] = at_least(None, 1)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass
class LoggerConfig:
    name: str = one_of(MISSING, LOGGERS)


@dataclass
class WandbLoggerConfig(LoggerConfig):
    name: str = "wandb"
    project: str = "fairaug"
    entity: Optional[str] = None
    mode: str = one_of("offline", ("online", "offline", "disabled"))
    group: Optional[str] = None  # null: jobs of a sweep are grouped by their sweep folder
    log_predictions: bool = False
    log_subject_ids: bool = False
    log_paths: bool = False


@dataclass
class FairnessConfig:
    attributes: list[str] = field(default_factory=lambda: ["sex", "age_group", "bmi_group"])
    intersections: list[list[str]] = field(default_factory=list)
    n_boot: int = at_least(100, 0)
    ci: float = between(0.95, 0, 1, open_high=True)
    min_count: int = at_least(5, 1)


@dataclass
class QualityConfig:
    synthetic: Optional[str] = None
    features: str = one_of("classifier", QUALITY_FEATURES)
    classifier: Optional[str] = None
    inception_weights: Optional[str] = None
    attributes: list[str] = field(default_factory=lambda: ["label", "sex", "age_group", "bmi_group"])
    min_count: int = at_least(10, 2)
    kid_subset_size: int = at_least(50, 2)
    copy_quantile: float = between(0.01, 0, 1)


@dataclass
class DiffusionConfig:
    name: str = MISSING
    size: int = at_least(32, 8)
    init_seed: int = at_least(0, 0)
    lr: float = above(1.0e-3, 0)
    steps: int = at_least(1500, 1)
    batch_size: int = at_least(16, 1)
    train_base: bool = True
    gradient_checkpointing: bool = False
    prompt_template: str = "{sex}, age in {age_group}, {bmi_group} BMI, {diagnosis}"
    prompt_dropout: float = between(0.1, 0, 1, open_high=True)
    max_weight_ratio: float = at_least(10.0, 1)
    grid_every: int = at_least(500, 0)
    checkpoint_every: int = at_least(250, 1)
    resume: Optional[str] = None


@dataclass
class TinyDiffusionConfig(DiffusionConfig):
    name: str = "tiny"
    widths: list[int] = at_least([32, 64, 64], 8)
    layers_per_block: int = at_least(1, 1)
    text_dim: int = at_least(32, 1)


@dataclass
class StableDiffusionConfig(DiffusionConfig):
    name: str = "sd21"
    pretrained: Optional[str] = MISSING  # a local diffusers-format Stable Diffusion 2.1 folder


@dataclass
class AppConfig:
    host: str = "127.0.0.1"
    port: int = between(7860, 1, 65535)
    output: Optional[str] = None


@dataclass
class GenerationConfig:
    mode: str = one_of(MISSING, GENERATION_MODES)
    model: Optional[str] = None
    output: Optional[str] = None
    per_sample_multiplier: int = at_least(1, 1)
    num_samples: int = at_least(100, 1)
    max_samples: int = at_least(500, 0)
    fill_empty_cells: bool = False
    shuffle_attributes: bool = False
    dose: float = above(1.0, 0)  # balance: this many times the planner's counts per cell
    scheduler: str = one_of("ddim", SCHEDULERS)
    steps: int = at_least(25, 1)
    guidance_scale: float = at_least(2.0, 0)
    negative_prompt: str = ""
    control_scale: float = at_least(1.0, 0)
    seed: int = at_least(0, 0)
    dtype: str = one_of("float32", DTYPES)
    batch_size: int = at_least(16, 1)
