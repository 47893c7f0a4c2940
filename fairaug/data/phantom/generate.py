"""Writes a phantom cohort in the UK Biobank layout, once per configuration.

The cohort folder is named by a hash of everything that shapes its content, so a config
maps to exactly one folder: generated on first use, reused afterwards. It is built in a
temporary sibling folder and renamed into place, so an interrupted run never leaves a
half-written cohort behind, and concurrent jobs of a sweep cannot corrupt each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from isal import igzip
from omegaconf import OmegaConf
from tqdm import tqdm

from fairaug.data.phantom.physiology import Composition, sample_subjects
from fairaug.data.phantom.render import Geometry, SubjectRenderer
from fairaug.errors import ConfigError
from fairaug.io import build_once, publish, staging_folder
from fairaug.processes import worker_pool
from fairaug.schemas import AppearanceConfig

log = logging.getLogger(__name__)

GENERATOR_VERSION = 6  # bump when the rendered content changes
METADATA_COLUMNS = ["subject_id", "sex", "age", "bmi", "diagnosis", "ed_frame", "es_frame"]


def phantom_spec(cfg) -> dict:
    """The content-defining part of a `data=phantom` config, as plain data."""
    if "appearance" not in cfg or "phenotypes" not in cfg.composition:
        raise ConfigError(
            "this data=phantom configuration was saved by an older fairaug (phantom generator "
            f"version 1, before heart-failure phenotypes); version {GENERATOR_VERSION} cannot "
            "regenerate that cohort: rerun the task (e.g. retrain the classifier) on the current phantom"
        )
    cells = cfg.composition.get("cells")  # absent from configs saved before cells existed
    composition = {
        "n_subjects": int(cfg.n_subjects) if cells is None else None,  # cells set the subjects
        "p_female": float(cfg.composition.p_female),
        "age_weights": _floats(cfg.composition.age_weights),
        "bmi_mean": float(cfg.composition.bmi_mean),
        "bmi_sd": float(cfg.composition.bmi_sd),
        "hf_base_prevalence": float(cfg.composition.hf_base_prevalence),
        "hf_odds_ratio": {k: _floats(v) for k, v in cfg.composition.hf_odds_ratio.items()},
        "phenotype_weights": _floats(cfg.composition.phenotypes.weights),
        "phenotype_odds_ratio": {
            phenotype: {k: _floats(v) for k, v in by_attribute.items()}
            for phenotype, by_attribute in cfg.composition.phenotypes.odds_ratio.items()
        },
    }
    if cells is not None:  # only then: the default cohort keeps its hash
        composition["cells"] = OmegaConf.to_container(cells)
    return {
        "version": GENERATOR_VERSION,
        "seed": int(cfg.seed),
        "geometry": {k: cfg.geometry[k] for k in ("matrix", "pixel_mm", "n_slices", "slice_mm", "n_frames")},
        "composition": composition,
        "appearance": {k: v if isinstance(v, bool) else float(v) for k, v in cfg.appearance.items()},
    }


def _floats(by_name) -> dict[str, float]:
    """As floats, so `=2` and `=2.0` (an int where nested, a float where not) name one cohort."""
    return {name: float(value) for name, value in by_name.items()}


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def _affine(pixel_mm: float, slice_mm: float) -> np.ndarray:
    return np.diag([pixel_mm, pixel_mm, slice_mm, 1.0])


def _write_subject(job: tuple[dict, dict, dict, int, str]) -> None:
    subject, geometry, appearance, seed, folder = job
    geo = Geometry(**geometry)
    renderer = SubjectRenderer(subject, geo, AppearanceConfig(**appearance), seed)
    cine, seg_ed, seg_es = renderer.short_axis()
    long_axis = renderer.long_axis_4ch()
    out = Path(folder) / subject["subject_id"]
    out.mkdir(parents=True)
    affine = _affine(geo.pixel_mm, geo.slice_mm)
    frame_s = 1.0 / geo.n_frames  # one heartbeat per second
    for name, array in (("sa", cine), ("la_4ch", long_axis), ("seg_sa_ED", seg_ed), ("seg_sa_ES", seg_es)):
        image = nib.Nifti1Image(array, affine)
        image.header.set_xyzt_units("mm", "sec")
        if array.ndim == 4:
            image.header.set_zooms((geo.pixel_mm, geo.pixel_mm, geo.slice_mm, frame_s))
        # ISA-L's gzip: the same .nii.gz, compressed about 7 times faster than zlib's level 1
        # (a third of the generation time otherwise; noisy cines hardly compress anyway).
        (out / f"{name}.nii.gz").write_bytes(igzip.compress(image.to_bytes(), compresslevel=1))


def generate(spec: dict, root: Path, workers: int) -> Path:
    """Build the cohort described by `spec` under `root` unless it exists; return its folder."""
    target = Path(root) / f"phantom-{spec_hash(spec)}"
    build_once(target, "metadata.csv", lambda: _build(spec, target, workers))
    return target


def _build(spec: dict, target: Path, workers: int) -> None:
    staging = staging_folder(target)
    comp = Composition(**spec["composition"])
    geometry = spec["geometry"]
    cohort = sample_subjects(comp, geometry["n_frames"], spec["seed"])
    log.info("Generating phantom cohort of %d subjects into %s", len(cohort), target)
    seeds = np.random.SeedSequence(spec["seed"]).spawn(len(cohort))
    jobs = [
        (row, geometry, spec["appearance"], int(s.generate_state(1)[0]), str(staging))
        for row, s in zip(cohort.to_dict("records"), seeds)
    ]
    try:
        staging.mkdir()
        progress = {"total": len(jobs), "desc": "phantom", "unit": "subject"}
        if workers > 1:
            with worker_pool(workers) as pool:
                list(tqdm(pool.map(_write_subject, jobs, chunksize=8), **progress))
        else:
            for job in tqdm(jobs, **progress):
                _write_subject(job)
        cohort[METADATA_COLUMNS].to_csv(staging / "metadata.csv", index=False)
        cohort.drop(columns=["age_group", "bmi_group"]).to_csv(staging / "physiology.csv", index=False)
        (staging / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
        publish(staging, target, "metadata.csv")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
