"""Diffusion benchmark (not a test): prints ratios against baselines run in the same process.

1. Training steps/s of task=controlnet_train's loop (ControlNetModule under lightning.Trainer,
   as the task builds it) against a plain loop with the structure of diffusers'
   examples/controlnet/train_controlnet.py (encode, noise, text encoder, ControlNet, UNet,
   MSE, backward, AdamW step, zero_grad; the locked parts in the half-precision weight dtype and
   the forward pass under autocast with mixed precision; no deterministic algorithms; no gradient
   clipping, as fairaug's default), identical components, data, batch and trained parameters.
2. Generation images/s of fairaug's sampler (what task=synth_generate runs) against diffusers'
   StableDiffusionControlNetPipeline with identical components, scheduler (DDIM), steps,
   guidance, batch and seeds, and the largest pixel difference between the two outputs.
3. (CPU suite only) Images/s of the default generation (tiny model, 32 px, 25 DDIM steps, batch 16).

The CPU suite (default) runs the tiny default model and the SD 2.1 path on a miniature SD
(64 px). `--architecture sd21-base --device cuda` builds Stable Diffusion 2.1 base's published
architecture with random weights (nothing downloaded) and measures at 512 px: training at batch 4
under bf16-mixed with gradient checkpointing, generation in fp16 at batch 8, with peak GPU memory.
`--variant OVERRIDE` (repeatable; trainer.* settings only, the rest is shared with the baseline)
also times fairaug's loop under those overrides, so what a setting costs is measured in the same
run. cuBLAS's deterministic workspace (`CUBLAS_WORKSPACE_CONFIG`, which fairaug's default
`trainer.deterministic=warn` asks for) is set for the whole process, the baseline included: cuBLAS
reads it once. fairaug encodes each training image once: the output says how many the latent
cache held at the end of the timed steps (a cache still filling understates fairaug's steady
state). Each comparison alternates baseline and fairaug over several rounds and keeps each
side's best round (the least disturbed by other work).

    python benchmarks/diffusion.py [--steps 20] [--rounds 3]
    python benchmarks/diffusion.py --device cuda --architecture sd21-base --variant trainer.deterministic=false
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fairaug.diffusion.random_sd import ARCHITECTURES  # noqa: E402

TARGETS = {"training": 1.3, "generation": 1.5}  # the GPU targets, fairaug over the reference


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


class Device:
    """Where a benchmark runs: synchronised clocks and peak memory on CUDA."""

    def __init__(self, name: str):
        import torch

        self.torch, self.type = torch, name
        self.cuda = name == "cuda"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def fresh(self) -> None:
        """Forget what the last measurement left behind, and its peak."""
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None


def training_setup(cfg, output_dir: Path, architecture: str):
    """What controlnet_train.run builds: components, prompts and the weighted loader. The SD 2.1
    path gets a random-weight Stable Diffusion of `architecture`, built in memory."""
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler

    from fairaug.diffusion.components import build_components
    from fairaug.diffusion.data import PromptedViews, prompt_weights, training_views
    from fairaug.diffusion.prompts import prompts_for, tokenize
    from fairaug.diffusion.random_sd import random_stable_diffusion
    from fairaug.runtime import RunDir

    output_dir.mkdir(parents=True, exist_ok=True)
    views, cohort = training_views(cfg, RunDir(output_dir))
    diffusion = cfg.diffusion
    base = random_stable_diffusion(architecture, int(diffusion.size)) if diffusion.name == "sd21" else None
    parts = build_components(diffusion, cohort, f"fairaug-{diffusion.name}-benchmark", base)
    prompts = prompts_for(views.table, parts.meta["prompt_template"])
    dataset = PromptedViews(views, tokenize(parts.tokenizer, prompts))
    weights = torch.as_tensor(prompt_weights(prompts, float(diffusion.max_weight_ratio)), dtype=torch.double)
    sampler = WeightedRandomSampler(weights, 10**6, replacement=True, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=int(diffusion.batch_size), sampler=sampler, drop_last=True)
    return parts, loader, tokenize(parts.tokenizer, [""])[0]


def plain_loop(parts, loader, empty_ids, diffusion, precision: str, steps: int, warmup: int, device: Device):
    """Steps/s and peak GPU memory of the train_controlnet.py structure."""
    import torch
    import torch.nn.functional as F

    from fairaug.diffusion.module import HALF_PRECISION

    weight_dtype = HALF_PRECISION.get(precision)  # train_controlnet.py's weight_dtype for the locked parts
    trained = [parts.controlnet, *((parts.unet, parts.text_encoder) if diffusion.train_base else ())]
    for module in (parts.vae, parts.unet, parts.text_encoder):
        if module is not None and module not in trained:
            module.requires_grad_(False).to(device.type, weight_dtype or torch.float32)
    for module in trained:
        module.to(device.type).train()
        if diffusion.gradient_checkpointing and module is not parts.text_encoder:
            module.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(
        [p for m in trained for p in m.parameters()], lr=float(diffusion.lr), weight_decay=1e-2
    )
    empty_ids = empty_ids.to(device.type)
    start = None
    for step, batch in enumerate(itertools.islice(loader, warmup + steps)):
        if step == warmup:
            device.sync()
            start = time.perf_counter()
        batch = {k: v.to(device.type) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        ids = batch["input_ids"]
        drop = torch.rand(len(ids), device=ids.device) < float(diffusion.prompt_dropout)
        ids = torch.where(drop[:, None], empty_ids.expand_as(ids), ids)
        with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype is not None):
            with torch.no_grad():
                latents = parts.to_latents(batch["pixels"])
            noise = torch.randn_like(latents)
            timesteps = torch.randint(
                0, parts.scheduler.config.num_train_timesteps, (len(latents),), device=latents.device
            )
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
    device.sync()
    return steps / (time.perf_counter() - start), device.peak_gib()


def fairaug_loop(cfg, parts, loader, steps: int, warmup: int, output_dir: Path, device: Device, cached: list):
    """Steps/s and peak GPU memory of task=controlnet_train's loop: ControlNetModule under the
    configured Trainer; the clock synchronises only at the first and last timed step. Appends to
    `cached` how many training images the latent cache held by the end (the SD path encodes each
    image once: until every image is cached, a step can still run the VAE encoder)."""
    import lightning as L

    from fairaug.diffusion.module import ControlNetModule
    from fairaug.loggers import build_logger, finish
    from fairaug.models.trainer import trainer_arguments

    class StepClock(L.Callback):
        def __init__(self):
            self.times = {}

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx in (warmup, warmup + steps):
                device.sync()
                self.times[batch_idx] = time.perf_counter()

    module = ControlNetModule(parts, cfg.diffusion)
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
    cached.append(len(module.latent_cache))
    return steps / (clock.times[warmup + steps] - clock.times[warmup]), device.peak_gib()


def _rate(rates: list[tuple[float, float | None]]) -> str:
    """The best round's steps/s (and the largest peak memory over the rounds)."""
    best = max(r for r, _ in rates)
    peaks = [p for _, p in rates if p is not None]
    return f"{best:.2f} steps/s" + (f", peak {max(peaks):.1f} GiB" if peaks else "")


# What a variant may change: the plain loop, the data and the components are built once, from the base config.
SHARED_SETTINGS = ("trainer.precision", "trainer.accelerator", "trainer.devices", "trainer.strategy")


def check_variant(variant: str) -> None:
    key = variant.lstrip("+~").split("=", 1)[0]
    if not key.startswith("trainer.") or key in SHARED_SETTINGS:
        raise SystemExit(
            f"--variant {variant}: a variant may change fairaug's Trainer only (trainer.*, not "
            f"{list(SHARED_SETTINGS)}): the baseline loop, the data and the components are shared; "
            "use --precision, --batch, ... instead"
        )


def bench_training(name, overrides, home, architecture, steps, warmup, rounds, device: Device, variants):
    """fairaug's loop (composed with `overrides`, and with each variant added) against the plain
    loop; returns the (untrained) components both loops copied."""
    import torch

    cfg = compose(home, *overrides)
    parts, loader, empty_ids = training_setup(cfg, home / f"train_{name}", architecture)
    diffusion, precision = cfg.diffusion, str(cfg.trainer.precision)
    configs = {"fairaug": cfg, **{variant: compose(home, *overrides, variant) for variant in variants}}
    plain, ours, cached = [], {label: [] for label in configs}, []
    for r in range(rounds):
        torch.use_deterministic_algorithms(False)  # as train_controlnet.py; fairaug's Trainer sets its own
        device.fresh()
        plain.append(plain_loop(copy.deepcopy(parts), loader, empty_ids, diffusion, precision, steps, warmup, device))
        for i, (label, config) in enumerate(configs.items()):
            device.fresh()
            folder = home / f"train_{name}" / f"round{r}_{i}"
            ours[label].append(
                fairaug_loop(config, copy.deepcopy(parts), loader, steps, warmup, folder, device, cached)
            )
    best_plain = max(rate for rate, _ in plain)
    print(
        f"training, {name} (batch {diffusion.batch_size}, {diffusion.size} px, {precision}, gradient checkpointing "
        f"{'on' if diffusion.gradient_checkpointing else 'off'}): train_controlnet.py-structured loop {_rate(plain)}"
        + (
            f"; fairaug's latent cache held {min(cached)} of {len(loader.dataset)} images at the end"
            if parts.vae
            else ""
        ),
        flush=True,
    )
    for label, rates in ours.items():
        ratio = max(rate for rate, _ in rates) / best_plain
        print(f"  {label}: {_rate(rates)} -> ratio {ratio:.2f} (rounds: {[round(r, 2) for r, _ in rates]})", flush=True)
    return parts


def bench_generation(parts, size: int, batch: int, steps: int, rounds: int, device: Device, dtype) -> None:
    import numpy as np
    import torch
    from diffusers import DDIMScheduler, StableDiffusionControlNetPipeline

    from fairaug.diffusion.prompts import tokenize
    from fairaug.diffusion.sampling import sample

    for module in (parts.unet, parts.controlnet, parts.text_encoder, parts.vae):
        module.to(device.type, dtype).eval()
    prompts = ["Female, age in 60s, obese BMI, heart failure"] * batch
    masks = torch.randint(0, 4, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
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
    seeds = list(range(batch))

    def ours() -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        images = sample(
            parts, masks, ids, negative, seeds, steps=steps, scheduler="ddim", guidance=2.0, control_scale=1.0
        )
        return batch / (time.perf_counter() - start), images.permute(0, 2, 3, 1).numpy()

    def theirs() -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        images = pipeline(
            prompt=prompts,
            negative_prompt=[""] * batch,
            image=masks.float().to(device.type) / 3.0,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=2.0,
            controlnet_conditioning_scale=1.0,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            output_type="np",
        ).images
        return batch / (time.perf_counter() - start), images

    device.fresh()
    _, mine = ours()
    ours_peak = device.peak_gib()
    device.fresh()
    _, pipes = theirs()
    pipe_peak = device.peak_gib()
    finite = bool(np.isfinite(mine).all() and np.isfinite(pipes).all())
    difference = np.abs(mine.astype(np.float64) - pipes.astype(np.float64))
    pipe_rates, our_rates = [], []
    for _ in range(rounds):
        pipe_rates.append(theirs()[0])
        our_rates.append(ours()[0])
    memory = f"; peak {pipe_peak:.1f} vs {ours_peak:.1f} GiB" if device.cuda else ""
    print(
        f"generation, SD 2.1 path ({size} px, batch {batch}, {steps} DDIM steps, guidance 2, {dtype}): "
        f"StableDiffusionControlNetPipeline {max(pipe_rates):.2f} images/s, fairaug {max(our_rates):.2f} images/s "
        f"-> ratio {max(our_rates) / max(pipe_rates):.2f}{memory}; same seeds, pixel difference (of 1) "
        f"max {difference.max():.2e}, mean {difference.mean():.2e}{'' if finite else ' (NOT FINITE)'}",
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


def sd_overrides(args, accelerator: str) -> list[str]:
    """The SD 2.1 path's training config for this run's size, batch and precision."""
    return [
        "diffusion=sd21",
        f"diffusion.size={args.size}",
        f"diffusion.batch_size={args.batch}",
        f"diffusion.gradient_checkpointing={args.gradient_checkpointing}",
        f"trainer.accelerator={accelerator}",
        f"trainer.precision={args.precision}",
        f"data.n_subjects={args.subjects}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--architecture", choices=list(ARCHITECTURES), default="miniature")
    parser.add_argument("--size", type=int, help="image side (default: 64 miniature, 512 sd21-base)")
    parser.add_argument("--batch", type=int, help="training batch (default: 16 miniature, 4 sd21-base)")
    parser.add_argument("--generation-batch", type=int, help="default: 16 miniature, 8 sd21-base")
    parser.add_argument("--precision", help="training precision (default: 32-true on CPU, bf16-mixed on CUDA)")
    parser.add_argument("--gradient-checkpointing", choices=["true", "false"], help="default: true for sd21-base")
    parser.add_argument("--subjects", type=int, default=100, help="phantom subjects the training views come from")
    parser.add_argument("--variant", action="append", default=[], help="an override fairaug's loop is also timed under")
    args = parser.parse_args()
    full = args.architecture == "sd21-base"
    args.size = args.size or (512 if full else 64)
    args.batch = args.batch or (4 if full else 16)
    args.generation_batch = args.generation_batch or (8 if full else 16)
    args.precision = args.precision or ("bf16-mixed" if args.device == "cuda" else "32-true")
    args.gradient_checkpointing = args.gradient_checkpointing or ("true" if full else "false")
    for variant in args.variant:
        check_variant(variant)
    if args.precision == "16-mixed":
        raise SystemExit("--precision 16-mixed: the baseline loop has no gradient scaler; use bf16-mixed")
    # fairaug's default trainer.deterministic=warn has Lightning set this, but cuBLAS reads it once,
    # at its first use (the baseline's): set here, as the task has it before any CUDA work
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    device = Device(args.device)
    accelerator = "gpu" if device.cuda else "cpu"
    where = torch.cuda.get_device_name() if device.cuda else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"{where}; torch {torch.__version__}; SD 2.1 path: {args.architecture} architecture", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if not full:
            tiny = [f"trainer.accelerator={accelerator}"]
            bench_training("tiny (default)", tiny, home, args.architecture, args.steps, 3, args.rounds, device, [])
        overrides = sd_overrides(args, accelerator)
        parts = bench_training(f"SD 2.1 path, {args.architecture}", overrides, home, args.architecture, args.steps, 3,
                               args.rounds, device, args.variant)  # fmt: skip
        dtype = torch.float16 if device.cuda else torch.float32
        bench_generation(parts, args.size, args.generation_batch, 25, args.rounds, device, dtype)
        if not full:
            bench_default_generation(compose(home), home, args.rounds)
    if device.cuda:
        print(
            f"targets on the GPU: training ratio >= {TARGETS['training']}, generation ratio >= {TARGETS['generation']}"
        )


if __name__ == "__main__":
    main()
