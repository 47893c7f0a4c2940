#!/usr/bin/env bash
# The paper's classification protocol on the default data: ED/ES/ED input, group-balanced
# sampling, 8 repeated runs (seeds 0-7), each in its own job directory of one sweep folder.
#   ./multirun.sh                       # 8 seeds, default phantom cohort, CPU-sized model
#   ./multirun.sh model=resnet18        # any Hydra override passes through
#   KFOLD=5 ./multirun.sh               # stratified 5-fold cross-validation instead of seeds
set -euo pipefail
cd "$(dirname "$0")"
if [[ -n "${KFOLD:-}" ]]; then
  sweep=("split.n_splits=${KFOLD}" "fold=range(${KFOLD})")
else
  sweep=("seed=range(8)")
fi
exec python -m fairaug -m task=classify input=edes sampler=group_balanced "${sweep[@]}" "$@"
