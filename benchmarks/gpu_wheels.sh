#!/usr/bin/env bash
# Wheels of what fairaug needs beyond the GPU machine's image (device tool, Python 3.12, no
# package index there), at the versions installed here, into .whl/ (ignored by git through
# .git/info/exclude). Run here, in the repository root, before benchmarks/gpu_check.sh is sent
# with `carry: [".whl"]`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
version() { python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
# the image's own versions of these are older than fairaug's (or unknown): carried at ours
packages=(hydra-core omegaconf diffusers fairlearn nibabel importlib_metadata isal transformers
          huggingface_hub tokenizers safetensors hf-xet regex)
pins=()
for name in "${packages[@]}"; do pins+=("$name==$(version "$name")"); done
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"
# Hydra's parser runtime is published as a source archive only
python -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
du -sh .whl && ls .whl
