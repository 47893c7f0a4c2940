"""Diffusion benchmark (not a test): prints ratios against baselines run in the same process.

1. Training steps/s of task=controlnet_train's loop (ControlNetModule under lightning.Trainer,
   as the task builds it) against a plain loop with the structure of diffusers'
   examples/controlnet/train_controlnet.py (encode, noise, text encoder, ControlNet, UNet,
   MSE, backward, AdamW step, zero_grad), identical components, data, batch and trained
   parameters. Two models: the default tiny one (pixel space, UNet + text encoder + ControlNet
   trained) and the SD 2.1 path on a miniature SD folder (latent space, SD locked).
2. Generation images/s of fairaug's sampler (what task=synth_generate runs) against diffusers'
   StableDiffusionControlNetPipeline with identical components, scheduler (DDIM), steps,
   guidance and batch. The pipeline needs a VAE, so this runs on the SD 2.1 path.
3. Images/s of the default generation (tiny model, 32 px, 25 DDIM steps, guidance 2, batch 16).

Both training loops run under the configured trainer.deterministic (default: warn, which costs
about 3 % on CPU). Each comparison alternates baseline and fairaug over several rounds and keeps each side's
best round (the least disturbed by other work on the machine).

    python benchmarks/diffusion.py [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compose(home: Path, *overrides: str):
    from benchmarks.data_pipeline import compose as compose_config

    return compose_config(
        home,
        "data.n_subjects=100",
        "task=controlnet_train",
        "diffusion.grid_every=0",
        "trainer.enable_progress_bar=false",
        *overrides,
    )


def training_setup(cfg, output_dir: Path):
    """What controlnet_train.run builds: components, prompts and the weighted loader."""
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler

    from fairaug.diffusion.components import build_components
    from fairaug.diffusion.data import PromptedViews, prompt_weights, training_views
    from fairaug.diffusion.prompts import prompts_for, tokenize
    from fairaug.runtime import RunDir

    output_dir.mkdir(parents=True, exist_ok=True)
    views, cohort = training_views(cfg, RunDir(output_dir))
    parts = build_components(cfg.diffusion, cohort, model_id=f"fairaug-{cfg.diffusion.name}-benchmark")
    prompts = prompts_for(views.table, parts.meta["prompt_template"])
    dataset = PromptedViews(views, tokenize(parts.tokenizer, prompts))
    weights = torch.as_tensor(prompt_weights(prompts, float(cfg.diffusion.max_weight_ratio)), dtype=torch.double)
    sampler = WeightedRandomSampler(weights, 10**6, replacement=True, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=int(cfg.diffusion.batch_size), sampler=sampler, drop_last=True)
    return parts, loader, tokenize(parts.tokenizer, [""])[0]


def plain_loop(
    parts, loader, empty_ids, lr: float, train_base: bool, prompt_dropout: float, steps: int, warmup: int
) -> float:
    """Steps/s of the train_controlnet.py structure."""
    import torch
    import torch.nn.functional as F

    trained = [parts.controlnet, *((parts.unet, parts.text_encoder) if train_base else ())]
    for module in (parts.vae, parts.unet, parts.text_encoder):
        if module is not None and module not in trained:
            module.requires_grad_(False)
    for module in trained:
        module.train()
    optimizer = torch.optim.AdamW([p for m in trained for p in m.parameters()], lr=lr, weight_decay=1e-2)
    start = None
    for step, batch in enumerate(itertools.islice(loader, warmup + steps)):
        if step == warmup:
            start = time.perf_counter()
        ids = batch["input_ids"]
        ids = torch.where((torch.rand(len(ids)) < prompt_dropout)[:, None], empty_ids.expand_as(ids), ids)
        with torch.no_grad():
            latents = parts.to_latents(batch["pixels"])
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, parts.scheduler.config.num_train_timesteps, (len(latents),))
        noisy = parts.scheduler.add_noise(latents, noise, timesteps)
        text = parts.text_encoder(ids)[0]
        down, mid = parts.controlnet(
            noisy,
            timesteps,
            encoder_hidden_states=text,
            controlnet_cond=batch["masks"].float() / 3.0,
            return_dict=False,
        )
        predicted = parts.unet(
            noisy,
            timesteps,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        loss = F.mse_loss(predicted.float(), parts.training_target(latents, noise, timesteps).float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - start)


def fairaug_loop(cfg, parts, loader, steps: int, warmup: int, output_dir: Path) -> float:
    """Steps/s of task=controlnet_train's loop: ControlNetModule under the configured Trainer."""
    import lightning as L

    from fairaug.diffusion.module import ControlNetModule
    from fairaug.loggers import build_logger, finish
    from fairaug.models.trainer import trainer_arguments

    class StepClock(L.Callback):
        def __init__(self):
            self.times = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.times.append(time.perf_counter())

    diffusion = cfg.diffusion
    module = ControlNetModule(parts, diffusion)
    arguments = trainer_arguments(cfg)
    arguments.update(
        max_epochs=-1,
        max_steps=warmup + steps + 1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    clock = StepClock()
    logger = build_logger(cfg.logger, output_dir)
    try:
        L.Trainer(**arguments, logger=logger, callbacks=[clock], default_root_dir=str(output_dir)).fit(
            module, train_dataloaders=loader
        )
    finally:
        finish(logger)
    return steps / (clock.times[warmup + steps] - clock.times[warmup])


def bench_training(name: str, cfg, home: Path, steps: int, warmup: int, rounds: int) -> None:
    import torch

    parts, loader, empty_ids = training_setup(cfg, home / f"train_{name}")
    diffusion = cfg.diffusion
    plain, ours = [], []
    deterministic = cfg.trainer.deterministic
    for r in range(rounds):
        # the plain loop runs under the same trainer.deterministic setting that Lightning applies
        torch.use_deterministic_algorithms(bool(deterministic), warn_only=deterministic == "warn")
        plain.append(
            plain_loop(
                copy.deepcopy(parts),
                loader,
                empty_ids,
                float(diffusion.lr),
                bool(diffusion.train_base),
                float(diffusion.prompt_dropout),
                steps,
                warmup,
            )
        )
        ours.append(
            fairaug_loop(cfg, copy.deepcopy(parts), loader, steps, warmup, home / f"train_{name}" / f"round{r}")
        )
    print(
        f"training, {name} (batch {diffusion.batch_size}, {diffusion.size} px): plain loop "
        f"{max(plain):.2f} steps/s, fairaug {max(ours):.2f} steps/s -> ratio {max(ours) / max(plain):.2f} "
        f"(rounds: plain {[round(v, 2) for v in plain]}, fairaug {[round(v, 2) for v in ours]})",
        flush=True,
    )


def bench_generation(base: Path, size: int, batch: int, steps: int, rounds: int) -> None:
    import torch
    from diffusers import ControlNetModel, DDIMScheduler, StableDiffusionControlNetPipeline

    from fairaug.diffusion.components import Components, load_base
    from fairaug.diffusion.prompts import tokenize
    from fairaug.diffusion.sampling import sample

    locked = load_base(base)
    torch.manual_seed(0)
    controlnet = ControlNetModel.from_unet(locked["unet"], conditioning_embedding_out_channels=(16, 32, 96)).eval()
    parts = Components(
        locked["unet"].eval(),
        controlnet,
        locked["text_encoder"].eval(),
        locked["tokenizer"],
        locked["scheduler"],
        {},
        locked["vae"].eval(),
    )
    prompts = ["Female, age in 60s, obese BMI, heart failure"] * batch
    masks = torch.randint(0, 4, (batch, 3, size, size), dtype=torch.uint8)
    ids, negative = tokenize(parts.tokenizer, prompts), tokenize(parts.tokenizer, [""] * batch)
    pipeline = StableDiffusionControlNetPipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        tokenizer=parts.tokenizer,
        unet=parts.unet,
        controlnet=parts.controlnet,
        scheduler=DDIMScheduler.from_config(parts.scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)

    def ours() -> float:
        start = time.perf_counter()
        sample(
            parts,
            masks,
            ids,
            negative,
            list(range(batch)),
            steps=steps,
            scheduler="ddim",
            guidance=2.0,
            control_scale=1.0,
        )
        return batch / (time.perf_counter() - start)

    def theirs() -> float:
        start = time.perf_counter()
        pipeline(
            prompt=prompts,
            negative_prompt=[""] * batch,
            image=masks.float() / 3.0,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=2.0,
            controlnet_conditioning_scale=1.0,
            generator=[torch.Generator().manual_seed(s) for s in range(batch)],
            output_type="np",
        )
        return batch / (time.perf_counter() - start)

    ours(), theirs()  # warm up
    pipe_rates, our_rates = [], []
    for _ in range(rounds):
        pipe_rates.append(theirs())
        our_rates.append(ours())
    print(
        f"generation, SD 2.1 path ({size} px, batch {batch}, {steps} DDIM steps, guidance 2): "
        f"StableDiffusionControlNetPipeline {max(pipe_rates):.2f} images/s, fairaug {max(our_rates):.2f} images/s "
        f"-> ratio {max(our_rates) / max(pipe_rates):.2f}",
        flush=True,
    )


def bench_default_generation(cfg, home: Path, rounds: int) -> None:
    import numpy as np
    import pandas as pd
    import torch

    from fairaug.diffusion.components import build_components
    from fairaug.diffusion.prompts import tokenize
    from fairaug.diffusion.sampling import sample

    parts = build_components(
        cfg.diffusion, pd.DataFrame({"age_group": ["50s", "60s", "70s"]}), model_id="fairaug-tiny-default_generation"
    )
    generation = compose(home).generation
    batch, size = int(generation.batch_size), int(cfg.diffusion.size)
    ids = tokenize(parts.tokenizer, ["Female, age in 60s, obese BMI, heart failure"] * batch)
    masks = torch.randint(0, 4, (batch, 3, size, size), dtype=torch.uint8)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        with torch.no_grad():
            sample(
                parts,
                masks,
                ids,
                torch.zeros_like(ids),
                list(range(batch)),
                int(generation.steps),
                generation.scheduler,
                float(generation.guidance_scale),
                float(generation.control_scale),
            )
        rates.append(batch / (time.perf_counter() - start))
    print(
        f"default generation (tiny, {size} px, batch {batch}, {generation.steps} {generation.scheduler} steps, "
        f"guidance {generation.guidance_scale}): {max(rates):.2f} images/s (median {np.median(rates):.2f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    from fairaug.diffusion.random_sd import save_stable_diffusion

    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        base = save_stable_diffusion(home / "sd", size=64)
        bench_training("tiny (default)", compose(home), home, args.steps, 3, args.rounds)
        bench_training(
            "SD 2.1 path, miniature SD",
            compose(
                home,
                "diffusion=sd21",
                f"diffusion.pretrained={base}",
                "diffusion.size=64",
                "diffusion.batch_size=16",
                "diffusion.gradient_checkpointing=false",
            ),
            home,
            args.steps,
            3,
            args.rounds,
        )
        bench_generation(base, size=64, batch=16, steps=25, rounds=args.rounds)
        bench_default_generation(compose(home), home, args.rounds)


if __name__ == "__main__":
    main()
