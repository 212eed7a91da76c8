#!/usr/bin/env bash
# Trains the paper-width FGA-Net and U-Net of bench/results/segmentation.md side by side on one
# CUDA GPU, with one schedule for both (whole 256 px frames, the paper's batch of 8, AdamW with
# cosine decay, bf16 autocast), then chooses each one's threshold on every 8th training frame.
#   bench/train_paper_width_gpu.sh DATA OUT EPOCHS
# OUT/NETWORK/model.pt is each checkpoint, OUT/NETWORK.log its training log.
set -euo pipefail
data=$1 out=$2 epochs=$3
python=${PYTHON:-python3}
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
pids=()
for network in paper paper-unet; do
    (
        "$python" -m guidewire.segmentation.train "$data" "$out/$network" --network "$network" \
            --epochs "$epochs" --patch 256 --batch-size 8 --learning-rate 1e-3 --cldice-outputs 1 --seed 0 \
            --bf16 --device "${DEVICE:-cuda}"
        "$python" -m guidewire.segmentation.threshold "$out/$network/model.pt" "$data" --every 8
    ) >"$out/$network.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=$?
done
exit $status
