"""Running the experiment's stages (fairaug tasks) in this process, each in its own folder, and
reusing any stage an earlier, interrupted run of the experiment already finished with the same
inputs: its config, less what its task never reads, and the records of the stages it reads."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path

from omegaconf import OmegaConf

from fairaug.errors import ConfigError, OutputExists
from fairaug.io import write_json, write_text
from fairaug.run_folder import OWNER_FILE
from fairaug.runtime import RunDir

log = logging.getLogger(__name__)
DONE = "stage.json"  # written last: the stage finished, with the hash of its inputs
# What changes how a run shows its progress, never what it computes.
DISPLAY_ONLY = ("trainer.enable_progress_bar", "trainer.enable_model_summary")


def compose(overrides: list[str]):
    """The root config with `overrides`: through the running Hydra app's config search path
    when there is one (python -m fairaug task=pipeline), directly otherwise (tests, scripts)."""
    from hydra import compose as hydra_compose
    from hydra.core.global_hydra import GlobalHydra

    from fairaug.config import compose_config

    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name="config", overrides=overrides)
    return compose_config(overrides)


def whole_config_hash(cfg) -> str:
    """How records written before stages were named by their inputs (fairaug before 0c891a8) named
    one: its whole resolved config. Experiments made then are continued, not redone."""
    return hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest()[:16]


def _older(reads: Sequence[Path]) -> bool:
    """Whether every stage read is as an older experiment left it: a record that says when it
    finished was written since, by a stage redone, whose readers must run again."""
    return not any("finished" in json.loads((Path(folder) / DONE).read_text()) for folder in reads)


def unread_settings(task: str) -> tuple[str, ...]:
    """The settings a task declares it never reads (its module's UNREAD_SETTINGS; none: it reads all)."""
    return getattr(import_module(f"fairaug.tasks.{task}"), "UNREAD_SETTINGS", ())


def config_hash(cfg, reads: Sequence[Path] = ()) -> str:
    """A stage's inputs: its resolved config without the settings its task never reads or that only
    change the display, and the whole record of every stage folder in `reads` (whose outputs it
    reads: a stage redone, even under the same config, is another input, since its record says when)."""
    kept = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key in (*unread_settings(cfg.task.name), *DISPLAY_ONLY):
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(kept, parent) if parent else kept
        if node is not None and leaf in node:
            del node[leaf]
    upstream = [hashlib.sha256((Path(folder) / DONE).read_bytes()).hexdigest() for folder in reads]
    text = OmegaConf.to_yaml(kept) + json.dumps(upstream)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Stages:
    """Every stage gets the experiment's own overrides (the user's data, trainer, diffusion ...
    settings), then its own, and writes into `folder`."""

    def __init__(self, base: list[str]):
        self.base = list(base)

    def config(self, folder: Path, overrides: list[str]):
        return compose([*self.base, *overrides, f"paths.output_dir={folder}"])

    def started_with(self, folder: Path, overrides: list[str], resume: list[str]) -> bool:
        """Whether the interrupted run in `folder` was started with this stage's config: the config
        it saved (from whichever session saved it last), compared without the `resume` settings."""
        saved = RunDir(folder).config
        if not saved.is_file():
            return True
        configs = [OmegaConf.load(saved), self.config(folder, overrides)]
        for cfg in configs:
            for key in (override.split("=", 1)[0] for override in resume):
                OmegaConf.update(cfg, key, None, force_add=True)
        return config_hash(configs[0]) == config_hash(configs[1])

    def run(self, folder: Path, overrides: list[str], resume: Sequence[str] = (), reads: Sequence[Path] = ()) -> dict:
        """The stage's result, from its earlier run with the same inputs if there was one. `resume`:
        overrides that continue an interrupted stage without making it another stage; `reads`: the
        finished stage folders whose outputs it reads."""
        from fairaug.tasks.registry import run_task

        stage = self.config(folder, overrides)
        digest = config_hash(stage, reads)
        cfg = self.config(folder, [*overrides, *resume])
        done = Path(folder) / DONE
        earlier = None
        if done.is_file():
            earlier = done.read_text()
            record = json.loads(earlier)
            if record["config"] == digest or (record["config"] == whole_config_hash(stage) and _older(reads)):
                log.info("%s: finished earlier with the same inputs, reused", folder)
                if record["config"] != digest:  # an older record: from now on named by its inputs
                    write_json({**record, "config": digest}, done)
                return record["result"]
            log.warning(
                "%s: finished earlier with another config or from other stages' outputs, so it runs again unless "
                "its task refuses",
                folder,
            )
            done.unlink()  # a run that fails part-way must not leave the earlier record over its outputs
        before = _contents(folder) if earlier is not None else None
        log.info("== %s (%s)", folder, cfg.task.name)
        try:
            result = run_task(cfg)
        except BaseException as error:
            if earlier is None or _contents(folder) != before:
                raise
            write_text(earlier, done)  # the run failed before writing anything: the earlier result stands
            if isinstance(error, OutputExists):
                raise ConfigError(
                    f"{folder} finished earlier under another config (other overrides, another fairaug version, "
                    f"FAIRAUG_HOME or experiment folder: compare with the config saved there) or from a stage it "
                    "reads that was redone since, and its task will not redo it in place; rerun as it was made, or "
                    "write the experiment into a new folder"
                ) from error
            raise
        # when: a stage redone under the same config is another input of the stages that read it
        finished = datetime.now(timezone.utc).isoformat()
        write_json({"config": digest, "result": _plain(result), "finished": finished}, done)
        return _plain(result)


def _contents(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time (the run's lock file aside)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    stats = {path: path.stat() for path in folder.rglob("*") if path.is_file() and path.name != OWNER_FILE}
    return {str(path.relative_to(folder)): (stat.st_size, stat.st_mtime_ns) for path, stat in stats.items()}


def _plain(result) -> dict:
    """What of a task's result JSON can hold (numbers, strings, lists, mappings)."""
    return json.loads(json.dumps(result, default=lambda value: None))
