"""task=pipeline: the capstone experiment. Does fairness-aware augmentation make the classifier
fairer, and how much of what perfect extra data would give does it recover?

Per scenario and training set: the ControlNet trained on that training set, its synthetic
datasets (copy, balance, shuffled prompts, and balance at other doses), the non-diffusion
additions (classical augmentation; on the built-in cohort new real subjects: the oracle at each
dose and its control), then every arm's classifiers over the seeds, all with the same number of
optimizer steps, selected on validation worst-group balanced accuracy and scored on the same
test subjects. Then quality of training set 0's synthetic data and report.md. Stages run in this
process, each in its own folder, and a rerun reuses every stage finished with the same inputs.
A part of the design (task.only_training_sets) builds only its training sets' stages, in
task.experiment_dir, so parts can run at once; the whole design run there writes the report.

Folder: <scenario>/train<r>/{controlnet, added/<addition>, arms/<arm>/seed<k>, quality/<addition>},
predictions.csv (every run's test predictions, long), runs.csv (a row per run), report.md, figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from fairaug.config import dotted_leaves
from fairaug.data.augment import classical_augment
from fairaug.data.datamodule import CohortDataModule
from fairaug.data.sources import cohort_identity
from fairaug.diffusion.planning import balance_counts, scaled_counts
from fairaug.errors import ConfigError
from fairaug.experiment.additions import augment_real_subjects, draw_real_subjects
from fairaug.experiment.arms import DIFFUSION_ADDITIONS, Arm, chosen_arms, is_generated
from fairaug.experiment.report import write_experiment_report
from fairaug.experiment.stages import Stages
from fairaug.io import write_csv
from fairaug.runtime import RunDir, start_run

log = logging.getLogger(__name__)
BUILT_IN = "phantom"  # the one source that can draw new real subjects


def run(cfg, overrides: list[str] | None = None) -> dict:
    """`overrides`: what every stage gets (default: this command line's, less the pipeline's own)."""
    task = cfg.task
    parts = _parts(task)
    built_in = cfg.data.name == BUILT_IN
    if not built_in and cfg.split.name == "external":
        raise ConfigError(
            "task=pipeline on real data makes its training sets as other splits of one cohort (split.seed=0, 1, "
            "...); with split.name=external every training set would be the same whole cohort: use split=default"
        )
    arms, left_out = chosen_arms(list(task.arms), list(task.doses), built_in)
    scenarios = _scenarios(task, built_in)
    folder = start_run(cfg)
    # absolute, as Hydra makes a run folder: the stage paths are part of every stage's config
    experiment = Path(os.path.abspath(task.experiment_dir)) if task.experiment_dir else folder.path
    stages = Stages(_user_overrides() if overrides is None else overrides)
    runs = []
    for scenario, changes in scenarios.items():
        for r in parts:
            training_set = TrainingSet(stages, experiment / scenario / f"train{r}", r, built_in, changes, cfg)
            runs += training_set.run(arms, scenario)
    if len(parts) < int(task.training_sets):
        log.info(
            "Training set(s) %s finished under %s; the report comes from the whole design run there "
            "(without task.only_training_sets), which reuses every finished stage",
            parts,
            experiment,
        )
        return {}
    runs = pd.DataFrame(runs)
    write_csv(runs, folder.path / "runs.csv")
    predictions = pd.concat([_predictions(row) for row in runs.itertuples()], ignore_index=True)
    write_csv(predictions, folder.path / "predictions.csv")
    summary = write_experiment_report(folder.path, runs, predictions, arms, left_out, cfg)
    log.info("Experiment report: %s", folder.path / "report.md")
    return summary


def _parts(task) -> list[int]:
    """The training sets this run builds: all, or the part of the design named by only_training_sets
    (parts of one experiment can run at the same time, each in its own run folder, sharing
    task.experiment_dir)."""
    n, named = int(task.training_sets), task.only_training_sets
    if named is None:
        return list(range(n))
    named = list(named) if OmegaConf.is_list(named) else [named]  # a sweep over =0,1,... gives one number
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in named):
        raise ConfigError(f"task.only_training_sets: {named} are not all training set indices (0 to {n - 1})")
    parts = sorted(set(named))
    if not parts:
        raise ConfigError(f"task.only_training_sets is empty: name training sets (0 to {n - 1}), or null for all")
    outside = [r for r in parts if not 0 <= r < n]
    if outside:
        raise ConfigError(f"task.only_training_sets: {outside} not among the {n} training sets (0 to {n - 1})")
    return parts


def _scenarios(task, built_in: bool) -> dict[str, list[str]]:
    known = task.scenario_changes
    unknown = [name for name in task.scenarios if name not in known]
    if unknown:
        raise ConfigError(f"task.scenarios: unknown scenario(s) {unknown}; known: {list(known)}")
    if not built_in and list(task.scenarios) != ["default"]:
        raise ConfigError("task.scenarios other than [default] are variants of the built-in cohort (data=phantom)")
    return {
        name: [f"++data.{key}={_value(value)}" for key, value in dotted_leaves(OmegaConf.to_container(known[name]))]
        for name in task.scenarios
    }


def _value(value) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _user_overrides() -> list[str]:
    """The command line's overrides, less the pipeline's own (task.*) and those each stage sets."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    own = ("task", "seed", "hydra", "paths.output_dir")
    return [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(own)]


@dataclass
class TrainingSet:
    """One training set of one scenario: its generator, additions and every arm's runs."""

    stages: Stages
    path: Path
    index: int
    built_in: bool
    scenario: list[str]
    cfg: object

    @property
    def data(self) -> list[str]:
        """Which training set: another cohort of the built-in generator (scored on split=external's
        fixed cohorts), or another split of a real cohort."""
        if self.built_in:
            return [*self.scenario, f"data.seed={int(self.cfg.data.seed) + self.index}", "split=external"]
        return [f"split.seed={self.index}"]

    def classify(self, extra: list[str]) -> list[str]:
        return ["task=classify", "input=edes", "input.size=${diffusion.size}", *self.data, *extra]

    def run(self, arms: list[Arm], scenario: str) -> list[dict]:
        task = self.cfg.task
        real = CohortDataModule.from_config(self.stages.config(self.path / "arms", self.classify([])))
        real.prepare()
        training = real.datasets["train"]
        steps = [f"sampler.samples_per_epoch={len(training)}", "task.selection.metric=worst_group_balanced_accuracy"]
        added = self.additions({arm.added for arm in arms if arm.added}, training, real)
        runs = []
        for arm in arms:
            n_added = _added_count(added.get(arm.added))
            extra = [f"sampler={arm.sampler}", *steps]
            if arm.added:
                extra += [f"data.synthetic.path={added[arm.added]}", f"data.use_real={str(arm.use_real).lower()}"]
                if arm.use_real:
                    extra.append(f"sampler.added_fraction={float(task.added_fraction)}")
            reads = [added[arm.added]] if arm.needs_diffusion else []  # a stage; the others are named by content
            for seed in range(int(task.seeds)):
                out = self.path / "arms" / arm.name / f"seed{seed}"
                self.stages.run(out, [*self.classify(extra), f"seed={seed}"], reads=reads)
                runs.append(
                    {
                        "scenario": scenario,
                        "arm": arm.name,
                        "training_set": self.index,
                        "seed": seed,
                        "run": str(out),
                        "dose": arm.dose,
                        "added": n_added,
                        "n_train_real": len(training),
                    }
                )
        if task.quality and self.index == 0:
            self.quality(added, self.path / "arms" / "real_only" / "seed0")
        return runs

    def additions(self, needed: set[str], training, real: CohortDataModule) -> dict[str, Path]:
        """Every addition an arm needs, built unless complete."""
        task, gen = self.cfg.task, self.cfg.generation
        folders = {name: self.path / "added" / name for name in needed}
        diffusion = {name for name in needed if is_generated(name)}
        if diffusion:
            model = self.controlnet()
            for name in sorted(diffusion):
                kind, _, dose = name.partition("@")
                settings = {
                    "copy": ["generation=copy"],
                    "balance": ["generation=balance", f"generation.dose={dose or 1}"],
                    "shuffled": ["generation=balance", "generation.shuffle_attributes=true"],
                }[kind]
                self.stages.run(
                    folders[name],
                    ["task=synth_generate", *self.data, *settings, f"generation.model={model}"],
                    reads=[model],
                )
        table = training.table[training.table.origin == "real"]
        counts = balance_counts(table, gen.max_samples, gen.fill_empty_cells)
        # every training set's draws (oracle, control, augmentation) on seeds of their own
        seed = int(task.oracle_seed) + 2 * (int(self.cfg.data.get("seed", 0)) + self.index)
        for name in sorted(needed - diffusion):
            kind, _, dose = name.partition("@")
            # named by what they hold: another design (counts, seed, data, view) builds another folder,
            # and the classify stages that read it see another config
            spec = [
                name,
                seed,
                counts.to_dict("list"),
                cohort_identity(real.data_cfg),
                OmegaConf.to_container(real.view_cfg, resolve=True),
            ]
            folders[name] = folders[name].with_name(f"{name}-{_digest(spec)}")
            if kind == "classical":
                augment_real_subjects(folders[name], training, counts, seed, classical_augment)
            elif kind == "oracle":
                dosed = scaled_counts(counts, float(dose or 1))
                draw_real_subjects(folders[name], real.data_cfg, real.view_cfg, seed, counts=dosed)
            elif kind == "oracle_control":
                n = int(counts.generate.sum())
                draw_real_subjects(folders[name], real.data_cfg, real.view_cfg, seed + 1, n=n)
        return folders

    def controlnet(self) -> Path:
        folder = self.path / "controlnet"
        stage, resume = ["task=controlnet_train", *self.data, f"seed={self.index}"], []
        if RunDir(folder).last_checkpoint.is_file() and not (folder / "model" / "fairaug.json").is_file():
            resume = [f"diffusion.resume={folder}"]  # an interrupted training continues
            if not self.stages.started_with(folder, stage, resume):
                raise ConfigError(
                    f"{folder} holds an interrupted ControlNet training started under another config (saved in "
                    f"{RunDir(folder).config}); rerun as it was started, or write the experiment into a new folder"
                )
        self.stages.run(folder, stage, resume)
        return folder

    def quality(self, added: dict[str, Path], classifier: Path) -> None:
        for name in DIFFUSION_ADDITIONS:
            if name in added:
                self.stages.run(
                    self.path / "quality" / name,
                    [
                        "task=synth_quality",
                        *self.data,
                        f"quality.synthetic={added[name]}",
                        f"quality.classifier={classifier}",
                    ],
                    reads=[added[name], classifier],
                )


def _digest(spec) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _added_count(folder: Path | None) -> int:
    if folder is None:
        return 0
    return len(pd.read_csv(Path(folder) / "manifest.csv", usecols=["subject_id"]))


def _predictions(run) -> pd.DataFrame:
    """A run's test predictions in the long form the statistics read."""
    table = pd.read_csv(Path(run.run) / "predictions.csv", dtype={"subject_id": str})
    table = table.rename(columns={"pred": "prediction", "prob": "probability"})
    return table.assign(scenario=run.scenario, arm=run.arm, training_set=run.training_set, seed=run.seed)
