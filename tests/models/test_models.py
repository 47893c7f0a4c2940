import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torchvision import models as tv

from fairaug.errors import ConfigError
from fairaug.models.zoo import build_model


def model_cfg(name, **changes):
    return OmegaConf.create({"name": name, "weights": None, "dropout": 0.0, "width": 8, **changes})


@pytest.mark.parametrize(
    "name,shape",
    [
        ("small_cnn", (3, 32, 32)),
        ("small_cnn", (1, 4, 32, 32)),
        ("resnet18", (3, 32, 32)),
        ("resnet18", (1, 32, 32)),
        ("densenet121", (1, 32, 32)),
        ("r3d_18", (1, 4, 32, 32)),
        ("r2plus1d_18", (1, 4, 32, 32)),
        ("mc3_18", (1, 4, 32, 32)),
        ("swin3d_t", (1, 4, 32, 32)),
    ],
)
def test_models_give_one_logit_per_subject(name, shape):
    torch.manual_seed(0)
    net = build_model(model_cfg(name), shape).eval()
    with torch.no_grad():
        out = net(torch.rand(2, *shape))
    assert out.shape == (2,) and torch.isfinite(out).all()


def test_dimension_mismatch_is_explained():
    with pytest.raises(ConfigError, match="resnet18 takes 2D views"):
        build_model(model_cfg("resnet18"), (1, 4, 32, 32))
    with pytest.raises(ConfigError, match="r3d_18 takes 3D views"):
        build_model(model_cfg("r3d_18"), (3, 32, 32))
    with pytest.raises(ConfigError, match="unknown model 'resnet19'"):
        build_model(model_cfg("resnet19"), (3, 32, 32))


def test_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    source = tv.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    net = build_model(model_cfg("resnet18", weights=str(path)), (3, 32, 32))
    torch.testing.assert_close(net.net.conv1.weight, source.conv1.weight)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="does not fit resnet18"):
        build_model(model_cfg("resnet18", weights=str(tmp_path / "other.pth")), (3, 32, 32))


def test_missing_pretrained_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match=r"resnet18-f37072fd.pth .* in .*checkpoints"):
        build_model(model_cfg("resnet18", weights="imagenet"), (3, 32, 32))
    with pytest.raises(ConfigError, match="not found"):
        build_model(model_cfg("resnet18", weights=str(tmp_path / "nope.pth")), (3, 32, 32))


def test_data_wait_monitor_measures_the_share_spent_fetching_batches():
    import time

    from fairaug.models.callbacks import DataWaitMonitor

    monitor = DataWaitMonitor()
    monitor.on_train_epoch_start(None, None)
    for _ in range(3):
        time.sleep(0.002)  # fetching
        monitor.on_train_batch_start(None, None, None, 0)
        time.sleep(0.1)  # computing
        monitor.on_train_batch_end(None, None, None, None, 0)
    assert monitor.fraction < 0.2
    monitor.on_train_epoch_start(None, None)
    time.sleep(0.8)  # a slow loader
    monitor.on_train_batch_start(None, None, None, 0)
    monitor.on_train_batch_end(None, None, None, None, 0)
    assert monitor.fraction > 0.5


def test_densenet_weights_with_torchvision_legacy_key_names(tmp_path):
    import re

    torch.manual_seed(2)
    source = tv.densenet121(weights=None)
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in source.state_dict().items()
    }
    assert any(".norm.1." in k for k in legacy)
    torch.save(legacy, tmp_path / "densenet121.pth")
    net = build_model(model_cfg("densenet121", weights=str(tmp_path / "densenet121.pth")), (3, 32, 32))
    torch.testing.assert_close(
        net.net.features.denseblock1.denselayer1.conv1.weight, source.features.denseblock1.denselayer1.conv1.weight
    )


def test_a_gpu_asked_for_where_there_is_none_names_the_setting(monkeypatch):
    from fairaug.config import compose_config
    from fairaug.models.trainer import trainer_arguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu, but torch sees no CUDA GPU on this machine"):
        trainer_arguments(compose_config(["trainer=gpu"]))
    assert trainer_arguments(compose_config([]))["accelerator"] == "auto"  # the default runs anywhere
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert trainer_arguments(compose_config(["trainer=gpu"]))["precision"] == "bf16-mixed"
    with pytest.raises(ConfigError, match="trainer.devices=2, but this machine has 1 CUDA GPU"):
        trainer_arguments(compose_config(["trainer=gpu", "trainer.devices=2"]))


def test_a_strategy_that_would_rerun_the_task_in_every_process_is_refused(monkeypatch):
    from fairaug.config import compose_config
    from fairaug.models.trainer import trainer_arguments

    with pytest.raises(ConfigError, match="trainer.strategy=ddp would start every process .* use trainer=ddp"):
        trainer_arguments(compose_config(["+trainer.strategy=ddp"]))
    # several devices under the automatic strategy: Lightning would pick the re-launching DDP
    for devices, shown in (("2", "2"), ("[0,1]", r"\[0, 1\]"), ("'0,1'", "0,1")):
        with pytest.raises(ConfigError, match=f"trainer.devices={shown} would start every process"):
            trainer_arguments(compose_config(["trainer.accelerator=cpu", f"trainer.devices={devices}"]))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="trainer.devices=-1 would start every process"):
        trainer_arguments(compose_config(["trainer=gpu", "trainer.devices=-1"]))
    assert trainer_arguments(compose_config(["trainer=ddp"]))["strategy"] == "ddp_spawn"
    assert trainer_arguments(compose_config(["trainer=ddp", "trainer.devices=-1"]))["devices"] == -1
    assert trainer_arguments(compose_config(["trainer=gpu"]))["devices"] == 1


def test_worst_group_balanced_accuracy_is_the_lowest_over_groups_holding_both_classes():
    from fairaug.models.metrics import worst_group_balanced_accuracy

    labels = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 0])
    probs = np.array([0.9, 0.2, 0.1, 0.3, 0.8, 0.7, 0.6, 0.1, 0.9, 0.9])
    sex = np.array(["f", "f", "f", "f", "m", "m", "m", "m", "x", "x"])
    # f: sensitivity 1/2, specificity 1 -> 0.75; m: 1, 1/2 -> 0.75; x: 1, 0 -> 0.5; a: 3/4, 3/4
    assert worst_group_balanced_accuracy(probs, labels, {"sex": sex}) == pytest.approx(0.5)
    assert worst_group_balanced_accuracy(probs[:8], labels[:8], {"sex": sex[:8]}) == pytest.approx(0.75)
    only_one_class = np.array(["b"] * 8 + ["a"] * 2)
    # group b holds both classes (0.75 over 8), group a (labels 1, 0) too: 0.5
    assert worst_group_balanced_accuracy(probs, labels, {"bmi": only_one_class}) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no group of"):
        worst_group_balanced_accuracy(probs[:2], labels[:2], {"sex": sex[:2]})
