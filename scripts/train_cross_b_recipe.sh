#!/usr/bin/env bash
# Issue 22, the reverse direction: the shipped-width FGA-Net (or the U-Net at the same width) trained FROM SCRATCH
# on frames of generator B only (guidewire.validation.fluoro_frames; no A weights, no A frames), its threshold and
# confidence cut chosen on other B frames, then scored by bench/bench_segmentation_cross.py on A's held-out set
# (seed 3000, never seen: the cross-generator number) and on B's scoring set (seeds 9000-9199, own generator).
# B seeds: training 30000-30639, threshold 40000-40063; disjoint from the scoring set (9000-9199) and from the
# ridge filter's B tuning frames (20000-20031). A short CPU budget, not the shipped six-stage schedule: one torch
# thread under nice -n 10 on a shared 2-core machine, about 70 min of training.
#   scripts/train_cross_b_recipe.sh shipped   -> out/segmentation/b22/fganet_b/model.pt
#   scripts/train_cross_b_recipe.sh unet      -> out/segmentation/b22/unet_b/model.pt
# Rerun after an interruption: finished steps are skipped, an interrupted training resumes from its last.pt.
set -euo pipefail
network=${1:?usage: $0 shipped|unet}
case "$network" in
  shipped) prefix=fganet name="FGA-Net, shipped width, trained on B only (robust)" ;;
  unet) prefix=unet name="U-Net, shipped width, trained on B only (robust)" ;;
  *) echo "network must be shipped or unet, got $network" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/out/segmentation/b22
run() { nice -n 10 "$root/scripts/env.sh" "$@"; }

[ -f "$work/train_b/frames.json" ] || run python -m guidewire.validation.fluoro_frames "$work/train_b" \
  --seed 30000 --count 640 --size 512
[ -f "$work/val_b/frames.json" ] || run python -m guidewire.validation.fluoro_frames "$work/val_b" \
  --seed 40000 --count 64 --size 512

# 160 px patches (half centred on the wire), batch 8, AdamW with cosine decay from 3e-3: the shipped stage 1's
# from-scratch settings; 8 epochs of 80 steps (640 steps, each frame 8 times), what fitted the 70-minute budget
# at the 2-10 s a step this machine's load gave (FGA-Net: 47 min; the U-Net: 19 min).
output=$work/${prefix}_b
resume=()
[ -f "$output/last.pt" ] && resume=(--resume)
[ -f "$output/model.pt" ] || run python -m guidewire.segmentation.train "$work/train_b" "$output" \
  --network "$network" --patch 160 --batch-size 8 --epochs 8 --learning-rate 3e-3 \
  --cldice-outputs 1 --threads 1 --seed 0 --preprocessing robust "${resume[@]}"

if ! run python -c "import sys, torch; sys.exit('threshold' not in torch.load(sys.argv[1])['meta'])" \
    "$output/model.pt"; then
  run python -m guidewire.segmentation.threshold "$output/model.pt" "$work/val_b" --every 1 --threads 1
fi

run python bench/bench_segmentation_cross.py --sets A,B --count 200 --no-ridge --preprocessing robust \
  --trained-on B --model "$name=$output/model.pt" --png "$work/${prefix}_b_hardest.png"
