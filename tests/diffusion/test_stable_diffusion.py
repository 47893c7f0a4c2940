"""diffusion=sd21 on a miniature Stable Diffusion folder the tests save in SD 2.1's layout:
loading offline, latent-space ControlNet training with SD locked (under bf16-mixed, on CPU),
resume, generation, and the errors a wrong folder gives."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import ControlNetModel
from omegaconf import OmegaConf
from PIL import Image

from fairaug.diffusion.components import load_components, stable_diffusion_components
from fairaug.diffusion.module import ControlNetModule
from fairaug.diffusion.prompts import tokenize
from fairaug.diffusion.random_sd import random_stable_diffusion, save_stable_diffusion
from fairaug.errors import ConfigError
from fairaug.tasks import controlnet_train, synth_generate
from tests.conftest import TINY_PHANTOM, TINY_RUN, compose_config

SIZE = 32


def sd21(base) -> list[str]:
    return [
        "task=controlnet_train",
        "diffusion=sd21",
        f"diffusion.pretrained={base}",
        f"diffusion.size={SIZE}",
        "input.size=${diffusion.size}",
        "diffusion.batch_size=8",
        "diffusion.grid_every=2",
        "diffusion.checkpoint_every=2",
        "trainer.max_steps=4",
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_stable_diffusion(tmp_path_factory.mktemp("sd") / "stable-diffusion-2-1-base", size=SIZE)


@pytest.fixture(scope="module")
def trained(base, fairaug_home, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sd21_train")
    cfg = compose_config(
        [
            *TINY_PHANTOM,
            *TINY_RUN,
            *sd21(base),
            "trainer.precision=bf16-mixed",
            f"paths.home={fairaug_home}",
            f"paths.output_dir={run_dir}",
        ]
    )
    return run_dir, controlnet_train.run(cfg)


def test_the_saved_folder_has_stable_diffusions_layout(base):
    assert json.loads((base / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (base / part).is_dir()


def test_the_full_size_architecture_is_stable_diffusion_2_1_bases():
    """Built on the meta device (no memory): the parameter counts of the published model."""
    with torch.device("meta"):
        parts = random_stable_diffusion("sd21-base", size=512)
        controlnet = stable_diffusion_components(OmegaConf.create({"size": 512, "init_seed": 0}), {}, parts).controlnet
    counts = {name: sum(p.numel() for p in parts[name].parameters()) for name in ("unet", "text_encoder", "vae")}
    assert counts == {"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863}
    assert parts["unet"].config.sample_size == 64 and parts["unet"].config.cross_attention_dim == 1024
    assert controlnet.config.conditioning_embedding_out_channels == (16, 32, 96, 256)  # 512 px masks to 64 latents
    with pytest.raises(ValueError, match="architecture must be one of"):
        random_stable_diffusion("sdxl")


def test_sd21_trains_only_the_controlnet_and_keeps_sd_locked(base, trained):
    run_dir, metrics = trained
    assert metrics["steps"] == 4 and np.isfinite(metrics["final_loss"])
    model = run_dir / "model"
    assert {p.name for p in model.iterdir() if p.is_dir()} == {"controlnet", "tokenizer", "scheduler"}
    meta = json.loads((model / "fairaug.json").read_text())
    assert meta["kind"] == "sd21" and meta["pretrained"] == str(base.resolve())
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["state_dict"] and all(k.startswith("controlnet.") for k in checkpoint["state_dict"])
    parts = load_components(run_dir)
    assert parts.vae is not None and parts.latent_factor == 4
    # the optimizer holds exactly the ControlNet's parameters: SD's UNet, VAE and text encoder are locked
    (optimizer,) = checkpoint["optimizer_states"]
    assert len(optimizer["param_groups"][0]["params"]) == len(list(parts.controlnet.parameters()))
    torch.manual_seed(0)
    untrained = ControlNetModel.from_unet(parts.unet, conditioning_embedding_out_channels=(16, 32, 96))
    assert not all(
        torch.equal(a, b) for a, b in zip(parts.controlnet.state_dict().values(), untrained.state_dict().values())
    )


def test_sd21_resumes_from_a_checkpoint_without_the_locked_parts(base, trained, make_cfg, tmp_path):
    run_dir, _ = trained
    resumed = controlnet_train.run(make_cfg(*sd21(base), "trainer.max_steps=6", f"diffusion.resume={run_dir}"))
    assert (resumed["start_step"], resumed["steps"]) == (4, 6)


def test_sd21_generation_decodes_full_size_images(trained, make_cfg, tmp_path):
    run_dir, _ = trained
    out = tmp_path / "synthetic"
    synth_generate.run(
        make_cfg(
            "task=synth_generate",
            "generation=random_prompt",
            "generation.num_samples=3",
            f"generation.model={run_dir}",
            f"generation.output={out}",
            "generation.steps=3",
            "generation.dtype=bfloat16",
            "generation.scheduler=dpm++",
        )
    )
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 3
    image = np.asarray(Image.open(out / manifest.image[0]))
    assert image.shape == (SIZE, SIZE, 3) and image.std() > 0


def test_v_prediction_targets_the_velocity(tmp_path):
    v_base = save_stable_diffusion(tmp_path / "v", size=SIZE, prediction_type="v_prediction")
    parts = untrained_module(v_base).parts
    latents, noise, steps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([10, 900])
    target = parts.training_target(latents, noise, steps)
    assert torch.allclose(target, parts.scheduler.get_velocity(latents, noise, steps))
    assert not torch.allclose(target, noise)


def test_bad_stable_diffusion_folders(base, trained, make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="needs diffusion.pretrained"):
        controlnet_train.run(make_cfg(*sd21("null")))
    with pytest.raises(ConfigError, match="is not a folder"):
        controlnet_train.run(make_cfg(*sd21(tmp_path / "nowhere")))
    partial = tmp_path / "partial"
    shutil.copytree(base, partial)
    shutil.rmtree(partial / "vae")
    with pytest.raises(ConfigError, match=r"lacks \['vae'\]"):
        controlnet_train.run(make_cfg(*sd21(partial)))
    with pytest.raises(ConfigError, match="must be a multiple of 8"):
        controlnet_train.run(make_cfg(*sd21(base), "diffusion.size=20"))
    with pytest.raises(ConfigError, match="use bf16-mixed or 16-mixed"):
        controlnet_train.run(make_cfg(*sd21(base), "trainer.precision=bf16-true"))

    run_dir, _ = trained  # a trained ControlNet whose base folder has moved away
    moved = tmp_path / "moved_run"
    shutil.copytree(run_dir / "model", moved / "model")
    meta = json.loads((moved / "model" / "fairaug.json").read_text())
    (moved / "model" / "fairaug.json").write_text(json.dumps({**meta, "pretrained": str(tmp_path / "gone")}))
    with pytest.raises(ConfigError, match="which is gone"):
        load_components(moved)


def untrained_module(folder) -> ControlNetModule:
    """SD from `folder` with a new ControlNet, as diffusion=sd21 builds it, in its training module."""
    parts = stable_diffusion_components(OmegaConf.create({"pretrained": str(folder), "size": SIZE, "init_seed": 0}), {})
    diffusion = OmegaConf.create(
        {"lr": 1e-5, "train_base": False, "prompt_dropout": 0.0, "gradient_checkpointing": False}
    )
    return ControlNetModule(parts, diffusion)


def test_locked_parts_are_computed_once_per_image_and_prompt(base):
    """Latents are still drawn afresh every step from each image's cached distribution."""
    module = untrained_module(base)
    parts = module.parts
    pixels, index = torch.rand(2, 3, SIZE, SIZE) * 2 - 1, torch.tensor([5, 9])
    calls = []
    encode = parts.vae.encode
    parts.vae.encode = lambda x: calls.append(len(x)) or encode(x)
    draws = torch.stack([module.latents(pixels, index) for _ in range(200)])
    assert calls == [2]  # encoded once
    posterior = encode(pixels).latent_dist
    scale = parts.vae.config.scaling_factor
    standard_error = posterior.std * scale / len(draws) ** 0.5
    assert ((draws.mean(0) - posterior.mean * scale).abs() <= 5 * standard_error + 1e-6).all()
    assert not torch.equal(draws[0], draws[1])

    ids = tokenize(parts.tokenizer, ["Female, age in 60s", "Male, age in 50s", "Female, age in 60s"])
    embedded = module.text_embeddings(ids)
    assert len(module.text_cache) == 2
    assert torch.allclose(embedded, parts.text_encoder(ids)[0], atol=1e-6)


def test_a_resumed_optimizer_takes_this_runs_kernel_choice(base):
    module = untrained_module(base)
    checkpoint = {"optimizer_states": [{"param_groups": [{"fused": None, "foreach": True, "lr": 1e-5}]}]}
    module.on_load_checkpoint(checkpoint)  # saved by a run with gradient clipping, resumed without
    assert checkpoint["optimizer_states"][0]["param_groups"][0] == {"fused": True, "foreach": None, "lr": 1e-5}
