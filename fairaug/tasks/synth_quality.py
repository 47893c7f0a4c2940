"""task=synth_quality: FID/KID per subgroup, memorisation and mask fidelity of a synthetic dataset.

The real images are those of the split the synthetic data was made on: the training split
(what the generator learned from) and the held-out validation and test splits (the floor
for FID/KID and the baseline for memorisation). Writes quality.md, quality.json,
fid_kid_by_group.csv, pairwise_kid_<attribute>.csv, memorisation.csv and closest_pairs.png.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from torch.utils.data import ConcatDataset

from fairaug.data.datamodule import CachedViewDataset, CohortDataModule
from fairaug.errors import ConfigError, DataError
from fairaug.quality.distribution import by_group, pairwise_kid
from fairaug.quality.features import InceptionFeatures, classifier_features, extract
from fairaug.quality.mask_fidelity import mask_fidelity
from fairaug.quality.memorisation import memorisation
from fairaug.quality.report import closest_pairs_figure, write_quality_report
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)
NEAR_CHANCE = 0.6  # a feature classifier below this test balanced accuracy has learned little


def _data_config(cfg):
    """The classifier's own data, view and split settings (its features expect them), or this
    run's with the edes view; either way with the synthetic dataset added."""
    quality = cfg.quality
    if quality.features == "classifier":
        if not quality.classifier:
            raise ConfigError("quality.features=classifier needs quality.classifier=<a task=classify run directory>")
        config = RunDir(quality.classifier).config
        if not config.is_file():
            raise ConfigError(f"quality.classifier: no config.yaml in {quality.classifier}")
        base = OmegaConf.load(config)
        if base.input.name != "edes":
            raise ConfigError(
                f"quality.classifier: {quality.classifier} was trained on input={base.input.name}; "
                "synthetic data has the edes view only"
            )
    elif cfg.input.name != "edes":
        raise ConfigError(
            f"task=synth_quality compares edes views (synthetic data has no other), not input={cfg.input.name}"
        )
    else:
        base = cfg
    return OmegaConf.merge(
        base, {"data": {"use_real": True, "synthetic": {"path": str(quality.synthetic), "max_samples": None}}}
    )


def _classifier_accuracy(quality) -> float | None:
    """The feature classifier's own test balanced accuracy (None for Inception); near chance,
    its features cannot tell real from synthetic apart either, whatever FID says."""
    if quality.features != "classifier":
        return None
    accuracy = float(json.loads(RunDir(quality.classifier).metrics.read_text())["balanced_accuracy"])
    if accuracy < NEAR_CHANCE:
        log.warning(
            "quality.classifier %s is near chance (test balanced accuracy %.2f): FID/KID in its features "
            "say little; train it longer or on more data",
            quality.classifier,
            accuracy,
        )
    return accuracy


def run(cfg) -> dict:
    quality = cfg.quality
    if not quality.synthetic:
        raise ConfigError("task=synth_quality needs quality.synthetic=<a task=synth_generate run directory>")
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = CohortDataModule.from_config(_data_config(cfg))
    data.prepare()
    train = data.datasets["train"].table
    real = train[train.origin == "real"].reset_index(drop=True)
    synthetic = train[train.origin == "synthetic"].reset_index(drop=True)
    held_out = pd.concat([data.datasets[s].table for s in ("val", "test")], ignore_index=True)
    for name, table in (("synthetic", synthetic), ("real training", real), ("real held-out", held_out)):
        if len(table) < 2:
            raise DataError(
                f"task=synth_quality: {len(table)} {name} image(s) (synthetic data: {quality.synthetic}); "
                "at least 2 are needed"
            )
    network = (
        classifier_features(Path(quality.classifier), data.input_shape)
        if quality.features == "classifier"
        else InceptionFeatures(quality.inception_weights)
    )

    real_f, real_img, real_masks = extract(network, CachedViewDataset(data.cache, real), "real training images")
    syn_f, syn_img, syn_masks = extract(network, CachedViewDataset(data.cache, synthetic), "synthetic images")
    # validation and test, each read from its own cache (split=external's cohorts have theirs)
    held_out_views = ConcatDataset([data.datasets["val"], data.datasets["test"]])
    held_f, held_img, _ = extract(network, held_out_views, "real held-out images")
    attributes = list(quality.attributes)
    settings = (int(quality.min_count), int(quality.kid_subset_size), int(cfg.seed))
    groups = by_group(real, real_f, synthetic, syn_f, held_out, held_f, attributes, *settings)
    pairwise = {a: pairwise_kid(real, real_f, synthetic, syn_f, a, *settings) for a in attributes if a != "label"}
    memorised, memo_summary = memorisation(real, real_img, held_img, synthetic, syn_img, float(quality.copy_quantile))
    fidelity = mask_fidelity(real_img, real_masks, syn_img, syn_masks, int(cfg.seed))
    header = {
        "synthetic": str(quality.synthetic),
        "features": str(quality.features),
        "classifier": quality.classifier,
        "feature_dim": int(real_f.shape[1]),
        "n_real_train": len(real),
        "n_held_out": len(held_out),
        "n_synthetic": len(synthetic),
        "feature_classifier_balanced_accuracy": _classifier_accuracy(quality),
    }
    write_quality_report(output_dir, header, groups, pairwise, memorised, memo_summary, fidelity, NEAR_CHANCE)
    closest_pairs_figure(
        memorised,
        dict(zip(synthetic.subject_id, syn_img)),
        dict(zip(real.subject_id, real_img)),
        memo_summary["threshold"],
        output_dir / "closest_pairs.png",
    )
    overall = groups.iloc[0]
    log.info(
        "FID %.2f (floor %.2f), KID %.4f (floor %.4f); %d of %d synthetic images flagged as possible copies; "
        "mask contrast ED %.2f (real %.2f); report: %s",
        overall.fid,
        overall.fid_floor,
        overall.kid,
        overall.kid_floor,
        memo_summary["n_flagged"],
        len(synthetic),
        fidelity["synthetic_ED"],
        fidelity["real_ED"],
        output_dir / "quality.md",
    )
    return {"fid": float(overall.fid), "kid": float(overall.kid), "n_flagged": memo_summary["n_flagged"], **fidelity}
