#!/usr/bin/env bash
# Issue 22, fourth recipe: the shipped-width FGA-Net trained on frames of all three generators at once, A (the
# project's own, guidewire.segmentation.synthetic, and its randomised variant guidewire.segmentation.randomised),
# B (guidewire.validation.fluoro_frames) and C (guidewire.segmentation.phantom_frames), roughly a third each,
# starting from the B-only network (scripts/train_cross_b_recipe.sh shipped: the best cross-generator score so
# far). Threshold chosen on held-out A, randomised A, B and C frames; then scored by bench/bench_segmentation_cross.py
# on A's held-out set, B's scoring set and generator D (guidewire.validation.cathlab_frames), which no choice here
# looked at.
#   scripts/train_cross_abc_recipe.sh   -> out/segmentation/abc22/model.pt (threshold stored in it)
# Needs the sets of scripts/train_cross_recipe.sh (randomised_train, train_a8), scripts/train_cross_b_recipe.sh
# (b22/train_b, b22/val_b, b22/fganet_b) and scripts/train_cross_c_recipe.sh (c22/train_c, c22/rand_1001, c22/val_mix).
# Rerun after an interruption: finished steps are skipped, an interrupted training resumes from its last.pt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/out/segmentation
work=$data/abc22
run() { nice -n 10 "$root/scripts/env.sh" "$@"; }
# shellcheck source=recipe_link.sh
source "$root/scripts/recipe_link.sh"
for set in randomised_train train_a8 b22/train_b b22/val_b b22/fganet_b/model.pt c22/train_c c22/rand_1001 c22/val_mix; do
  [ -e "$data/$set" ] || { echo "missing $data/$set: run the earlier cross recipes first" >&2; exit 2; }
done

# 923 frames: B seeds 30000-30639 (every 2nd: 320), C seed 100 (all 267 written), A: randomised seed 1001 (every
# 2nd of 240: 120), randomised seed 1000 (every 4th of 480: 120), A seed 1000 8 poses (every 2nd of 192: 96).
mix=$work/mix
if [ ! -d "$mix" ]; then
  link "$data/b22/train_b" b 2 640 "$mix"
  link "$data/c22/train_c" c 1 267 "$mix"
  link "$data/c22/rand_1001" r1 2 240 "$mix"; link "$data/randomised_train" r0 4 480 "$mix"
  link "$data/train_a8" a 2 192 "$mix"
fi

# From the B-only network: its 160 px patches and batch 8, AdamW with cosine decay from 1e-3 (a fine-tune's rate,
# a third of its from-scratch 3e-3); 12 epochs of 115 steps (1380 steps), what fitted the ~80 min budget of one
# torch thread under nice -n 10 on the shared 2-core machine.
output=$work/fga
resume=()
[ -f "$output/last.pt" ] && resume=(--resume)
[ -f "$output/model.pt" ] || run python -m guidewire.segmentation.train "$mix" "$output" --network shipped \
  --init "$data/b22/fganet_b/model.pt" --patch 160 --batch-size 8 --epochs 12 --learning-rate 1e-3 \
  --cldice-outputs 1 --threads 1 --seed 0 --preprocessing robust "${resume[@]}"

# Threshold and confidence cut on held-out frames of A, randomised A, B and C only (208): c22/val_mix (A seed 4000
# 2 poses x 16, randomised seed 5000 64 frames, C seed 200 48 frames) and B seeds 40000-40063.
val=$work/val_abc
if [ ! -d "$val" ]; then
  link "$data/c22/val_mix" m 1 144 "$val"; link "$data/b22/val_b" b 1 64 "$val"
fi
[ -f "$work/model.pt" ] || {
  run python -m guidewire.segmentation.threshold "$output/model.pt" "$val" --every 1 --threads 1
  cp "$output/model.pt" "$work/model.pt"
}

# Scored once the checkpoint and threshold were fixed: A's held-out set and B's scoring set, then generator D
# (guidewire.validation.cathlab_frames seed 70000, 200 frames, written by the bench if missing) for this network,
# the shipped FGA-Net and the B-only network, all under the robust preprocessing.
run python bench/bench_segmentation_cross.py --sets A,B --count 200 --no-ridge --preprocessing robust \
  --trained-on "A+B+C" --model "FGA-Net, shipped width, B-only network fine-tuned on A + B + C (robust)=$work/model.pt" \
  --png "$work/abc_hardest.png"
run python bench/bench_segmentation_cross.py --sets D --count 200 --no-ridge --preprocessing robust \
  --model "FGA-Net, A + B + C (robust)=$work/model.pt" \
  --model "FGA-Net (shipped)=$root/src/guidewire/segmentation/weights/fganet_small.pt" \
  --model "FGA-Net, B only (robust)=$data/b22/fganet_b/model.pt"
# The shipped network under its default (paper) preprocessing on D, for comparison.
run python bench/bench_segmentation_cross.py --sets D --count 200 --no-ridge --preprocessing paper \
  --model "FGA-Net (shipped)=$root/src/guidewire/segmentation/weights/fganet_small.pt"
