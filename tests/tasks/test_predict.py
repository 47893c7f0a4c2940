import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from fairaug.errors import ConfigError
from fairaug.fairness.predictions import PREDICTION_COLUMNS
from fairaug.tasks import classify, predict


@pytest.fixture
def trained(make_cfg, tmp_path):
    """A finished task=classify run on the tiny phantom (edes view)."""
    cfg = make_cfg("input=edes", f"paths.output_dir={tmp_path / 'trained'}")
    classify.run(cfg)
    return Path(cfg.paths.output_dir)


def test_the_same_cohort_scores_only_unseen_subjects_as_the_run_tested_them(make_cfg, trained):
    cfg = make_cfg("task=predict", f"checkpoint={trained}")  # input=cine by default: the run's view wins
    metrics = predict.run(cfg)
    out = Path(cfg.paths.output_dir)
    scored = pd.read_csv(out / "predictions.csv")
    tested = pd.read_csv(trained / "predictions.csv")
    pd.testing.assert_frame_equal(scored, tested)  # the test split, exactly as classify scored it
    assert list(scored.columns) == PREDICTION_COLUMNS
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n_scored"] == len(tested) and saved["n_seen_left_out"] > 0
    assert saved["balanced_accuracy"] == pytest.approx(
        json.loads((trained / "metrics.json").read_text())["balanced_accuracy"]
    )
    assert saved["checkpoint_sha256"] == json.loads((trained / "metrics.json").read_text())["best_checkpoint_sha256"]
    assert metrics["balanced_accuracy"] == saved["balanced_accuracy"]
    assert (out / "report.md").exists() and (out / "by_group.csv").exists()


def test_a_new_cohort_is_scored_whole(make_cfg, trained, tiny_cohort):
    cfg = make_cfg("task=predict", f"checkpoint={trained}", "data.seed=7", "data.n_subjects=24")
    predict.run(cfg)
    out = Path(cfg.paths.output_dir)
    scored = pd.read_csv(out / "predictions.csv")
    assert len(scored) == 24 and list(scored.columns) == PREDICTION_COLUMNS
    assert scored.prob.between(0, 1).all() and (scored.pred == (scored.prob >= 0.5)).all()
    assert json.loads((out / "metrics.json").read_text())["n_seen_left_out"] == 0
    assert "input" in (out / "config.yaml").read_text()


def test_a_missing_or_unfinished_run_is_named(make_cfg, trained, tmp_path):
    with pytest.raises(ConfigError, match="task=predict needs checkpoint="):
        predict.run(make_cfg("task=predict"))
    with pytest.raises(ConfigError, match="checkpoint=.*not a finished task=classify run"):
        predict.run(make_cfg("task=predict", f"checkpoint={tmp_path / 'nowhere'}"))
    torch.save({"state_dict": {"net.weight": torch.zeros(1)}}, trained / "checkpoints" / "best.ckpt")
    with pytest.raises(ConfigError, match="checkpoint=.*is not the checkpoint .* records as tested"):
        predict.run(make_cfg("task=predict", f"checkpoint={trained}"))
    assert not (tmp_path / "run" / "predictions.csv").exists()


def test_a_checkpoint_loads_on_its_own_the_lightning_way(make_cfg, tmp_path):
    from torchvision import models

    from fairaug.models.classifier import HeartFailureClassifier

    backbone = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), backbone)
    cfg = make_cfg("input=edes", "model=resnet18", f"model.weights={backbone}")
    classify.run(cfg)
    backbone.unlink()  # the checkpoint holds every weight: the backbone file is no longer needed
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    module = HeartFailureClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(weights, state[name]) for name, weights in module.state_dict().items())
    assert module.hparams.model["name"] == "resnet18" and module.hparams.model["weights"] is None
    module.eval()
    assert module(torch.zeros(2, *module.hparams.input_shape)).shape == (2,)


class Payload:
    """Any pickled object: unpickling one can run arbitrary code."""


def test_a_checkpoint_holding_a_pickled_object_is_refused(make_cfg, trained, tmp_path):
    from fairaug.errors import DataError
    from fairaug.run_folder import file_sha256

    last = trained / "checkpoints" / "last.ckpt"
    unsafe = {**torch.load(last, weights_only=True), "payload": Payload()}
    torch.save(unsafe, last)
    with pytest.raises(DataError, match=r"ckpt_path: .*last.ckpt holds pickled objects .* refuses it"):
        classify.run(make_cfg("input=edes", f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'resumed'}"))
    assert not (tmp_path / "resumed" / "config.yaml").exists()  # refused before anything was written
    best = trained / "checkpoints" / "best.ckpt"
    torch.save({**torch.load(best, weights_only=True), "payload": Payload()}, best)
    metrics = json.loads((trained / "metrics.json").read_text())
    (trained / "metrics.json").write_text(json.dumps({**metrics, "best_checkpoint_sha256": file_sha256(best)}))
    with pytest.raises(DataError, match=r"the tested checkpoint: .*best.ckpt holds pickled objects"):
        predict.run(make_cfg("task=predict", f"checkpoint={trained}"))
