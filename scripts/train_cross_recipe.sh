#!/usr/bin/env bash
# Issue 22's fine-tuning recipe: the shipped network (or the shipped-width U-Net, alike) fine-tuned on
# randomised frames (guidewire.segmentation.randomised) mixed with frames of the original generator,
# under the robust preprocessing, so that it is scored on the independent generator B
# (bench/bench_segmentation_cross.py) without ever seeing it.
#   scripts/train_cross_recipe.sh shipped [EPOCHS]   -> out/segmentation/fganet_cross/model.pt
#   scripts/train_cross_recipe.sh unet [EPOCHS]      -> out/segmentation/unet_cross/model.pt
# Rerun after an interruption: the sets are kept and training resumes from last.pt.
set -euo pipefail
network=${1:?usage: $0 shipped|unet [EPOCHS]}
epochs=${2:-2}
case "$network" in
  shipped) prefix=fganet; init=src/guidewire/segmentation/weights/fganet_small.pt ;;
  unet) prefix=unet; init=bench/checkpoints/unet_shipped_width.pt ;;
  *) echo "network must be shipped or unet, got $network" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/out/segmentation
run() { "$root/scripts/env.sh" "$@"; }

# 480 randomised frames (256-640 px) and 192 of the original generator, anatomy of the same 8 training
# poses (seed 1000; the held-out sets use seed 3000's poses).
[ -f "$data/randomised_train/set.json" ] || run python -m guidewire.segmentation.randomised \
  "$data/randomised_train" --seed 1000 --frames 480 --max-size 640
[ -f "$data/train_a8/set.json" ] || run python -m guidewire.segmentation.synthetic "$data/train_a8" \
  --seed 1000 --poses 8 --frames-per-pose 24
mixed=$data/cross_mixed
mkdir -p "$mixed/images" "$mixed/masks"
for kind in images masks; do
  for file in "$data/randomised_train/$kind"/*.png; do ln -sf "$file" "$mixed/$kind/r_$(basename "$file")"; done
  for file in "$data/train_a8/$kind"/*.png; do ln -sf "$file" "$mixed/$kind/a_$(basename "$file")"; done
done
output=$data/${prefix}_cross
resume=()
[ -f "$output/last.pt" ] && resume=(--resume)
cd "$root"
run python -m guidewire.segmentation.train "$mixed" "$output" --network "$network" --init "$init" \
  --epochs "$epochs" --patch 160 --batch-size 8 --learning-rate 5e-4 --cldice-outputs 1 --threads 1 --seed 0 \
  --preprocessing robust "${resume[@]}"
