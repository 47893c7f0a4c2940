#!/usr/bin/env bash
# The prepared GPU check (device tool: one CUDA GPU; its Python 3.12 image lacks some of
# fairaug's packages and has no package index). Here, in the repository root:
#   benchmarks/gpu_wheels.sh                       # wheels into .whl/ (git-ignored)
# then on the device, with carry [".whl"]: `bash benchmarks/gpu_check.sh diffusion` (timeout_s 420),
# and if time is left `bash benchmarks/gpu_check.sh classify` (timeout_s 240); with no argument
# both. Each prints, and keeps under $OUT (or /tmp/gpu_check):
#   gpu.txt        the card, its memory and driver
#   diffusion.txt  benchmarks/diffusion.py on Stable Diffusion 2.1 base's architecture (random
#                  weights) at 512 px: ControlNet training at batch 4, bf16-mixed, gradient
#                  checkpointing, against the train_controlnet.py-structured loop, fairaug's loop
#                  also under trainer.deterministic=false; generation in fp16 at batch 8, 25 DDIM
#                  steps, against StableDiffusionControlNetPipeline, with the pixel difference at
#                  the same seeds; steps/s, images/s, peak GPU memory and the ratios
#   classify.txt   task=classify at PAPER=1's size (ResNet18, 224 px, bf16, 8 workers), 10 epochs:
#                  the share of training time spent waiting for data (train_data_wait_fraction)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 FAIRAUG_HOME=/tmp/fairaug
parts="${*:-diffusion classify}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
if [[ " $parts " == *" diffusion "* ]]; then
  timeout 360 python3 benchmarks/diffusion.py --device cuda --architecture sd21-base --steps 20 --rounds 2 \
    --variant trainer.deterministic=false 2>&1 | grep -v -i warn | tee "$out/diffusion.txt"
fi
if [[ " $parts " == *" classify "* ]]; then
  timeout 200 python3 -m fairaug task=classify input=edes model=resnet18 input.size=224 trainer=gpu \
    loader.num_workers=8 loader.batch_size=32 trainer.max_epochs=10 trainer.enable_progress_bar=false \
    data.workers=8 hydra.run.dir=/tmp/classify > "$out/classify.log" 2>&1
  tail -3 "$out/classify.log" | tee "$out/classify.txt"
  python3 -c "import json; m = json.load(open('/tmp/classify/metrics.json')); print('classify data wait fraction', \
m['train_data_wait_fraction'], 'balanced accuracy', m['balanced_accuracy'])" 2>&1 | tee -a "$out/classify.txt"
fi
