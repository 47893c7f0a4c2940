#!/usr/bin/env bash
# The paper's protocols in one command.
#
# Classification (default): ED/ES/ED input, group-balanced sampling, 8 repeated runs (seeds 0-7)
# or k-fold, then the sweep summary (mean ± std per subgroup, fairness criteria, pooled
# predictions), printed at the end.
#   ./multirun.sh                      # 8 seeds on the default phantom cohort, CPU-sized
#   KFOLD=5 ./multirun.sh              # stratified 5-fold cross-validation instead
#   PAPER=1 ./multirun.sh              # paper-sized: ResNet18 at 224 px, 50 epochs, GPU, bf16
#   ./multirun.sh data=ukbb data.root=... data.metadata=...   # any override passes through
#   SWEEP_DIR=/path ./multirun.sh      # where the sweep goes (default under ~/.fairaug/runs/protocol)
#
# Whole pipeline (PIPELINE=1): the capstone experiment, task=pipeline. Per training set (built-in
# cohort: independent cohorts data.seed, data.seed+1, ...; real data: split seeds) a ControlNet,
# its synthetic datasets, classical augmentation and (built-in cohort only) new real subjects of
# the planned cells (the oracle); every arm over the seeds with equal optimizer steps; report.md
# with paired tests against real_only and the share of the oracle's gain each arm recovers.
# Every stage is reused when finished with the same inputs, so an interrupted run is rerun as is.
#   PIPELINE=1 ./multirun.sh                       # 5 training sets x 3 seeds, 9 arms + doses
#   PIPELINE=1 SEEDS=8 DOSES=0.5,2,4 SCENARIOS=default,distinct_phenotype ./multirun.sh
#   PIPELINE=1 SEEDS=2 QUICK=1 ./multirun.sh       # laptop profile, numbers not meaningful
#   PIPELINE=1 ./multirun.sh data=ukbb data.root=... data.metadata=...   # every arm but the oracle's
set -euo pipefail
# the pid ($$) keeps two protocols started in the same second apart
sweep_dir="${SWEEP_DIR:-${FAIRAUG_HOME:-$HOME/.fairaug}/runs/protocol/$(date +%Y-%m-%d_%H-%M-%S)_$$}"
if [[ -n "${PAPER:-}" ]]; then
  size=(model=resnet18 input.size=224 trainer.max_epochs=50 trainer.accelerator=gpu
        trainer.precision=bf16-mixed loader.num_workers=8 loader.batch_size=32)
else
  size=()
fi

classification() {
  if [[ -n "${KFOLD:-}" ]]; then
    runs=("split.n_splits=${KFOLD}" "fold=range(${KFOLD})")
  else
    runs=("seed=range(8)")
  fi
  status=0
  python -m fairaug -m task=classify input=edes sampler=group_balanced "${runs[@]}" ${size[@]+"${size[@]}"} \
    hydra.sweep.dir="$sweep_dir" "$@" || status=$?
  if [[ -f "$sweep_dir/summary.md" ]]; then
    cat "$sweep_dir/summary.md"
    echo "Sweep: $sweep_dir (results.csv, summary.csv, summary.json, summary.md, pooled/)"
  fi
  return "$status"
}

pipeline() {
  local design=()
  [[ -n "${SEEDS:-}" ]] && design+=("task.seeds=${SEEDS}")
  [[ -n "${TRAINING_SETS:-}" ]] && design+=("task.training_sets=${TRAINING_SETS}")
  [[ -n "${DOSES:-}" ]] && design+=("task.doses=[${DOSES}]")
  [[ -n "${SCENARIOS:-}" ]] && design+=("task.scenarios=[${SCENARIOS}]")
  if [[ -n "${QUICK:-}" ]]; then
    # Small enough for 2 CPU cores in well under 20 minutes; the report says its numbers are not meaningful.
    design=(task.quick=true task.training_sets=2 task.doses=[2] task.n_boot=500 data.n_subjects=100 data.geometry.n_frames=20
            split=external ++split.val.n_subjects=60 ++split.test.n_subjects=150 trainer.max_epochs=6
            diffusion.steps=200 generation.steps=10 generation.max_samples=100 ${design[@]+"${design[@]}"})
  fi
  python -m fairaug task=pipeline ${design[@]+"${design[@]}"} ${size[@]+"${size[@]}"} hydra.run.dir="$sweep_dir" "$@"
  cat "$sweep_dir/report.md"
  echo "Pipeline: $sweep_dir (report.md, runs.csv, predictions.csv, <scenario>/train<r>/...)"
}

if [[ -n "${PIPELINE:-}" ]]; then
  pipeline "$@"
else
  classification "$@"
fi
