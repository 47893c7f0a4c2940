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
# Whole pipeline (PIPELINE=1): train the ControlNet once on the training split of split.seed
# SPLIT_SEED (default 0), generate a copy and a balanced synthetic dataset, judge their quality,
# run the four arms (real only, real + copy, real + balance, synthetic only) over SEEDS seeds
# (default 8), all on the generator's split, and compare the arms. Every stage is skipped or
# resumed when its output is already complete, so an interrupted pipeline is rerun as is.
#   PIPELINE=1 ./multirun.sh
#   PIPELINE=1 SEEDS=3 SWEEP_DIR=/path ./multirun.sh diffusion.steps=500   # overrides go to every stage
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
  local split_seed="${SPLIT_SEED:-0}" seeds="${SEEDS:-8}"
  local generator="$sweep_dir/controlnet" arms=() names=()
  if [[ -f "$generator/model/fairaug.json" ]]; then
    echo "== ControlNet training: $generator/model exists, reused (delete it to retrain)"
  else
    echo "== ControlNet training ($generator)"
    local resume=()
    [[ -f "$generator/checkpoints/last.ckpt" ]] && resume=(diffusion.resume="$generator")
    python -m fairaug task=controlnet_train seed="$split_seed" ${resume[@]+"${resume[@]}"} \
      hydra.run.dir="$generator" "$@"
  fi
  for mode in copy balance; do
    echo "== generation=$mode ($sweep_dir/synth_$mode)"
    python -m fairaug task=synth_generate generation="$mode" generation.model="$generator" \
      hydra.run.dir="$sweep_dir/synth_$mode" "$@"
  done
  # Classifiers see the images at the generator's size (PAPER=1: at 224 px), and every arm keeps
  # the generator's split.
  local common=(task=classify input=edes "input.size=\${diffusion.size}" sampler=group_balanced
                split.seed="$split_seed" "seed=range($seeds)")
  for arm in real copy balance synth_only; do
    case "$arm" in
      real) extra=() ;;
      copy) extra=(data.synthetic.path="$sweep_dir/synth_copy") ;;
      balance) extra=(data.synthetic.path="$sweep_dir/synth_balance") ;;
      synth_only) extra=(data.synthetic.path="$sweep_dir/synth_copy" data.use_real=false) ;;
    esac
    if [[ ! -f "$sweep_dir/arms/$arm/summary.json" ]] || \
       ! python -c "import json,sys; s=json.load(open(sys.argv[1])); sys.exit(s['completed'] != $seeds)" \
         "$sweep_dir/arms/$arm/summary.json"; then
      echo "== arm $arm ($sweep_dir/arms/$arm)"
      python -m fairaug -m "${common[@]}" ${extra[@]+"${extra[@]}"} ${size[@]+"${size[@]}"} \
        hydra.sweep.dir="$sweep_dir/arms/$arm" "$@"
    else
      echo "== arm $arm: all $seeds runs complete in $sweep_dir/arms/$arm, reused"
    fi
    arms+=("$sweep_dir/arms/$arm")
    names+=("$arm")
  done
  for mode in copy balance; do
    echo "== quality of generation=$mode"
    python -m fairaug task=synth_quality quality.synthetic="$sweep_dir/synth_$mode" \
      quality.classifier="$sweep_dir/arms/real/0" hydra.run.dir="$sweep_dir/quality_$mode" "$@"
  done
  local joined_arms joined_names
  joined_arms=$(IFS=,; echo "${arms[*]}")
  joined_names=$(IFS=,; echo "${names[*]}")
  python -m fairaug task=evaluate "compare=[$joined_arms]" "compare_names=[$joined_names]" \
    hydra.run.dir="$sweep_dir/comparison" "$@"
  cat "$sweep_dir/quality_copy/quality.md" "$sweep_dir/quality_balance/quality.md" "$sweep_dir/comparison/comparison.md"
  echo "Pipeline: $sweep_dir (controlnet/, synth_copy/, synth_balance/, quality_*/, arms/, comparison/)"
}

if [[ -n "${PIPELINE:-}" ]]; then
  pipeline "$@"
else
  classification "$@"
fi
