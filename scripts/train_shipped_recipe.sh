#!/usr/bin/env bash
# The shipped network's training recipe (src/guidewire/segmentation/weights/MODEL_CARD.md),
# stage by stage, for either network at the shipped width, so the U-Net baseline is trained
# exactly as the shipped FGA-Net was:
#   scripts/train_shipped_recipe.sh unet       -> out/segmentation/unet_s6/model.pt
#   scripts/train_shipped_recipe.sh shipped    -> out/segmentation/fganet_s6/model.pt
# Rerun it after an interruption: finished stages are skipped, an interrupted one resumes from
# its last.pt. About 4 h (FGA-Net) or 3 h (U-Net) on 2 CPU cores.
set -euo pipefail
network=${1:?usage: $0 shipped|unet}
case "$network" in
  shipped) prefix=fganet ;;
  unet) prefix=unet ;;
  *) echo "network must be shipped or unet, got $network" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/out/segmentation
run() { "$root/scripts/env.sh" "$@"; }

# Stage 1 trained on the generator as it was at commit 5a58938 (anti-aliased masks, 1.5-4 px).
if [ ! -f "$data/v1/train/set.json" ]; then
  generator=$(mktemp -d)
  git -C "$root" worktree add --detach "$generator" 5a58938 >/dev/null
  # env.sh puts this checkout's src first on PYTHONPATH; the old generator must come first.
  run env PYTHONPATH="$generator/src" python -m guidewire.segmentation.synthetic "$data/v1/train" \
    --seed 1000 --poses 16 --frames-per-pose 24
  git -C "$root" worktree remove --force "$generator"
fi
[ -f "$data/train/set.json" ] || run python -m guidewire.segmentation.synthetic "$data/train" \
  --seed 1000 --poses 16 --frames-per-pose 24
[ -f "$data/train_large/set.json" ] || run python -m guidewire.segmentation.synthetic "$data/train_large" \
  --seed 1000 --poses 48 --frames-per-pose 32

# stage NAME DATA INIT THREADS TRAIN-ARGS...: skipped when NAME/model.pt exists.
stage() {
  local output=$data/${prefix}_$1 training=$2 init=$3 threads=$4
  shift 4
  [ -f "$output/model.pt" ] && return
  local resume=()
  [ -f "$output/last.pt" ] && resume=(--resume)
  local start=()
  [ "$init" = - ] || start=(--init "$data/${prefix}_$init/model.pt")
  run python -m guidewire.segmentation.train "$training" "$output" --network "$network" "${start[@]}" \
    --cldice-outputs 1 --threads "$threads" --seed 0 "${resume[@]}" "$@"
}
patches=(--patch 160)
frames=(--patch 256 --batch-size 4 --learning-rate 5e-4)
stage s1 "$data/v1/train" - 1 "${patches[@]}" --epochs 20
stage s2 "$data/train" s1 1 "${patches[@]}" --epochs 15 --learning-rate 1e-3
stage s3 "$data/train_large" s2 1 "${patches[@]}" --epochs 6 --learning-rate 1e-3
stage s4 "$data/train_large" s3 1 "${patches[@]}" --epochs 5 --learning-rate 5e-4
stage s5 "$data/train_large" s4 2 "${frames[@]}" --epochs 5
stage s6 "$data/train_large" s5 2 "${frames[@]}" --epochs 8 --hard-frames 0.5

if ! run python -c "import sys, torch; sys.exit('threshold' not in torch.load(sys.argv[1])['meta'])" \
    "$data/${prefix}_s6/model.pt"; then
  run python -m guidewire.segmentation.threshold "$data/${prefix}_s6/model.pt" "$data/train_large" \
    --every 8 --threads 2
fi
echo "$data/${prefix}_s6/model.pt"
