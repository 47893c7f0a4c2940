"""Train/val/test splits, stratified by label, seeded, optionally k-fold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from fairaug.errors import ConfigError, DataError
from fairaug.io import write_csv, write_json
from fairaug.runtime import RunDir

SPLITS = ("train", "val", "test")


def _stratified(ids: pd.Series, labels: pd.Series, size: float, seed: int, what: str):
    try:
        return train_test_split(ids, test_size=size, stratify=labels, random_state=seed)
    except ValueError as error:
        raise DataError(f"cannot split {len(ids)} subjects for split.{what}={size}: {error}") from error


def _with_prevalence(part: pd.DataFrame, prevalence: float | None, seed: int, name: str) -> pd.DataFrame:
    """Subsample the majority class so the split's heart-failure fraction is `prevalence`."""
    if prevalence is None:
        return part
    if not 0.0 < prevalence < 1.0:
        raise ConfigError(f"split.prevalence.{name} must be between 0 and 1, got {prevalence}")
    positives, negatives = part[part.label == 1], part[part.label == 0]
    keep_neg = int(round(len(positives) * (1 - prevalence) / prevalence))
    keep_pos = int(round(len(negatives) * prevalence / (1 - prevalence)))
    if keep_neg <= len(negatives):
        negatives = negatives.sample(keep_neg, random_state=seed)
    else:
        positives = positives.sample(min(keep_pos, len(positives)), random_state=seed)
    return pd.concat([positives, negatives]).sort_index()


def check_sizes(cfg, fold: int | None) -> None:
    """Refuse sizes that leave no training subjects instead of quietly shrinking one."""
    if fold is None:
        test, what = cfg.test_size, f"split.test_size={cfg.test_size}"
    else:
        if not 0 <= fold < cfg.n_splits:
            raise ConfigError(f"fold={fold} is outside split.n_splits={cfg.n_splits}")
        test, what = 1.0 / cfg.n_splits, f"one fold of split.n_splits={cfg.n_splits} ({1.0 / cfg.n_splits:.3g})"
    if test + cfg.val_size >= 1.0:
        raise ConfigError(
            f"{what} + split.val_size={cfg.val_size} = {test + cfg.val_size:.3g} leaves no training "
            "subjects; the two must sum to less than 1"
        )


def make_split(cohort: pd.DataFrame, cfg, seed: int, fold: int | None) -> pd.DataFrame:
    """A (subject_id, split) table; each subject in exactly one split. With a `fold`, the test
    set is that fold of a stratified `split.n_splits`-fold split; without, a `test_size` holdout."""
    check_sizes(cfg, fold)
    ids, labels = cohort.subject_id, cohort.label
    if fold is not None:
        folds = StratifiedKFold(n_splits=cfg.n_splits, shuffle=True, random_state=seed)
        try:
            rest, test = list(folds.split(ids, labels))[fold]
        except ValueError as error:
            raise DataError(f"cannot make {cfg.n_splits} stratified folds of {len(ids)} subjects: {error}") from error
        rest_ids, test_ids = ids.iloc[rest], ids.iloc[test]
    else:
        rest_ids, test_ids = _stratified(ids, labels, cfg.test_size, seed, "test_size")
    rest_labels = labels.loc[rest_ids.index]
    val_fraction = cfg.val_size / (1.0 - (cfg.test_size if fold is None else 1.0 / cfg.n_splits))
    _, val_ids = _stratified(rest_ids, rest_labels, val_fraction, seed, "val_size")  # the rest trains
    split = pd.Series("train", index=cohort.index)
    split[ids.isin(val_ids)] = "val"
    split[ids.isin(test_ids)] = "test"
    parts = []
    for name in SPLITS:
        part = cohort[split == name]
        parts.append(_with_prevalence(part, cfg.prevalence.get(name), seed, name).assign(split=name))
    table = pd.concat(parts)[["subject_id", "split"]].reset_index(drop=True)
    for name in SPLITS:
        members = table[table.split == name]
        if members.empty or cohort.set_index("subject_id").loc[members.subject_id].label.nunique() < 2:
            raise DataError(f"the {name} split has no subjects of one class; use a larger cohort or other sizes")
    return table


def external_split(parts: dict[str, pd.DataFrame], cfg, seed: int) -> pd.DataFrame:
    """A (subject_id, split) table of split=external: every subject of each cohort in its split
    (`parts`: split name -> cohort), less any `prevalence.<split>` subsampling."""
    table = pd.concat(
        _with_prevalence(part, cfg.prevalence.get(name), seed, name).assign(split=name) for name, part in parts.items()
    )
    for name, part in parts.items():
        if part.label.nunique() < 2:
            raise DataError(f"the {name} cohort of split=external has no subjects of one class")
    return table[["subject_id", "split"]].reset_index(drop=True)


def split_hash(split: pd.DataFrame) -> str:
    ids = {name: sorted(split.subject_id[split.split == name]) for name in SPLITS}
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def checkpoint_split(checkpoint: Path) -> str | None:
    """The split hash of the run a checkpoint (<run>/checkpoints/<name>.ckpt) comes from, or None
    where that run left no split.json. Read it before this run writes its own, which is the
    same file when a run continues in place."""
    record = RunDir.of_checkpoint(checkpoint).split_record
    return json.loads(record.read_text())["hash"] if record.is_file() else None


def save_split(split: pd.DataFrame, cohort: pd.DataFrame, folder: RunDir) -> str:
    """Write the run's split.csv and split.json (hash, sizes and prevalence per split)."""
    labelled = split.merge(cohort[["subject_id", "label"]], on="subject_id")
    write_csv(labelled, folder.split)
    digest = split_hash(split)
    summary = {
        "hash": digest,
        "splits": {
            name: {
                "n": int((labelled.split == name).sum()),
                "prevalence": float(labelled.label[labelled.split == name].mean()),
            }
            for name in SPLITS
        },
    }
    write_json(summary, folder.split_record)
    return digest
