#!/usr/bin/env bash
# The paper's classification protocol in one command: ED/ES/ED input, group-balanced
# sampling, 8 repeated runs (seeds 0-7) or k-fold, then the sweep summary (mean ± std per
# subgroup, fairness criteria, pooled predictions), printed at the end.
#   ./multirun.sh                      # 8 seeds on the default phantom cohort, CPU-sized
#   KFOLD=5 ./multirun.sh              # stratified 5-fold cross-validation instead
#   PAPER=1 ./multirun.sh              # paper-sized: ResNet18 at 224 px, 50 epochs, GPU, bf16
#   ./multirun.sh data=ukbb data.root=... data.metadata=...   # any override passes through
#   SWEEP_DIR=/path ./multirun.sh      # where the sweep goes (default under ~/.fairaug/runs/protocol)
set -euo pipefail
sweep_dir="${SWEEP_DIR:-${FAIRAUG_HOME:-$HOME/.fairaug}/runs/protocol/$(date +%Y-%m-%d_%H-%M-%S)}"
if [[ -n "${KFOLD:-}" ]]; then
  runs=("split.n_splits=${KFOLD}" "fold=range(${KFOLD})")
else
  runs=("seed=range(8)")
fi
if [[ -n "${PAPER:-}" ]]; then
  size=(model=resnet18 input.size=224 trainer.max_epochs=50 trainer.accelerator=gpu
        trainer.precision=bf16-mixed loader.num_workers=8 loader.batch_size=32)
else
  size=()
fi
status=0
python -m fairaug -m task=classify input=edes sampler=group_balanced "${runs[@]}" ${size[@]+"${size[@]}"} \
  hydra.sweep.dir="$sweep_dir" "$@" || status=$?
if [[ -f "$sweep_dir/summary.md" ]]; then
  cat "$sweep_dir/summary.md"
  echo "Sweep: $sweep_dir (summary.csv, summary.json, summary.md, pooled/)"
fi
exit "$status"
