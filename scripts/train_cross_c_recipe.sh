#!/usr/bin/env bash
# Issue 22, second recipe: the shipped FGA-Net fine-tuned on randomised A frames (guidewire.segmentation.randomised),
# then on those mixed with frames of the independent generator C (guidewire.segmentation.phantom_frames) and of A,
# under the robust preprocessing, 256 px patches, one CPU thread. Generator B (guidewire.validation.fluoro_frames)
# is never trained on: it is only scored (bench/bench_segmentation_cross.py). The threshold is chosen on held-out
# A, randomised A and C frames (other seeds).
#   scripts/train_cross_c_recipe.sh   -> out/segmentation/c22/fga_s2/model.pt (threshold stored in it)
# Stage 1's first set is scripts/train_cross_recipe.sh's (out/segmentation/cross_mixed: 480 randomised frames of
# seed 1000 and 192 A frames of seed 1000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/out/segmentation
work=$data/c22
run() { nice -n 5 "$root/scripts/env.sh" "$@"; }
train() { run python -m guidewire.segmentation.train "$@" --network shipped --patch 256 --batch-size 4 \
  --cldice-outputs 1 --threads 1 --seed 0 --preprocessing robust; }
# shellcheck source=recipe_link.sh
source "$root/scripts/recipe_link.sh"

[ -d "$data/cross_mixed/images" ] || { echo "run scripts/train_cross_recipe.sh first (its sets)" >&2; exit 2; }
# Stage 1: 2 epochs of a 3-epoch cosine schedule (336 steps) on randomised A + A, from the shipped weights.
[ -f "$work/fga_s1/model.pt" ] || train "$data/cross_mixed" "$work/fga_s1" \
  --init src/guidewire/segmentation/weights/fganet_small.pt --epochs 3 --stop-after 2 --learning-rate 1e-3

# Stage 2 data: C seed 100 (first 90 frames, each twice), randomised seed 1001 (every 2nd of 232),
# randomised seed 1000 (every 4th of 480), A seed 1000 8 poses (every 2nd of 192): 512 frames.
[ -f "$work/train_c/set.json" ] || run python -m guidewire.segmentation.phantom_frames "$work/train_c" \
  --count 90 --seed 100 --size 512
[ -f "$work/rand_1001/set.json" ] || run python -m guidewire.segmentation.randomised "$work/rand_1001" \
  --seed 1001 --frames 232 --max-size 640
mix=$work/mix_s2
if [ ! -d "$mix" ]; then
  link "$work/train_c" c1 1 90 "$mix"; link "$work/train_c" c2 1 90 "$mix"
  link "$work/rand_1001" r1 2 232 "$mix"; link "$data/randomised_train" r0 4 480 "$mix"
  link "$data/train_a8" a 2 192 "$mix"
fi
[ -f "$work/fga_s2/model.pt" ] || train "$mix" "$work/fga_s2" --init "$work/fga_s1/model.pt" --epochs 2 \
  --learning-rate 5e-4

# Held-out selection frames: A seed 4000 (2 poses x 16), randomised seed 5000 (64), C seed 200 (48).
[ -f "$work/val_a/set.json" ] || run python -m guidewire.segmentation.synthetic "$work/val_a" --seed 4000 \
  --poses 2 --frames-per-pose 16
[ -f "$work/val_r/set.json" ] || run python -m guidewire.segmentation.randomised "$work/val_r" --seed 5000 \
  --frames 64 --max-size 640
[ -f "$work/val_c/set.json" ] || run python -m guidewire.segmentation.phantom_frames "$work/val_c" --count 48 \
  --seed 200 --size 512
val=$work/val_mix
if [ ! -d "$val" ]; then
  link "$work/val_a" val_a 1 32 "$val"; link "$work/val_r" val_r 1 64 "$val"; link "$work/val_c" val_c 1 48 "$val"
fi
run python -m guidewire.segmentation.threshold "$work/fga_s2/model.pt" "$val" --every 1 --threads 1
