import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.errors import ConfigCompositionException

from fairaug.errors import ConfigError
from fairaug.fairness.predictions import PREDICTION_COLUMNS
from fairaug.quality.features import classifier_features
from fairaug.tasks import classify, montage
from tests.conftest import unset

VIEWS = [
    ("cine", "small_cnn"),
    ("volume", "small_cnn"),
    ("slice", "small_cnn"),
    ("frame", "small_cnn"),
    ("edes", "small_cnn"),
    ("edes", "resnet18"),
]


@pytest.mark.parametrize("view,model", VIEWS)
def test_classify_end_to_end(make_cfg, view, model):
    cfg = make_cfg(f"input={view}", f"model={model}")
    metrics = classify.run(cfg)
    out = Path(cfg.paths.output_dir)
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == PREDICTION_COLUMNS
    split = pd.read_csv(out / "split.csv")
    assert set(predictions.subject_id) == set(split.subject_id[split.split == "test"])
    assert predictions.prob.between(0, 1).all() and set(predictions.pred) <= {0, 1}
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("balanced_accuracy", "auroc", "accuracy", "f1", "precision", "recall", "specificity"):
        assert 0.0 <= saved[key] <= 1.0
    assert saved == pytest.approx(metrics)
    assert (out / "checkpoints" / "best.ckpt").exists() and (out / "config.yaml").exists()
    assert (out / "logs" / "metrics.csv").exists()


def test_same_config_same_numbers(make_cfg, tmp_path):
    first = classify.run(make_cfg("input=slice", f"paths.output_dir={tmp_path / 'a'}"))
    second = classify.run(make_cfg("input=slice", f"paths.output_dir={tmp_path / 'b'}"))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "predictions.csv"), pd.read_csv(tmp_path / "b" / "predictions.csv")
    )
    assert first["balanced_accuracy"] == second["balanced_accuracy"]


def test_classify_never_reads_the_settings_it_declares_unread(make_cfg, tmp_path):
    """What lets the pipeline keep the classifier runs when only generator or quality settings change."""
    classify.run(make_cfg("input=slice", f"paths.output_dir={tmp_path / 'a'}"))
    classify.run(unset(make_cfg("input=slice", f"paths.output_dir={tmp_path / 'b'}"), classify.UNREAD_SETTINGS))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "predictions.csv"), pd.read_csv(tmp_path / "b" / "predictions.csv")
    )


def test_threads_fix_the_cpu_thread_count_a_run_computes_with(make_cfg, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = classify.run(make_cfg("input=slice", "threads=1", f"paths.output_dir={tmp_path / 'a'}"))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)  # another machine's default: the setting, not the machine, decides
        second = classify.run(make_cfg("input=slice", "threads=1", f"paths.output_dir={tmp_path / 'b'}"))
        assert torch.get_num_threads() == 1 and first["balanced_accuracy"] == second["balanced_accuracy"]
    finally:
        torch.set_num_threads(before)


def test_a_rerun_keeps_only_its_checkpoint_and_later_tasks_load_the_recorded_one(make_cfg):
    cfg = make_cfg("input=edes")
    classify.run(cfg)
    classify.run(cfg)  # e.g. a killed run rerun into its folder
    out = Path(cfg.paths.output_dir)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    # synth_quality's feature extractor loads the recorded checkpoint, whatever its name
    tested = out / "checkpoints" / "tested.ckpt"
    (out / "checkpoints" / "best.ckpt").rename(tested)
    (out / "metrics.json").write_text(json.dumps({**metrics, "best_checkpoint": "checkpoints/tested.ckpt"}))
    features = classifier_features(out, (3, 24, 24))
    state = torch.load(tested, map_location="cpu", weights_only=True)["state_dict"]
    for name, weights in features.net.state_dict().items():
        assert torch.equal(weights, state[f"net.{name}"])
    torch.save({"state_dict": {}}, out / "checkpoints" / "tested.ckpt")  # replaced by a rerun that did not finish
    with pytest.raises(ConfigError, match="is not the checkpoint .* records as tested"):
        classifier_features(out, (3, 24, 24))
    tested.unlink()
    with pytest.raises(ConfigError, match="tested.ckpt, the checkpoint .* records as tested, is missing"):
        classifier_features(out, (3, 24, 24))
    (out / "metrics.json").unlink()
    with pytest.raises(ConfigError, match="no metrics.json"):
        classifier_features(out, (3, 24, 24))


def test_la_4ch_cine(make_cfg):
    metrics = classify.run(make_cfg("input=cine", "input.view=la_4ch", "trainer.max_epochs=1"))
    assert metrics["n_test"] > 0


def test_metrics_match_a_direct_computation(make_cfg):
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    cfg = make_cfg("input=edes", "trainer.max_epochs=2")
    metrics = classify.run(cfg)
    predictions = pd.read_csv(Path(cfg.paths.output_dir) / "predictions.csv")
    direct = balanced_accuracy_score(predictions.label, predictions.pred)
    assert metrics["balanced_accuracy"] == pytest.approx(direct, abs=1e-6)
    assert metrics["auroc"] == pytest.approx(roc_auc_score(predictions.label, predictions.prob), abs=1e-4)


@pytest.mark.parametrize(
    "override,message",
    [
        ("input=cin", "input"),
        ("data.n_subject=10", "n_subject"),
        ("trainer.max_epoch=1", "max_epoch"),
        ("sampler.attributes=3", "attributes"),
    ],
)
def test_bad_overrides_name_the_key(make_cfg, override, message):
    with pytest.raises(ConfigCompositionException, match=message):
        make_cfg(override)


def test_montage(make_cfg):
    cfg = make_cfg("task=montage", "task.per_group=2", "task.group_by=[sex]")
    result = montage.run(cfg)
    assert result["groups"] == 4 and Path(result["montage"]).stat().st_size > 10_000


def test_montage_shows_the_phantom_phenotypes_side_by_side(make_cfg, tiny_cohort):
    assert set(tiny_cohort.diagnosis) <= {"healthy", "hfref", "ischaemic", "hfpef"}
    assert (tiny_cohort.diagnosis == "healthy").eq(tiny_cohort.label == 0).all()
    result = montage.run(make_cfg("task=montage", "task.per_group=1", "task.group_by=[diagnosis]"))
    assert result["groups"] == tiny_cohort.diagnosis.nunique()


def test_montage_reads_like_a_clinical_figure(make_cfg, tiny_cohort, monkeypatch):
    figures = []
    monkeypatch.setattr(montage, "write_figure", lambda fig, path, **kwargs: figures.append(fig) or path)
    result = montage.run(make_cfg("task=montage", "task.per_group=1", "task.group_by=[bmi_group]"))
    order = ["underweight", "normal", "overweight", "obese"]
    for label in ("healthy", "heart failure"):
        rows = [row.split(", ")[1] for row in result["rows"] if row.startswith(label + ",")]
        assert rows == [group for group in order if group in rows]  # clinical, not alphabetical, order
    fig = figures[0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["LV blood pool", "LV myocardium", "RV"]
    assert any(t.get_text().endswith(" mm") for ax in fig.axes for t in ax.texts)  # a scale bar
    panel = next(ax for ax in fig.axes if ax.images)
    assert len(panel.images) == 1  # the image in grey; the masks as outlines, not a colour wash over it


@pytest.mark.parametrize("preset", ["real_only", "real_plus_synth", "real_plus_synth_balanced", "synth_only"])
def test_experiment_presets_compose(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}", "data.synthetic.path=/somewhere")
    assert (cfg.input.name, cfg.model.name, cfg.sampler.name) == ("edes", "resnet18", "group_balanced")
    assert cfg.data.use_real == (preset != "synth_only")


def test_loader_worker_processes_give_the_same_predictions(make_cfg, tmp_path):
    classify.run(make_cfg("input=edes", f"paths.output_dir={tmp_path / 'main'}"))
    classify.run(make_cfg("input=edes", "loader.num_workers=2", f"paths.output_dir={tmp_path / 'workers'}"))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "main" / "predictions.csv"), pd.read_csv(tmp_path / "workers" / "predictions.csv")
    )


def test_k_fold_run_tests_on_its_fold(make_cfg):
    cfg = make_cfg("input=slice", "fold=1", "split.n_splits=4")
    classify.run(cfg)
    split = json.loads((Path(cfg.paths.output_dir) / "split.json").read_text())
    assert split["splits"]["test"]["n"] == 10  # a quarter of the 40 subjects


def test_split_seed_fixes_the_split_while_the_seed_varies(make_cfg, tmp_path):
    from fairaug.data.datamodule import CohortDataModule

    def test_ids(*overrides):
        data = CohortDataModule.from_config(make_cfg("input=slice", *overrides))
        data.prepare()
        return set(data.datasets["test"].table.subject_id)

    assert test_ids("seed=1", "split.seed=0") == test_ids("seed=0")
    assert test_ids("seed=1") != test_ids("seed=0")


def test_the_training_bar_holds_the_loss_and_validation_balanced_accuracy_only(make_cfg, capfd):
    classify.run(make_cfg("input=edes", "trainer.enable_progress_bar=true"))
    bar = [line for line in capfd.readouterr().out.replace("\r", "\n").splitlines() if line.startswith("Epoch 0")]
    postfix = bar[-1].rsplit("[", 1)[-1]  # tqdm: Epoch 0: 100%|████| 3/3 [00:00<00:00, loss=0.6, val/...=0.5]
    assert sorted(item.split("=")[0] for item in postfix.split(", ") if "=" in item) == [
        "loss",
        "val/balanced_accuracy",
    ]


def test_a_run_killed_after_an_epoch_and_resumed_ends_as_one_never_interrupted(make_cfg, tmp_path):
    """last.ckpt is every epoch's (not only the best one's), and it carries the sampler's and the
    random generators' states: the resumed epochs draw the same batches and dropout masks."""
    full = tmp_path / "full"
    classify.run(make_cfg("input=edes", "trainer.max_epochs=3", f"paths.output_dir={full}"))
    assert torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2
    part = tmp_path / "part"
    classify.run(make_cfg("input=edes", "trainer.max_epochs=1", f"paths.output_dir={part}"))  # then killed
    last = part / "checkpoints" / "last.ckpt"
    classify.run(make_cfg("input=edes", "trainer.max_epochs=3", f"ckpt_path={last}", f"paths.output_dir={part}"))
    resumed, uninterrupted = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in (part, full))
    assert resumed["global_step"] == uninterrupted["global_step"]
    for name, weights in uninterrupted["state_dict"].items():
        assert torch.equal(weights, resumed["state_dict"][name]), name
    pd.testing.assert_frame_equal(pd.read_csv(part / "predictions.csv"), pd.read_csv(full / "predictions.csv"))


def test_a_sweep_rerun_into_its_folder_keeps_finished_jobs_and_continues_interrupted_ones(
    make_cfg, tmp_path, monkeypatch, caplog
):
    """What a preempted or killed sweep needs: its rerun (or submitit's requeue) into the same
    folder skips a job that finished with the same config and continues an interrupted one from
    its last epoch, ending as an uninterrupted run would."""
    import lightning as L

    from fairaug.runtime import RunDir

    def sweep_job(name: str, *overrides: str):
        cfg = make_cfg("input=edes", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / name}", *overrides)
        RunDir(tmp_path / name).path.mkdir(exist_ok=True)
        RunDir(tmp_path / name).job_status.write_text('{"status": "started"}')  # as the sweep callback writes
        return cfg

    reference = classify.run(make_cfg("input=edes", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'ref'}"))

    class KilledAfterTheFirstEpoch(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:  # the first epoch, its validation and checkpoints are done
                raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(classify, "progress_bars", lambda arguments: [KilledAfterTheFirstEpoch()])
        with pytest.raises(RuntimeError, match="killed"):
            classify.run(sweep_job("job"))
    assert not (tmp_path / "job" / "metrics.json").exists()
    caplog.set_level("INFO", logger="fairaug")
    resumed = classify.run(sweep_job("job"))  # the rerun continues from the first epoch's last.ckpt
    assert "Continuing this sweep job from" in caplog.text
    assert resumed == json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert {k: v for k, v in resumed.items() if k not in VARYING} == {
        k: v for k, v in reference.items() if k not in VARYING
    }
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "job" / "predictions.csv"), pd.read_csv(tmp_path / "ref" / "predictions.csv")
    )
    with monkeypatch.context() as patch:
        patch.setattr(L.Trainer, "fit", lambda *args, **kwargs: pytest.fail("a finished job was trained again"))
        assert classify.run(sweep_job("job")) == resumed  # finished with this config: its results stand
    with monkeypatch.context() as patch:  # another config, killed: the earlier config's results go with it
        patch.setattr(classify, "progress_bars", lambda arguments: [KilledAfterTheFirstEpoch()])
        with pytest.raises(RuntimeError, match="killed"):
            classify.run(sweep_job("job", "model.lr=0.01"))
    assert not (tmp_path / "job" / "metrics.json").exists()  # nothing can pass it off as this config's
    restarted = classify.run(sweep_job("job", "trainer.max_epochs=1"))  # another config: a new run
    assert torch.load(tmp_path / "job" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert restarted["n_test"] == resumed["n_test"]


VARYING = ("train_data_wait_fraction", "best_checkpoint_sha256")  # timing; the checkpoint embeds its folder


def test_training_resumes_from_its_last_checkpoint_the_lightning_way(make_cfg):
    cfg = make_cfg("input=edes")
    classify.run(cfg)  # one epoch, then "killed"
    out = Path(cfg.paths.output_dir)
    last = out / "checkpoints" / "last.ckpt"
    steps = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    rows_before = len(pd.read_csv(out / "logs" / "metrics.csv"))
    metrics = classify.run(make_cfg("input=edes", "trainer.max_epochs=2", f"ckpt_path={last}"))
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2 * steps  # one more epoch
    assert len(pd.read_csv(out / "logs" / "metrics.csv")) > rows_before  # the earlier rows kept
    assert json.loads((out / "metrics.json").read_text())["balanced_accuracy"] == metrics["balanced_accuracy"]
    with pytest.raises(ConfigError, match="ckpt_path=.*nowhere.ckpt: no such checkpoint"):
        classify.run(make_cfg("input=edes", f"ckpt_path={out / 'nowhere.ckpt'}"))
    with pytest.raises(ConfigError, match="ckpt_path=.*split.*seed=1"):
        classify.run(make_cfg("input=edes", "seed=1", "trainer.max_epochs=3", f"ckpt_path={last}"))


def test_checkpoints_can_be_selected_on_the_worst_validation_group(make_cfg):
    cfg = make_cfg("input=edes", "trainer.max_epochs=3", "task.selection.metric=worst_group_balanced_accuracy")
    metrics = classify.run(cfg)
    log = pd.read_csv(Path(cfg.paths.output_dir) / "logs" / "metrics.csv")
    logged = log["val/worst_group_balanced_accuracy"].dropna()
    assert len(logged) == 3 and (logged <= log["val/balanced_accuracy"].dropna().to_numpy() + 1e-9).all()
    assert metrics["selected_by"] == "val/worst_group_balanced_accuracy"
    assert metrics["best_val_score"] == pytest.approx(logged.max())


def test_selection_settings_are_checked(make_cfg):
    with pytest.raises(ConfigError, match=r"task.selection.metric must be one of"):
        classify.run(make_cfg("task.selection.metric=auroc"))
    with pytest.raises(ConfigError, match=r"task.selection.attributes.*'height'"):
        worst = "task.selection.metric=worst_group_balanced_accuracy"
        classify.run(make_cfg(worst, "task.selection.attributes=[height]"))
